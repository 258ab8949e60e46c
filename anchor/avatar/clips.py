"""The one cache of talking clips, shared by every output that airs them.

A clip is data_dir/clips/<program key>-<picture key>.mp4. The picture key hashes everything that shapes
the picture (ClipPicture, the avatar's frames, the renderer's version), so a new clip setting changes the
key for every output at once. A clip is rendered once however many outputs or airings ask for it
(one lock per path), avatars are loaded and hashed once per folder, in a thread, and clips nobody used
for `keep_days` are swept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from anchor.avatar.face import DEFAULT_AVATAR, Avatar, load_avatar
from anchor.avatar.fonts import FontMissing, check_font
from anchor.problems import InputError
from anchor.speech.cache import cache_key
from anchor.speech.program_files import ProgramFiles

log = logging.getLogger(__name__)

FOLDER = "clips"  # under data_dir
STALE_WORK_SECONDS = 6 * 3600
SWEEP_EVERY_SECONDS = 3600.0


class ClipUnavailable(Exception):
    """The clip cannot be had; `reason` is a fixed word for metrics (font, ffmpeg, avatar, render, disk,
    audio), the message says what exactly."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LowerThird:
    """The caption band a viewer of a live room sees: who is broadcasting, and what this program is."""

    name: str  # the institution or channel
    title: str  # the program


@dataclass(frozen=True)
class ClipPicture:
    """Everything that shapes a clip's picture; all of it is in the clip's cache key."""

    width: int
    height: int
    fps: int
    background: str  # 0xRRGGBB
    subtitles: bool  # burned in (the file output) or not (OBS draws its own text sources)
    font: str  # used for burned-in text only
    lower_third: LowerThird | None = None  # burned in, or None (OBS draws its own)

    def shape(self) -> dict[str, object]:
        shape = asdict(self)
        if not self.subtitles and self.lower_third is None:
            shape.pop("font")  # a clip without text looks the same in any font
        return shape


@dataclass(frozen=True)
class ClipRequest:
    """One Program's clip: its key (part of the clip's name), its files, and a name for messages."""

    program_key: str
    files: ProgramFiles
    label: str  # the script, for log lines and errors


