"""The blocking obs-websocket v5 client, on worker threads only: obs-websocket-py 1.0 with its gaps filled.

obs-websocket-py has no connect or handshake timeout, waits 60 s for answers by default, drops OBS's
request status codes, dies silently when OBS is killed mid-request and goes through $http_proxy
(notes/libraries.md). It is unmaintained, and no other v5 client is on the registry, so this module
subclasses it: the only place in anchor that touches its private attributes (`ws`, `thread_recv`,
`events`, `answers`, `id`, `_auth`). ObsConnection (connection.py) drives it from the event loop.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import websocket
from obswebsocket import obsws
from obswebsocket import requests as obs_requests
from obswebsocket.exceptions import ConnectionFailure, MessageTimeout

log = logging.getLogger(__name__)

# What means "the connection is gone", as opposed to "OBS answered: request failed".
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (MessageTimeout, ConnectionFailure,
                                                      websocket.WebSocketException, OSError)

CLOSE_CODES = {
    4000: "UnknownReason", 4002: "MessageDecodeError", 4003: "MissingDataField", 4004: "InvalidDataFieldType",
    4005: "InvalidDataFieldValue", 4006: "UnknownOpCode", 4007: "NotIdentified", 4008: "AlreadyIdentified",
    4009: "AuthenticationFailed", 4010: "UnsupportedRpcVersion", 4011: "SessionInvalidated",
    4012: "UnsupportedFeature",
}
AUTHENTICATION_FAILED = 4009
ALL_EVENTS = 1023  # obs-websocket 5 EventSubscription::All: every event that is not high-volume
INPUT_VOLUME_METERS = 1 << 16


class _WebSocket(websocket.WebSocket):
    """Remembers the close frame OBS sent: its code says why a session was refused (4009: password)."""

    peer_close: tuple[int, str] | None = None

    def recv_frame(self) -> Any:
        frame = super().recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE and self.peer_close is None:
            data = frame.data or b""
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            self.peer_close = (code, data[2:].decode("utf-8", "replace"))
        return frame


class AuthFailed(ConnectionFailure):
    pass


class Client(obsws):
    """obsws (v5) with a bounded handshake, a socket timeout, our own receive thread and a teardown that
    never blocks on a dead or frozen peer. Requests still go through obsws.call (serialised by the caller).
    """

    def __init__(self, host: str, port: int, password: str | None, *, request_timeout: float,
                 connect_timeout: float, on_event: Callable[[str, dict[str, Any]], None],
                 on_lost: Callable[[Client, str], None]) -> None:
        super().__init__(host, port, password or "", legacy=False, timeout=request_timeout)
        self.connect_timeout = connect_timeout
        self.closed = False
        self.lost_reason: str | None = None
        self.statuses: dict[str, dict[str, Any]] = {}  # requestId → requestStatus of failed requests
        self._on_event = on_event
        self._on_lost = on_lost
        self._close_lock = threading.Lock()

    def connect(self) -> None:
        # Text frames are still decoded as UTF-8; websocket-client's extra pure-Python validation costs
        # ~2 ms per 4 KiB answer (GetVersion), a third of the round trip.
        ws = _WebSocket(enable_multithread=True, skip_utf8_validation=True)
        self.ws = ws
        sock: socket.socket | None = None
        try:
            # Our own TCP socket: a bounded connect, and no detour through $http_proxy, which
            # websocket-client would otherwise apply to ws:// (its http_no_proxy option only works
            # together with an explicit proxy host).
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ws.connect(f"ws://{self.host}:{self.port}", socket=sock, timeout=self.connect_timeout)
            self._auth()  # obsws: Hello → Identify (password) → Identified
            self._subscribe_to_meters()
        except Exception as exc:
            close = ws.peer_close
            ws.shutdown()
            if sock is not None:
                sock.close()
            if close and close[0] == AUTHENTICATION_FAILED:
                raise AuthFailed("authentication failed") from exc
            if close:
                name = CLOSE_CODES.get(close[0], "")
                raise ConnectionFailure(f"OBS closed the session: {close[0]} {name} {close[1]}".strip()) from exc
            if isinstance(exc, ConnectionFailure) and "Identify" in str(exc):
                raise AuthFailed(str(exc)) from exc  # obsws: "Empty response to Identify, password may be …"
            raise
        ws.settimeout(self.timeout)  # bounds every later send; the receive thread treats it as a poll
        with self._close_lock:
            if self.closed:
                ws.shutdown()
                raise ConnectionFailure("connection closed while connecting")
            self.thread_recv = _Receiver(self)
            self.thread_recv.start()

    def _subscribe_to_meters(self) -> None:
        """obsws identifies for the ordinary events only; the volume meters (what really leaves a source,
        every ~50 ms) are a high-volume event OBS sends only to who asks: ask with Reidentify."""
        self.ws.send(json.dumps({"op": 3, "d": {"eventSubscriptions": ALL_EVENTS | INPUT_VOLUME_METERS}}))
        while True:  # events may come before the answer; none matters before we are connected
            answer = json.loads(self.ws.recv() or "{}")
            if answer.get("op") == 2:
                return
            if answer.get("op") != 5:
                raise ConnectionFailure(f"unexpected answer to Reidentify: op {answer.get('op')}")

    def lose(self, reason: str) -> None:
        """Mark this client dead (any thread, idempotent): wake the receive thread and any waiting request."""
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
            self.lost_reason = reason
        if self.thread_recv is not None:
            self.thread_recv.running = False
        sock = self.ws.sock if self.ws is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # never waits for a frozen peer, unlike ws.close()
            except OSError:
                pass
        for event in list(self.events.values()):
            event.set()  # obsws.call wakes up, finds no answer and raises MessageTimeout at once
        self._on_lost(self, reason)

    def disconnect(self) -> None:
        self.lose("closed by anchor")
        thread = self.thread_recv
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        if self.ws is not None:
            self.ws.shutdown()


class _Receiver(threading.Thread):
    """Reads OBS's messages: answers wake their request, events go to the connection, the end is reported."""

    def __init__(self, client: Client) -> None:
        super().__init__(name=f"obs-recv-{client.host}:{client.port}", daemon=True)
        self.client = client
        self.running = True

    def run(self) -> None:
        client = self.client
        ws = client.ws
        reason = "connection closed by OBS"
        try:
            while self.running:
                try:
                    message = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue  # idle: the socket timeout only bounds sends
                if not message:
                    if ws.peer_close is not None:
                        code, text = ws.peer_close
                        reason = f"OBS closed the connection ({code} {CLOSE_CODES.get(code, '')} {text})".strip()
                        break
                    continue
                self._handle(message)
        except websocket.WebSocketConnectionClosedException:
            reason = "connection closed by OBS"
        except (OSError, websocket.WebSocketException) as exc:
            reason = f"connection lost: {exc}"
        except Exception as exc:  # pragma: no cover - a bug here must not leave requests hanging
            reason = f"receive thread failed: {exc!r}"
            log.exception("OBS receive thread failed")
        finally:
            client.lose(reason)

    def _handle(self, message: str | bytes) -> None:
        try:
            result = json.loads(message)
            op, data = result["op"], result["d"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed message from OBS: %.200r", message)
            return
        if op == 5:  # Event
            self.client._on_event(str(data.get("eventType")), data.get("eventData") or {})
        elif op == 7:  # RequestResponse
            request_id = data.get("requestId")
            event = self.client.events.get(request_id)
            if event is None:
                return  # the request already timed out
            status = data.get("requestStatus") or {}
            if not status.get("result"):
                self.client.statuses[request_id] = status  # obsws drops code and comment
            self.client.answers[request_id] = data
            event.set()


def call_blocking(client: Client, request: str, data: dict[str, Any],
                   timeout: float) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    client.timeout = timeout  # calls are serialised, so this is per request
    request_id = str(client.id)  # the id obsws.call is about to use
    if client.closed:
        raise ConnectionFailure(client.lost_reason or "connection lost")
    obj = getattr(obs_requests, request)(**data)
    client.call(obj)
    return bool(obj.status), dict(obj.datain), client.statuses.pop(request_id, {})
