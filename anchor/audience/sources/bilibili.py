"""Bilibili's live open platform (直播开放平台): the official route to hear a live room, on aiohttp.

How a room is heard:
  1. POST {api_base}/v2/app/start {code: the streamer's identity code (身份码), app_id} → a game (场次) with
     game_id, the websocket's auth_body and wss_link[]. Every HTTP call is a signed JSON POST (see sign()).
  2. POST /v2/app/heartbeat {game_id} every `app_heartbeat_interval` (20 s) while the game lives: the
     platform closes a game that has none for 60 s. Error 7003 (or the message
     LIVE_OPEN_PLATFORM_INTERACTION_END) means the game is over: end it and start a new one.
  3. A websocket to one of wss_link: op 7 auth with auth_body exactly as received → op 8 {"code": 0}; op 2
     heartbeat every `ws_heartbeat_interval` (30 s) → op 3; op 5 pushes {"cmd": …, "data": {…}}, often
     several packets zlib- (protover 2) or brotli-compressed (protover 3) in one.
  4. POST /v2/app/end {game_id, app_id} when the source is stopped (cancelled) or a game is given up.

Secrets never sit in the channel file. For a room named ROOM (its `name`, else "bilibili"), from
anchor.credentials (environment first, then systemd's $CREDENTIALS_DIRECTORY):
  ANCHOR_BILIBILI_KEY_ID_<ROOM>      or file bilibili-key-id-<room> / bilibili-key-id      access key id
  ANCHOR_BILIBILI_KEY_SECRET_<ROOM>  or file bilibili-key-secret-<room> / bilibili-key-secret  access key secret
  ANCHOR_BILIBILI_CODE_<ROOM>        or file bilibili-code-<room> / bilibili-code      the streamer's 身份码
  ANCHOR_VIEWER_SALT_<ROOM>          or file viewer-salt-<room> / viewer-salt          optional: viewer hash salt
<ROOM> is the name upper-cased with every character other than A-Z and 0-9 turned into "_".
A missing key id, key secret or code raises SourceError naming the variable to set.

Viewers: the platform names a viewer by open_id (stable per app). Interaction.viewer is a salted
HMAC-SHA256 of it (32 hex digits), never the open_id itself and never the name. The salt is the secret
"viewer-salt"; without one a random salt is drawn for this process, so the same viewer hashes alike
until the daemon restarts and differently after (unique-viewer counts then do not span restarts).

Reconnection: a dropped websocket is made again on the same game (its app heartbeats go on meanwhile);
a game the platform ended (7003, INTERACTION_END), a refused auth, or three websocket attempts in a row
that never proved healthy (authenticated, then heard the platform) start a new game. Waits between
attempts grow from `backoff_initial` to `backoff_max` (×2 each, a little jitter) and fall back once a
connection proves healthy. Every drop is told
through RoomState.reconnecting(reason) with one of: closed (the websocket closed or broke), silent (no op 3
within `silence_timeout`), ended (the platform ended the game), refused (the platform refused a call:
an error code or an HTTP error), auth (the websocket refused or never answered our auth), error (the
network failed or the answer was unreadable). run() never raises for any of these.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import json
import logging
import random
import struct
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from pydantic import Field, field_validator, model_validator

from anchor.audience.interaction import Interaction, Kind
from anchor.audience.sources import register
from anchor.audience.sources.base import Emit, RoomSettings, RoomSource, RoomState, SourceError

log = logging.getLogger(__name__)

PLATFORM = "bilibili"
SECRET_KEY_ID = "bilibili-key-id"
SECRET_KEY_SECRET = "bilibili-key-secret"
SECRET_CODE = "bilibili-code"

# The websocket's packet header: length of the whole packet, header length (16), protocol version,
# operation, sequence (1). Big-endian.
HEADER = struct.Struct(">IHHII")
PROTO_JSON, PROTO_PLAIN, PROTO_ZLIB, PROTO_BROTLI = 0, 1, 2, 3
OP_HEARTBEAT, OP_HEARTBEAT_REPLY, OP_MESSAGE, OP_AUTH, OP_AUTH_REPLY = 2, 3, 5, 7, 8

CODE_GAME_GONE = 7003  # 心跳过期: the game_id is wrong or the game was closed
INTERACTION_END = "LIVE_OPEN_PLATFORM_INTERACTION_END"
_CMD_PREFIX = "LIVE_OPEN_PLATFORM_"
_MAX_INFLATED = 16 * 1024 * 1024  # a compressed push never legitimately inflates past this
_SEEN_IDS = 10_000  # msg_ids remembered to drop repeats (repeats come around reconnects)
_WS_FAILURES_BEFORE_NEW_GAME = 3


class BilibiliSettings(RoomSettings):
    """A [[room]] with platform = "bilibili". Secrets are not keys here: see the module's docstring."""

    platform: Literal["bilibili"] = "bilibili"
    app_id: int = Field(gt=0)  # the project (项目) id from the open platform's console
    api_base: str = "https://live-open.biliapi.com"
    keep_comment_text: bool = False  # keep the text of comments and super chats (else only that they came)
    request_timeout: float = Field(10.0, gt=0, le=120)  # one HTTP call, one websocket connect
    app_heartbeat_interval: float = Field(20.0, gt=0, le=40)  # the platform drops a game after 60 s without
    ws_heartbeat_interval: float = Field(30.0, gt=0, le=120)
    silence_timeout: float = Field(60.0, gt=0, le=600)  # no op 3 (or op 8 after auth) this long: reconnect
    backoff_initial: float = Field(1.0, gt=0, le=60)
    backoff_max: float = Field(60.0, gt=0, le=600)

    @field_validator("api_base")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_base must be an http(s) URL, e.g. https://live-open.biliapi.com")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> BilibiliSettings:
        if self.silence_timeout <= self.ws_heartbeat_interval:
            raise ValueError(f"silence_timeout ({self.silence_timeout:g} s) must exceed ws_heartbeat_interval "
                             f"({self.ws_heartbeat_interval:g} s), e.g. twice it")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        return self


