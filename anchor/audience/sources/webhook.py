"""Live rooms that push their events to the daemon: Douyin's live data push, and a generic signed format.

A [[room]] with platform = "webhook" is served by the daemon's one webhook server (see
anchor.audience.webhook_server) at

    POST http://<host>:<port>/rooms/<channel>/<room>

where <channel> is the channel file's name and <room> the room's `name` (default "webhook"), both
percent-encoded. The server listens on 127.0.0.1 by default: put the institution's HTTPS reverse proxy in
front of it (Douyin only calls HTTPS callbacks). `format` says what the room's sender speaks.

Secrets never sit in the channel file. For a room named ROOM, from anchor.credentials (environment first,
then systemd's $CREDENTIALS_DIRECTORY):
  ANCHOR_WEBHOOK_SECRET_<ROOM>  or file webhook-secret-<room> / webhook-secret   the signing secret (required)
  ANCHOR_VIEWER_SALT_<ROOM>     or file viewer-salt-<room> / viewer-salt         optional: viewer hash salt
<ROOM> is the name upper-cased with every character other than A-Z and 0-9 turned into "_"
(room "hall-1" → ANCHOR_WEBHOOK_SECRET_HALL_1). For Douyin the secret is the one set in the app's
development settings (开发配置) for the push; for the generic format, one the institution draws
(e.g. `openssl rand -hex 32`) and gives its bridge.

What every request ends in (anchor_webhook_requests_total{outcome}), whatever the format:
  200 accepted        its events were handed over (an empty list is accepted: a check of URL, secret, clock)
  200 duplicate       (douyin) every message in it was had before: platforms repeat pushes, each counts once
  400 malformed       a signed request whose headers or body do not follow the format (nothing counted)
  401 bad_signature   a signature header missing or wrong
  404 unknown_room    no webhook room at that path
  409 stale           its timestamp is more than `window_seconds` (300) from the daemon's clock
  409 replayed        (generic) an event id already accepted: the whole request is refused, nothing counted
  413 too_large       the body is over `max_body_bytes` (256 KiB)
A request is taken whole or not at all. Refusals are logged with channel, room, outcome and size only:
never the body, a viewer's id or a comment's text.

## format = "douyin": Douyin's live data push (直播小玩法 数据开放)

The room mounts the institution's approved interactive app; the app's server starts a push task per
message type (POST https://webcast.bytedance.com/api/live_data/task/start {roomid, appid, msg_type}) and the
app's development settings point each type's callback at this URL. Douyin then POSTs with headers
  x-nonce-str   a random string
  x-timestamp   when Douyin sent it, unix milliseconds (a value below 10^11 is read as seconds)
  x-roomid      Douyin's id of the live room
  x-msg-type    live_comment | live_gift | live_like | live_fansclub
  x-signature   base64(md5(P + body + secret)), P = the four headers above (everything but x-signature and
                content-type) sorted by name as name=value joined by "&":
                x-msg-type=…&x-nonce-str=…&x-roomid=…&x-timestamp=…   (UTF-8; body as the raw bytes)
and a JSON array of messages (a lone object is read as an array of one), each with msg_id and sec_openid:
  live_comment   content                                  → comment (text kept only if keep_comment_text)
  live_gift      sec_gift_id, gift_num, gift_value        → gift, count = gift_num, value_cny = gift_value / 100:
                 gift_value is the total of the gift_num gifts in 分 (fen; 1 抖币 = 10 fen = 0.1 CNY)
  live_like      like_num (likes merged over ~2 s)        → like, count = like_num
  live_fansclub  fansclub_reason_type 2 (joined)          → follow; 1 (a level up) is no interaction
`timestamp` (ms, or s when below 10^11) is the event's time (else x-timestamp's). nickname and avatar_url
are never read. Messages flagged "test": true (Douyin's own test data) are answered but not counted.
Douyin expects a 2xx within 2 s (3 s for gifts), and treats anything else as a failure to retry: 10 in a
row pause the push. It may push one msg_id twice: a repeat is answered 200 and counted once. One callback
URL serves one anchor room; to keep message types apart, point each type at its own room.

## format = "generic": the signed format an institution's bridge implements

For platforms without an open real-time feed (WeChat Channels 视频号, Kuaishou), the institution's own
bridge relays what it may relay. Each request is
  POST /rooms/<channel>/<room>
  Content-Type: application/json
  X-Anchor-Timestamp: <unix seconds, decimal digits, e.g. 1767225600>
  X-Anchor-Signature: <lower-case hex HMAC-SHA256, key = the secret, message = T + "." + body>
where T is the X-Anchor-Timestamp value exactly as sent and body the raw bytes of the request body
(sign the bytes you send; do not re-serialize). The timestamp must be within `window_seconds` (±300 s)
of the daemon's clock. In Python:
  body = json.dumps({"events": [...]}, ensure_ascii=False).encode()
  ts = str(int(time.time()))
  sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
The body is one JSON object, {"events": [event, …]} (at most 1,000 events, no other keys); an event:
  "id"        string, 1-128 characters, required: unique per room for good. An id already accepted makes the
              whole request 409 replayed, so resend a request exactly as it was (or give up after a 409);
              never put an already-sent event into a new batch. Ids in one request must differ.
  "kind"      required: comment | gift | superchat | guard | like | enter | follow | share | viewers |
              live_start | live_end
  "at"        when it happened: ISO 8601 with an offset ("2026-03-01T10:15:00+08:00", "…Z") or unix
              seconds as a JSON number (fractions allowed; milliseconds are refused). Default: arrival.
  "count"     integer, default 1: likes in the event, gifts of the kind, guard months; for "viewers" the
              number watching now (0 allowed). At least 1 for every other kind.
  "value_cny" number ≥ 0 in yuan (CNY), default 0: what a gift, super chat or guard cost in all (not each).
  "viewer"    string, the platform's id of the viewer (1-256 characters), optional. Only a salted hash of
              it is kept. Never send names, avatars or phone numbers: there is no field for them.
  "text"      string (≤ 2,000 characters), the text of a comment or super chat, optional; kept only when
              the room sets keep_comment_text = true, otherwise dropped on arrival.
Unknown keys, wrong types, or values out of range make the request 400 malformed; the answer's "detail"
names the faulty fields. Retry only on a network error or a 5xx, with the same body and a fresh
timestamp and signature; 4xx answers are final.

Viewers: Interaction.viewer is a salted HMAC-SHA256 of the platform's id (32 hex digits), never the id.
The salt is the secret "viewer-salt"; without one a random salt is drawn for this process, so a viewer
hashes alike only until the daemon restarts.

Replay safety keeps the last 100,000 event ids per room (and the window refuses anything older than it),
so a replay is caught unless that many events arrive within the window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator, model_validator

from anchor.audience.interaction import Interaction, Kind
from anchor.audience.sources import register
from anchor.audience.sources.base import Emit, RoomSettings, RoomSource, RoomState, SourceError
from anchor.audience.webhook_server import DEFAULT_MAX_BODY_BYTES, Outcome, Reply, WebhookServer

log = logging.getLogger(__name__)

PLATFORM = "webhook"
SECRET_WEBHOOK = "webhook-secret"

DOUYIN_SIGNED_HEADERS = ("x-msg-type", "x-nonce-str", "x-roomid", "x-timestamp")  # sorted by name
DOUYIN_TYPES = ("live_comment", "live_gift", "live_like", "live_fansclub")
GENERIC_TIMESTAMP = "X-Anchor-Timestamp"
GENERIC_SIGNATURE = "X-Anchor-Signature"
MAX_EVENTS = 1000
_SEEN_IDS = 100_000
_MS_FROM = 10**11  # a unix time at or above this is milliseconds (10^11 s is the year 5138)
_FANSCLUB_JOINED = 2
_INTEGER = re.compile(r"-?[0-9]{1,16}")


class WebhookSettings(RoomSettings):
    """A [[room]] with platform = "webhook". The secret is not a key here: see the module's docstring."""

    platform: Literal["webhook"] = "webhook"
    format: Literal["douyin", "generic"]  # what the sender speaks
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, le=16 * 1024 * 1024)
    window_seconds: float = Field(300.0, gt=0, le=3600)  # a request's timestamp may be this far from our clock
    keep_comment_text: bool = False  # keep the text of comments and super chats (else only that they came)


