"""Rendering with real espeak-ng and ffmpeg: loudness, subtitle timing, the cache, a killed render."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anchor.config import load_settings
from anchor.content import load_script
from anchor.program import render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from tests.conftest import Project, ebur128, script_text, speech_segments, srt_cues

# Its tests share one rendered program for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_render")

HYPERTENSION = "health/hypertension.md"


def _vtt_starts(path: Path) -> list[str]:
    return [line.split(" --> ")[0] for line in path.read_text(encoding="utf-8").splitlines() if " --> " in line]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One espeak render of a sample script through the CLI, shared by the checks below."""
    from tests.conftest import SAMPLES

    project = Project(tmp_path_factory.mktemp("render") / "site")
    project.scripts.mkdir(parents=True)
    (project.scripts / "health").mkdir()
    (project.scripts / HYPERTENSION).write_bytes((SAMPLES / HYPERTENSION).read_bytes())
    project.write_config()
    result = project.run("render", HYPERTENSION, "--out", "out")
    assert result.returncode == 0, result.stderr
    return project.root / "out"


def test_render_writes_the_four_files_with_a_truthful_summary(rendered: Path) -> None:
    meta = json.loads((rendered / "program.json").read_text())
    assert meta["engine"] == "espeak" and meta["voice"] == "cmn-latn-pinyin"
    assert meta["fallback_reason"] is None and meta["cache_hit"] is False
    assert meta["audio_sha256"] == hashlib.sha256((rendered / "program.wav").read_bytes()).hexdigest()
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels:format=duration", "-of", "json",
         str(rendered / "program.wav")], capture_output=True, text=True, check=True, timeout=30).stdout)
    assert probe["streams"][0]["sample_rate"] == "48000"
    assert abs(float(probe["format"]["duration"]) - meta["duration_seconds"]) < 0.01
    assert meta["duration_seconds"] > 60  # ~360 characters of Mandarin


def test_loudness_is_on_target_by_ffmpegs_own_meter(rendered: Path) -> None:
    integrated, true_peak = ebur128(rendered / "program.wav")
    assert abs(integrated - -16.0) <= 1.0
    assert true_peak <= -1.5 + 0.1
    meta = json.loads((rendered / "program.json").read_text())
    assert abs(meta["loudness"]["integrated_lufs"] - integrated) <= 0.2


def test_subtitles_are_monotonic_cover_the_audio_and_fit_a_line(rendered: Path) -> None:
    from anchor.speech.sentences import width

    cues = srt_cues(rendered / "program.srt")
    meta = json.loads((rendered / "program.json").read_text())
    assert len(cues) == meta["cues"] > 20
    for (s1, e1, _), (s2, _, _) in zip(cues, cues[1:]):
        assert s1 < e1 <= s2
    assert all(width(text) <= 18 for _, _, text in cues)
    segments = speech_segments(rendered / "program.wav")
    # Every stretch of speech lies under some cue: no words go unsubtitled.
    for start, end in segments:
        middle = (start + end) / 2
        assert any(s - 0.1 <= middle <= e + 0.1 for s, e, _ in cues), (start, end)
    assert cues[0][0] < 0.5 and cues[-1][1] > meta["duration_seconds"] - 1.0
    # WebVTT carries the same cues.
    assert len(_vtt_starts(rendered / "program.vtt")) == len(cues)
    assert (rendered / "program.vtt").read_text(encoding="utf-8").startswith("WEBVTT")


def test_each_cue_lands_within_100ms_of_its_words(rendered: Path) -> None:
    """Cue edges against where sound really starts and stops in the final audio (silencedetect)."""
    cues = srt_cues(rendered / "program.srt")
    segments = speech_segments(rendered / "program.wav", noise_db=-40, min_gap=0.1)
    onsets = [s for s, _ in segments]
    offsets = [e for _, e in segments]
    for start, end, text in cues:
        assert min(abs(start - o) for o in onsets) <= 0.1, (text, start)
        assert min(abs(end - o) for o in offsets) <= 0.1, (text, end)


def test_another_loudness_target_is_honoured(project: Project) -> None:
    project.write_config(extra="[speech.loudness]\ntarget_lufs = -23.0\ntrue_peak_dbtp = -3.0\n")
    project.script("notice.md", script_text("各位观众朋友，大家好。今天下午三点，门诊大厅将举行义诊活动，欢迎前来咨询。"))
    result = project.run("render", "notice.md", "--out", "out")
    assert result.returncode == 0, result.stderr
    integrated, true_peak = ebur128(project.root / "out" / "program.wav")
    assert abs(integrated - -23.0) <= 1.0
    assert true_peak <= -3.0 + 0.1


def test_second_render_is_a_cache_hit_with_identical_audio(project: Project) -> None:
    project.script("a.md", script_text("第一段。\n\n[pause 1s]\n\n第二段，说完了。"))
    first = project.run("render", "a.md", "--out", "one")
    second = project.run("render", "a.md", "--out", "two")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    one = json.loads((project.root / "one" / "program.json").read_text())
    two = json.loads((project.root / "two" / "program.json").read_text())
    assert one["cache_hit"] is False and two["cache_hit"] is True
    assert (project.root / "one" / "program.wav").read_bytes() == (project.root / "two" / "program.wav").read_bytes()
    assert "hit" in second.stdout
    # A change to the words misses; a change to the title alone does not.
    project.script("a.md", script_text("第一段。\n\n[pause 1s]\n\n第二段，说完了。", title="新标题"))
    assert json.loads((project.root / "two" / "program.json").read_text())["cache_hit"]
    project.run("render", "a.md", "--out", "three")
    assert json.loads((project.root / "three" / "program.json").read_text())["cache_hit"] is True
    project.script("a.md", script_text("第一段改了。\n\n[pause 1s]\n\n第二段，说完了。"))
    project.run("render", "a.md", "--out", "four")
    assert json.loads((project.root / "four" / "program.json").read_text())["cache_hit"] is False


