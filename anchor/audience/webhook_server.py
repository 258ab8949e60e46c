"""The daemon's one HTTP server for platforms that push a live room's events: POST /rooms/<channel>/<room>.

One aiohttp server per daemon, on 127.0.0.1 unless the daemon is told otherwise (platforms reach it through
the institution's HTTPS reverse proxy: Douyin calls HTTPS callbacks only). Each webhook room adds its route
while its source runs (add_route) and takes it away when stopped (remove_route); the server itself only
routes, bounds the body, counts and logs. What a body means, and whether it is signed, is the route's
handler's business (anchor.audience.sources.webhook).

Every request to /rooms/… ends in one Outcome, counted in anchor_webhook_requests_total{outcome} and
logged with its channel, room, status and size, never with its body, headers or anything a viewer sent:
  accepted 200, duplicate 200 (every event in it was had before), bad_signature 401, malformed 400,
  stale 409 (its timestamp is outside the window), replayed 409 (an event id already accepted),
  too_large 413 (over the route's body limit, refused before reading past it), unknown_room 404.
The answer is a small JSON object: {"outcome": "...", "events": n}, or {"outcome": "...", "error": "..."} with
a "detail" naming the faulty fields of a signed but malformed body. Only POST is routed (others: 405, uncounted).
A handler is synchronous (nothing it does waits), so the answer leaves as soon as the body has arrived.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

from aiohttp import web

from anchor.metrics import WEBHOOK_REQUESTS

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
BODY_TIMEOUT = 10.0  # a body that has not fully arrived by then is refused as malformed (slow-sender guard)


class Outcome(str, Enum):
    """What became of one request: the `outcome` label of anchor_webhook_requests_total."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    REPLAYED = "replayed"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNKNOWN_ROOM = "unknown_room"

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS = {
    Outcome.ACCEPTED: 200, Outcome.DUPLICATE: 200, Outcome.BAD_SIGNATURE: 401, Outcome.STALE: 409,
    Outcome.REPLAYED: 409, Outcome.MALFORMED: 400, Outcome.TOO_LARGE: 413, Outcome.UNKNOWN_ROOM: 404,
}


@dataclass(frozen=True)
class Reply:
    """A handler's verdict on one request."""

    outcome: Outcome
    events: int = 0  # interactions handed over
    error: str = ""  # a fixed phrase, logged and answered: never anything taken from the request
    detail: str = ""  # answered to the (authenticated) sender only, never logged: may name its fields


Handler = Callable[[Mapping[str, str], bytes], Reply]
"""Judges one request from its headers (case-insensitive) and raw body; emits what it accepts."""


@dataclass(frozen=True)
class _Route:
    handler: Handler
    max_body_bytes: int