# -- signatures --------------------------------------------------------------------------------------------

def douyin_signature(headers: Mapping[str, str], body: bytes, secret: str) -> str:
    """x-signature: base64(md5("x-msg-type=…&x-nonce-str=…&x-roomid=…&x-timestamp=…" + body + secret))."""
    signed = "&".join(f"{name}={headers[name]}" for name in DOUYIN_SIGNED_HEADERS)
    digest = hashlib.md5(signed.encode() + body + secret.encode()).digest()
    return base64.b64encode(digest).decode("ascii")


def generic_signature(timestamp: str, body: bytes, secret: str) -> str:
    """X-Anchor-Signature: hex HMAC-SHA256(secret, timestamp + "." + body)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


# -- the generic format's body -----------------------------------------------------------------------------

class GenericEvent(BaseModel):
    """One event of the generic format (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    kind: Kind
    at: datetime | None = None
    count: Annotated[int, Field(strict=True, ge=0, le=10**9)] = 1
    value_cny: Annotated[float, Field(strict=True, ge=0, le=10**8, allow_inf_nan=False)] = 0.0
    viewer: Annotated[StrictStr | None, Field(min_length=1, max_length=256)] = None
    text: Annotated[StrictStr | None, Field(max_length=2000)] = None

    @field_validator("at", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or not 0 < value < _MS_FROM:
                raise ValueError("give unix seconds (a positive number below 10^11), not milliseconds")
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            try:
                instant = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("not an ISO 8601 date and time") from None
            if instant.tzinfo is None:
                raise ValueError("an ISO 8601 time needs its offset (+08:00 or Z)")
            return instant.astimezone(UTC)
        raise ValueError("give an ISO 8601 string or unix seconds")

    @model_validator(mode="after")
    def _count(self) -> GenericEvent:
        if self.count < 1 and self.kind is not Kind.VIEWERS:
            raise ValueError("count must be at least 1 (0 only for viewers)")
        return self


class GenericBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: Annotated[list[GenericEvent], Field(max_length=MAX_EVENTS)]

    @model_validator(mode="after")
    def _distinct(self) -> GenericBody:
        ids = [event.id for event in self.events]
        if len(set(ids)) != len(ids):
            raise ValueError("two events of one request share an id")
        return self


def _problems(error: ValidationError) -> str:
    """Where and what, for the sender (its field names, never its values)."""
    parts = []
    for problem in error.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        parts.append(f"{where}: {problem['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# -- the source --------------------------------------------------------------------------------------------

class _Seen:
    """Event ids already taken, the newest `size` of them."""

    def __init__(self, size: int = _SEEN_IDS) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


class _Malformed(Exception):
    """A signed request that does not follow its format; the message is a fixed phrase or names fields."""


@register
class WebhookSource(RoomSource):
    name = "webhook"
    Settings = WebhookSettings

    def __init__(self, channel: str, settings: RoomSettings, *, server: WebhookServer | None = None) -> None:
        if not isinstance(settings, WebhookSettings):
            raise SourceError(f"channel {channel}: the webhook source needs webhook room settings")
        super().__init__(channel, settings)
        self.config: WebhookSettings = settings
        self.server = server
        self._secret = self.required_secret(SECRET_WEBHOOK, "the webhook's signing secret")
        self._seen = _Seen()

    def attach_http(self, server: WebhookServer) -> None:
        if self.server is None:
            self.server = server

    # -- running -------------------------------------------------------------------------------------------

    async def run(self, emit: Emit, state: RoomState) -> None:
        server = self.server
        if server is None:
            raise SourceError(f"{self.where}: the daemon serves no webhook (no WebhookServer was given)")

        def handler(headers: Mapping[str, str], body: bytes) -> Reply:
            return self.judge(headers, body, emit)

        try:
            server.add_route(self.channel, self.room, handler, max_body_bytes=self.config.max_body_bytes)
        except ValueError as exc:
            raise SourceError(f"{self.where}: {exc}") from None
        up = False
        try:
            while True:
                await server.wait_serving(True)
                up = True
                state.connected(True)
                log.info("%s: taking %s pushes at %s", self.where, self.config.format,
                         server.path(self.channel, self.room))
                await server.wait_serving(False)
                up = False
                state.connected(False)
                state.reconnecting("closed")
                log.warning("%s: the webhook server stopped: waiting for it to listen again", self.where)
        finally:
            server.remove_route(self.channel, self.room)
            if up:
                state.connected(False)

    # -- judging one request -------------------------------------------------------------------------------

    def judge(self, headers: Mapping[str, str], body: bytes, emit: Emit) -> Reply:
        """Check one request (signature, window, shape, repeats) and emit its events; the outcome."""
        if self.config.format == "douyin":
            return self._douyin(headers, body, emit)
        return self._generic(headers, body, emit)

    def _fresh(self, seconds: float) -> bool:
        return abs(time.time() - seconds) <= self.config.window_seconds

    def _generic(self, headers: Mapping[str, str], body: bytes, emit: Emit) -> Reply:
        timestamp = headers.get(GENERIC_TIMESTAMP)
        signature = headers.get(GENERIC_SIGNATURE)
        if not timestamp or not signature:
            return Reply(Outcome.BAD_SIGNATURE, error=f"{GENERIC_TIMESTAMP} and {GENERIC_SIGNATURE} are required")
        if not _same(generic_signature(timestamp, body, self._secret), signature.strip().lower()):
            return Reply(Outcome.BAD_SIGNATURE, error="the signature does not match")
        if not _INTEGER.fullmatch(timestamp.strip()):
            return Reply(Outcome.MALFORMED, error=f"{GENERIC_TIMESTAMP} must be unix seconds")
        if not self._fresh(int(timestamp)):
            return Reply(Outcome.STALE, error=f"{GENERIC_TIMESTAMP} is outside the "
                                              f"{self.config.window_seconds:g} s window")
        try:
            parsed = GenericBody.model_validate_json(body)
        except ValidationError as exc:
            return Reply(Outcome.MALFORMED, error="the body does not follow the generic format",
                         detail=_problems(exc))
        if any(event.id in self._seen for event in parsed.events):
            return Reply(Outcome.REPLAYED, error="an event id was accepted before: nothing of this request counted")
        received = datetime.now(UTC)
        events = [self._from_generic(event, received) for event in parsed.events]
        return Reply(Outcome.ACCEPTED, events=self._hand_over(events, emit))

    def _from_generic(self, event: GenericEvent, received: datetime) -> Interaction:
        texts = event.kind in (Kind.COMMENT, Kind.SUPERCHAT)
        return Interaction(
            channel=self.channel, room=self.room, platform=PLATFORM, kind=event.kind, at=event.at or received,
            count=event.count, value_cny=round(event.value_cny, 3),
            viewer=self.viewer_hash(event.viewer) if event.viewer else None, event_id=event.id,
            text=event.text if texts and self.config.keep_comment_text else None)

    def _douyin(self, headers: Mapping[str, str], body: bytes, emit: Emit) -> Reply:
        signed: dict[str, str] = {}
        for name in DOUYIN_SIGNED_HEADERS:
            value = headers.get(name)
            if value is None:
                return Reply(Outcome.BAD_SIGNATURE, error="the x-nonce-str, x-timestamp, x-roomid, x-msg-type "
                                                          "and x-signature headers are required")
            signed[name] = value
        signature = headers.get("x-signature")
        if not signature:
            return Reply(Outcome.BAD_SIGNATURE, error="the x-signature header is required")
        if not _same(douyin_signature(signed, body, self._secret), signature.strip()):
            return Reply(Outcome.BAD_SIGNATURE, error="the signature does not match")
        sent = signed["x-timestamp"].strip()
        if not _INTEGER.fullmatch(sent):
            return Reply(Outcome.MALFORMED, error="x-timestamp must be unix milliseconds")
        sent_at = _seconds(int(sent))
        if not self._fresh(sent_at):
            return Reply(Outcome.STALE, error=f"x-timestamp is outside the {self.config.window_seconds:g} s window")
        msg_type = signed["x-msg-type"]
        if msg_type not in DOUYIN_TYPES:
            return Reply(Outcome.MALFORMED, error=f"x-msg-type must be one of {', '.join(DOUYIN_TYPES)}")
        try:
            messages = _douyin_messages(body)
            built = [(_text(message, "msg_id"), message.get("test") is True,
                      self._from_douyin(msg_type, message, sent_at)) for message in messages]
        except _Malformed as exc:
            return Reply(Outcome.MALFORMED, error="the body is not a Douyin push", detail=str(exc))
        fresh: list[Interaction] = []
        taken: set[str] = set()
        tests = repeats = 0
        for message_id, test, event in built:
            if message_id in self._seen or message_id in taken:
                repeats += 1
                continue
            taken.add(message_id)
            if test:
                tests += 1
            elif event is not None:
                fresh.append(event)
        for message_id in taken:  # test messages and level-ups too: a repeat of them is a repeat
            self._seen.add(message_id)
        if tests:
            log.info("%s: %d Douyin test messages (\"test\": true) answered, not counted", self.where, tests)
        if built and repeats == len(built):
            return Reply(Outcome.DUPLICATE)
        if repeats:
            log.debug("%s: dropped %d repeated Douyin messages", self.where, repeats)
        return Reply(Outcome.ACCEPTED, events=self._hand_over(fresh, emit))

    def _from_douyin(self, msg_type: str, message: dict[str, Any], sent_at: float) -> Interaction | None:
        message_id = _text(message, "msg_id")
        if not message_id:
            raise _Malformed("a message without msg_id")
        open_id = _text(message, "sec_openid")
        stamp = _integer(message, "timestamp", default=0)
        try:
            at = datetime.fromtimestamp(_seconds(stamp) if stamp > 0 else sent_at, UTC)
        except (OverflowError, OSError, ValueError):
            raise _Malformed("timestamp is out of range") from None
        kind: Kind
        count, value, text = 1, 0.0, None
        if msg_type == "live_comment":
            kind = Kind.COMMENT
            content = message.get("content")
            if not isinstance(content, str):
                raise _Malformed("a live_comment message without content")
            text = content if self.config.keep_comment_text else None
        elif msg_type == "live_gift":
            kind = Kind.GIFT
            count = max(_integer(message, "gift_num", default=1), 1)
            value = _integer(message, "gift_value", default=0) / 100  # the total, in fen
        elif msg_type == "live_like":
            kind = Kind.LIKE
            count = max(_integer(message, "like_num", default=1), 1)
        else:  # live_fansclub
            if _integer(message, "fansclub_reason_type", default=0) != _FANSCLUB_JOINED:
                return None
            kind = Kind.FOLLOW
        return Interaction(channel=self.channel, room=self.room, platform="douyin", kind=kind, at=at, count=count,
                           value_cny=round(value, 3), viewer=self.viewer_hash(open_id) if open_id else None,
                           event_id=message_id, text=text)

    def _hand_over(self, events: Iterable[Interaction], emit: Emit) -> int:
        handed = 0
        for event in events:
            if event.event_id is not None:
                self._seen.add(event.event_id)
            try:
                emit(event)
            except Exception:  # a consumer's bug must not refuse the platform: say so, go on
                log.exception("%s: handing over a %s failed", self.where, event.kind.value)
            handed += 1
        return handed


def _douyin_messages(body: bytes) -> list[dict[str, Any]]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Malformed("the body is not UTF-8 JSON") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_EVENTS:
        raise _Malformed(f"the body must be a JSON array of at most {MAX_EVENTS} messages")
    if not all(isinstance(message, dict) for message in value):
        raise _Malformed("every message must be a JSON object")
    return value


def _text(message: dict[str, Any], key: str) -> str:
    value = message.get(key)
    return value if isinstance(value, str) else ""


def _integer(message: dict[str, Any], key: str, *, default: int) -> int:
    """A non-negative integer field (an integral float or a string of digits too), else _Malformed."""
    value = message.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{key} must be a non-negative integer")
    return value


def _seconds(stamp: int) -> float:
    """A unix time in milliseconds (or seconds, when below 10^11) as seconds."""
    return stamp / 1000 if stamp >= _MS_FROM else float(stamp)
