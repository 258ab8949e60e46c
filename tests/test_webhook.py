"""The webhook: real HTTP posts (aiohttp client) to the real server on 127.0.0.1, a free port.

Each scenario starts anchor.audience.webhook_server.WebhookServer, runs WebhookSource rooms on it as the
daemon would, and posts Douyin-style pushes and generic bridge requests, signed here independently of the
module under test, checking the answer (within 2 s), the Interactions handed over, the metric and the log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from anchor.audience.interaction import Interaction, Kind
from anchor.audience.sources import SourceError, source_type
from anchor.audience.sources.base import RoomState
from anchor.audience.sources.webhook import WebhookSettings, WebhookSource, douyin_signature
from anchor.audience.webhook_server import WebhookServer
from tests.conftest import clock_now

CHANNEL = "clinic"
SECRETS = {"dy-1": "douyin-push-secret-1", "dy-2": "douyin-push-secret-2", "bridge-1": "bridge-secret-0123456789",
           "small": "small-secret"}
SALT = "salt-for-tests"
OUTCOMES = ("accepted", "duplicate", "bad_signature", "stale", "replayed", "malformed", "too_large", "unknown_room")
# What a viewer sent or is: none of it may reach the log.
PRIVATE = ("sec-openid-viewer-a", "sec-openid-viewer-b", "wx-viewer-42", "请问挂号几点开始", "张三", "李四",
           "https://p3.douyinpic.com/a.jpg", "dy-msg-1", "dy-msg-2", "ev-1", "ev-2", "医生您好", "\"events\"")


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    for room, secret in SECRETS.items():
        name = room.upper().replace("-", "_")
        monkeypatch.setenv(f"ANCHOR_WEBHOOK_SECRET_{name}", secret)
        monkeypatch.setenv(f"ANCHOR_VIEWER_SALT_{name}", SALT)


def now_ms() -> int:
    return int(time.time() * 1000)


def run(scenario: Coroutine[Any, Any, None], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout))


def viewer(raw: str) -> str:
    return hmac.new(SALT.encode(), raw.encode(), hashlib.sha256).hexdigest()[:32]


def counts() -> dict[str, float]:
    return {o: REGISTRY.get_sample_value("anchor_webhook_requests_total", {"outcome": o}) or 0.0 for o in OUTCOMES}


class Recorder(RoomState):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def connected(self, up: bool) -> None:
        self.events.append(("connected", up))

    def reconnecting(self, reason: str) -> None:
        self.events.append(("reconnecting", reason))


@dataclass
class Room:
    source: WebhookSource
    state: Recorder = field(default_factory=Recorder)
    got: list[Interaction] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class Site:
    server: WebhookServer
    http: aiohttp.ClientSession
    rooms: dict[str, Room]

    def url(self, room: str, channel: str = CHANNEL) -> str:
        return self.server.url(channel, room)

    async def post(self, room: str, body: bytes | Any, headers: dict[str, str],
                   channel: str = CHANNEL) -> tuple[int, dict[str, Any]]:
        """POST and read the answer, which must come back within 2 s."""
        started = time.monotonic()
        async with self.http.post(self.url(room, channel), data=body, headers=headers) as response:
            status, answer = response.status, await response.json()
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"the answer took {elapsed:.2f} s"
        return status, answer

    def got(self) -> list[Interaction]:
        return [event for room in self.rooms.values() for event in room.got]


ROOMS: dict[str, dict[str, Any]] = {
    "dy-1": {"format": "douyin"},
    "dy-2": {"format": "douyin", "keep_comment_text": True},
    "bridge-1": {"format": "generic", "keep_comment_text": True},
    "small": {"format": "generic", "max_body_bytes": 2048},
}


@asynccontextmanager
async def site() -> AsyncIterator[Site]:
    server = WebhookServer("127.0.0.1", 0)
    rooms = {name: Room(WebhookSource(CHANNEL, WebhookSettings(name=name, **settings), server=server))
             for name, settings in ROOMS.items()}
    for room in rooms.values():
        room.task = asyncio.create_task(room.source.run(room.got.append, room.state))
    port = await server.start()
    assert port > 0
    deadline = time.monotonic() + 5
    while not all(("connected", True) in room.state.events for room in rooms.values()):
        assert time.monotonic() < deadline, "the rooms never said they were connected"
        await asyncio.sleep(0.01)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            yield Site(server, http, rooms)
    finally:
        tasks = [room.task for room in rooms.values() if room.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=5)
        await server.stop()
    assert all(task.cancelled() for task in tasks), "run() must end only by being stopped"


# -- signing, done here independently of the module ------------------------------------------------------

def douyin_headers(room: str, body: bytes, msg_type: str, *, sent_ms: int | None = None,
                   secret: str | None = None) -> dict[str, str]:
    headers = {"x-nonce-str": "n0nce-" + str(time.monotonic_ns()), "x-timestamp": str(sent_ms or now_ms()),
               "x-roomid": "7301234567890123456", "x-msg-type": msg_type}
    signed = "&".join(f"{k}={headers[k]}" for k in sorted(headers)).encode() + body
    signed += (secret or SECRETS[room]).encode()
    return {**headers, "x-signature": base64.b64encode(hashlib.md5(signed).digest()).decode(),
            "content-type": "application/json"}


def generic_headers(room: str, body: bytes, *, ts: int | None = None, secret: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new((secret or SECRETS[room]).encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Anchor-Timestamp": stamp, "X-Anchor-Signature": mac, "Content-Type": "application/json"}


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


TS_MS = 1767225600123  # 2026-01-01T00:00:00.123Z
AT = datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)


def dy(msg_id: str, open_id: str, **fields: Any) -> dict[str, Any]:
    return {"msg_id": msg_id, "sec_openid": open_id, "avatar_url": "https://p3.douyinpic.com/a.jpg",
            "nickname": "张三", "timestamp": TS_MS, **fields}


# -- the tests ---------------------------------------------------------------------------------------------

def test_douyin_signature_matches_the_documented_example() -> None:
    # The example of Douyin's signing guide: headers, body "abc123你好", secret "123abc".
    headers = {"x-nonce-str": "123456", "x-timestamp": "456789", "x-roomid": "268", "x-msg-type": "user_group"}
    assert douyin_signature(headers, "abc123你好".encode(), "123abc") == "GAkalGmhzqlUGQO/TgvMug=="


def test_douyin_pushes_become_interactions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with site() as s:
            before = counts()
            pushes = [
                ("live_comment", [dy("dy-msg-1", "sec-openid-viewer-a", content="请问挂号几点开始")]),
                ("live_gift", [dy("dy-msg-2", "sec-openid-viewer-b", sec_gift_id="gft-x", gift_num=3,
                                  gift_value=300)]),
                ("live_like", [dy("dy-msg-3", "sec-openid-viewer-a", like_num=12),
                               dy("dy-msg-4", "sec-openid-viewer-b", like_num=1, timestamp=TS_MS + 2000)]),
                ("live_fansclub", [dy("dy-msg-5", "sec-openid-viewer-b", fansclub_reason_type=2, fansclub_level=1),
                                   dy("dy-msg-6", "sec-openid-viewer-a", fansclub_reason_type=1, fansclub_level=5)]),
                ("live_gift", [dy("dy-msg-7", "sec-openid-viewer-a", sec_gift_id="g", gift_num=1, gift_value=10,
                                  test=True)]),
            ]
            for msg_type, messages in pushes:
                body = dumps(messages)
                status, answer = await s.post("dy-1", body, douyin_headers("dy-1", body, msg_type))
                assert (status, answer["outcome"]) == (200, "accepted"), answer
            got = s.rooms["dy-1"].got
            assert [(i.kind, i.count, i.value_cny) for i in got] == [
                (Kind.COMMENT, 1, 0.0), (Kind.GIFT, 3, 3.0), (Kind.LIKE, 12, 0.0), (Kind.LIKE, 1, 0.0),
                (Kind.FOLLOW, 1, 0.0)]
            assert [i.viewer for i in got] == [viewer("sec-openid-viewer-a"), viewer("sec-openid-viewer-b"),
                                               viewer("sec-openid-viewer-a"), viewer("sec-openid-viewer-b"),
                                               viewer("sec-openid-viewer-b")]
            assert [i.event_id for i in got] == ["dy-msg-1", "dy-msg-2", "dy-msg-3", "dy-msg-4", "dy-msg-5"]
            assert all(i.at == AT for i in got if i.event_id != "dy-msg-4")
            assert got[3].at == AT + timedelta(seconds=2)
            assert {(i.channel, i.room, i.platform) for i in got} == {(CHANNEL, "dy-1", "douyin")}
            assert all(i.text is None for i in got), "dy-1 keeps no comment text"
            assert "张三" not in repr(got) and "douyinpic" not in repr(got)
            after = counts()
            assert after["accepted"] - before["accepted"] == 5

            # A room that keeps texts keeps the comment's text.
            body = dumps([dy("dy-msg-1", "sec-openid-viewer-a", content="请问挂号几点开始")])
            status, _ = await s.post("dy-2", body, douyin_headers("dy-2", body, "live_comment"))
            assert status == 200
            assert [i.text for i in s.rooms["dy-2"].got] == ["请问挂号几点开始"]
            assert not s.rooms["bridge-1"].got and not s.rooms["small"].got

    run(scenario())
    for private in PRIVATE:
        assert private not in caplog.text, f"the log holds {private!r}"


def test_a_repeated_msg_id_counts_once() -> None:
    async def scenario() -> None:
        async with site() as s:
            before = counts()
            body = dumps([dy("dy-msg-1", "sec-openid-viewer-a", sec_gift_id="g", gift_num=1, gift_value=520)])
            first = await s.post("dy-1", body, douyin_headers("dy-1", body, "live_gift"))
            # Douyin pushes it again (a fresh nonce, timestamp and signature).
            again = await s.post("dy-1", body, douyin_headers("dy-1", body, "live_gift"))
            assert (first[0], first[1]["outcome"], again[0], again[1]["outcome"]) == (200, "accepted", 200, "duplicate")
            # A batch with the old one and a new one: the new one counts, the old one not again.
            body = dumps([dy("dy-msg-1", "sec-openid-viewer-a", sec_gift_id="g", gift_num=1, gift_value=520),
                          dy("dy-msg-2", "sec-openid-viewer-b", sec_gift_id="g", gift_num=2, gift_value=200)])
            mixed = await s.post("dy-1", body, douyin_headers("dy-1", body, "live_gift"))
            assert mixed == (200, {"outcome": "accepted", "events": 1})
            got = s.rooms["dy-1"].got
            assert [(i.event_id, i.count, i.value_cny) for i in got] == [("dy-msg-1", 1, 5.2), ("dy-msg-2", 2, 2.0)]
            after = counts()
            assert (after["accepted"] - before["accepted"], after["duplicate"] - before["duplicate"]) == (2, 1)

    run(scenario())


def test_generic_events_become_interactions() -> None:
    async def scenario() -> None:
        async with site() as s:
            events = [
                {"id": "ev-1", "kind": "comment", "at": "2026-01-01T08:00:00+08:00", "viewer": "wx-viewer-42",
                 "text": "医生您好"},
                {"id": "ev-2", "kind": "gift", "at": 1767225600, "count": 2, "value_cny": 19.9,
                 "viewer": "wx-viewer-42"},
                {"id": "ev-3", "kind": "like", "at": 1767225600.5, "count": 30, "text": "dropped: not a comment"},
                {"id": "ev-4", "kind": "viewers", "at": "2026-01-01T00:00:01Z", "count": 0},
                {"id": "ev-5", "kind": "share"},
                {"id": "ev-6", "kind": "superchat", "at": "2026-01-01T00:00:02Z", "value_cny": 30, "text": "谢谢"},
            ]
            body = dumps({"events": events})
            started = clock_now()
            status, answer = await s.post("bridge-1", body, generic_headers("bridge-1", body))
            assert (status, answer) == (200, {"outcome": "accepted", "events": 6})
            got = s.rooms["bridge-1"].got
            assert [(i.kind, i.count, i.value_cny) for i in got] == [
                (Kind.COMMENT, 1, 0.0), (Kind.GIFT, 2, 19.9), (Kind.LIKE, 30, 0.0), (Kind.VIEWERS, 0, 0.0),
                (Kind.SHARE, 1, 0.0), (Kind.SUPERCHAT, 1, 30.0)]
            assert [i.at for i in got[:4]] == [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
                                               datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
                                               datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)]
            assert got[4].at >= started - timedelta(seconds=1), "no `at`: the time it arrived"
            assert all(i.at.utcoffset() == timedelta(0) for i in got)
            assert [i.viewer for i in got[:3]] == [viewer("wx-viewer-42"), viewer("wx-viewer-42"), None]
            assert [i.text for i in got] == ["医生您好", None, None, None, None, "谢谢"]
            assert {(i.platform, i.room) for i in got} == {("webhook", "bridge-1")}
            assert [i.event_id for i in got] == [f"ev-{n}" for n in range(1, 7)]
            # An empty list: a check of URL, secret and clock.
            body = dumps({"events": []})
            assert await s.post("bridge-1", body, generic_headers("bridge-1", body)) == (
                200, {"outcome": "accepted", "events": 0})

    run(scenario())


def test_refusals_are_answered_logged_and_counted_never_emitted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with site() as s:
            comment = {"id": "ev-1", "kind": "comment", "viewer": "wx-viewer-42", "text": "医生您好"}
            good = dumps({"events": [comment]})
            dy_body = dumps([dy("dy-msg-1", "sec-openid-viewer-a", content="请问挂号几点开始")])
            now = int(time.time())

            async def refused(outcome: str, status: int, room: str, body: Any, headers: dict[str, str],
                              channel: str = CHANNEL) -> dict[str, Any]:
                before = counts()
                got, answer = await s.post(room, body, headers, channel)
                assert (got, answer["outcome"]) == (status, outcome), answer
                after = counts()
                assert {o: after[o] - before[o] for o in OUTCOMES if after[o] != before[o]} == {outcome: 1.0}
                assert not s.got(), f"a refused request ({outcome}) was counted"
                return answer

            # Bad signatures: a wrong secret, a tampered body, missing headers; both formats.
            await refused("bad_signature", 401, "bridge-1", good, generic_headers("bridge-1", good, secret="guess"))
            await refused("bad_signature", 401, "bridge-1", good.replace(b"ev-1", b"ev-9"),
                          generic_headers("bridge-1", good))
            await refused("bad_signature", 401, "bridge-1", good, {"Content-Type": "application/json"})
            await refused("bad_signature", 401, "dy-1", dy_body,
                          douyin_headers("dy-1", dy_body, "live_comment", secret="guess"))
            headers = douyin_headers("dy-1", dy_body, "live_comment")
            del headers["x-nonce-str"]
            await refused("bad_signature", 401, "dy-1", dy_body, headers)
            # Another room's secret does not open this one.
            await refused("bad_signature", 401, "dy-2", dy_body, douyin_headers("dy-1", dy_body, "live_comment"))

            # Stale: outside ±300 s, either way.
            await refused("stale", 409, "bridge-1", good, generic_headers("bridge-1", good, ts=now - 301))
            await refused("stale", 409, "bridge-1", good, generic_headers("bridge-1", good, ts=now + 400))
            await refused("stale", 409, "dy-1", dy_body,
                          douyin_headers("dy-1", dy_body, "live_comment", sent_ms=now_ms() - 3_600_000))

            # Malformed, though signed.
            for body in (b"{not json", dumps({"events": [{**comment, "kind": "applause"}]}),
                         dumps({"events": [{**comment, "at": "2026-01-01T08:00:00"}]}),
                         dumps({"events": [{**comment, "at": 1767225600000}]}),
                         dumps({"events": [{**comment, "count": "3"}]}),
                         dumps({"events": [{**comment, "nickname": "李四"}]}),
                         dumps({"events": [comment, comment]}), dumps([comment]), dumps({"events": [comment], "x": 1}),
                         dumps({"events": [{**comment, "kind": "like", "count": 0}]}),
                         dumps({"events": [{**comment, "value_cny": -1}]})):
                answer = await refused("malformed", 400, "bridge-1", body, generic_headers("bridge-1", body))
            answer = await refused("malformed", 400, "bridge-1", dumps({"events": [{**comment, "kind": "applause"}]}),
                                   generic_headers("bridge-1", dumps({"events": [{**comment, "kind": "applause"}]})))
            assert "events.0.kind" in answer["detail"] and "applause" not in answer["detail"]
            headers = generic_headers("bridge-1", good)
            headers["X-Anchor-Timestamp"] = "soon"
            headers["X-Anchor-Signature"] = hmac.new(SECRETS["bridge-1"].encode(), b"soon." + good,
                                                     hashlib.sha256).hexdigest()
            await refused("malformed", 400, "bridge-1", good, headers)
            for body, msg_type in ((b"[{", "live_comment"), (dumps({"msg": "x"}), "live_comment"),
                                   (dumps([{"sec_openid": "sec-openid-viewer-a", "content": "x"}]), "live_comment"),
                                   (dumps([dy("dy-msg-1", "sec-openid-viewer-a", gift_num=-2)]), "live_gift"),
                                   (dy_body, "live_unknown")):
                await refused("malformed", 400, "dy-1", body, douyin_headers("dy-1", body, msg_type))

            # Too large: over the room's 2,048 bytes, said up front or streamed without a length.
            big = dumps({"events": [{**comment, "text": "长" * 1500}]})
            assert len(big) > 2048
            await refused("too_large", 413, "small", big, generic_headers("small", big))

            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(big), 1024):
                    yield big[start:start + 1024]

            await refused("too_large", 413, "small", chunks(), generic_headers("small", big))

            # Unknown rooms.
            await refused("unknown_room", 404, "nowhere", good, generic_headers("bridge-1", good))
            await refused("unknown_room", 404, "bridge-1", good, generic_headers("bridge-1", good), channel="other")

            # Replayed: an accepted request sent again (freshly signed), or an old event in a new batch.
            assert (await s.post("bridge-1", good, generic_headers("bridge-1", good)))[0] == 200
            assert len(s.got()) == 1
            s.rooms["bridge-1"].got.clear()
            await refused("replayed", 409, "bridge-1", good, generic_headers("bridge-1", good))
            mixed = dumps({"events": [{"id": "ev-2", "kind": "like", "count": 5}, comment]})
            await refused("replayed", 409, "bridge-1", mixed, generic_headers("bridge-1", mixed))
            # …and the new event of that refused batch was not taken: alone, it is accepted.
            fresh = dumps({"events": [{"id": "ev-2", "kind": "like", "count": 5}]})
            assert (await s.post("bridge-1", fresh, generic_headers("bridge-1", fresh)))[1]["events"] == 1

            # The server is still well after all that.
            assert (await s.post("dy-1", dy_body, douyin_headers("dy-1", dy_body, "live_comment")))[0] == 200

    run(scenario())
    refusals = [r for r in caplog.records if "refused a webhook request" in r.getMessage()]
    assert len(refusals) >= 30
    assert all(CHANNEL in r.getMessage() or "'other'" in r.getMessage() for r in refusals)
    for private in PRIVATE:
        assert private not in caplog.text, f"the log holds {private!r}"
    assert "长长长" not in caplog.text and "applause" not in caplog.text


def test_connected_while_served_and_the_route_goes_with_the_source() -> None:
    async def scenario() -> None:
        server = WebhookServer()
        source = WebhookSource(CHANNEL, WebhookSettings(name="bridge-1", format="generic"), server=server)
        state, got = Recorder(), list[Interaction]()
        task = asyncio.create_task(source.run(got.append, state))
        await asyncio.sleep(0.05)
        assert state.events == [], "not connected before the server listens"
        port = await server.start("127.0.0.1", 0)
        assert server.host == "127.0.0.1" and port == server.port
        for _ in range(100):
            if state.events:
                break
            await asyncio.sleep(0.01)
        assert state.events == [("connected", True)]
        await server.stop()
        await asyncio.sleep(0.05)
        assert state.events[1:] == [("connected", False), ("reconnecting", "closed")]
        await server.start()
        await asyncio.sleep(0.05)
        assert state.events[-1] == ("connected", True)
        body = dumps({"events": []})
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url(CHANNEL, "bridge-1"), data=body,
                                 headers=generic_headers("bridge-1", body)) as response:
                assert response.status == 200
            task.cancel()
            await asyncio.wait([task], timeout=5)
            assert task.cancelled() and state.events[-1] == ("connected", False)
            async with http.post(server.url(CHANNEL, "bridge-1"), data=body,
                                 headers=generic_headers("bridge-1", body)) as response:
                assert response.status == 404, "a stopped source's route is gone"
        await server.stop()

    run(scenario())


def test_settings_secrets_and_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert source_type("webhook") is WebhookSource
    settings = WebhookSettings(name="bridge-1", format="generic")
    assert (settings.platform, settings.max_body_bytes, settings.window_seconds, settings.keep_comment_text) == (
        "webhook", 256 * 1024, 300.0, False)
    with pytest.raises(ValidationError):
        WebhookSettings(name="x")  # type: ignore[call-arg]  # format is required
    with pytest.raises(ValidationError):
        WebhookSettings(name="x", format="kuaishou")
    monkeypatch.delenv("ANCHOR_WEBHOOK_SECRET_HALL_9", raising=False)
    with pytest.raises(SourceError, match="ANCHOR_WEBHOOK_SECRET_HALL_9"):
        WebhookSource(CHANNEL, WebhookSettings(name="hall-9", format="douyin"))

    async def no_server() -> None:
        source = WebhookSource(CHANNEL, settings)
        with pytest.raises(SourceError, match="serves no webhook"):
            await source.run(lambda _: None, RoomState())

    run(no_server())

    async def two_of_one_name() -> None:
        server = WebhookServer()
        first, second = WebhookSource(CHANNEL, settings), WebhookSource(CHANNEL, settings)
        for source in (first, second):
            source.attach_http(server)  # as the daemon's Rooms does
        task = asyncio.create_task(first.run(lambda _: None, RoomState()))
        await asyncio.sleep(0.01)
        with pytest.raises(SourceError, match="served already"):
            await second.run(lambda _: None, RoomState())
        task.cancel()
        await asyncio.wait([task])

    run(two_of_one_name())


def test_a_failing_consumer_does_not_refuse_the_platform() -> None:
    async def scenario() -> None:
        server = WebhookServer()
        source = WebhookSource(CHANNEL, WebhookSettings(name="dy-1", format="douyin"), server=server)

        def broken(_: Interaction) -> None:
            raise RuntimeError("consumer bug")

        task = asyncio.create_task(source.run(broken, RoomState()))
        await server.start()
        body = dumps([dy("dy-msg-1", "sec-openid-viewer-a", like_num=3)])
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url(CHANNEL, "dy-1"), data=body,
                                 headers=douyin_headers("dy-1", body, "live_like")) as response:
                assert response.status == 200
        task.cancel()
        await asyncio.wait([task])
        await server.stop()

    run(scenario())

