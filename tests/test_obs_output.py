"""The OBS output against a real OBS Studio 29 under Xvfb: idempotent provisioning that leaves everything
else alone, speech in a recording of the program, a moving avatar, live subtitles at cue times, OBS killed
mid-airing and relaunched, and OBS not running at all."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import subprocess
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from anchor.avatar import DEFAULT_AVATAR
from anchor.config import ObsSettings, OutputRef, Settings, load_settings
from anchor.content import load_script
from anchor.outputs import AiredResult, AiringInterrupted, Cue, OutputError, OutputUnavailable, Rung, output_type
from anchor.outputs.obs import ObsOutput, ObsOutputSettings
from anchor.program import Program, render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.speech.subtitles import Caption, parse_srt
from tests.conftest import Project, clock_now, ebur128, script_text, srt_cues
from tests.obs_fixture import SCENE, ObsStudio, free_port

# Its tests share one OBS for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_obs_output")

BODY = "各位观众，大家好。\n\n谢谢收看，再见。"
TITLE = "健康小知识"
CHANNEL = "ward-3"
TEST_OPTIONS: dict[str, Any] = dict(connect_timeout=1.0, ping_interval=0.5, backoff_initial=0.2, backoff_max=1.0)


def run(coro: Awaitable[Any], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@dataclass
class Studio:
    obs: ObsStudio
    settings: Settings
    program: Program

    def output(self, settings: Settings | None = None) -> ObsOutput:
        return ObsOutput.create(settings or self.settings, OutputRef("obs", "studio"), **TEST_OPTIONS)

    def cue(self, ahead: float = 0.0, grace: float = 10.0, channel: str = CHANNEL) -> Cue:
        now = clock_now()
        return Cue(channel, "健康频道", "morning", now + timedelta(seconds=ahead), self.program,
                   deadline=now + timedelta(seconds=ahead + grace))


@pytest.fixture(scope="module")
def studio(obs: ObsStudio, tmp_path_factory: pytest.TempPathFactory) -> Studio:
    project = Project(tmp_path_factory.mktemp("obs-output") / "site")
    project.scripts.mkdir(parents=True)
    project.write_config(f'\n[obs.studio]\nhost = "{obs.host}"\nport = {obs.port}\nrequest_timeout = 2.0\n')
    project.script("notice.md", script_text(BODY, title=TITLE))
    settings = load_settings(project.config)
    script = load_script(project.scripts / "notice.md", settings.scripts_dir)
    program = run(render_program(script, settings, EngineChain(settings),
                                 ProgramCache(settings.cache_dir, 1 << 30)), 120)
    assert len(srt_cues(program.directory / "program.srt")) >= 2, "the test needs at least two subtitle cues"
    return Studio(obs, settings, program)


@pytest.fixture(autouse=True)
def password(obs: ObsStudio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHOR_OBS_PASSWORD_STUDIO", obs.password)


async def snapshot(output: ObsOutput) -> dict[str, Any]:
    call = output.conn.call
    scenes = sorted(s["sceneName"] for s in (await call("GetSceneList"))["scenes"])
    inputs = sorted((i["inputName"], i["inputKind"]) for i in (await call("GetInputList"))["inputs"])
    items = {}
    for scene in scenes:
        listing = (await call("GetSceneItemList", sceneName=scene))["sceneItems"]
        items[scene] = [(i["sourceName"], i["sceneItemId"], i["sceneItemIndex"]) for i in listing]
    return {"scenes": scenes, "inputs": inputs, "items": items}


def gray(png: bytes, crop: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(png)
        f.flush()
        proc = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-i", f.name, "-vf", f"crop={crop}",
                               "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, timeout=30,
                              check=True)
    return np.frombuffer(proc.stdout, dtype=np.uint8).astype(np.int16)


def mouth_box(canvas_w: int, canvas_h: int) -> str:
    """The region where mouth_closed and mouth_open differ, placed like the clip (fit, centred, bottom)."""
    closed = gray((DEFAULT_AVATAR / "mouth_closed.png").read_bytes(), "iw:ih:0:0").reshape(480, 480)
    opened = gray((DEFAULT_AVATAR / "mouth_open.png").read_bytes(), "iw:ih:0:0").reshape(480, 480)
    ys, xs = np.nonzero(np.abs(closed - opened) > 20)
    scale = min(canvas_w / 480, canvas_h / 480)
    x0, y0 = (canvas_w - 480 * scale) / 2, canvas_h - 480 * scale
    left, top = int(x0 + xs.min() * scale), int(y0 + ys.min() * scale)
    w, h = int((xs.max() - xs.min()) * scale) + 2, int((ys.max() - ys.min()) * scale) + 2
    return f"{w}:{h}:{left}:{top}"


# -- settings -------------------------------------------------------------------------------------------


def test_settings_refuse_a_password_and_create_needs_the_obs_table(studio: Studio) -> None:
    assert output_type("obs") is ObsOutput
    with pytest.raises(ValidationError, match="ANCHOR_OBS_PASSWORD_"):
        ObsOutputSettings.model_validate({"password": "secret"})
    with pytest.raises(OutputError, match=r"no \[obs.elsewhere\] table"):
        ObsOutput.create(studio.settings, OutputRef("obs", "elsewhere"))
    assert parse_srt("1\n00:00:01,500 --> 00:00:02,000\n你好\n\n2\n00:00:02,100 --> 00:00:03,000\n再见\n") == [
        Caption(1.5, 2.0, "你好"), Caption(2.1, 3.0, "再见")]


# -- (a) provisioning -------------------------------------------------------------------------------------


def test_provisioning_is_idempotent_and_touches_nothing_else(studio: Studio) -> None:
    async def scenario() -> None:
        output = studio.output()
        try:
            await output.conn.start()
            await output.conn.wait_connected(10)
            await output.conn.call("CreateInput", sceneName=SCENE, inputName="Someone's colour",
                                          inputKind="color_source_v3", inputSettings={"color": 0xFF00FF00})
            before = await snapshot(output)
            scene = await output.provision(studio.cue())
            first = await snapshot(output)
            assert await output.provision(studio.cue()) == scene
            second = await snapshot(output)
            assert first == second
            assert scene == f"anchor·{CHANNEL}"
            prefix = f"anchor·{CHANNEL}·"
            assert [name for name, _, _ in first["items"][scene]] == [
                prefix + role for role in ("background", "idle", "program", "band", "name", "title", "subtitle")]
            # Everything that was there is still there, the same.
            assert set(before["scenes"]) <= set(first["scenes"])
            assert set(before["inputs"]) <= set(first["inputs"])
            assert first["items"][SCENE] == before["items"][SCENE]
            assert {name for name, _ in first["inputs"]} - {name for name, _ in before["inputs"]} == {
                prefix + role for role in ("background", "idle", "program", "band", "name", "title", "subtitle")}
            settings = await output.conn.call("GetInputSettings", inputName="Someone's colour")
            assert settings["inputSettings"]["color"] == 0xFF00FF00
            await output.conn.call("RemoveInput", inputName="Someone's colour")
        finally:
            await output.close()

    run(scenario())


# -- (b) + (c) airing -------------------------------------------------------------------------------------


def test_air_records_speech_the_avatar_moves_and_subtitles_follow_the_cues(studio: Studio) -> None:
    cues = srt_cues(studio.program.directory / "program.srt")
    texts = [text for _, _, text in cues]
    box = mouth_box(studio.obs.width, studio.obs.height)

    async def scenario() -> dict[str, Any]:
        output = studio.output()
        try:
            cue = studio.cue(ahead=1.0)
            await asyncio.wait_for(output.prepare(cue), 120)
            await output.conn.wait_connected(10)
            await output.conn.call("StartRecord")
            await asyncio.sleep(0.5)
            began = time.monotonic()
            airing = asyncio.create_task(output.air(cue))
            seen: list[str] = []
            shots: list[bytes] = []
            subtitle = f"anchor·{CHANNEL}·subtitle"
            scene = f"anchor·{CHANNEL}"
            last_shot = 0.0
            while not airing.done():
                text = (await output.conn.call("GetInputSettings", inputName=subtitle))["inputSettings"].get("text")
                if text and (not seen or seen[-1] != text):
                    seen.append(text)
                if text and len(shots) < 16 and time.monotonic() - last_shot > 0.12:
                    last_shot = time.monotonic()
                    image = (await output.conn.call("GetSourceScreenshot", sourceName=scene,
                                                    imageFormat="png"))["imageData"]
                    shots.append(base64.b64decode(image.split(",", 1)[1]))
                await asyncio.sleep(0.04)
            result = await airing
            took = time.monotonic() - began
            await asyncio.sleep(0.5)
            stopped = await output.conn.call("StopRecord")
            after = {}
            for role in ("idle", "program"):
                items = (await output.conn.call("GetSceneItemList", sceneName=scene))["sceneItems"]
                after[role] = [i["sceneItemEnabled"] for i in items if i["sourceName"] == f"{scene}·{role}"]
            after["subtitle"] = (await output.conn.call("GetInputSettings", inputName=subtitle))["inputSettings"].get("text")
            for role in ("title", "name"):
                settings = await output.conn.call("GetInputSettings", inputName=f"{scene}·{role}")
                after[role] = settings["inputSettings"].get("text")
            after["program scene"] = (await output.conn.call("GetCurrentProgramScene"))["currentProgramSceneName"]
            return dict(result=result, took=took, seen=seen, shots=shots, recording=stopped.get("outputPath"),
                        lateness=output.last_start_lateness, after=after)
        finally:
            await output.close()

    out = run(scenario(), 90)
    result = out["result"]
    print(f"\nstarted-event lateness vs RESTART call: {out['lateness'] * 1000:.1f} ms; airing took {out['took']:.2f} s "
          f"for {studio.program.duration_seconds:.2f} s of program")
    assert result.detail == {"obs": "studio", "scene": f"anchor·{CHANNEL}"}
    length = (result.ended_at - result.started_at).total_seconds()
    assert studio.program.duration_seconds - 0.3 < length < studio.program.duration_seconds + 1.5
    assert out["lateness"] is not None and out["lateness"] < 1.0
    assert result.rung is Rung.CLIP and result.dead_air_seconds == 0  # speech: OBS's meters heard it

    # (c) the subtitle source showed the SRT lines, in order, at least two of them.
    shown = [text for text in out["seen"] if text in texts]
    assert len(shown) >= 2, out["seen"]
    assert shown == [t for t in texts if t in shown], (shown, texts)

    # (b) the recording holds speech.
    recording = Path(out["recording"] or max(studio.obs.recordings_dir.iterdir(), key=lambda p: p.stat().st_mtime))
    assert recording.is_file()
    integrated, _ = ebur128(recording)
    assert integrated > -45, f"recording {recording} integrated loudness {integrated} LUFS: no speech"

    # (b) the avatar's mouth moves between screenshots taken while it speaks.
    assert len(out["shots"]) >= 4
    crops = [gray(png, box) for png in out["shots"]]
    differences = [float(np.abs(a - b).mean()) for a in crops for b in crops]
    print(f"mouth region {box}: largest mean difference between {len(crops)} screenshots {max(differences):.1f}")
    assert max(differences) > 3.0, f"the mouth region did not change: {max(differences):.2f}"

    # Back to idle afterwards: idle shown, program hidden, subtitles cleared, the lower third kept.
    assert out["after"] == {"idle": [True], "program": [False], "subtitle": "", "title": TITLE, "name": "健康频道",
                            "program scene": f"anchor·{CHANNEL}"}


# -- dead air, from OBS's own volume meters ----------------------------------------------------------------


def _silent_program(studio: Studio, seconds: float) -> Program:
    """A Program whose audio is silence (a broken TTS answer, a muted render): what dead air looks like."""
    directory = Path(tempfile.mkdtemp(prefix="silent-", dir=studio.settings.data_dir))
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"anullsrc=r=48000:cl=mono", "-t", str(seconds),
                    "-c:a", "pcm_s16le", str(directory / "program.wav")], check=True, timeout=30)
    (directory / "program.srt").write_text("", encoding="utf-8")
    program = studio.program.model_copy(update={"key": "0" * 48 + directory.name[-16:].encode().hex()[:16],
                                                "duration_seconds": seconds, "directory": directory})
    (directory / "program.json").write_text(program.to_json(), encoding="utf-8")
    return program


def test_dead_air_is_counted_from_obs_meters_when_silent_or_muted(studio: Studio) -> None:
    """A silent program counts its length; a speaking one whose source is muted in OBS counts too."""
    silent = _silent_program(studio, 9.0)

    # A bound shorter than the 5.5 s program, so a muted one is dead air beyond doubt.
    settings = studio.settings.model_copy(update={"outputs": {"obs": {"dead_air_seconds": 3.0}}})

    async def scenario() -> tuple[AiredResult, AiredResult]:
        output = studio.output(settings)
        try:
            quiet = studio.cue(ahead=1.0)
            quiet = dataclasses.replace(quiet, program=silent)
            await asyncio.wait_for(output.prepare(quiet), 120)
            first = await output.air(quiet)
            loud = studio.cue(ahead=1.0)
            await asyncio.wait_for(output.prepare(loud), 120)
            source = f"anchor·{CHANNEL}·program"
            await output.conn.call("SetInputMute", inputName=source, inputMuted=True)
            try:
                second = await output.air(loud)
            finally:
                await output.conn.call("SetInputMute", inputName=source, inputMuted=False)
            return first, second
        finally:
            await output.close()

    first, second = run(scenario(), 120)
    print(f"\ndead air: silent program {first.dead_air_seconds:.2f} s of 9.0; muted source "
          f"{second.dead_air_seconds:.2f} s of {studio.program.duration_seconds:.2f}")
    assert 9.0 - 1.5 <= first.dead_air_seconds <= 9.0 + 1.5
    assert second.dead_air_seconds >= studio.program.duration_seconds - 1.5
    for result, length in ((first, 9.0), (second, studio.program.duration_seconds)):  # each aired whole
        assert (result.ended_at - result.started_at).total_seconds() >= length - 0.3, result


# -- (d) OBS killed mid-airing --------------------------------------------------------------------------


def test_obs_killed_midway_interrupts_and_the_next_airing_works(studio: Studio) -> None:
    async def scenario() -> tuple[float, float, Any]:
        output = studio.output()
        try:
            cue = studio.cue()
            await output.prepare(cue)
            airing = asyncio.create_task(output.air(cue))
            subtitle = f"anchor·{CHANNEL}·subtitle"
            deadline = time.monotonic() + 10
            while not (await output.conn.call("GetInputSettings", inputName=subtitle))["inputSettings"].get("text"):
                assert time.monotonic() < deadline and not airing.done(), "the airing never showed a subtitle"
                await asyncio.sleep(0.05)
            killed = time.monotonic()
            await asyncio.to_thread(studio.obs.kill)
            with pytest.raises(AiringInterrupted):
                await asyncio.wait_for(airing, 10)
            noticed = time.monotonic() - killed
            await asyncio.to_thread(studio.obs.start)
            relaunched = time.monotonic()
            result = await asyncio.wait_for(output.air(studio.cue(grace=15)), 30)
            return noticed, time.monotonic() - relaunched, result
        finally:
            await output.close()

    noticed, second, result = run(scenario(), 90)
    print(f"\ninterruption noticed {noticed:.2f} s after SIGKILL; next airing done {second:.2f} s after relaunch")
    assert noticed < 3.0
    assert result.detail["scene"] == f"anchor·{CHANNEL}"
    assert (result.ended_at - result.started_at).total_seconds() > studio.program.duration_seconds - 0.3


# -- (e) OBS not running ----------------------------------------------------------------------------------


def test_obs_not_running_is_unavailable_by_the_deadline(studio: Studio) -> None:
    nowhere = studio.settings.model_copy(update={"obs": {"studio": ObsSettings(host="127.0.0.1", port=free_port())}})

    async def scenario() -> float:
        output = ObsOutput.create(nowhere, OutputRef("obs", "studio"), **TEST_OPTIONS)
        try:
            began = time.monotonic()
            with pytest.raises(OutputUnavailable, match="not connected"):
                await output.air(studio.cue(grace=2.0))
            return time.monotonic() - began
        finally:
            await output.close()

    took = run(scenario(), 30)
    assert 1.5 < took < 3.0, took
