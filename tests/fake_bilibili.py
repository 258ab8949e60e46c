"""Local stand-in for Bilibili's live open platform (直播开放平台), speaking its real protocol on 127.0.0.1.

HTTP: signed JSON POSTs to /v2/app/start, /v2/app/heartbeat and /v2/app/end, checked the way the platform
documents (x-bili-* headers, md5 of the body, HMAC-SHA256 over the sorted x-bili-* lines, nonce not reused,
timestamp fresh); answers are {"code", "message", "request_id", "data"} with the platform's error codes
(4002 bad signature, 4012 md5 mismatch, 4004 nonce reused, 4003 stale timestamp, 7007 bad identity code,
7002 a game already running, 7003 heartbeat for a game that is over …), HTTP 200 as the platform does.

Websocket (/sub): 16-byte big-endian headers; the first packet must be op 7 carrying a live game's
auth_body exactly (else op 8 {"code": -101} and close); op 2 → op 3 (4-byte popularity); pushes are op 5
packets batched inside one zlib (protover 2) or brotli (protover 3) packet.

Written from the platform's description, independently of anchor's client (nothing is imported from it),
so a test against it checks the client and not the client against itself.

Fault modes (see the methods): refuse_starts (an error code for the next starts), game_over_on_heartbeat
(7003 and the game closed), next_connections("silent" | "deaf" | "reject_auth") for the next websocket
connections, close_abruptly (TCP reset, no close frame), end_interaction (LIVE_OPEN_PLATFORM_INTERACTION_END
pushed and the game closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import struct
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

HEADER = struct.Struct(">IHHII")
SIGNED_HEADERS = ("x-bili-accesskeyid", "x-bili-content-md5", "x-bili-signature-method",
                  "x-bili-signature-nonce", "x-bili-signature-version", "x-bili-timestamp")
CONNECTION_MODES = ("ok", "silent", "deaf", "reject_auth")
TIMESTAMP_WINDOW = 600  # seconds either side of our clock a signed call's x-bili-timestamp may be


def frame(op: int, body: bytes, protover: int = 1) -> bytes:
    return HEADER.pack(HEADER.size + len(body), HEADER.size, protover, op, 1) + body


def brotli_compress(data: bytes) -> bytes:
    import brotli  # type: ignore[import-untyped]  # only the brotli tests need it

    out: bytes = brotli.compress(data)
    return out


@dataclass
class FakeGame:
    game_id: str
    auth_body: str
    live: bool = True
    last_beat: float = field(default_factory=time.monotonic)


@dataclass
class Connection:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    mode: str
    game_id: str = ""
    authed: bool = False
    heartbeats: int = 0


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    code: int


class FakeBilibili:
    """The open platform for one developer account (key id/secret), one project (app_id), one streamer (code)."""

    def __init__(self, *, key_id: str, key_secret: str, code: str, app_id: int, room_id: int = 21452505,
                 game_timeout: float = 60.0) -> None:
        self.key_id, self.key_secret, self.code, self.app_id = key_id, key_secret, code, app_id
        self.room_id = room_id
        self.game_timeout = game_timeout
        self.calls: list[Call] = []
        self.games: dict[str, FakeGame] = {}
        self.connections: list[Connection] = []  # every websocket ever opened, in order
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._nonces: set[str] = set()
        self._start_refusals: list[int] = []
        self._heartbeat_game_over = 0
        self._modes: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> FakeBilibili:
        app = web.Application()
        for path in ("/v2/app/start", "/v2/app/heartbeat", "/v2/app/end"):
            app.router.add_post(path, self._on_call)
        app.router.add_get("/sub", self._on_ws)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await asyncio.wait_for(self._runner.setup(), 5)
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await asyncio.wait_for(site.start(), 5)
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        live = [c.ws for c in self.connections if not c.ws.closed]
        await asyncio.gather(*(asyncio.wait_for(ws.close(), 2) for ws in live), return_exceptions=True)
        if self._runner is not None:
            await asyncio.wait_for(self._runner.cleanup(), 5)
            self._runner = None

    async def __aenter__(self) -> FakeBilibili:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/sub"

    # -- what happened -------------------------------------------------------------------------------------

    def answered(self, path: str, code: int | None = 0) -> list[Call]:
        """The calls to `path` answered with `code` (None: any code)."""
        return [c for c in self.calls if c.path == path and (code is None or c.code == code)]

    def live_game(self) -> FakeGame | None:
        self._expire()
        return next((g for g in self.games.values() if g.live), None)

    def listening(self) -> list[Connection]:
        """Open, authenticated connections of the live game."""
        game = self.live_game()
        return [c for c in self.connections
                if c.authed and not c.ws.closed and game is not None and c.game_id == game.game_id]

    # -- faults --------------------------------------------------------------------------------------------

    def refuse_starts(self, code: int, times: int = 1) -> None:
        """The next `times` starts are answered with `code` (e.g. 7007 bad identity code, 7001 cooldown)."""
        self._start_refusals.extend([code] * times)

    def game_over_on_heartbeat(self) -> None:
        """The next heartbeat finds the game closed: 7003, and the game is over (its sockets go quiet)."""
        self._heartbeat_game_over += 1

    def next_connections(self, *modes: str) -> None:
        """The next websocket connections behave so, one mode each: "silent" (auth answered, then nothing at
        all), "deaf" (pushes delivered, heartbeats never answered), "reject_auth" (op 8 code -101, closed)."""
        for mode in modes:
            if mode not in CONNECTION_MODES:
                raise ValueError(f"unknown connection mode {mode!r}; expected one of {CONNECTION_MODES}")
        self._modes.extend(modes)

    def close_abruptly(self) -> int:
        """Drop every open websocket without a close frame (a TCP abort); how many were dropped."""
        dropped = 0
        for conn in self.connections:
            if not conn.ws.closed and conn.transport is not None:
                conn.transport.abort()
                dropped += 1
        return dropped

    async def end_interaction(self) -> int:
        """The platform ends the live game: LIVE_OPEN_PLATFORM_INTERACTION_END is pushed, the game closes."""
        game = self.live_game()
        if game is None:
            return 0
        sent = await self.push([{"cmd": "LIVE_OPEN_PLATFORM_INTERACTION_END",
                                 "data": {"game_id": game.game_id, "timestamp": int(time.time())}}], protover=0)
        game.live = False
        return sent

    # -- pushing -------------------------------------------------------------------------------------------

    async def push(self, commands: list[dict[str, Any]], protover: int = 2) -> int:
        """Send the commands to every listening connection (except silent ones) as one websocket message:
        protover 2 (zlib) or 3 (brotli) batch them in one packet, 0 sends them as plain packets."""
        inner = b"".join(frame(5, json.dumps(c, ensure_ascii=False).encode(), protover=0) for c in commands)
        if protover == 2:
            message = frame(5, zlib.compress(inner), protover=2)
        elif protover == 3:
            message = frame(5, brotli_compress(inner), protover=3)
        elif protover == 0:
            message = inner
        else:
            raise ValueError(f"protover {protover} does not carry pushes")
        sent = 0
        for conn in self.listening():
            if conn.mode != "silent":
                await asyncio.wait_for(conn.ws.send_bytes(message), 2)
                sent += 1
        return sent

    async def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake platform waited {timeout:g} s for {what}")
            await asyncio.sleep(0.01)

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _expire(self) -> None:
        now = time.monotonic()
        for game in self.games.values():
            if game.live and now - game.last_beat > self.game_timeout:
                game.live = False

    def _signature_error(self, request: web.Request, raw: bytes) -> tuple[int, str] | None:
        h = request.headers
        if any(name not in h for name in SIGNED_HEADERS) or "Authorization" not in h:
            return 4000, "missing signature headers"
        if h.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return 4011, "Content-Type不为application/json"
        if h.get("Accept", "").split(";")[0].strip() != "application/json":
            return 4013, "Accept不为application/json"
        if h["x-bili-accesskeyid"] != self.key_id:
            return 4001, "应用无效"
        if h["x-bili-signature-method"] != "HMAC-SHA256":
            return 4005, "签名method异常"
        if h["x-bili-signature-version"] != "1.0":
            return 4006, "版本异常"
        if h["x-bili-content-md5"] != hashlib.md5(raw).hexdigest():
            return 4012, "MD5校验失败"
        try:
            skew = abs(int(h["x-bili-timestamp"]) - time.time())
        except ValueError:
            return 4003, "请求过期"
        if skew > TIMESTAMP_WINDOW:
            return 4003, "请求过期"
        lines = "\n".join(f"{name}:{h[name]}" for name in sorted(SIGNED_HEADERS))
        expected = hmac.new(self.key_secret.encode(), lines.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, h["Authorization"]):
            return 4002, "签名异常"
        nonce = h["x-bili-signature-nonce"]
        if nonce in self._nonces:
            return 4004, "重复请求"
        self._nonces.add(nonce)
        return None

    async def _on_call(self, request: web.Request) -> web.Response:
        raw = await asyncio.wait_for(request.read(), 5)
        path = request.path
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        refusal = self._signature_error(request, raw)
        if refusal is None and not isinstance(body, dict):
            refusal = 4000, "参数错误"
        if refusal is not None:
            return self._answer(path, body if isinstance(body, dict) else {}, *refusal)
        assert isinstance(body, dict)
        self._expire()
        if path == "/v2/app/start":
            return self._start(body)
        game = self.games.get(str(body.get("game_id", "")))
        if path == "/v2/app/heartbeat":
            if game is not None and game.live and self._heartbeat_game_over:
                self._heartbeat_game_over -= 1
                game.live = False
            if game is None or not game.live:
                return self._answer(path, body, 7003, "心跳过期或GameId错误")
            game.last_beat = time.monotonic()
            return self._answer(path, body, 0, "0", {})
        # /v2/app/end
        if body.get("app_id") != self.app_id:
            return self._answer(path, body, 4000, "参数错误")
        if game is None or not game.live:
            return self._answer(path, body, 7000, "不在游戏内")
        game.live = False
        return self._answer(path, body, 0, "0", {})

    def _start(self, body: dict[str, Any]) -> web.Response:
        path = "/v2/app/start"
        if self._start_refusals:
            code = self._start_refusals.pop(0)
            return self._answer(path, body, code, {7007: "身份码错误", 7001: "请求冷却期",
                                                   7002: "房间重复游戏"}.get(code, "refused"))
        if body.get("app_id") != self.app_id:
            return self._answer(path, body, 8002, "项目无权限访问")
        if body.get("code") != self.code:
            return self._answer(path, body, 7007, "身份码错误")
        if self.live_game() is not None:
            return self._answer(path, body, 7002, "房间重复游戏")
        game_id = str(uuid.uuid4())
        auth_body = json.dumps({"roomid": self.room_id, "protover": 2, "uid": 0, "key": secrets.token_urlsafe(48),
                                "group": "open"}, separators=(",", ":"))
        self.games[game_id] = FakeGame(game_id, auth_body)
        data = {
            "game_info": {"game_id": game_id},
            "websocket_info": {"auth_body": auth_body, "wss_link": [self.ws_url, self.ws_url]},
            "anchor_info": {"room_id": self.room_id, "uname": "某市人民医院", "uface": "https://i0.hdslb.com/x.jpg",
                            "uid": 0, "open_id": "anchor-open-id", "union_id": "anchor-union-id"},
        }
        return self._answer(path, body, 0, "0", data)

    def _answer(self, path: str, body: dict[str, Any], code: int, message: str,
                data: dict[str, Any] | None = None) -> web.Response:
        self.calls.append(Call(path, body, code))
        return web.json_response({"code": code, "message": message, "request_id": uuid.uuid4().hex,
                                  "data": data if data is not None else {}})

    # -- websocket -----------------------------------------------------------------------------------------

    async def _on_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=2.0)
        await asyncio.wait_for(ws.prepare(request), 5)
        conn = Connection(ws, request.transport, self._modes.pop(0) if self._modes else "ok")
        self.connections.append(conn)
        try:
            first = await ws.receive(timeout=5)
            if first.type != WSMsgType.BINARY or len(first.data) < HEADER.size:
                await ws.close()
                return ws
            length, header_length, _ver, op, _seq = HEADER.unpack_from(first.data)
            auth_body = first.data[header_length:length].decode("utf-8", "replace")
            game = next((g for g in self.games.values() if g.live and g.auth_body == auth_body), None)
            if op != 7 or game is None or conn.mode == "reject_auth":
                await ws.send_bytes(frame(8, b'{"code":-101}'))
                await ws.close()
                return ws
            conn.game_id, conn.authed = game.game_id, True
            await ws.send_bytes(frame(8, b'{"code":0}'))
            while True:
                message = await ws.receive(timeout=30)
                if message.type != WSMsgType.BINARY:
                    break
                offset = 0
                while offset + HEADER.size <= len(message.data):
                    length, _hl, _ver, op, _seq = HEADER.unpack_from(message.data, offset)
                    offset += max(length, HEADER.size)
                    if op == 2:
                        conn.heartbeats += 1
                        if conn.mode == "ok" and game.live:
                            await ws.send_bytes(frame(3, (1).to_bytes(4, "big")))
        except (TimeoutError, ConnectionError):
            pass
        finally:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
        return ws
