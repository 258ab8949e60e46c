"""The file output with real espeak-ng, ffmpeg and ffprobe: the clip, burned-in subtitles, the cache,
the dated as-run files, an interrupted airing, and bad settings."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import anchor.outputs.file as file_output
from anchor.avatar import DEFAULT_AVATAR
from anchor.avatar.clip import ClipError
from anchor.config import Settings, load_settings
from anchor.content import load_script
from anchor.outputs import AiredResult, Cue, OutputError, Rung, output_type
from anchor.outputs.file import FileOutput, FileOutputSettings
from anchor.preflight import checked_settings
from anchor.problems import InputError
from anchor.program import Program, render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from tests.conftest import Project, no_traceback, script_text, srt_cues

# Its tests share one rendered program for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_file_output")

# A pause with no subtitle between two cues, and a title full of what filter escaping trips on.
BODY = "各位观众，大家好。\n\n[pause 2s]\n\n谢谢收看。"
TITLE = "高血压：别'轻视'它，10%的人不知道"
CHANNEL = "市第一人民医院 健康频道"
# data_dir holds the program.srt the subtitles filter reads: give it every filtergraph special character.
AWKWARD_DATA_DIR = r"data: it's [a], b;c\d %e"
BEIJING = timezone(timedelta(hours=8))
FFMPEG_TIMEOUT = 60


@dataclass
class Rendered:
    settings: Settings
    program: Program
    output: FileOutput

    def cue(self, planned_at: datetime, slot: str = "morning", channel_name: str = CHANNEL) -> Cue:
        return Cue("ward-3", channel_name, slot, planned_at, self.program)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_type,codec_name,width,height,pix_fmt:format=duration,format_name",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=30, check=True).stdout
    return json.loads(out)


def wav_duration(path: Path) -> float:
    return float(ffprobe(path)["format"]["duration"])


def gray_crop(clip: Path, at: float, crop: str) -> np.ndarray:
    """One frame at `at` seconds, cropped (ffmpeg crop syntax), as 8-bit luma."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-ss", f"{at:.3f}", "-i", str(clip),
                           "-frames:v", "1", "-vf", f"crop={crop}", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          capture_output=True, timeout=FFMPEG_TIMEOUT, check=True)
    return np.frombuffer(proc.stdout, dtype=np.uint8)


def clip_path(output: FileOutput, cue: Cue) -> Path:
    return asyncio.run(output.clip_path(cue))


def run_air(output: FileOutput, cue: Cue) -> AiredResult:
    return asyncio.run(asyncio.wait_for(output.air(cue), cue.program.duration_seconds + 60))


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """A short Chinese program rendered by the real pipeline (espeak-ng), and its clip prepared once."""
    project = Project(tmp_path_factory.mktemp("file-output") / "site")
    project.scripts.mkdir(parents=True)
    project.write_config()
    text = project.config.read_text(encoding="utf-8").replace('data_dir = "data"',
                                                                f"data_dir = '''{AWKWARD_DATA_DIR}'''")
    project.config.write_text(text, encoding="utf-8")
    project.script("notice.md", script_text(BODY, title=TITLE))
    settings = load_settings(project.config)
    assert settings.data_dir.name == AWKWARD_DATA_DIR
    script = load_script(project.scripts / "notice.md", settings.scripts_dir)
    program = asyncio.run(asyncio.wait_for(
        render_program(script, settings, EngineChain(settings), ProgramCache(settings.cache_dir, 1 << 30)), 120))
    output_class = output_type("file")
    assert output_class is FileOutput
    output = FileOutput(FileOutput.settings_from(settings), settings.data_dir)
    cue = Cue("ward-3", CHANNEL, "morning", datetime(2025, 3, 2, 7, 5, 9, tzinfo=BEIJING), program)
    asyncio.run(asyncio.wait_for(output.prepare(cue), 120))
    return Rendered(settings, program, output)