class WebhookServer:
    """One HTTP server for every webhook room of the daemon. Routes may be added before or after start()."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.host = host
        self.port = port  # the bound port once started (0 asks the system for a free one)
        self._routes: dict[tuple[str, str], _Route] = {}
        self._readers: dict[str, Callable[[], Mapping[str, object]]] = {}  # GET path → what it answers (JSON)
        self._runner: web.AppRunner | None = None
        self._flipped = asyncio.Event()  # set (and replaced) each time the server starts or stops

    # -- lifetime ------------------------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        return self._runner is not None

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Listen on host:port (the constructor's unless given); the port really bound."""
        if self._runner is not None:
            raise RuntimeError(f"the webhook server already listens on {self.host}:{self.port}")
        host = self.host if host is None else host
        port = self.port if port is None else port
        app = web.Application()
        app.router.add_post("/rooms/{channel}/{room}", self._handle)
        for path, read in self._readers.items():
            app.router.add_get(path, self._reader(read))
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = runner.addresses[0]
        self.host, self.port = host, int(bound[1])
        self._runner = runner
        for outcome in Outcome:  # every series exists from the start, at 0, for rate() and alerts
            WEBHOOK_REQUESTS.labels(outcome=outcome.value)
        self._flip()
        log.info("webhook server listening on %s:%d (%d rooms)", self.host, self.port, len(self._routes))
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._flip()
        await runner.cleanup()
        log.info("webhook server on %s:%d stopped", self.host, self.port)

    def _flip(self) -> None:
        flipped, self._flipped = self._flipped, asyncio.Event()
        flipped.set()

    async def wait_serving(self, serving: bool = True) -> None:
        """Return once the server is (or, with False, is no longer) listening."""
        while self.serving != serving:
            await self._flipped.wait()

    # -- routes --------------------------------------------------------------------------------------------

    def add_reader(self, path: str, read: Callable[[], Mapping[str, object]]) -> None:
        """Answer GET `path` with `read()` as JSON (the daemon's `anchor status`); before start()."""
        self._readers[path] = read

    @staticmethod
    def _reader(read: Callable[[], Mapping[str, object]]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def answer(request: web.Request) -> web.Response:
            return web.json_response(dict(read()), dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))

        return answer

    def add_route(self, channel: str, room: str, handler: Handler, *,
                  max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        """Serve POST /rooms/<channel>/<room> with `handler`; ValueError if that room is served already."""
        if not channel or not room or "/" in channel or "/" in room:
            raise ValueError(f"a webhook room needs a channel and room name without '/': {channel!r} {room!r}")
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if (channel, room) in self._routes:
            raise ValueError(f"channel {channel} room {room} is served already: two rooms with one name?")
        self._routes[(channel, room)] = _Route(handler, max_body_bytes)

    def remove_route(self, channel: str, room: str) -> None:
        self._routes.pop((channel, room), None)

    def path(self, channel: str, room: str) -> str:
        return f"/rooms/{quote(channel, safe='')}/{quote(room, safe='')}"

    def url(self, channel: str, room: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path(channel, room)}"

    # -- requests ------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        channel, room = request.match_info["channel"], request.match_info["room"]
        route = self._routes.get((channel, room))
        size = request.content_length
        if route is None:
            # Names from the URL are the sender's: logged as repr, never trusted.
            return self._answer(Reply(Outcome.UNKNOWN_ROOM, error="no webhook room at this path"),
                                f"channel {channel!r} room {room!r}", request, size, started, close=True)
        where = f"channel {channel} room {room}"
        limit = route.max_body_bytes
        if size is not None and size > limit:
            return self._answer(Reply(Outcome.TOO_LARGE, error=f"the body limit is {limit} bytes"), where,
                                request, size, started, close=True)
        body = bytearray()
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                async for chunk in request.content.iter_any():
                    body += chunk
                    if len(body) > limit:
                        return self._answer(Reply(Outcome.TOO_LARGE, error=f"the body limit is {limit} bytes"),
                                            where, request, len(body), started, close=True)
        except TimeoutError:
            return self._answer(Reply(Outcome.MALFORMED, error="the body did not arrive in time"), where,
                                request, len(body), started, close=True)
        try:
            reply = route.handler(request.headers, bytes(body))
        except Exception:  # a bug of ours: never the sender's fault, never a crash of the server
            log.exception("%s: the webhook handler failed on a %d-byte request", where, len(body))
            return web.json_response({"outcome": "error", "error": "internal error"}, status=500)
        return self._answer(reply, where, request, len(body), started)

    def _answer(self, reply: Reply, where: str, request: web.Request, size: int | None, started: float, *,
                close: bool = False) -> web.Response:
        outcome = reply.outcome
        WEBHOOK_REQUESTS.labels(outcome=outcome.value).inc()
        elapsed_ms = (time.monotonic() - started) * 1000
        if outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE):
            log.debug("%s: webhook %s, %d events (%s bytes, %.1f ms)", where, outcome.value, reply.events,
                      size, elapsed_ms)
            payload: dict[str, object] = {"outcome": outcome.value, "events": reply.events}
        else:
            log.warning("%s: refused a webhook request: %s (HTTP %d, %s bytes, from %s): %s", where,
                        outcome.value, outcome.status, "?" if size is None else size, request.remote,
                        reply.error or "-")
            payload = {"outcome": outcome.value, "error": reply.error}
            if reply.detail:
                payload["detail"] = reply.detail
        response = web.json_response(payload, status=outcome.status)
        if close:  # the rest of an unread body must not be read as the next request
            response.force_close()
        return response