def test_cache_hit_in_process_reuses_the_entry(project: Project) -> None:
    project.script("b.md", script_text("缓存测试。"))
    settings = load_settings(project.config)
    script = load_script(project.scripts / "b.md", settings.scripts_dir)
    cache = ProgramCache(settings.cache_dir, 1 << 30)
    chain = EngineChain(settings)
    first = asyncio.run(render_program(script, settings, chain, cache))
    second = asyncio.run(render_program(script, settings, chain, cache))
    assert not first.cache_hit and second.cache_hit
    assert first.directory == second.directory and first.audio_sha256 == second.audio_sha256


def test_pauses_in_the_script_are_in_the_audio(project: Project) -> None:
    project.script("p.md", script_text("前面的话。\n\n[pause 2.5s]\n\n后面的话。"))
    assert project.run("render", "p.md", "--out", "out").returncode == 0
    segments = speech_segments(project.root / "out" / "program.wav", min_gap=0.5)
    gaps = [b[0] - a[1] for a, b in zip(segments, segments[1:])]
    assert any(2.4 <= g <= 2.7 for g in gaps), gaps


def test_a_killed_render_leaves_no_corrupt_entry(samples_project: Project) -> None:
    project = samples_project
    cache_root = project.root / "data" / "cache"
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "anchor", "--config", str(project.config), "render", "--all",
                             "--out", "out"], cwd=project.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill it while it is writing an entry: after the first program lands, during the second.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            staged = list((cache_root / ".staging").glob("*/speech.raw")) if cache_root.exists() else []
            done = list(cache_root.glob("??/*/program.json"))
            if staged and done:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the render never reached its second program")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert list((cache_root / ".staging").iterdir()), "the kill should have left staging debris to sweep"
    for entry in [p for p in cache_root.glob("??/*") if p.is_dir()]:
        meta = json.loads((entry / "program.json").read_text())
        assert meta["audio_sha256"] == hashlib.sha256((entry / "program.wav").read_bytes()).hexdigest()
    # The next run sweeps the debris, serves what landed, and renders the rest.
    result = project.run("render", "--all", "--out", "out")
    assert result.returncode == 0, result.stderr
    assert not [p for p in (cache_root / ".staging").iterdir()]
    entries = [p for p in cache_root.glob("??/*") if p.is_dir()]
    assert len(entries) == 6
    for entry in entries:
        meta = json.loads((entry / "program.json").read_text())
        assert meta["audio_sha256"] == hashlib.sha256((entry / "program.wav").read_bytes()).hexdigest()


def test_cache_evicts_least_recently_used_beyond_its_size(project: Project) -> None:
    settings = load_settings(project.config)
    chain = EngineChain(settings)
    for name, text in (("one.md", "第一条通知。"), ("two.md", "第二条通知。"), ("three.md", "第三条通知。")):
        project.script(name, script_text(text))
    scripts = {n: load_script(project.scripts / n, settings.scripts_dir) for n in ("one.md", "two.md", "three.md")}
    big = ProgramCache(settings.cache_dir, 1 << 30)
    one = asyncio.run(render_program(scripts["one.md"], settings, chain, big))
    two = asyncio.run(render_program(scripts["two.md"], settings, chain, big))
    assert one.directory and two.directory
    os.utime(one.directory, (time.time() - 100, time.time() - 100))
    os.utime(two.directory, (time.time() - 50, time.time() - 50))
    asyncio.run(render_program(scripts["one.md"], settings, chain, big))  # a hit makes "one" recent again
    size = sum(f.stat().st_size for f in one.directory.iterdir())
    small = ProgramCache(settings.cache_dir, int(size * 2.5))
    three = asyncio.run(render_program(scripts["three.md"], settings, chain, small))
    assert one.directory.exists() and three.directory and three.directory.exists()
    assert not two.directory.exists()  # the least recently used went


def test_a_cached_render_with_a_configured_voice_starts_no_espeak(project: Project) -> None:
    """The second render of a script is its cached Program: espeak-ng (whose voice anchor.toml names) is not
    asked for its voice list, a process the cache hit would wait for."""
    calls = project.root / "espeak-calls.log"
    wrapper = project.root / "espeak-logged"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec espeak-ng "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    project.write_config(f'\n[speech.engines.espeak]\nbinary = "{wrapper}"\n')
    project.script("short.md", script_text("请拨打12309。"))
    first = project.run("render", "short.md", "--out", "out")
    assert first.returncode == 0, first.stderr
    calls.write_text("", encoding="utf-8")
    second = project.run("render", "short.md", "--out", "out")
    assert second.returncode == 0, second.stderr
    assert json.loads((project.root / "out" / "program.json").read_text())["cache_hit"] is True
    assert calls.read_text(encoding="utf-8") == ""