def test_prepare_and_air_write_the_clip_in_the_dated_folder(rendered: Rendered) -> None:
    # 07:05:09 in Beijing is still 1 March in UTC: the folder and name follow the planned local time.
    cue = rendered.cue(datetime(2025, 3, 2, 7, 5, 9, tzinfo=BEIJING))
    result = run_air(rendered.output, cue)

    expected = rendered.settings.data_dir / "aired" / "ward-3" / "2025-03-02" / "070509+0800-morning.mp4"
    assert result.detail == {"file": str(expected)}
    assert files_under(rendered.settings.data_dir / "aired") == [expected]
    probe = ffprobe(expected)
    video = [s for s in probe["streams"] if s["codec_type"] == "video"]
    sound = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert [(s["codec_name"], s["width"], s["height"], s["pix_fmt"]) for s in video] == [("h264", 640, 360, "yuv420p")]
    assert [s["codec_name"] for s in sound] == ["aac"]
    assert "mp4" in probe["format"]["format_name"]
    audio_seconds = wav_duration(rendered.program.files.wav)
    assert abs(float(probe["format"]["duration"]) - audio_seconds) <= 1 / 25, (probe["format"], audio_seconds)

    # The channel was held for the program's length, and the times are aware UTC.
    assert result.started_at.tzinfo is not None and result.started_at.utcoffset() == timedelta(0)
    held = (result.ended_at - result.started_at).total_seconds()
    assert abs(held - audio_seconds) <= 0.3, (held, audio_seconds)
    # Same file system: the aired file is a hard link to the cached clip, not a second copy.
    assert expected.stat().st_ino == clip_path(rendered.output, cue).stat().st_ino


def test_the_avatar_speaks_with_subtitles_burned_in(rendered: Rendered) -> None:
    clip = clip_path(rendered.output, rendered.cue(datetime(2025, 3, 2, 7, 5, 9, tzinfo=BEIJING)))
    cues = srt_cues(rendered.program.directory / "program.srt")
    first = (cues[0][0] + cues[0][1]) / 2
    # The middle of the longest stretch without a cue (the script's 2 s pause).
    gap_start, gap_end = max(((a[1], b[0]) for a, b in zip(cues, cues[1:])), key=lambda g: g[1] - g[0])
    assert gap_end - gap_start >= 1.5, cues
    silent = (gap_start + gap_end) / 2

    bottom = "iw:ih/4:0:ih*3/4"
    speaking, pausing = gray_crop(clip, first, bottom), gray_crop(clip, silent, bottom)
    assert len(speaking) == len(pausing) == 640 * 90
    # White subtitle text in the lower third while a cue is up; the avatar's jacket alone in the pause.
    assert (speaking > 200).sum() > (pausing > 200).sum() + 200, ((speaking > 200).sum(), (pausing > 200).sum())
    # The avatar is on screen: the face region is far from the flat background colour, in both frames.
    background = gray_crop(clip, silent, "iw/8:ih/8:0:0")
    assert background.std() < 3
    for at in (first, silent):
        face = gray_crop(clip, at, "iw/4:ih/4:iw*3/8:ih/4")
        assert abs(face.mean() - background.mean()) > 30
    # The lower third (channel name and program title, as a viewer of the live room sees them) is on the
    # left above the subtitles in every frame: white text on a dark band; nothing like it on the right.
    band, right = "iw*0.45:ih*0.13:0:ih*0.66", "iw*0.2:ih*0.13:iw*0.8:ih*0.66"
    for at in (first, silent):
        assert (gray_crop(clip, at, band) > 200).sum() > 300, "no lower-third text"
        assert (gray_crop(clip, at, right) > 200).sum() == 0


