"""The Bilibili open-platform source against a local fake that speaks the platform's real protocol.

Each scenario runs the real client (anchor.audience.sources.bilibili) with short intervals against
tests/fake_bilibili.py, in one event loop, every wait bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from anchor.audience.interaction import Interaction, Kind
from anchor.audience.sources import SourceError, source_type
from anchor.audience.sources.base import RoomState
from anchor.audience.sources.bilibili import BilibiliSettings, BilibiliSource, sign
from tests.fake_bilibili import FakeBilibili

KEY_ID, KEY_SECRET, CODE, APP_ID = "AKfake0123456789", "fake-secret-abcdef", "C7NQJ0D2K4XYZ", 1734567890123
CHANNEL, ROOM = "clinic", "hall-1"
ENV = {"ANCHOR_BILIBILI_KEY_ID_HALL_1": KEY_ID, "ANCHOR_BILIBILI_KEY_SECRET_HALL_1": KEY_SECRET,
       "ANCHOR_BILIBILI_CODE_HALL_1": CODE}
FAST = {"request_timeout": 2.0, "app_heartbeat_interval": 0.3, "ws_heartbeat_interval": 0.25,
        "silence_timeout": 1.0, "backoff_initial": 0.05, "backoff_max": 0.2}
TS = 1767225600  # 2026-01-01T00:00:00Z


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("ANCHOR_VIEWER_SALT_HALL_1", raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def run(scenario: Coroutine[Any, Any, None], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout))


async def until(condition: Any, what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        await asyncio.sleep(0.01)


class Recorder(RoomState):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def connected(self, up: bool) -> None:
        self.events.append(("connected", up))

    def reconnecting(self, reason: str) -> None:
        self.events.append(("reconnecting", reason))

    @property
    def reasons(self) -> list[object]:
        return [value for what, value in self.events if what == "reconnecting"]

    def ups(self) -> int:
        return self.events.count(("connected", True))


@dataclass
class Running:
    source: BilibiliSource
    state: Recorder = field(default_factory=Recorder)
    got: list[Interaction] = field(default_factory=list)

    def kinds(self) -> list[Kind]:
        return [i.kind for i in self.got]


def fake_platform(**kwargs: Any) -> FakeBilibili:
    return FakeBilibili(key_id=KEY_ID, key_secret=KEY_SECRET, code=CODE, app_id=APP_ID, **kwargs)


@asynccontextmanager
async def running(fake: FakeBilibili, **settings: Any) -> AsyncIterator[Running]:
    config = BilibiliSettings(name=ROOM, app_id=APP_ID, api_base=fake.api_base, **(FAST | settings))
    room = Running(BilibiliSource(CHANNEL, config))
    task = asyncio.create_task(room.source.run(room.got.append, room.state))
    try:
        yield room
        assert not task.done(), f"run() returned or raised: {task.exception() if task.done() else ''}"
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)
    assert task.done() and task.cancelled(), "run() must end only by being stopped"


async def listening(fake: FakeBilibili, room: Running, ups: int = 1) -> None:
    await until(lambda: room.state.ups() >= ups and len(fake.listening()) == 1, f"connection #{ups}")


def dm(open_id: str, msg: str, msg_id: str, ts: int = TS) -> dict[str, Any]:
    return {"cmd": "LIVE_OPEN_PLATFORM_DM", "data": {
        "room_id": 21452505, "open_id": open_id, "union_id": "u-" + open_id, "uname": "张三",
        "uface": "https://i0.hdslb.com/a.jpg", "timestamp": ts, "msg": msg, "msg_id": msg_id, "guard_level": 0,
        "fans_medal_wearing_status": False, "fans_medal_name": "", "fans_medal_level": 0, "emoji_img_url": "",
        "dm_type": 0, "glory_level": 0, "reply_open_id": "", "reply_uname": "", "is_admin": 0}}


EVENTS: list[dict[str, Any]] = [
    dm("viewer-a", "请问挂号几点开始？", "dm-1"),
    {"cmd": "LIVE_OPEN_PLATFORM_SEND_GIFT", "data": {
        "room_id": 21452505, "open_id": "viewer-b", "uname": "李四", "uface": "", "gift_id": 31036,
        "gift_name": "小花花", "gift_num": 3, "price": 100, "r_price": 100, "paid": True, "fans_medal_level": 0,
        "fans_medal_name": "", "fans_medal_wearing_status": False, "guard_level": 0, "timestamp": TS + 1,
        "anchor_info": {"uid": 0, "open_id": "anchor-open-id", "uname": "医院", "uface": ""},
        "msg_id": "gift-1", "gift_icon": "", "combo_gift": False,
        "combo_info": {"combo_base_num": 0, "combo_count": 0, "combo_id": "", "combo_timeout": 0}}},
    {"cmd": "LIVE_OPEN_PLATFORM_SEND_GIFT", "data": {
        "room_id": 21452505, "open_id": "viewer-a", "uname": "张三", "uface": "", "gift_id": 1,
        "gift_name": "辣条", "gift_num": 5, "price": 100, "r_price": 0, "paid": False, "fans_medal_level": 0,
        "fans_medal_name": "", "fans_medal_wearing_status": False, "guard_level": 0, "timestamp": TS + 2,
        "anchor_info": {"uid": 0, "open_id": "anchor-open-id", "uname": "医院", "uface": ""},
        "msg_id": "gift-2", "gift_icon": ""}},
    {"cmd": "LIVE_OPEN_PLATFORM_SUPER_CHAT", "data": {
        "room_id": 21452505, "open_id": "viewer-c", "uname": "王五", "uface": "", "message_id": 77,
        "message": "感谢科普！", "rmb": 30, "timestamp": TS + 3, "start_time": TS + 3, "end_time": TS + 63,
        "guard_level": 0, "fans_medal_level": 0, "fans_medal_name": "", "fans_medal_wearing_status": False,
        "msg_id": "sc-1"}},
    {"cmd": "LIVE_OPEN_PLATFORM_SUPER_CHAT_DEL", "data": {"room_id": 21452505, "message_ids": [77],
                                                         "msg_id": "scdel-1"}},
    {"cmd": "LIVE_OPEN_PLATFORM_GUARD", "data": {
        "user_info": {"open_id": "viewer-d", "union_id": "u-d", "uname": "赵六", "uface": ""},
        "guard_level": 3, "guard_num": 2, "guard_unit": "月", "price": 138000, "fans_medal_level": 1,
        "fans_medal_name": "", "fans_medal_wearing_status": False, "room_id": 21452505, "msg_id": "guard-1",
        "timestamp": TS + 4}},
    {"cmd": "LIVE_OPEN_PLATFORM_LIKE", "data": {
        "uname": "张三", "open_id": "viewer-a", "uface": "", "timestamp": TS + 5, "room_id": 21452505,
        "like_text": "为主播点赞了", "like_count": 12, "fans_medal_wearing_status": False, "fans_medal_name": "",
        "fans_medal_level": 0, "msg_id": "like-1"}},
    {"cmd": "LIVE_OPEN_PLATFORM_LIVE_ROOM_ENTER", "data": {
        "room_id": 21452505, "uface": "", "uname": "孙七", "open_id": "viewer-e", "timestamp": TS + 6,
        "msg_id": "enter-1"}},
    {"cmd": "LIVE_OPEN_PLATFORM_LIVE_START", "data": {
        "room_id": 21452505, "open_id": "anchor-open-id", "timestamp": TS + 7, "area_name": "科普",
        "title": "健康讲堂", "msg_id": "start-1"}},
    {"cmd": "LIVE_OPEN_PLATFORM_LIVE_END", "data": {
        "room_id": 21452505, "open_id": "anchor-open-id", "timestamp": TS + 8, "area_name": "科普",
        "title": "健康讲堂", "msg_id": "end-1"}},
    dm("viewer-a", "重复推送", "dm-1"),  # the same msg_id again: dropped
]


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(TS + offset, UTC)


def test_pushes_become_interactions_with_hashed_viewers_and_no_text() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake, running(fake) as room:
            await listening(fake, room)
            assert await fake.push(EVENTS, protover=2) == 1
            await until(lambda: len(room.got) >= 9, "the zlib batch")
            await asyncio.sleep(0.1)  # nothing more comes of it (the repeat, SUPER_CHAT_DEL)
            src = room.source
            h = src.viewer_hash
            expected = [
                Interaction(CHANNEL, ROOM, "bilibili", Kind.COMMENT, at(0), 1, 0.0, h("viewer-a"), "dm-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.GIFT, at(1), 3, 0.3, h("viewer-b"), "gift-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.GIFT, at(2), 5, 0.0, h("viewer-a"), "gift-2", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.SUPERCHAT, at(3), 1, 30.0, h("viewer-c"), "sc-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.GUARD, at(4), 2, 276.0, h("viewer-d"), "guard-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.LIKE, at(5), 12, 0.0, h("viewer-a"), "like-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.ENTER, at(6), 1, 0.0, h("viewer-e"), "enter-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.LIVE_START, at(7), 1, 0.0, None, "start-1", None),
                Interaction(CHANNEL, ROOM, "bilibili", Kind.LIVE_END, at(8), 1, 0.0, None, "end-1", None),
            ]
            assert room.got == expected
            viewers = {i.viewer for i in room.got if i.viewer}
            assert len(viewers) == 5 and all(len(v) == 32 for v in viewers)
            everything = repr(room.got)
            for secret in ("viewer-", "张三", "李四", "挂号", "感谢", "anchor-open-id"):
                assert secret not in everything
            # The game was kept alive meanwhile.
            await until(lambda: len(fake.answered("/v2/app/heartbeat")) >= 1, "a game heartbeat")
            assert fake.connections[0].heartbeats >= 1
            assert room.state.events == [("connected", True)]

    run(scenario())


def test_brotli_batches_and_kept_texts() -> None:
    pytest.importorskip("brotli")

    async def scenario() -> None:
        async with fake_platform() as fake, running(fake, keep_comment_text=True) as room:
            await listening(fake, room)
            batch = [dm("viewer-a", "第一条", "b-1", TS), dm("viewer-b", "第二条", "b-2", TS + 1), EVENTS[3]]
            await fake.push(batch, protover=3)
            await fake.push([dm("viewer-a", "第三条", "b-3", TS + 2)], protover=0)  # plain packets too
            await until(lambda: len(room.got) == 4, "the brotli batch and the plain packet")
            assert [(i.kind, i.text) for i in room.got] == [
                (Kind.COMMENT, "第一条"), (Kind.COMMENT, "第二条"), (Kind.SUPERCHAT, "感谢科普！"),
                (Kind.COMMENT, "第三条")]
            assert room.got[0].viewer == room.got[3].viewer != room.got[1].viewer

    run(scenario())


def test_viewer_salt_from_credentials_makes_hashes_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = BilibiliSettings(name=ROOM, app_id=APP_ID)
    random_a, random_b = BilibiliSource(CHANNEL, settings), BilibiliSource(CHANNEL, settings)
    assert random_a.viewer_hash("viewer-a") != random_b.viewer_hash("viewer-a")  # a salt per process
    monkeypatch.setenv("ANCHOR_VIEWER_SALT_HALL_1", "institution-salt")
    salted_a, salted_b = BilibiliSource(CHANNEL, settings), BilibiliSource(CHANNEL, settings)
    assert salted_a.viewer_hash("viewer-a") == salted_b.viewer_hash("viewer-a")
    assert salted_a.viewer_hash("viewer-a") == hmac.new(b"institution-salt", b"viewer-a",
                                                        hashlib.sha256).hexdigest()[:32]
    assert salted_a.viewer_hash("viewer-a") != salted_a.viewer_hash("viewer-b")


def test_abrupt_close_reconnects_on_the_same_game() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake, running(fake) as room:
            await listening(fake, room)
            assert fake.close_abruptly() == 1
            await listening(fake, room, ups=2)
            assert room.state.events == [("connected", True), ("connected", False), ("reconnecting", "closed"),
                                         ("connected", True)]
            assert len(fake.answered("/v2/app/start")) == 1  # the game goes on
            await fake.push([dm("viewer-a", "我回来了", "after-close")])
            await until(lambda: len(room.got) == 1, "a comment after the reconnect")

    run(scenario())


@pytest.mark.parametrize("mode", ["deaf", "silent"])
def test_a_quiet_connection_is_made_again(mode: str) -> None:
    """deaf: pushes come but heartbeats are never answered; silent: nothing at all after auth."""

    async def scenario() -> None:
        async with fake_platform() as fake:
            fake.next_connections(mode)
            async with running(fake) as room:
                await until(lambda: room.state.ups() >= 1, "the first connection")
                await fake.push([dm("viewer-a", "有人吗", "q-1")])
                await listening(fake, room, ups=2)
                assert room.state.reasons == ["silent"]
                assert [c.mode for c in fake.connections] == [mode, "ok"]
                assert fake.connections[0].ws.closed and fake.connections[0].heartbeats >= 1
                assert len(fake.answered("/v2/app/start")) == 1
                assert len(room.got) == (1 if mode == "deaf" else 0)

    run(scenario())


def test_heartbeat_7003_starts_a_new_game() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake, running(fake) as room:
            await listening(fake, room)
            first = fake.live_game()
            assert first is not None
            fake.game_over_on_heartbeat()
            await listening(fake, room, ups=2)
            second = fake.live_game()
            assert second is not None and second.game_id != first.game_id
            assert "ended" in room.state.reasons
            assert len(fake.answered("/v2/app/heartbeat", 7003)) == 1
            assert len(fake.answered("/v2/app/start")) == 2
            await fake.push([dm("viewer-a", "新场次", "g-2")])
            await until(lambda: len(room.got) == 1, "a comment in the new game")

    run(scenario())


def test_interaction_end_starts_a_new_game() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake, running(fake) as room:
            await listening(fake, room)
            first = fake.live_game()
            assert first is not None and await fake.end_interaction() == 1
            await listening(fake, room, ups=2)
            second = fake.live_game()
            assert second is not None and second.game_id != first.game_id
            assert room.state.reasons == ["ended"]
            assert room.state.events.count(("connected", False)) == 1
            assert not room.got  # INTERACTION_END is not an interaction

    run(scenario())


def test_refused_start_is_retried() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake:
            fake.refuse_starts(7007, times=2)
            async with running(fake) as room:
                await listening(fake, room)
                assert room.state.reasons == ["refused", "refused"]
                assert [c.code for c in fake.answered("/v2/app/start", None)] == [7007, 7007, 0]

    run(scenario())


def test_refused_auth_starts_a_new_game_and_the_old_one_is_ended() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake:
            fake.next_connections("reject_auth")
            async with running(fake) as room:
                await listening(fake, room)
                assert room.state.events == [("reconnecting", "auth"), ("connected", True)]
                starts = fake.answered("/v2/app/start")
                assert len(starts) == 2 and len(fake.answered("/v2/app/end")) == 1  # else 7002 on the restart

    run(scenario())


def test_stop_ends_the_game() -> None:
    async def scenario() -> None:
        async with fake_platform() as fake:
            async with running(fake) as room:
                await listening(fake, room)
                game = fake.live_game()
                assert game is not None
            assert [c.body for c in fake.answered("/v2/app/end")] == [{"game_id": game.game_id, "app_id": APP_ID}]
            assert fake.live_game() is None
            assert room.state.events == [("connected", True), ("connected", False)]
            await until(lambda: all(c.ws.closed for c in fake.connections), "the websocket closed")

    run(scenario())


def test_unreachable_platform_is_retried_not_raised() -> None:
    async def scenario() -> None:
        fake = fake_platform()
        await fake.start()
        base = fake.api_base
        await fake.stop()  # nothing listens on that port now
        config = BilibiliSettings(name=ROOM, app_id=APP_ID, api_base=base, **FAST)
        state = Recorder()
        task = asyncio.create_task(BilibiliSource(CHANNEL, config).run(lambda _: None, state))
        await until(lambda: len(state.reasons) >= 3, "three failed starts")
        assert not task.done()
        task.cancel()
        await asyncio.wait([task], timeout=5)
        assert task.cancelled() and set(state.reasons) == {"error"}

    run(scenario())


def test_a_bad_key_secret_is_refused_by_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHOR_BILIBILI_KEY_SECRET_HALL_1", "not-the-secret")

    async def scenario() -> None:
        async with fake_platform() as fake, running(fake) as room:
            await until(lambda: len(room.state.reasons) >= 2, "two refused starts")
            assert set(room.state.reasons) == {"refused"} and room.state.ups() == 0
            assert {c.code for c in fake.calls} == {4002}

    run(scenario())


def test_the_fake_checks_signatures() -> None:
    """The fake refuses what the platform refuses, so the client's success above means a right signature."""

    async def scenario() -> None:
        async with fake_platform() as fake, aiohttp.ClientSession() as http:
            async def call(raw: bytes, headers: dict[str, str]) -> int:
                async with http.post(fake.api_base + "/v2/app/end", data=raw, headers=headers) as response:
                    assert response.status == 200
                    return int((await response.json())["code"])

            raw = json.dumps({"game_id": "none", "app_id": APP_ID}).encode()
            good = sign(KEY_ID, KEY_SECRET, raw)
            assert await call(raw, good) == 7000  # signed right: past the check, no such game
            assert await call(raw, good) == 4004  # the same nonce again
            assert await call(raw, sign(KEY_ID, "wrong", raw)) == 4002
            assert await call(raw, sign("other-key", KEY_SECRET, raw)) == 4001
            assert await call(raw + b" ", sign(KEY_ID, KEY_SECRET, raw)) == 4012  # body changed after signing
            assert await call(raw, sign(KEY_ID, KEY_SECRET, raw, timestamp=int(time.time()) - 3600)) == 4003
            tampered = sign(KEY_ID, KEY_SECRET, raw) | {"x-bili-signature-nonce": uuid.uuid4().hex}
            assert await call(raw, tampered) == 4002  # a signed header changed
            unsigned = {k: v for k, v in sign(KEY_ID, KEY_SECRET, raw).items() if k != "Authorization"}
            assert await call(raw, unsigned) == 4000
            # The documented string to sign, by hand: sorted x-bili-* lines.
            headers = sign(KEY_ID, KEY_SECRET, raw, timestamp=1700000000, nonce="42")
            lines = (f"x-bili-accesskeyid:{KEY_ID}\nx-bili-content-md5:{hashlib.md5(raw).hexdigest()}\n"
                     "x-bili-signature-method:HMAC-SHA256\nx-bili-signature-nonce:42\n"
                     "x-bili-signature-version:1.0\nx-bili-timestamp:1700000000")
            assert headers["Authorization"] == hmac.new(KEY_SECRET.encode(), lines.encode(),
                                                        hashlib.sha256).hexdigest()

    run(scenario())


def test_missing_secrets_name_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANCHOR_BILIBILI_CODE_HALL_1")
    with pytest.raises(SourceError, match="ANCHOR_BILIBILI_CODE_HALL_1") as caught:
        BilibiliSource(CHANNEL, BilibiliSettings(name=ROOM, app_id=APP_ID))
    assert CODE not in str(caught.value) and KEY_SECRET not in str(caught.value)


def test_settings_and_registry() -> None:
    assert source_type("bilibili") is BilibiliSource and BilibiliSource.Settings is BilibiliSettings
    settings = BilibiliSettings.model_validate({"platform": "bilibili", "name": ROOM, "app_id": APP_ID})
    assert settings.api_base == "https://live-open.biliapi.com" and not settings.keep_comment_text
    with pytest.raises(ValidationError, match="access_key_secret"):
        BilibiliSettings.model_validate({"platform": "bilibili", "app_id": APP_ID, "access_key_secret": "x"})
    with pytest.raises(ValidationError, match="silence_timeout"):
        BilibiliSettings(app_id=APP_ID, ws_heartbeat_interval=30, silence_timeout=20)