def sign(key_id: str, key_secret: str, body: bytes, *, timestamp: int | None = None,
         nonce: str | None = None) -> dict[str, str]:
    """The headers of one signed call: the x-bili-* headers, Authorization over them, and the content type."""
    headers = {
        "x-bili-accesskeyid": key_id,
        "x-bili-content-md5": hashlib.md5(body).hexdigest(),
        "x-bili-signature-method": "HMAC-SHA256",
        "x-bili-signature-nonce": nonce if nonce is not None else uuid.uuid4().hex,
        "x-bili-signature-version": "1.0",
        "x-bili-timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    canonical = "\n".join(f"{name}:{headers[name]}" for name in sorted(headers))
    signature = hmac.new(key_secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {**headers, "Authorization": signature, "Content-Type": "application/json",
            "Accept": "application/json"}


def packet(op: int, body: bytes, protover: int = PROTO_PLAIN) -> bytes:
    """One websocket packet: the 16-byte header, then the body."""
    return HEADER.pack(HEADER.size + len(body), HEADER.size, protover, op, 1) + body


class _Trouble(Exception):
    """A call or a connection failed; `reason` is the fixed word RoomState hears."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _GameOver(_Trouble):
    def __init__(self, detail: str) -> None:
        super().__init__("ended", detail)


@dataclass
class _Game:
    """One started game (场次): what the websocket needs, and whether the platform still has it."""

    game_id: str
    auth_body: str
    links: list[str]
    over: str | None = None  # the reason word once the game is finished
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    ws_failures: int = 0  # websocket attempts in a row that never proved healthy
    attempts: int = 0

    def finish(self, reason: str) -> None:
        if self.over is None:
            self.over = reason
        self.finished.set()


@dataclass
class _Drop:
    reason: str
    healthy: bool  # the connection authenticated and then heard the platform
    game_over: bool = False  # the game cannot go on (ended by the platform, auth refused)


class _Backoff:
    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap = initial, cap
        self.delay = initial

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.delay = self.initial


@register
class BilibiliSource(RoomSource):
    name = "bilibili"
    Settings = BilibiliSettings

    def __init__(self, channel: str, settings: RoomSettings) -> None:
        if not isinstance(settings, BilibiliSettings):
            raise SourceError(f"channel {channel}: the bilibili source needs bilibili room settings")
        super().__init__(channel, settings)
        self.config: BilibiliSettings = settings
        self._key_id = self.required_secret(SECRET_KEY_ID,
                                            "the access key id of the open platform's developer account")
        self._key_secret = self.required_secret(SECRET_KEY_SECRET, "the access key secret of that account")
        self._code = self.required_secret(SECRET_CODE, "the streamer's identity code (身份码)")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._warned_brotli = False

    # -- secrets and the mapping of pushes to Interactions -------------------------------------------------


    def interaction(self, command: dict[str, Any]) -> Interaction | None:
        """The Interaction one pushed command stands for (None for commands that are not one, or repeats)."""
        cmd = command.get("cmd")
        data = command.get("data")
        if not isinstance(cmd, str) or not isinstance(data, dict):
            log.warning("%s: a push without cmd and data (keys %s)", self.where, sorted(command)[:10])
            return None
        kind = cmd.removeprefix(_CMD_PREFIX)
        built = self._build(kind, data)
        if built is None:
            if kind not in ("SUPER_CHAT_DEL", "DM_MIRROR"):
                log.debug("%s: %s is not an interaction", self.where, cmd)
            return None
        if built.event_id is not None:
            if built.event_id in self._seen:
                log.debug("%s: dropped a repeat of %s %s", self.where, cmd, built.event_id)
                return None
            self._seen[built.event_id] = None
            while len(self._seen) > _SEEN_IDS:
                self._seen.popitem(last=False)
        return built

    def _build(self, kind: str, data: dict[str, Any]) -> Interaction | None:
        def make(k: Kind, *, count: int = 1, value: float = 0.0, open_id: str = "",
                 text: str | None = None) -> Interaction:
            msg_id = data.get("msg_id")
            return Interaction(
                channel=self.channel, room=self.room, platform=PLATFORM, kind=k, at=_instant(data.get("timestamp")),
                count=count, value_cny=round(value, 3), viewer=self.viewer_hash(open_id) if open_id else None,
                event_id=msg_id if isinstance(msg_id, str) and msg_id else None,
                text=text if self.config.keep_comment_text else None)

        open_id = _str(data, "open_id")
        if kind == "DM":
            return make(Kind.COMMENT, open_id=open_id, text=_str(data, "msg"))
        if kind == "SEND_GIFT":
            num = max(_int(data, "gift_num"), 1)
            paid = data.get("paid") is True
            return make(Kind.GIFT, count=num, value=_int(data, "price") * num / 1000 if paid else 0.0,
                        open_id=open_id)
        if kind == "SUPER_CHAT":
            return make(Kind.SUPERCHAT, value=float(_number(data, "rmb")), open_id=open_id,
                        text=_str(data, "message"))
        if kind == "GUARD":
            user = data.get("user_info")
            guard_open_id = _str(user, "open_id") if isinstance(user, dict) else ""
            unit = _str(data, "guard_unit")
            # guard_num counts months; any other unit (e.g. "*3天") says the length itself, and guard_num is moot.
            months = max(_int(data, "guard_num"), 1) if unit in ("", "月") else 1
            return make(Kind.GUARD, count=months, value=_int(data, "price") * months / 1000,
                        open_id=guard_open_id or open_id)
        if kind == "LIKE":
            return make(Kind.LIKE, count=max(_int(data, "like_count"), 1), open_id=open_id)
        if kind == "LIVE_ROOM_ENTER":
            return make(Kind.ENTER, open_id=open_id)
        if kind == "LIVE_START":  # open_id here is the streamer's: not a viewer
            return make(Kind.LIVE_START)
        if kind == "LIVE_END":
            return make(Kind.LIVE_END)
        return None

    # -- running -------------------------------------------------------------------------------------------

    async def run(self, emit: Emit, state: RoomState) -> None:
        settings = self.config
        backoff = _Backoff(settings.backoff_initial, settings.backoff_max)
        timeout = aiohttp.ClientTimeout(total=settings.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            game: _Game | None = None
            keeper: asyncio.Task[None] | None = None
            try:
                while True:
                    if game is not None and game.over is not None:  # give it back before starting anew
                        await self._cancel(keeper)
                        keeper = None
                        await self._end(http, game)
                        game = None
                    if game is None:
                        try:
                            game = await self._start(http)
                        except _Trouble as exc:
                            log.warning("%s: the open platform would not start a game (%s): %s", self.where,
                                        exc.reason, exc)
                            state.reconnecting(exc.reason)
                            await asyncio.sleep(backoff.next())
                            continue
                        keeper = asyncio.create_task(self._keep_game(http, game),
                                                     name=f"bilibili heartbeat {self.channel}/{self.room}")
                    drop = await self._serve(http, game, emit, state)
                    if drop.healthy:
                        backoff.reset()
                    if game.over is not None:
                        await self._cancel(keeper)
                        keeper = None
                        await self._end(http, game)
                        game = None
                    state.reconnecting(drop.reason)
                    delay = backoff.next()
                    log.info("%s: reconnecting in %.1f s (%s)", self.where, delay, drop.reason)
                    await asyncio.sleep(delay)
            finally:
                await self._cancel(keeper)
                if game is not None:  # stopped: give the game back so the room can be heard again at once
                    await self._end(http, game)

    async def _call(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One signed call; its `data`, or _Trouble (refused, error) / _GameOver (ended)."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        url = self.config.api_base + path
        try:
            async with http.post(url, data=raw, headers=sign(self._key_id, self._key_secret, raw)) as response:
                raw_answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Trouble("error", f"{path}: {type(exc).__name__}: {exc}") from None
        try:
            answer = json.loads(raw_answer)
        except ValueError:  # UnicodeDecodeError included
            answer = None
        if not isinstance(answer, dict):
            raise _Trouble("refused" if 400 <= status < 500 else "error",
                           f"{path}: HTTP {status}, not a JSON answer: {raw_answer[:120]!r}")
        code, message = answer.get("code"), str(answer.get("message", ""))
        if code == CODE_GAME_GONE or INTERACTION_END in message:
            raise _GameOver(f"{path}: code {code}: {message}")
        if status != 200 or code != 0:
            raise _Trouble("refused", f"{path}: HTTP {status}, code {code}: {message} "
                                      f"(request_id {answer.get('request_id')})")
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    async def _start(self, http: aiohttp.ClientSession) -> _Game:
        data = await self._call(http, "/v2/app/start", {"code": self._code, "app_id": self.config.app_id})
        game_info, ws_info = data.get("game_info"), data.get("websocket_info")
        game_id = game_info.get("game_id") if isinstance(game_info, dict) else None
        auth_body = ws_info.get("auth_body") if isinstance(ws_info, dict) else None
        links = ws_info.get("wss_link") if isinstance(ws_info, dict) else None
        if not isinstance(game_id, str) or not isinstance(auth_body, str) or not isinstance(links, list) \
                or not links or not all(isinstance(link, str) for link in links):
            raise _Trouble("error", "/v2/app/start: the answer lacks game_info.game_id, websocket_info.auth_body "
                                    "or websocket_info.wss_link")
        log.info("%s: game %s started (%d websocket servers)", self.where, game_id or "(none)", len(links))
        return _Game(game_id=game_id, auth_body=auth_body, links=list(links))

    async def _keep_game(self, http: aiohttp.ClientSession, game: _Game) -> None:
        """Heartbeats for the game until the platform says it is over. A project that is not an
        interactive game gets an empty game_id and needs none."""
        if not game.game_id:
            return
        while True:
            await asyncio.sleep(self.config.app_heartbeat_interval)
            try:
                await self._call(http, "/v2/app/heartbeat", {"game_id": game.game_id})
            except _GameOver as exc:
                log.warning("%s: game %s is over: %s", self.where, game.game_id, exc)
                game.finish("ended")
                return
            except _Trouble as exc:  # the game survives 60 s without one: try again at the next beat
                log.warning("%s: game heartbeat failed (%s): %s", self.where, exc.reason, exc)

    async def _end(self, http: aiohttp.ClientSession, game: _Game) -> None:
        if not game.game_id:
            return
        try:
            await asyncio.wait_for(self._call(http, "/v2/app/end", {"game_id": game.game_id,
                                                                   "app_id": self.config.app_id}),
                                   self.config.request_timeout)
            log.info("%s: game %s ended", self.where, game.game_id)
        except (_Trouble, TimeoutError) as exc:
            # Already over on the platform's side (7003), or unreachable: it closes itself within 60 s.
            log.info("%s: ending game %s: %s", self.where, game.game_id, exc)

    async def _serve(self, http: aiohttp.ClientSession, game: _Game, emit: Emit, state: RoomState) -> _Drop:
        """One websocket connection, until it drops or the game ends."""
        link = game.links[game.attempts % len(game.links)]
        game.attempts += 1
        connection = asyncio.create_task(self._websocket(http, link, game, emit, state))
        ended = asyncio.create_task(game.finished.wait())
        try:
            await asyncio.wait({connection, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (connection, ended):
                task.cancel()
            results = await asyncio.gather(connection, ended, return_exceptions=True)
        drop = results[0]
        if isinstance(drop, _Drop):
            if drop.game_over:
                game.finish(drop.reason)
        elif game.over is not None:
            drop = _Drop(game.over, False)
        else:
            log.error("%s: the websocket failed unexpectedly", self.where, exc_info=drop)
            drop = _Drop("error", False)
        if game.over is None and not drop.healthy:
            game.ws_failures += 1
            if game.ws_failures >= _WS_FAILURES_BEFORE_NEW_GAME:
                log.warning("%s: %d websocket attempts in a row failed: starting a new game", self.where,
                            game.ws_failures)
                game.finish(drop.reason)
        elif drop.healthy:
            game.ws_failures = 0
        return drop

    async def _websocket(self, http: aiohttp.ClientSession, link: str, game: _Game, emit: Emit,
                         state: RoomState) -> _Drop:
        settings = self.config
        loop = asyncio.get_running_loop()
        try:
            ws = await http.ws_connect(link, autoping=True, heartbeat=None, max_msg_size=_MAX_INFLATED,
                                       timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0))
        except aiohttp.WSServerHandshakeError as exc:
            log.warning("%s: %s refused the websocket: HTTP %s", self.where, link, exc.status)
            return _Drop("refused", False)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("%s: cannot reach %s: %s: %s", self.where, link, type(exc).__name__, exc)
            return _Drop("error", False)
        beats: asyncio.Task[None] | None = None
        authed = heard = False
        try:
            await ws.send_bytes(packet(OP_AUTH, game.auth_body.encode()))
            deadline = loop.time() + settings.silence_timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if not authed:
                        log.warning("%s: no answer to auth from %s within %g s", self.where, link,
                                    settings.silence_timeout)
                        return _Drop("auth", False)
                    log.warning("%s: no heartbeat reply within %g s: the connection is dead", self.where,
                                settings.silence_timeout)
                    return _Drop("silent", heard)
                try:
                    message = await ws.receive(timeout=remaining)
                except TimeoutError:
                    continue
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.ERROR):
                    log.warning("%s: the websocket closed (%s %s)", self.where, message.type.name,
                                ws.close_code if message.type != aiohttp.WSMsgType.ERROR else message.data)
                    return _Drop("closed", heard)
                if message.type != aiohttp.WSMsgType.BINARY:
                    log.debug("%s: ignored a %s websocket message", self.where, message.type.name)
                    continue
                for op, body in self._packets(message.data):
                    if op == OP_AUTH_REPLY:
                        code = self._json(body).get("code")
                        if code != 0:
                            log.warning("%s: the websocket refused our auth (code %s)", self.where, code)
                            return _Drop("auth", False, game_over=True)
                        if not authed:
                            authed = True
                            deadline = loop.time() + settings.silence_timeout
                            log.info("%s: listening on %s", self.where, link)
                            state.connected(True)
                            beats = asyncio.create_task(self._beat(ws))
                    elif op == OP_HEARTBEAT_REPLY:
                        heard = authed
                        deadline = loop.time() + settings.silence_timeout
                    elif op == OP_MESSAGE:
                        heard = authed
                        command = self._json(body)
                        if command.get("cmd") == INTERACTION_END:
                            ended_id = _str(command.get("data"), "game_id")
                            if ended_id in ("", game.game_id):
                                log.warning("%s: the platform ended game %s", self.where, game.game_id)
                                return _Drop("ended", heard, game_over=True)
                            continue
                        self._emit(emit, command)
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("%s: the websocket broke: %s: %s", self.where, type(exc).__name__, exc)
            return _Drop("closed", heard)
        finally:
            if authed:  # first: the awaits below may be cut short by a cancellation
                state.connected(False)
            await self._cancel(beats)
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.close(), 3.0)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass

    async def _beat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            try:
                await ws.send_bytes(packet(OP_HEARTBEAT, b""))
            except (aiohttp.ClientError, OSError) as exc:  # the reader sees the connection go
                log.debug("%s: heartbeat not sent: %s", self.where, exc)
                return
            await asyncio.sleep(self.config.ws_heartbeat_interval)

    def _emit(self, emit: Emit, command: dict[str, Any]) -> None:
        event = self.interaction(command)
        if event is None:
            return
        try:
            emit(event)
        except Exception:  # a consumer's bug must not silence the room: say so, keep listening
            log.exception("%s: handing over a %s failed", self.where, event.kind.value)

    async def _cancel(self, task: asyncio.Task[None] | None) -> None:
        """Cancel a helper task and wait for it; only a cancellation of the caller itself propagates."""
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %s failed", self.where, task.get_name(), exc_info=task.exception())

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("%s: an unreadable JSON body (%d bytes) from the open platform", self.where, len(body))
            return {}
        return value if isinstance(value, dict) else {}

    def _packets(self, data: bytes, depth: int = 0) -> Iterator[tuple[int, bytes]]:
        """(op, body) of each packet in one websocket message, compressed batches opened."""
        offset = 0
        while offset + HEADER.size <= len(data):
            length, header_length, protover, op, _seq = HEADER.unpack_from(data, offset)
            if header_length < HEADER.size or length < header_length:
                log.warning("%s: a malformed packet header (length %d, header %d): dropped the rest",
                            self.where, length, header_length)
                return
            body = data[offset + header_length: offset + length]
            if op == OP_HEARTBEAT_REPLY:  # the body may run past `length` (echoed heartbeat): nothing follows
                yield op, body
                return
            offset += length
            if op == OP_MESSAGE and protover in (PROTO_ZLIB, PROTO_BROTLI):
                if depth > 0:
                    log.warning("%s: a compressed packet inside a compressed packet: dropped", self.where)
                    continue
                inflated = self._inflate(protover, body)
                if inflated is not None:
                    yield from self._packets(inflated, depth + 1)
                continue
            yield op, body

    def _inflate(self, protover: int, body: bytes) -> bytes | None:
        try:
            if protover == PROTO_ZLIB:
                inflater = zlib.decompressobj()
                out = inflater.decompress(body, _MAX_INFLATED)
                if inflater.unconsumed_tail:
                    raise ValueError(f"inflates past {_MAX_INFLATED} bytes")
                return out
            decompress = _brotli()
            if decompress is None:
                if not self._warned_brotli:
                    log.warning("%s: brotli pushes (protover 3) need the brotli package: pip install brotli",
                                self.where)
                    self._warned_brotli = True
                return None
            return decompress(body)
        except Exception as exc:  # zlib.error, brotli.error: a bad batch, not a bad connection
            log.warning("%s: cannot inflate a protover %d packet: %s", self.where, protover, exc)
            return None


def _brotli() -> Callable[[bytes], bytes] | None:
    """brotli's decompress, if the (untyped, optional) brotli package is installed."""
    try:
        module = importlib.import_module("brotli")
    except ImportError:
        return None
    decompress: Callable[[bytes], bytes] = module.decompress
    return decompress


def _str(data: object, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _number(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(float(value), 0.0)


def _int(data: dict[str, Any], key: str) -> int:
    return int(_number(data, key))


def _instant(timestamp: object) -> datetime:
    """The platform's timestamp (seconds) as aware UTC; now when it gives none or nonsense."""
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool) and timestamp > 0:
        if timestamp > 10**11:  # milliseconds (no field of the platform's is documented so, but be safe)
            timestamp /= 1000
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