def test_prepare_is_cached_and_leaves_no_temporary_files(rendered: Rendered) -> None:
    cue = rendered.cue(datetime(2025, 3, 2, 7, 5, 9, tzinfo=BEIJING))
    clip = clip_path(rendered.output, cue)
    assert clip.parent == rendered.settings.data_dir / "clips"
    assert clip.name.startswith(rendered.program.key + "-") and clip.suffix == ".mp4"
    before, content = clip.stat(), hashlib.sha256(clip.read_bytes()).hexdigest()
    long_ago = time.time() - 86400
    os.utime(clip, (long_ago, long_ago))
    # A new instance (a restarted daemon) finds the clip; a planned instant or slot does not change it.
    again = FileOutput(FileOutput.settings_from(rendered.settings), rendered.settings.data_dir)
    asyncio.run(asyncio.wait_for(again.prepare(rendered.cue(datetime(2025, 3, 3, 9, 0, tzinfo=BEIJING), "noon")), 30))
    after = clip.stat()
    # Not rendered again (same file, same bytes), but marked as just used, so retention keeps it.
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == content
    assert after.st_mtime > long_ago + 3600
    assert sorted(p.name for p in clip.parent.iterdir()) == [clip.name]  # no temp files or work folders
    # What shapes the picture shapes the name: another avatar, frame size or channel name (the lower third
    # shows it) is another clip; the planned instant or slot is not.
    assert clip_path(again, rendered.cue(cue.planned_at, channel_name="另一个频道")) != clip
    assert clip_path(again, rendered.cue(cue.planned_at, "evening")) == clip
    other = rendered.settings.data_dir.parent / "other-avatar"
    shutil.copytree(DEFAULT_AVATAR, other)
    (other / "mouth_half.png").write_bytes((DEFAULT_AVATAR / "mouth_open.png").read_bytes())
    assert clip_path(again, dataclasses.replace(cue, avatar=other)) != clip
    bigger = FileOutput(FileOutputSettings(width=1280, height=720), rendered.settings.data_dir)
    assert clip_path(bigger, cue) != clip
    elsewhere = FileOutput(FileOutputSettings(folder="archive"), rendered.settings.data_dir)
    assert clip_path(elsewhere, cue) == clip  # where aired files go does not change the clip


def test_a_cancelled_airing_leaves_no_file_that_looks_aired(rendered: Rendered) -> None:
    cue = rendered.cue(datetime(2025, 3, 4, 18, 30, tzinfo=BEIJING), "evening")
    day = rendered.settings.data_dir / "aired" / "ward-3" / "2025-03-04"

    async def cut() -> tuple[asyncio.Task[AiredResult], float]:
        task = asyncio.create_task(rendered.output.air(cue))
        await asyncio.sleep(1.0)
        task.cancel()
        cancelled_at = time.monotonic()
        await asyncio.wait([task], timeout=10)
        return task, time.monotonic() - cancelled_at

    task, latency = asyncio.run(asyncio.wait_for(cut(), 30))
    assert task.done() and task.cancelled()  # CancelledError propagated, not swallowed or turned into an error
    assert latency < 1.0
    assert files_under(day) == []  # neither the mp4 nor a part of it: the as-run log says interrupted


def _no_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: object, dst: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(file_output.os, "link", refuse)