class ClipCache:
    _shared: ClassVar[dict[Path, ClipCache]] = {}

    def __init__(self, data_dir: Path, keep_days: int = 30) -> None:
        self.folder = data_dir / FOLDER
        self.keep_days = keep_days
        self._locks: dict[Path, asyncio.Lock] = {}
        self._avatars: dict[Path, Avatar] = {}
        self._swept_work = False
        self._swept_at = time.monotonic()  # the first retention sweep comes an hour after start

    @classmethod
    def shared(cls, data_dir: Path, keep_days: int = 30) -> ClipCache:
        """One cache per folder in a process, so every output shares its render-once locks."""
        key = data_dir.resolve()
        cache = cls._shared.get(key)
        if cache is None:
            cache = cls._shared[key] = cls(data_dir, keep_days)
        cache.keep_days = min(cache.keep_days, keep_days)
        return cache

    # -- avatars ------------------------------------------------------------------------------------------

    async def avatar(self, folder: Path | None) -> Avatar:
        """The avatar at `folder` (None: the default), checked and hashed once, in a thread."""
        folder = folder or DEFAULT_AVATAR
        found = self._avatars.get(folder)
        if found is None:
            def load() -> Avatar:
                loaded = load_avatar(folder)
                loaded.digest  # noqa: B018 - reads every frame: do it here, in the thread
                return loaded

            try:
                found = self._avatars[folder] = await asyncio.to_thread(load)
            except InputError as exc:
                raise ClipUnavailable("avatar", str(exc)) from exc
            except OSError as exc:
                raise ClipUnavailable("avatar", f"cannot read the avatar frames in {folder}: "
                                      f"{exc.strerror or exc}") from exc
        return found

    def forget_avatars(self) -> None:
        """Avatar frames may have been edited (a reload): read them again when next asked."""
        self._avatars.clear()

    # -- clips --------------------------------------------------------------------------------------------

    def path(self, request: ClipRequest, picture: ClipPicture, avatar: Avatar) -> Path:
        from anchor.avatar.clip import CLIP_VERSION  # the renderer (numpy, ffmpeg) loads with the first clip

        shape = cache_key({"clip": CLIP_VERSION, "picture": picture.shape(), "avatar": avatar.digest})[:16]
        return self.folder / f"{request.program_key}-{shape}.mp4"

    async def find(self, request: ClipRequest, picture: ClipPicture, avatar_folder: Path | None) -> Path | None:
        """The clip if it is already rendered (marked as used), else None. No rendering."""
        clip = self.path(request, picture, await self.avatar(avatar_folder))
        if not clip.is_file():
            return None
        _touch(clip)
        return clip

    async def clip(self, request: ClipRequest, picture: ClipPicture, avatar_folder: Path | None) -> Path:
        """The clip, rendered now unless cached. Raises ClipUnavailable."""
        avatar = await self.avatar(avatar_folder)
        clip = self.path(request, picture, avatar)
        if clip.is_file():
            _touch(clip)  # in use: keep it past the retention sweep
            return clip
        lock = self._locks.setdefault(clip, asyncio.Lock())
        try:
            async with lock:  # a second request for the same clip waits for the first render
                if not clip.is_file():
                    await self._render(request, picture, avatar, clip)
        finally:
            if not lock.locked():
                self._locks.pop(clip, None)
        await self._sweep_now_and_then()
        return clip

    async def _render(self, request: ClipRequest, picture: ClipPicture, avatar: Avatar, clip: Path) -> None:
        from anchor.avatar.clip import ClipError, clip_seed, render_talking_clip
        from anchor.speech.audio import AudioError

        if picture.subtitles or picture.lower_third is not None:
            try:
                await check_font(picture.font)
            except FontMissing as exc:
                raise ClipUnavailable("font", str(exc)) from exc
        await self._ready_to_write(request)
        try:
            report = await render_talking_clip(
                request.files.directory, avatar, clip, width=picture.width, height=picture.height, fps=picture.fps,
                background=picture.background, subtitles=picture.subtitles, font=picture.font,
                lower_third=(picture.lower_third.name, picture.lower_third.title) if picture.lower_third else None,
                seed=clip_seed(request.program_key))
        except (ClipError, AudioError, OSError) as exc:
            raise ClipUnavailable(_render_reason(exc),
                                  f"could not render the clip for '{request.label}': {exc}") from exc
        log.info("rendered clip %s for '%s' (%.1f s of audio) in %.1f s (%.3fx real time)", clip.name,
                 request.label, report.audio_seconds, report.render_seconds, report.real_time_factor)

    async def _ready_to_write(self, request: ClipRequest) -> None:
        if not request.files.wav.is_file():
            raise ClipUnavailable("audio", f"program '{request.label}' has no audio at {request.files.wav}")
        try:
            await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ClipUnavailable("disk", f"cannot create the clips folder {self.folder}: "
                                  f"{exc.strerror or exc}") from exc
        if not self._swept_work:
            self._swept_work = True
            await asyncio.to_thread(self._sweep_work)

    # -- the still picture: the step down -----------------------------------------------------------------

    async def still(self, request: ClipRequest, picture: ClipPicture, avatar_folder: Path | None) -> Path:
        """The program audio over one still picture (the avatar, or the background alone when its frames
        cannot be read): no font, no frame plan. Rendered unless cached; raises ClipUnavailable."""
        from anchor.avatar.clip import CLIP_VERSION, ClipError, render_still_clip
        from anchor.speech.audio import AudioError

        try:
            avatar: Avatar | None = await self.avatar(avatar_folder)
        except ClipUnavailable as exc:
            log.warning("still picture for '%s' without the avatar: %s", request.label, exc)
            avatar = None
        shape = {"still": CLIP_VERSION, "size": [picture.width, picture.height], "background": picture.background,
                 "avatar": avatar.digest if avatar else None}
        still = self.folder / f"{request.program_key}-still-{cache_key(shape)[:16]}.mp4"
        if still.is_file():
            _touch(still)
            return still
        lock = self._locks.setdefault(still, asyncio.Lock())
        try:
            async with lock:
                if not still.is_file():
                    await self._ready_to_write(request)
                    try:
                        took = await render_still_clip(request.files.directory, avatar, still, width=picture.width,
                                                       height=picture.height, background=picture.background)
                    except (ClipError, AudioError, OSError) as exc:
                        raise ClipUnavailable(_render_reason(exc), f"could not render the still picture for "
                                              f"'{request.label}': {exc}") from exc
                    log.info("rendered still %s for '%s' in %.1f s", still.name, request.label, took)
        finally:
            if not lock.locked():
                self._locks.pop(still, None)
        return still

    # -- cleanup ------------------------------------------------------------------------------------------

    def _sweep_work(self) -> None:
        """Work folders left by a killed render (a live render's is recent)."""
        from anchor.avatar.clip import WORK_PREFIX

        cutoff = time.time() - STALE_WORK_SECONDS
        for path in self.folder.glob(f"{WORK_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass

    async def _sweep_now_and_then(self) -> None:
        if time.monotonic() - self._swept_at > SWEEP_EVERY_SECONDS:
            self._swept_at = time.monotonic()
            await asyncio.to_thread(self.expire, datetime.now().astimezone())

    def expire(self, now: datetime) -> list[Path]:
        """Delete clips nobody used for keep_days. Blocking (a folder scan): call it in a thread."""
        cutoff = (now - timedelta(days=self.keep_days)).timestamp()
        removed = []
        for clip in self.folder.glob("*.mp4"):
            try:
                if clip.stat().st_mtime < cutoff:
                    clip.unlink()
                    removed.append(clip)
            except OSError:
                pass
        if removed:
            log.info("clips: removed %d not used for %d days", len(removed), self.keep_days)
        return removed


def _render_reason(exc: BaseException) -> str:
    """ffmpeg missing or the render itself failing (a crash, a timeout, a full disk)."""
    return "ffmpeg" if "is not installed" in str(exc) else "render"


def _touch(path: Path) -> None:
    """Mark a clip as just used, so retention sweeps keep it."""
    try:
        os.utime(path)
    except OSError:
        pass
