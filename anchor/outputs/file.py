"""The embedded default output: each airing becomes a file in a dated folder, no OBS needed.

prepare() has the talking clip made ahead of air (the shared clip cache: avatar, burned-in subtitles and a
lower third with the channel's name and the program's title, over program.wav). air() places it as a
hidden part file in data_dir/<folder>/<channel>/<date>/, holds the channel for the program's length like a
real broadcast, and only then names it <HHMMSS±zone>-<slot>.mp4: an airing cut short leaves no file that
looks aired. Dates and times in the names are the channel's own clock, labelled with its UTC offset.

A part that fails steps the airing down, never off: no clip (a missing font, ffmpeg gone, unreadable
avatar frames, a failed render, no room for the clips folder) → the program audio over a still picture →
the program audio alone (<…>-<slot>.wav, a hard link of program.wav: it needs no ffmpeg and no free space).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field, field_validator

from anchor.avatar.clips import ClipCache, ClipPicture, ClipUnavailable
from anchor.outputs import register
from anchor.outputs.base import AiredResult, ClipOutputSettings, Cue, Degradation, Output, OutputError, Rung
from anchor.outputs.dead_air import dead_air_in

log = logging.getLogger(__name__)

EXPIRE_EVERY_SECONDS = 3600
LISTEN_GRACE = 10.0  # seconds past the end silencedetect may still take
STILL_WAIT = 1.5  # seconds air() may spend making a still picture (cached, or ~0.5 s) before the audio goes alone
PART_SUFFIX = ".part"
_LOADED = time.time()  # part files last written before this process loaded the output are a previous process's
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
    """Writes each airing as an mp4 file, from the clip rendered once per program, picture and channel name."""

    name = "file"
    Settings = FileOutputSettings
    settings: FileOutputSettings

    def __init__(self, settings: FileOutputSettings, data_dir: Path) -> None:
        super().__init__(settings, data_dir)
        self.clips = ClipCache.shared(data_dir, settings.keep_days)
        self._expired_at = time.monotonic()  # the first sweep comes an hour after start, then hourly
        self._parts_swept = False
        self._steps_down: dict[tuple[str, ClipPicture, Path | None], Degradation] = {}  # why no clip, per picture
        self._late_renders: set[asyncio.Task[None]] = set()

    # -- where things go --------------------------------------------------------------------------------

    @property
    def aired_dir(self) -> Path:
        folder = Path(self.settings.folder)
        return folder if folder.is_absolute() else self.data_dir / folder

    def picture(self, cue: Cue) -> ClipPicture:
        return self.settings.picture(subtitles=True, lower_third=cue.lower_third)

    async def clip_path(self, cue: Cue) -> Path:
        """data_dir/clips/<program key>-<picture key>.mp4, rendered or not."""
        try:
            return self.clips.path(cue.clip_request, self.picture(cue), await self.clips.avatar(cue.avatar))
        except ClipUnavailable as exc:
            raise OutputError(str(exc)) from exc

    def aired_path(self, cue: Cue, suffix: str = ".mp4") -> Path:
        """<folder>/<channel>/<YYYY-MM-DD>/<HHMMSS±HHMM>-<slot>.mp4, in the planned instant's own zone."""
        planned = cue.planned_at
        if planned.tzinfo is None:
            raise OutputError(f"planned instant {planned.isoformat()} has no timezone")
        return (self.aired_dir / _safe_name(cue.channel_id) / planned.strftime("%Y-%m-%d")
                / f"{planned.strftime('%H%M%S%z')}-{_safe_name(cue.slot)}{suffix}")

    # -- prepare ----------------------------------------------------------------------------------------

    async def prepare(self, cue: Cue) -> None:
        """Have the clip rendered unless it is already cached; when it cannot be made, the still picture
        (and say why, once). Nothing here keeps the airing off the air: the audio alone always remains."""
        key = self._step_key(cue)
        await self._sweep_parts_once()
        try:
            await self.clips.clip(cue.clip_request, self.picture(cue), cue.avatar)
            self._steps_down.pop(key, None)
            return
        except ClipUnavailable as exc:
            down = Degradation(exc.reason, str(exc))
        if self._steps_down.get(key) != down:  # once per program and reason, not every heartbeat
            log.warning("%s: the talking clip of '%s' cannot be made (%s); the still picture airs instead",
                        cue.label, cue.program.script, down.detail)
        self._steps_down[key] = down
        try:
            await self.clips.still(cue.clip_request, self.picture(cue), cue.avatar)
        except ClipUnavailable as exc:
            log.warning("%s: nor the still picture (%s); the program audio airs alone", cue.label, exc)

    # -- air --------------------------------------------------------------------------------------------

    async def air(self, cue: Cue) -> AiredResult:
        started_at = datetime.now(UTC)
        started = time.monotonic()
        source, rung, down = await self._best_ready(cue)
        dest = self.aired_path(cue, source.suffix)
        await self._sweep_parts_once()
        partial = _partial_name(dest)
        try:
            await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
            await _place(source, partial)
        except OSError as exc:
            raise OutputError(f"could not write {dest}: {exc.strerror or exc}") from exc
        log.info("%s: airing '%s' to %s%s", cue.label, cue.program.script, dest,
                 f" ({rung.value}: {down.detail})" if down else "")
        # What went out is listened to while it airs: ffmpeg's silencedetect on the file itself.
        listening = asyncio.create_task(dead_air_in(partial, self.settings.dead_air_dbfs,
                                                    self.settings.dead_air_seconds, cue.program.duration_seconds))
        try:
            # Hold the channel for the program's length, on the monotonic clock.
            await asyncio.sleep(max(0.0, started + cue.program.duration_seconds - time.monotonic()))
        except asyncio.CancelledError:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            partial.unlink(missing_ok=True)  # cut short: nothing in the aired folder says it aired
            raise
        dead_air = await _heard(listening, cue)
        try:
            os.replace(partial, dest)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OutputError(f"could not name {dest}: {exc.strerror or exc}") from exc
        ended_at = started_at + timedelta(seconds=time.monotonic() - started)
        if time.monotonic() - self._expired_at > EXPIRE_EVERY_SECONDS:
            self._expired_at = time.monotonic()
            await asyncio.to_thread(self.expire, datetime.now(UTC))
        return AiredResult(started_at, ended_at, {"file": str(dest)}, rung, down, dead_air)

    async def _best_ready(self, cue: Cue) -> tuple[Path, Rung, Degradation | None]:
        """What airs now, without waiting for a render: the clip, else the still, else the audio alone."""
        picture = self.picture(cue)
        down: Degradation | None
        try:
            clip = await self.clips.find(cue.clip_request, picture, cue.avatar)
        except ClipUnavailable as exc:  # the avatar's frames cannot be read
            down = Degradation(exc.reason, str(exc))
        else:
            if clip is not None:
                return clip, Rung.CLIP, None
            down = self._steps_down.get(self._step_key(cue))
        if down is None:  # nobody tried: not made ready in time (a fresh edit); have it made for next time
            down = Degradation("late", "the talking clip was not ready at air time")
            self._render_later(cue)
        try:
            still = await asyncio.wait_for(self.clips.still(cue.clip_request, picture, cue.avatar), STILL_WAIT)
        except (ClipUnavailable, TimeoutError) as exc:
            log.info("%s: no still picture (%s): the audio airs alone", cue.label, exc or "not ready in time")
            return cue.program.files.wav, Rung.AUDIO, down
        return still, Rung.STILL, down

    def _step_key(self, cue: Cue) -> tuple[str, ClipPicture, Path | None]:
        return cue.program.key, self.picture(cue), cue.avatar

    def _render_later(self, cue: Cue) -> None:
        task = asyncio.create_task(self.prepare(cue), name=f"clip for {cue.program.script}")
        self._late_renders.add(task)
        task.add_done_callback(self._late_renders.discard)

    async def close(self) -> None:
        for task in list(self._late_renders):
            task.cancel()
        await asyncio.gather(*self._late_renders, return_exceptions=True)

    async def _sweep_parts_once(self) -> None:
        if not self._parts_swept:
            self._parts_swept = True
            removed = await asyncio.to_thread(self.sweep_parts)
            if removed:
                log.info("file output: removed %d part files of airings a crash cut", len(removed))

    def sweep_parts(self) -> list[Path]:
        """Part files left by a daemon killed mid-airing: they never aired whole. Not this process's own, being
        written now by airings that started before the sweep ends. Blocking: call in a thread."""
        removed = []
        for part in self.aired_dir.glob(f"*/????-??-??/.*{PART_SUFFIX}"):
            try:
                if part.stat().st_mtime >= _LOADED:
                    continue
                part.unlink()
            except FileNotFoundError:
                continue
            removed.append(part)
        return removed

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
        removed += self.clips.expire(now)
        if removed:
            log.info("file output: removed %d aired days and unused clips older than %d days", len(removed),
                     self.settings.keep_days)
        return removed


async def _heard(listening: asyncio.Task[float], cue: Cue) -> float:
    """The dead air silencedetect found; 0 when it could not listen (no ffmpeg: the airing is not its fault)."""
    from anchor.speech.audio import AudioError

    try:
        return await asyncio.wait_for(listening, LISTEN_GRACE)
    except (AudioError, TimeoutError) as exc:
        log.info("%s: could not listen to what aired: %s", cue.label, exc)
        return 0.0


def _partial_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")


async def _place(clip: Path, partial: Path) -> None:
    """Put the clip at `partial`: a hard link, or a copy (in a thread) when links are impossible."""
    try:
        os.link(clip, partial)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    stop = threading.Event()
    try:
        await asyncio.to_thread(_copy, clip, partial, stop)
    except asyncio.CancelledError:
        stop.set()  # the thread stops at its next chunk and removes its partial copy
        raise


class _Stopped(Exception):
    pass


def _copy(src: Path, partial: Path, stop: threading.Event) -> None:
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
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
