"""ObsConnection against a real OBS Studio 29 under Xvfb: version, failures, events, and the faults a 24/7
daemon meets (OBS not started yet, wrong password, OBS killed idle or mid-request, OBS frozen)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor.credentials import env_name, find_secret
from anchor.outputs.obs.connection import ObsConnection, backoff_delays
from anchor.outputs.obs.settings import PASSWORD
from anchor.outputs.obs.errors import ObsRequestError, ObsUnavailable
from tests.obs_fixture import ObsStudio, require_obs

# Its tests share one OBS for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_obs_connection")

LOGGER = "anchor.outputs.obs.connection"


def run(coro: Awaitable[Any], timeout: float = 60) -> Any:
    """Every test's async part is bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for `condition`; returns how long it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


class Ticker:
    """Measures event-loop responsiveness: the largest gap between 10 ms ticks."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.max_gap = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.period)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def connection(obs: ObsStudio, password: str | None = None, **options: Any) -> ObsConnection:
    """Short timeouts and backoff so faults and recoveries fit in a test."""
    settings: dict[str, Any] = dict(request_timeout=1.0, connect_timeout=1.0, ping_interval=0.5,
                                    backoff_initial=0.2, backoff_max=1.0)
    settings.update(options)
    return ObsConnection("studio", obs.host, obs.port, obs.password if password is None else password, **settings)


def receivers(port: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"obs-recv-127.0.0.1:{port}" and t.is_alive()]


class HookCounter:
    def __init__(self) -> None:
        self.calls = 0
        self.scenes: list[str] = []

    async def __call__(self, conn: ObsConnection) -> None:
        self.calls += 1  # what the OBS output does here: re-provision its scene
        self.scenes.append((await conn.call("GetCurrentProgramScene"))["currentProgramSceneName"])


@pytest.fixture
def obs_not_started() -> Iterator[ObsStudio]:
    require_obs()
    studio = ObsStudio()
    try:
        yield studio
    finally:
        studio.close()


# -- a healthy OBS -----------------------------------------------------------------------------------

def test_connects_and_reads_version(obs: ObsStudio, monkeypatch: pytest.MonkeyPatch) -> None:
    # websocket-client would send ws:// through $http_proxy; a dead proxy must not matter.
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    async def scenario() -> None:
        conn = connection(obs)
        hook = HookCounter()
        conn.on_connected.append(hook)
        assert not conn.connected
        await conn.start()
        try:
            await conn.wait_connected(10)
            assert conn.connected and conn.ready
            version = await conn.call("GetVersion")
            assert version["obsVersion"].startswith("29."), version["obsVersion"]
            assert version["obsWebSocketVersion"].startswith("5."), version["obsWebSocketVersion"]
            assert version["rpcVersion"] == 1
            assert conn.obs_version == version["obsVersion"]
            assert conn.websocket_version == version["obsWebSocketVersion"]
            assert hook.calls == 1 and hook.scenes == ["Main"]
            assert conn.reconnects == 0 and conn.attempts == 1
            await until(lambda: conn.ping_rtt is not None, 3, "pinged")
            assert len(receivers(obs.port)) == 1
        finally:
            await conn.close()
        assert not conn.connected
        with pytest.raises(ObsUnavailable):
            await conn.call("GetVersion")
        await until(lambda: not receivers(obs.port), 3, "receive thread ended")

    run(scenario())


def test_failed_request_raises_naming_it(obs: ObsStudio) -> None:
    async def scenario() -> None:
        conn = connection(obs)
        await conn.start()
        try:
            await conn.wait_connected(10)
            with pytest.raises(ObsRequestError) as missing:
                await conn.call("GetInputSettings", inputName="no such input")
            error = missing.value
            assert error.request == "GetInputSettings" and error.data == {"inputName": "no such input"}
            assert error.code == 600  # ResourceNotFound: obsws drops it, our receive thread keeps it
            assert "GetInputSettings" in str(error) and "ResourceNotFound" in str(error)
            assert "no such input" in (error.comment or "")

            with pytest.raises(ObsRequestError) as unknown:
                await conn.call("NoSuchRequest")
            assert unknown.value.code == 204 and "NoSuchRequest" in str(unknown.value)

            with pytest.raises(ObsRequestError) as bad_field:
                await conn.call("SetCurrentProgramScene")  # sceneName missing
            assert bad_field.value.code == 300

            assert conn.connected  # a refused request is not a broken connection
            assert (await conn.call("GetCurrentProgramScene"))["currentProgramSceneName"]
        finally:
            await conn.close()

    run(scenario())


def test_events_reach_the_loop(obs: ObsStudio) -> None:
    async def scenario() -> None:
        conn = connection(obs)
        created: list[dict[str, Any]] = []

        async def on_input_created(data: dict[str, Any]) -> None:
            # Runs on the event loop, so it may call OBS (on obsws's receive thread this would hang).
            settings = await conn.call("GetInputSettings", inputName=data["inputName"])
            created.append({**data, "settings": settings["inputSettings"]})

        unsubscribe = conn.subscribe("InputCreated", on_input_created)
        await conn.start()
        try:
            await conn.wait_connected(10)
            scenes = [s["sceneName"] for s in (await conn.call("GetSceneList"))["scenes"]]
            if "Second" not in scenes:
                await conn.call("CreateScene", sceneName="Second")
            changed = conn.next_event("CurrentProgramSceneChanged", lambda d: d["sceneName"] == "Second", 5)
            await conn.call("SetCurrentProgramScene", sceneName="Second")
            assert (await changed) == {"sceneName": "Second"}

            await conn.call("CreateInput", sceneName="Second", inputName="Backdrop", inputKind="color_source_v3",
                            inputSettings={"color": 4278190335}, sceneItemEnabled=True)
            await until(lambda: bool(created), 5, "InputCreated handled")
            assert created[0]["inputName"] == "Backdrop" and created[0]["inputKind"] == "color_source_v3"
            assert created[0]["settings"]["color"] == 4278190335

            started = time.monotonic()
            with pytest.raises(TimeoutError, match="NoSuchEvent"):
                await conn.next_event("NoSuchEvent", timeout=0.2)
            assert time.monotonic() - started < 5  # its own timeout, not forever

            unsubscribe()
            await conn.call("RemoveInput", inputName="Backdrop")
            back = conn.next_event("CurrentProgramSceneChanged", timeout=5)
            await conn.call("SetCurrentProgramScene", sceneName="Main")
            assert (await back)["sceneName"] == "Main"
        finally:
            await conn.close()

    run(scenario())


# -- faults ----------------------------------------------------------------------------------------

def test_obs_not_running_at_start_then_launched(obs_not_started: ObsStudio,
                                                caplog: pytest.LogCaptureFixture) -> None:
    obs = obs_not_started
    caplog.set_level(logging.DEBUG, LOGGER)

    async def scenario() -> None:
        conn = connection(obs)
        hook = HookCounter()
        conn.on_connected.append(hook)
        async with Ticker() as ticker:
            await conn.start()
            try:
                started = time.monotonic()
                with pytest.raises(ObsUnavailable, match="GetVersion"):
                    await conn.call("GetVersion")
                assert time.monotonic() - started < 1.0  # not connected: at once, not after a connect timeout
                await until(lambda: conn.attempts >= 3, 5, "retried")
                assert "refused" in (conn.last_error or "")
                with pytest.raises(ObsUnavailable, match="refused"):
                    await conn.call("GetSceneList")
                with pytest.raises(ObsUnavailable, match="not connected within"):
                    await conn.wait_connected(0.1)

                await asyncio.to_thread(obs.start)
                await conn.wait_connected(10)
                assert (await conn.call("GetVersion"))["obsVersion"].startswith("29.")
                assert hook.calls == 1 and conn.reconnects == 0
            finally:
                await conn.close()
        assert ticker.max_gap < 0.5, ticker.max_gap  # a blocked loop would stall for the whole timeout
        refused = [r for r in caplog.records if r.levelno >= logging.WARNING and "refused" in r.getMessage()]
        assert len(refused) == 1, [r.getMessage() for r in refused]  # once per distinct error

    run(scenario())


def test_wrong_password(caplog: pytest.LogCaptureFixture) -> None:
    require_obs()
    caplog.set_level(logging.DEBUG, LOGGER)
    with ObsStudio(password="the-right-one") as obs:
        async def scenario() -> None:
            wrong = connection(obs, password="a-wrong-one", backoff_initial=0.1, backoff_max=0.4)
            missing = ObsConnection("no-secret", obs.host, obs.port, None, request_timeout=1.0,
                                    connect_timeout=1.0, backoff_initial=0.1, backoff_max=0.4)
            async with Ticker() as ticker:
                await wrong.start()
                await missing.start()
                try:
                    await until(lambda: wrong.attempts >= 4 and missing.attempts >= 2, 10, "retried")
                    assert not wrong.connected and not missing.connected
                    assert "refused the password" in (wrong.last_error or "")
                    assert "ANCHOR_OBS_PASSWORD_STUDIO" in (wrong.last_error or "")
                    assert "none is configured" in (missing.last_error or "")
                    assert "ANCHOR_OBS_PASSWORD_NO_SECRET" in (missing.last_error or "")
                    with pytest.raises(ObsUnavailable, match="password"):
                        await wrong.call("GetVersion")

                    # The operator fixes OBS's side: it now has the password the daemon was given.
                    obs.password = "a-wrong-one"
                    await asyncio.to_thread(obs.restart)
                    await wrong.wait_connected(10)
                    assert (await wrong.call("GetVersion"))["obsWebSocketVersion"].startswith("5.")
                finally:
                    await wrong.close()
                    await missing.close()
            assert ticker.max_gap < 0.5, ticker.max_gap  # a blocked loop would stall for the whole timeout

        run(scenario())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([e for e in errors if "refused the password" in e]) == 1, errors
    assert len([e for e in errors if "none is configured" in e]) == 1, errors
    assert "a-wrong-one" not in caplog.text and "the-right-one" not in caplog.text  # secrets stay out of logs


def test_obs_killed_while_idle(own_obs: ObsStudio, caplog: pytest.LogCaptureFixture) -> None:
    obs = own_obs
    caplog.set_level(logging.INFO, LOGGER)

    async def scenario() -> None:
        conn = connection(obs, ping_interval=5.0)  # detection must not depend on the ping
        hook = HookCounter()
        conn.on_connected.append(hook)
        async with Ticker() as ticker:
            await conn.start()
            try:
                await conn.wait_connected(10)
                obs.kill()
                detected = await until(lambda: not conn.connected, 1.0, "noticed the kill")
                with pytest.raises(ObsUnavailable):
                    await conn.call("GetVersion")

                await asyncio.to_thread(obs.start)
                await conn.wait_connected(10)
                assert (await conn.call("GetVersion"))["obsVersion"].startswith("29.")
                assert hook.calls == 2 and hook.scenes == ["Main", "Main"]
                assert conn.reconnects == 1
                await until(lambda: len(receivers(obs.port)) == 1, 3, "old receive thread ended")
            finally:
                await conn.close()
        assert detected < 3, detected  # seconds, not the library's 60 s
        assert ticker.max_gap < 0.5, ticker.max_gap  # a blocked loop would stall for the whole timeout
        assert any("connection lost" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

    run(scenario())


def test_obs_killed_with_a_request_in_flight(own_obs: ObsStudio) -> None:
    obs = own_obs

    async def scenario() -> None:
        # A long request timeout: the in-flight call must fail because the connection broke, not time out.
        conn = connection(obs, request_timeout=8.0, ping_interval=30.0)
        hook = HookCounter()
        conn.on_connected.append(hook)
        async with Ticker() as ticker:
            await conn.start()
            try:
                await conn.wait_connected(10)
                obs.freeze()  # the request reaches OBS's socket but is never answered …
                in_flight = asyncio.create_task(conn.call("GetSceneList"))
                await asyncio.sleep(0.3)
                assert not in_flight.done()
                killed = time.monotonic()
                obs.kill()  # … then OBS dies with it unread: a reset, which kills obsws's receive thread
                with pytest.raises(ObsUnavailable, match="GetSceneList"):
                    await in_flight
                failed_after = time.monotonic() - killed
                assert not conn.connected

                await asyncio.to_thread(obs.start)
                await conn.wait_connected(10)
                assert "scenes" in await conn.call("GetSceneList")
                assert hook.calls == 2 and conn.reconnects == 1
            finally:
                await conn.close()
        assert failed_after < 3, failed_after  # not the whole 8 s request timeout
        assert ticker.max_gap < 0.5, ticker.max_gap  # a blocked loop would stall for the whole timeout

    run(scenario())


def test_obs_frozen_then_thawed(own_obs: ObsStudio, caplog: pytest.LogCaptureFixture) -> None:
    obs = own_obs
    caplog.set_level(logging.INFO, LOGGER)

    async def scenario() -> None:
        conn = connection(obs)  # request timeout 1 s, ping every 0.5 s
        hook = HookCounter()
        conn.on_connected.append(hook)
        async with Ticker() as ticker:
            await conn.start()
            try:
                await conn.wait_connected(10)
                obs.freeze()
                started = time.monotonic()
                with pytest.raises(ObsUnavailable, match="GetVersion|not connected"):
                    await conn.call("GetVersion")
                assert time.monotonic() - started < 3  # the 1 s timeout, not the library's 60 s
                assert not conn.connected  # marked down …
                started = time.monotonic()
                with pytest.raises(ObsUnavailable):
                    await conn.call("GetSceneList")
                assert time.monotonic() - started < 0.5  # … so later calls fail at once, no new timeout
                attempts = conn.attempts
                await asyncio.sleep(2.5)  # connection attempts time out against the frozen process
                assert not conn.connected and conn.attempts > attempts

                obs.thaw()
                await conn.wait_connected(10)
                assert (await conn.call("GetVersion"))["obsVersion"].startswith("29.")
                assert hook.calls == 2 and conn.reconnects == 1

                # Idle: nobody calls, the ping (every 0.5 s, 1 s timeout) notices the freeze by itself.
                obs.freeze()
                detected = await until(lambda: not conn.connected, 3.0, "noticed the idle freeze")
                obs.thaw()
                await conn.wait_connected(10)
                assert hook.calls == 3 and conn.reconnects == 2
            finally:
                await conn.close()
        assert detected < 5, detected  # the ping notices, well before a request would
        assert ticker.max_gap < 0.5, ticker.max_gap  # a blocked loop would stall for the whole timeout
        assert ticker.ticks > 100

    run(scenario())


def test_close_while_connecting_to_a_frozen_obs(own_obs: ObsStudio) -> None:
    obs = own_obs

    async def scenario() -> None:
        obs.freeze()
        conn = connection(obs, connect_timeout=5.0)
        await conn.start()
        await asyncio.sleep(0.3)  # the handshake waits on the frozen process
        started = time.monotonic()
        await conn.close()
        assert time.monotonic() - started < 3  # not stuck behind the frozen handshake
        obs.thaw()  # OBS now answers the abandoned handshake: the client must not come alive
        await asyncio.sleep(0.5)
        assert conn.attempts == 1 and not conn.connected and not receivers(obs.port)

    run(scenario())


# -- secrets and backoff -------------------------------------------------------------------------------

def test_password_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert env_name(PASSWORD, "studio-2.main") == "ANCHOR_OBS_PASSWORD_STUDIO_2_MAIN"
    monkeypatch.delenv("ANCHOR_OBS_PASSWORD_STUDIO_2_MAIN", raising=False)
    assert find_secret(PASSWORD, "studio-2.main") is None
    monkeypatch.setenv("ANCHOR_OBS_PASSWORD_STUDIO_2_MAIN", "s3cret with spaces ")
    assert find_secret(PASSWORD, "studio-2.main") == "s3cret with spaces "
    # The environment wins over a credentials file.
    (tmp_path / "obs-password-studio-2.main").write_text("from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert find_secret(PASSWORD, "studio-2.main") == "s3cret with spaces "
    monkeypatch.setenv("ANCHOR_OBS_PASSWORD_STUDIO_2_MAIN", "")  # empty counts as not set
    assert find_secret(PASSWORD, "studio-2.main") == "from-file"


def test_password_from_credentials_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ANCHOR_OBS_PASSWORD_HALL", "ANCHOR_OBS_PASSWORD_LOBBY", "ANCHOR_OBS_PASSWORD____X"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # systemd LoadCredential=
    assert find_secret(PASSWORD, "hall") is None
    (tmp_path / "obs-password").write_text("shared\n")
    (tmp_path / "obs-password-hall").write_text("hall-secret\r\n")
    assert find_secret(PASSWORD, "hall") == "hall-secret"
    assert find_secret(PASSWORD, "lobby") == "shared"  # the plain file is the fallback
    assert find_secret(PASSWORD, "../x") == "shared"  # a name never becomes a path
    (tmp_path / "obs-password-lobby").write_text("")
    assert find_secret(PASSWORD, "lobby") == "shared"  # empty counts as absent


# -- backoff ---------------------------------------------------------------------------------------

def test_backoff_is_exponential_and_capped() -> None:
    delays = backoff_delays(0.5, 10.0)
    assert [next(delays) for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_secrets_from_the_units_folder_load_carry_its_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """systemd/anchor.service loads /etc/anchor/credentials whole (LoadCredential=anchor:<folder>): systemd
    names each file anchor_<file>. A site without OBS has no obs-password there, and nothing fails."""
    for name in ("ANCHOR_OBS_PASSWORD_HALL", "ANCHOR_OBS_PASSWORD_LOBBY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert find_secret(PASSWORD, "hall") is None
    (tmp_path / "anchor_obs-password").write_text("shared\n")
    (tmp_path / "anchor_obs-password-hall").write_text("hall-secret\n")
    assert find_secret(PASSWORD, "hall") == "hall-secret"
    assert find_secret(PASSWORD, "lobby") == "shared"