def test_a_copy_cancelled_midway_leaves_nothing(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    """Across file systems the clip is copied in a thread; cutting the airing then must not leave a part."""
    _no_hard_links(monkeypatch)
    real_copy = file_output._copy
    copying, finished = threading.Event(), threading.Event()

    def held_copy(src: Path, partial: Path, stop: threading.Event) -> None:
        try:
            copying.set()
            stop.wait(10)  # hold the copy mid-way until the airing is cut
            real_copy(src, partial, stop)
        finally:
            finished.set()

    monkeypatch.setattr(file_output, "_copy", held_copy)
    cue = rendered.cue(datetime(2025, 3, 5, 12, 0, tzinfo=BEIJING), "noon")

    async def cut() -> asyncio.Task[AiredResult]:
        task = asyncio.create_task(rendered.output.air(cue))
        while not copying.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.wait([task], timeout=10)
        return task

    task = asyncio.run(asyncio.wait_for(cut(), 30))
    assert task.cancelled()
    assert finished.wait(10)
    assert files_under(rendered.settings.data_dir / "aired" / "ward-3" / "2025-03-05") == []


def test_air_without_prepare_steps_down_at_once_and_copies_across_file_systems(
        rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing made ready (a fresh edit): the airing does not wait for a render: it goes out at once as the
    still picture (made in a moment) and says why, while the clip is made for the next airing."""
    _no_hard_links(monkeypatch)
    # The still takes ~0.5 s on a quiet PC; with other test workers on two cores it can take longer than
    # the 1.5 s the output waits for it, and the airing would rightly go out as audio alone.
    monkeypatch.setattr("anchor.outputs.file.STILL_WAIT", 15.0)
    output = FileOutput(FileOutput.settings_from(rendered.settings), tmp_path / "fresh")
    cue = rendered.cue(datetime(2025, 12, 31, 23, 59, 30, tzinfo=BEIJING), "new-year")
    result = run_air(output, cue)

    aired = Path(result.detail["file"])
    assert aired == tmp_path / "fresh" / "aired" / "ward-3" / "2025-12-31" / "235930+0800-new-year.mp4"
    assert result.rung is Rung.STILL and result.degraded is not None and result.degraded.reason == "late"
    streams = ffprobe(aired)["streams"]
    assert sorted(s["codec_type"] for s in streams) == ["audio", "video"]
    assert files_under(tmp_path / "fresh" / "aired") == [aired]  # no .part left behind
    held = (result.ended_at - result.started_at).total_seconds()
    assert abs(held - rendered.program.duration_seconds) <= 0.3
    # The clip was made meanwhile: the next airing of the program is the full talking clip.
    assert clip_path(output, cue).is_file()
    again = run_air(output, rendered.cue(datetime(2026, 1, 1, 9, 0, tzinfo=BEIJING), "new-year"))
    assert again.rung is Rung.CLIP and again.degraded is None


LADDER = {
    # what breaks → (the rung the airing goes out on, the reason recorded)
    "font": (Rung.STILL, "font"),
    "avatar": (Rung.STILL, "avatar"),
    "render": (Rung.STILL, "render"),
    "clips-folder": (Rung.AUDIO, "disk"),
    "ffmpeg": (Rung.AUDIO, "ffmpeg"),
}


@pytest.mark.parametrize("broken", LADDER)
def test_a_lost_part_steps_the_airing_down_never_off(rendered: Rendered, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    """Each part the clip needs, taken away: the airing still goes out, one rung down, saying why."""
    settings = FileOutput.settings_from(rendered.settings)
    cue = rendered.cue(datetime(2025, 6, 1, 8, 0, tzinfo=BEIJING), f"ladder-{broken}")
    if broken == "font":
        settings = FileOutputSettings(font="No Such Font Family")
    elif broken == "avatar":
        frames = tmp_path / "avatar"
        shutil.copytree(DEFAULT_AVATAR, frames)
        (frames / "mouth_open.png").write_bytes(b"not a picture")
        cue = dataclasses.replace(cue, avatar=frames)
    elif broken == "render":
        def failing(*args: object, **kwargs: object) -> None:
            raise ClipError("ffmpeg failed (exit 1): a render that breaks")

        monkeypatch.setattr("anchor.avatar.clip.render_talking_clip", failing)
    elif broken == "clips-folder":
        (tmp_path / "clips").write_text("a file where the clips folder should be")
    elif broken == "ffmpeg":
        bare = tmp_path / "bin"
        bare.mkdir()
        (bare / "fc-list").symlink_to(shutil.which("fc-list"))
        monkeypatch.setenv("PATH", str(bare))
    output = FileOutput(settings, tmp_path)
    asyncio.run(asyncio.wait_for(output.prepare(cue), 120))
    result = run_air(output, cue)
    rung, reason = LADDER[broken]
    assert (result.rung, result.degraded and result.degraded.reason) == (rung, reason), result
    aired = Path(result.detail["file"])
    if rung is Rung.AUDIO:  # the program's own audio, linked: no ffmpeg, no free space needed
        assert aired.suffix == ".wav" and aired.read_bytes() == rendered.program.files.wav.read_bytes()
    else:
        monkeypatch.undo()
        assert sorted(s["codec_type"] for s in ffprobe(aired)["streams"]) == ["audio", "video"]
    held = (result.ended_at - result.started_at).total_seconds()
    assert abs(held - rendered.program.duration_seconds) <= 0.3


def test_bad_settings_are_clear_errors_naming_the_line(project: Project) -> None:
    project.write_config(extra='\n[outputs.file]\nwidth = 641\nbackground = "blue"\n')
    with pytest.raises(InputError) as caught:
        checked_settings(load_settings(project.config))  # what every command and the daemon load
    message = str(caught.value)
    lines = project.config.read_text().splitlines()
    width_line = lines.index("width = 641") + 1
    assert f"anchor.toml:{width_line}: [outputs.file.width] must be even" in message, message
    assert "try 640 or 642" in message
    assert "[outputs.file.background] background must be a colour written 0xRRGGBB" in message
    result = project.run("check", timeout=60)
    no_traceback(result)
    assert result.returncode != 0 and "must be even" in result.stderr

    for bad, words in (({"height": 100}, "between 160 and 3840"), ({"width": 4000}, "between 160 and 3840"),
                       ({"fps": 0}, "between 1 and 60"), ({"font": "A,B"}, "one family name"),
                       ({"folder": "../out"}, "without '..'"), ({"colour": "red"}, "Extra inputs")):
        with pytest.raises(ValidationError, match=words):
            FileOutputSettings(**bad)
    assert FileOutputSettings(background="#A1B2C3").background == "0xa1b2c3"


@pytest.mark.dated
def test_old_aired_days_and_unused_clips_expire(rendered: Rendered, tmp_path: Path) -> None:
    """Months unattended must not fill the disk: keep_days (30 by default) bounds both folders."""
    output = FileOutput(rendered.output.settings, tmp_path)
    now = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)
    old_day = output.aired_dir / "ward-3" / "2026-05-01"
    recent_day = output.aired_dir / "ward-3" / "2026-06-15"
    for day in (old_day, recent_day):
        day.mkdir(parents=True)
        (day / "090000-morning.mp4").write_bytes(b"x")
    output.clips.folder.mkdir(parents=True)
    stale, used = output.clips.folder / "stale.mp4", output.clips.folder / "used.mp4"
    stale.write_bytes(b"x")
    used.write_bytes(b"x")
    long_ago = (now - timedelta(days=40)).timestamp()
    os.utime(stale, (long_ago, long_ago))
    os.utime(used, ((now - timedelta(days=2)).timestamp(),) * 2)
    removed = output.expire(now)
    assert sorted(removed) == sorted([old_day, stale])
    assert recent_day.exists() and used.exists() and not old_day.exists() and not stale.exists()


def test_what_the_file_output_wrote_is_listened_to_for_dead_air(rendered: Rendered, tmp_path: Path) -> None:
    """ffmpeg's silencedetect on the written file: speech counts no dead air, a silent program its length."""
    spoken = run_air(rendered.output, rendered.cue(datetime(2025, 7, 1, 9, 0, tzinfo=BEIJING), "speech"))
    assert spoken.dead_air_seconds == 0
    directory = tmp_path / "silent"
    directory.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "8",
                    "-c:a", "pcm_s16le", str(directory / "program.wav")], check=True, timeout=30)
    (directory / "program.srt").write_text("", encoding="utf-8")
    silent = rendered.program.model_copy(update={"key": "f" * 64, "duration_seconds": 8.0, "directory": directory})
    quiet = run_air(rendered.output, dataclasses.replace(rendered.cue(datetime(2025, 7, 1, 10, 0, tzinfo=BEIJING),
                                                                      "silence"), program=silent))
    assert 8.0 - 1.0 <= quiet.dead_air_seconds <= 8.0 + 0.5, quiet


def test_only_a_previous_process_part_files_are_swept(tmp_path: Path) -> None:
    """Part files a crash left are removed; one this process is writing (another channel's airing that
    started while the sweep ran) is not: it must still be named into place when the airing ends."""
    output = FileOutput(FileOutputSettings(), tmp_path)
    day = output.aired_dir / "ward-3" / "2026-12-02"
    day.mkdir(parents=True)
    left = day / ".193936+0800-tick.mp4.1a2b3c4d.part"
    left.write_bytes(b"cut by a crash")
    os.utime(left, (time.time() - 86400, time.time() - 86400))  # written by the process that was killed
    mine = day / ".193944+0800-tick.mp4.5e6f7a8b.part"
    mine.write_bytes(b"being written")
    assert output.sweep_parts() == [left]
    assert mine.exists() and not left.exists()
