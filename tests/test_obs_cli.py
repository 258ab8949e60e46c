"""`anchor obs setup` / `anchor obs status` and the anchor_obs_* metrics, against a real OBS Studio 29 under Xvfb."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from anchor.config import OutputRef, load_settings
from anchor.outputs.obs import ObsOutput
from anchor.outputs.obs.connection import ObsConnection
from anchor.outputs.obs.scene import scene_name
from tests.conftest import Project, no_traceback, script_text
from tests.obs_fixture import ObsStudio

# Its tests share one OBS for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_obs_cli")

CHANNEL = "ward-3"
SCENE = scene_name(CHANNEL)
COMMAND_TIMEOUT = 60  # the commands bound themselves to a few seconds; this only catches a hang


def run(coro: Awaitable[Any], timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def site(obs: ObsStudio, project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("ANCHOR_OBS_PASSWORD_STUDIO", obs.password)
    project.write_config(f'\n[obs.studio]\nhost = "{obs.host}"\nport = {obs.port}\nrequest_timeout = 2.0\n')
    project.script("short.md", script_text("各位观众，大家好。"))
    schedules = project.root / "schedules"
    schedules.mkdir()
    (schedules / f"{CHANNEL}.toml").write_text(
        f'[channel]\nid = "{CHANNEL}"\nname = "病区三"\ntimezone = "Asia/Shanghai"\noutput = "obs:studio"\n\n'
        '[[slot]]\nname = "morning"\ncron = "0 9 * * *"\nscript = "short.md"\n', encoding="utf-8")
    return project


async def _scenes(obs: ObsStudio) -> set[str]:
    conn = ObsConnection("check", obs.host, obs.port, obs.password, connect_timeout=2.0)
    await conn.start()
    try:
        await conn.wait_connected(10)
        return {s["sceneName"] for s in (await conn.call("GetSceneList"))["scenes"]}
    finally:
        await conn.close()


def test_setup_creates_the_scene_then_finds_it_there(site: Project, obs: ObsStudio) -> None:
    started = time.monotonic()
    first = site.run("obs", "setup", timeout=COMMAND_TIMEOUT)
    no_traceback(first)
    assert first.returncode == 0, first.stderr + first.stdout
    assert SCENE in first.stdout and "created" in first.stdout
    assert SCENE in run(_scenes(obs))
    second = site.run("obs", "setup", "--channel", CHANNEL, timeout=COMMAND_TIMEOUT)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "already there" in second.stdout and "created" not in second.stdout
    assert time.monotonic() - started < 40


def test_status_shows_versions_scene_and_stats(site: Project, obs: ObsStudio) -> None:
    assert site.run("obs", "setup", timeout=COMMAND_TIMEOUT).returncode == 0
    result = site.run("obs", "status", timeout=COMMAND_TIMEOUT)
    no_traceback(result)
    assert result.returncode == 0, result.stderr + result.stdout
    text = result.stdout
    assert "connected" in text and "OBS version" in text and "29." in text
    assert SCENE in text and "on program: no" in text
    assert "stream" in text and "record" in text and "fps" in text and "skipped frames" in text
    one = site.run("obs", "status", "--channel", CHANNEL, timeout=COMMAND_TIMEOUT)
    assert one.returncode == 0 and SCENE in one.stdout
    unknown = site.run("obs", "status", "--channel", "nope", timeout=COMMAND_TIMEOUT)
    assert unknown.returncode == 2 and "no channel with id 'nope'" in unknown.stderr


def test_unreachable_obs_exits_1_with_the_reason(site: Project, obs: ObsStudio) -> None:
    obs.stop()
    try:
        for command in ("status", "setup"):
            started = time.monotonic()
            result = site.run("obs", command, timeout=COMMAND_TIMEOUT)
            elapsed = time.monotonic() - started
            no_traceback(result)
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            assert "OBS 'studio'" in result.stderr and "connection refused" in result.stderr, result.stderr
            # A refusal is an answer: no waiting out the 5 s connect wait (start-up alone is ~1 s).
            assert elapsed < 4, elapsed
    finally:
        obs.start()


def test_wrong_password_is_reported(site: Project, obs: ObsStudio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHOR_OBS_PASSWORD_STUDIO", "wrong")
    result = site.run("obs", "status", timeout=COMMAND_TIMEOUT)
    no_traceback(result)
    assert result.returncode == 1 and "password" in result.stderr, result.stderr


def test_poller_feeds_metrics_that_promtool_accepts(site: Project, obs: ObsStudio) -> None:
    settings = load_settings(site.config)

    async def scenario() -> bool:
        output = ObsOutput.create(settings, OutputRef("obs", "studio"), connect_timeout=2.0)
        try:
            await output.start()  # the poller starts with the connection
            assert output.stats._task is not None
            await output.conn.wait_connected(10)
            polled = await output.stats.poll()
            await output.setup(CHANNEL, None, 5)  # registers the channel → anchor_channel_obs_info
            return polled
        finally:
            await output.close()
            assert output.stats._task is None

    polled = run(scenario())
    assert polled
    metrics = generate_latest().decode()
    # close() sets it back to 0; the value while connected was 1: check the poll's own figures.
    assert 'anchor_obs_active_fps{obs="studio"}' in metrics
    assert 'anchor_obs_render_skipped_frames{obs="studio"}' in metrics
    assert 'anchor_obs_stream_active{obs="studio"} 0.0' in metrics
    assert 'anchor_obs_reconnects_total{obs="studio"}' in metrics
    assert 'anchor_obs_request_seconds_count{obs="studio"}' in metrics
    assert f'anchor_channel_obs_info{{channel="{CHANNEL}",obs="studio"}} 1.0' in metrics
    lint = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr


def test_connected_gauge_is_1_while_connected(site: Project, obs: ObsStudio) -> None:
    settings = load_settings(site.config)

    async def scenario() -> tuple[str, float | None]:
        output = ObsOutput.create(settings, OutputRef("obs", "studio"), connect_timeout=2.0)
        try:
            await output.start()
            await output.conn.wait_connected(10)
            # OBS averages activeFps over its last second: a freshly started OBS reports 0 at first.
            deadline = time.monotonic() + 15
            while True:
                assert await output.stats.poll()
                fps = REGISTRY.get_sample_value("anchor_obs_active_fps", {"obs": "studio"})
                if (fps or 0) > 0 or time.monotonic() > deadline:
                    return generate_latest().decode(), fps
                await asyncio.sleep(0.5)
        finally:
            await output.close()

    metrics, fps = run(scenario())
    assert 'anchor_obs_connected{obs="studio"} 1.0' in metrics
    assert fps is not None and fps > 0, fps
    assert 'anchor_obs_connected{obs="studio"} 0.0' in generate_latest().decode()  # after close()
