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
import os
import re
import shutil
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import Field, field_validator

from anchor.avatar import DEFAULT_AVATAR, Avatar, load_avatar
from anchor.avatar.clip import WORK_PREFIX as CLIP_WORK_PREFIX
from anchor.avatar.clip import CLIP_VERSION, CLIPS_FOLDER, ClipError, clip_seed, render_talking_clip
from anchor.outputs import register
from anchor.outputs.base import AiredResult, ClipOutputSettings, Cue, Output, OutputError
from anchor.problems import InputError
from anchor.speech import audio
from anchor.speech.cache import cache_key
from anchor.video import FontMissing, check_font, touch

log = logging.getLogger(__name__)

STALE_WORK_SECONDS = 6 * 3600
EXPIRE_EVERY_SECONDS = 3600
_UNSAFE_NAME = re.compile(r"[^\w.-]+")


class FileOutputSettings(ClipOutputSettings):
    folder: str = "aired"  # relative to data_dir
    # Days an aired file, and a clip nobody has used, are kept: months unattended must not fill the disk.
    keep_days: int = Field(30, ge=1, le=3650)

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value.strip() or ".." in Path(value).parts:
            raise ValueError("folder must be a folder name (relative to data_dir, or absolute), without '..'")
        return value


def _safe_name(text: str) -> str:
    """A channel id or slot name as one path component: no separators, no '..'."""
    return _UNSAFE_NAME.sub("_", text).strip("._") or "_"


@register
class FileOutput(Output):
    """Writes each airing as an mp4 file; the clip is rendered once per program, title and channel name."""

    name = "file"
    Settings = FileOutputSettings
    settings: FileOutputSettings

    def __init__(self, settings: FileOutputSettings, data_dir: Path) -> None:
        super().__init__(settings, data_dir)
        self._locks: dict[Path, asyncio.Lock] = {}
        self._avatars: dict[Path, Avatar] = {}
        self._swept = False
        self._expired_at = time.monotonic()  # the first sweep comes an hour after start, then hourly

    # -- where things go --------------------------------------------------------------------------------

    @property
    def clips_dir(self) -> Path:
        return self.data_dir / CLIPS_FOLDER

    @property
    def aired_dir(self) -> Path:
        folder = Path(self.settings.folder)
        return folder if folder.is_absolute() else self.data_dir / folder

    def clip_path(self, cue: Cue) -> Path:
        """data_dir/clips/<program key>-<hash of what shapes the picture>.mp4"""
        shape = cache_key({
            "clip": CLIP_VERSION,
            "settings": self.settings.model_dump(exclude={"folder", "keep_days"}),
            "avatar": self._avatar(cue).digest(),
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
            touch(clip)  # in use: keep it past the retention sweep
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
        if not (program.directory / "program.wav").is_file():
            raise OutputError(f"program '{program.script}' has no audio at {program.directory / 'program.wav'}")
        try:
            await check_font(self.settings.font)
            avatar = await asyncio.to_thread(self._avatar, cue)
        except (FontMissing, InputError) as exc:
            raise OutputError(str(exc)) from exc
        try:
            self.clips_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the clips folder {self.clips_dir}: {exc.strerror or exc}") from exc
        self._sweep_work()
        s = self.settings
        try:
            report = await render_talking_clip(
                program.directory, avatar, clip, width=s.width, height=s.height, fps=s.fps,
                background=s.background, subtitles=True, font=s.font, seed=clip_seed(program.key))
        except (ClipError, audio.AudioError, OSError) as exc:
            raise OutputError(f"could not render the clip for '{program.script}': {exc}") from exc
        log.info("rendered clip %s for '%s' (%.1f s of audio) in %.1f s (%.3fx real time)", clip.name,
                 program.script, report.audio_seconds, report.render_seconds, report.real_time_factor)

    def _avatar(self, cue: Cue) -> Avatar:
        folder = cue.avatar or DEFAULT_AVATAR
        if folder not in self._avatars:
            self._avatars[folder] = load_avatar(folder)
        return self._avatars[folder]

    def _sweep_work(self) -> None:
        """Work folders left by a killed render (once per process; a live render's is recent)."""
        if self._swept:
            return
        self._swept = True
        cutoff = time.time() - STALE_WORK_SECONDS
        for path in self.clips_dir.glob(f"{CLIP_WORK_PREFIX}*"):
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

