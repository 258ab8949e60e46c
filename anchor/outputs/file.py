"""The embedded default output: each airing becomes an mp4 in a dated folder, no OBS needed.

prepare() renders the Program's clip ahead of air — a title card (channel name, script title) with the
subtitles burned in, over program.wav — and caches it under data_dir/clips. air() puts the clip at
data_dir/<folder>/<channel>/<date>/<time>-<slot>.mp4 (a hard link, or a copy across file systems) and then
holds the channel for the program's length, like a real broadcast would.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ffmpeg
from pydantic import Field, field_validator

from anchor.outputs import register
from anchor.outputs.base import AiredResult, Cue, Output, OutputError, OutputSettings
from anchor.speech import audio
from anchor.speech.cache import cache_key
from anchor.speech.sentences import split_lines, width

log = logging.getLogger(__name__)

# Bump when a change here would change the pictures: cached clips then stop matching.
CLIP_VERSION = 1
CLIPS = "clips"
WORK_PREFIX = ".work-"
STALE_WORK_SECONDS = 6 * 3600
EXPIRE_EVERY_SECONDS = 3600
# ffmpeg turns SRT into ASS with PlayResY 288: FontSize and MarginV are in those units, scaled to the frame.
ASS_PLAY_RES_Y = 288
# A CJK character's advance per ASS FontSize unit (measured for WenQuanYi Micro Hei; CJK fonts are alike).
ASS_EM_PER_SIZE = 0.85
_HEX_COLOUR = re.compile(r"^(?:0x|#)([0-9a-fA-F]{6})$")
_UNSAFE_NAME = re.compile(r"[^\w.-]+")


class FileOutputSettings(OutputSettings):
    width: int = 640
    height: int = 360
    fps: int = 25
    font: str = "WenQuanYi Micro Hei"  # a fontconfig family name; Debian: fonts-wqy-microhei
    background: str = "0x1d3557"
    folder: str = "aired"  # relative to data_dir
    # Days an aired file, and a clip nobody has used, are kept: months unattended must not fill the disk.
    keep_days: int = Field(30, ge=1, le=3650)

    @field_validator("width", "height")
    @classmethod
    def _frame_size(cls, value: int) -> int:
        if not 160 <= value <= 3840:
            raise ValueError("a frame side must be between 160 and 3840 pixels")
        if value % 2:
            raise ValueError(f"must be even: H.264 in yuv420p needs even sizes (try {value - 1} or {value + 1})")
        return value

    @field_validator("fps")
    @classmethod
    def _frame_rate(cls, value: int) -> int:
        if not 1 <= value <= 60:
            raise ValueError("fps must be between 1 and 60")
        return value

    @field_validator("font")
    @classmethod
    def _font_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("font must name a font family, e.g. \"WenQuanYi Micro Hei\"")
        if any(ch in value for ch in ",=") or any(ord(ch) < 32 for ch in value):
            raise ValueError("font must be one family name, without ',' or '='")
        return value

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        match = _HEX_COLOUR.match(value.strip())
        if not match:
            raise ValueError("background must be a colour written 0xRRGGBB or #RRGGBB, e.g. 0x1d3557")
        return "0x" + match.group(1).lower()

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value.strip() or ".." in Path(value).parts:
            raise ValueError("folder must be a folder name (relative to data_dir, or absolute), without '..'")
        return value


def _fontconfig_escape(name: str) -> str:
    """A family name as a fontconfig pattern (where '-' starts a size and ':' an element)."""
    return re.sub(r"([\\\-:,])", r"\\\1", name)


def _safe_name(text: str) -> str:
    """A channel id or slot name as one path component: no separators, no '..'."""
    return _UNSAFE_NAME.sub("_", text).strip("._") or "_"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _srt_lines(path: Path) -> list[str]:
    """The text lines of an SRT file (no counters, no timings)."""
    lines = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        rows = block.strip().splitlines()
        if len(rows) >= 3 and "-->" in rows[1]:
            lines.extend(r for r in rows[2:] if r.strip())
    return lines


def _fit_title(title: str, frame_w: int, frame_h: int) -> tuple[int, list[str]]:
    """Font size and lines for the title: large, at most three lines across 88% of the frame."""
    size, smallest = round(frame_h / 9), max(8, round(frame_h / 20))
    while True:
        per_line = max(1.0, 0.88 * frame_w / size)
        lines = split_lines(title, per_line)
        if len(lines) <= 3 or size <= smallest:
            break
        size -= 1
    if len(lines) > 3:
        lines = lines[:3]
        lines[2] = lines[2][:-1] + "…"
    return size, lines


@register
class FileOutput(Output):
    """Writes each airing as an mp4 file; the clip is rendered once per program, title and channel name."""

    name = "file"
    Settings = FileOutputSettings
    settings: FileOutputSettings

    def __init__(self, settings: OutputSettings, data_dir: Path) -> None:
        super().__init__(settings, data_dir)
        self._locks: dict[Path, asyncio.Lock] = {}
        self._font_ok = False
        self._swept = False
        self._expired_at = time.monotonic()  # the first sweep comes an hour after start, then hourly

    # -- where things go --------------------------------------------------------------------------------

    @property
    def clips_dir(self) -> Path:
        return self.data_dir / CLIPS

    @property
    def aired_dir(self) -> Path:
        folder = Path(self.settings.folder)
        return folder if folder.is_absolute() else self.data_dir / folder

    def clip_path(self, cue: Cue) -> Path:
        """data_dir/clips/<program key>-<hash of what shapes the picture>.mp4"""
        shape = cache_key({
            "clip": CLIP_VERSION,
            "settings": self.settings.model_dump(exclude={"folder"}),
            "channel_name": cue.channel_name,
            "title": cue.program.title,  # not in the program key: a retitled script keeps its audio
        })[:16]
        return self.clips_dir / f"{cue.program.key}-{shape}.mp4"

    def aired_path(self, cue: Cue) -> Path:
        """data_dir/<folder>/<channel>/<YYYY-MM-DD>/<HHMMSS>-<slot>.mp4, in the planned instant's own zone."""
        planned = cue.planned_at
        if planned.tzinfo is None:
            raise OutputError(f"planned instant {planned.isoformat()} has no timezone")
        return (self.aired_dir / _safe_name(cue.channel_id) / planned.strftime("%Y-%m-%d")
                / f"{planned.strftime('%H%M%S')}-{_safe_name(cue.slot)}.mp4")

    # -- prepare ----------------------------------------------------------------------------------------

    async def prepare(self, cue: Cue) -> None:
        """Render the clip unless it is already cached. Raises OutputError when it cannot be made."""
        clip = self.clip_path(cue)
        if clip.is_file():
            _touch(clip)  # in use: keep it past the retention sweep
            return
        lock = self._locks.setdefault(clip, asyncio.Lock())
        try:
            async with lock:  # a second prepare (or a late air) of the same clip waits for the first
                if clip.is_file():
                    return
                await self._render(cue, clip)
        finally:
            if not lock.locked():
                self._locks.pop(clip, None)

    async def _render(self, cue: Cue, clip: Path) -> None:
        program = cue.program
        if program.directory is None:
            raise OutputError(f"program '{program.script}' has no directory: it was never rendered to disk")
        wav, srt = program.directory / "program.wav", program.directory / "program.srt"
        if not wav.is_file():
            raise OutputError(f"program '{program.script}' has no audio at {wav}")
        await self._check_font()
        try:
            self.clips_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the clips folder {self.clips_dir}: {exc.strerror or exc}") from exc
        self._sweep_work()
        started = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{clip.stem[:16]}.", dir=self.clips_dir))
        try:
            partial = work / "clip.mp4"
            argv = self._command(cue, wav, srt if srt.is_file() else None, work, partial)
            try:
                await audio.run_ffmpeg(argv, timeout=120 + 3 * program.duration_seconds)
                await asyncio.to_thread(_fsync, partial)
            except audio.AudioError as exc:
                raise OutputError(f"could not render the clip for '{program.script}': {exc}") from exc
            os.replace(partial, clip)  # atomic: the clip is either complete or absent
        except OSError as exc:
            raise OutputError(f"could not write the clip {clip}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        spent = time.perf_counter() - started
        log.info("rendered clip %s for '%s' (%.1f s of audio) in %.1f s (%.3fx real time)", clip.name,
                 program.script, program.duration_seconds, spent, spent / max(program.duration_seconds, 1e-3))

    def _command(self, cue: Cue, wav: Path, srt: Path | None, work: Path, out: Path) -> list[str]:
        s = self.settings
        fps = s.fps
        # Whole frames, as near the audio's length as frames allow (within half a frame).
        frames = max(1, round(cue.program.duration_seconds * fps))
        video = ffmpeg.input(f"color=c={s.background}:s={s.width}x{s.height}:r={fps}:d={frames / fps:.6f}",
                             f="lavfi")
        font = _fontconfig_escape(s.font)
        # Text goes through files, so nothing in it (colons, quotes, %, CJK) meets filter escaping;
        # expansion=none keeps drawtext from reading %{…} in it.
        text_index = 0

        def draw(stream: ffmpeg.nodes.FilterableStream, text: str, size: int, baseline: float,
                 colour: str) -> ffmpeg.nodes.FilterableStream:
            nonlocal text_index
            path = work / f"text{text_index}.txt"
            text_index += 1
            path.write_text(text, encoding="utf-8")
            return stream.drawtext(textfile=str(path), font=font, fontsize=size, fontcolor=colour,
                                   expansion="none", x="(w-text_w)/2", y=f"{baseline:.1f}-max_glyph_a")

        channel = _one_line(cue.channel_name)
        if channel:
            size = max(8, min(round(s.height / 20), math.floor(0.9 * s.width / max(width(channel), 1))))
            video = draw(video, channel, size, s.height * 0.05 + size, "white@0.85")
        title = _one_line(cue.program.title)
        if title:
            size, lines = _fit_title(title, s.width, s.height)
            step = size * 1.35
            top = s.height * 0.42 - step * len(lines) / 2
            for i, line in enumerate(lines):
                video = draw(video, line, size, top + i * step + (step + size * 0.8) / 2, "white")
        if srt is not None:
            lines = _srt_lines(srt)
            if lines:
                video = video.filter("subtitles", filename=str(srt.resolve()),
                                     force_style=self._subtitle_style(max(width(t) for t in lines)))
        sound = ffmpeg.input(str(wav))
        node = ffmpeg.output(
            video, sound.audio, str(out), f="mp4", vcodec="libx264", preset="veryfast", tune="stillimage",
            pix_fmt="yuv420p", acodec="aac", audio_bitrate="128k", movflags="+faststart",
            aac_coder="fast",  # the default (twoloop) takes ~3x as long, half the render, for no audible gain on speech
            metadata=f"title={title}",
        )
        return audio.command(node, "-loglevel", "error", "-y")

    def _subtitle_style(self, widest: float) -> str:
        """ASS overrides for the burned-in subtitles: the font, a size for the height, a bottom margin.

        Characters are ~6% of the frame height, smaller if the widest line would not fit 90% of the width
        (a portrait frame); the ASS units are converted back from pixels.
        """
        s = self.settings
        char_px = min(0.06 * s.height, 0.9 * s.width / max(widest, 1.0))
        scale = s.height / ASS_PLAY_RES_Y
        size = max(4.0, char_px / ASS_EM_PER_SIZE / scale)
        margin = round(0.06 * ASS_PLAY_RES_Y)
        return (f"FontName={s.font},FontSize={size:.1f},MarginV={margin},PrimaryColour=&H00FFFFFF,"
                "OutlineColour=&H80000000,BorderStyle=1,Outline=1.2,Shadow=0")

    async def _check_font(self) -> None:
        """fontconfig substitutes a missing font silently, and Chinese then airs as empty boxes."""
        if self._font_ok:
            return
        try:
            proc = await asyncio.create_subprocess_exec(
                "fc-list", "-q", _fontconfig_escape(self.settings.font),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
        except FileNotFoundError:
            log.warning("fc-list is missing (apt-get install fontconfig): cannot check the font '%s'",
                        self.settings.font)
            self._font_ok = True
            return
        try:
            code = await asyncio.wait_for(proc.wait(), 30)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            proc.kill()
            await proc.wait()
            raise
        if code != 0:
            raise OutputError(f"font '{self.settings.font}' is not installed (for the default: "
                              "apt-get install fonts-wqy-microhei; `fc-list :lang=zh family` lists Chinese fonts)")
        self._font_ok = True

    def _sweep_work(self) -> None:
        """Work folders left by a killed render (once per process; a live render's is recent)."""
        if self._swept:
            return
        self._swept = True
        cutoff = time.time() - STALE_WORK_SECONDS
        for path in self.clips_dir.glob(f"{WORK_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass

    # -- air --------------------------------------------------------------------------------------------

    async def air(self, cue: Cue) -> AiredResult:
        started_at = datetime.now(timezone.utc)
        started = time.monotonic()
        dest = self.aired_path(cue)
        clip = self.clip_path(cue)
        if not clip.is_file():
            log.warning("%s/%s: clip for '%s' was not prepared ahead; rendering it now", cue.channel_id,
                        cue.slot, cue.program.script)
            await self.prepare(cue)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            await _place(clip, dest)
        except OSError as exc:
            raise OutputError(f"could not write {dest}: {exc.strerror or exc}") from exc
        log.info("%s/%s: airing '%s' to %s", cue.channel_id, cue.slot, cue.program.script, dest)
        # Hold the channel for the program's length, on the monotonic clock.
        await asyncio.sleep(max(0.0, started + cue.program.duration_seconds - time.monotonic()))
        ended_at = started_at + timedelta(seconds=time.monotonic() - started)
        if time.monotonic() - self._expired_at > EXPIRE_EVERY_SECONDS:
            self._expired_at = time.monotonic()
            await asyncio.to_thread(self.expire, datetime.now(timezone.utc))
        return AiredResult(started_at, ended_at, {"file": str(dest)})

    def expire(self, now: datetime) -> list[Path]:
        """Delete aired days older than keep_days, and clips not used for as long. Returns what went."""
        cutoff = now - timedelta(days=self.settings.keep_days)
        removed: list[Path] = []
        for day in self.aired_dir.glob("*/????-??-??"):
            try:
                old = datetime.strptime(day.name, "%Y-%m-%d").date() < cutoff.date()
            except ValueError:
                continue
            if old and day.is_dir():
                shutil.rmtree(day, ignore_errors=True)
                removed.append(day)
        for clip in self.clips_dir.glob("*.mp4"):
            try:
                if clip.stat().st_mtime < cutoff.timestamp():
                    clip.unlink()
                    removed.append(clip)
            except OSError:
                pass
        if removed:
            log.info("file output: removed %d aired days and unused clips older than %d days", len(removed),
                     self.settings.keep_days)
        return removed


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _partial_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")


async def _place(clip: Path, dest: Path) -> None:
    """Put the clip at dest in one step: a hard link, or a copy (in a thread) renamed into place."""
    partial = _partial_name(dest)
    try:
        os.link(clip, partial)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    else:
        try:
            os.replace(partial, dest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return
    stop = threading.Event()
    try:
        await asyncio.to_thread(_copy, clip, partial, dest, stop)
    except asyncio.CancelledError:
        stop.set()  # the thread stops at its next chunk and removes its partial copy
        raise


class _Stopped(Exception):
    pass


def _copy(src: Path, partial: Path, dest: Path, stop: threading.Event) -> None:
    try:
        with src.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(1 << 20):
                if stop.is_set():
                    raise _Stopped
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if stop.is_set():
            raise _Stopped
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise

