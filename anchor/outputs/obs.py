"""Airs Programs through OBS Studio (obs-websocket v5): one scene per channel, provisioned by anchor.

Each channel gets its own scene, `anchor·<channel>`, holding only inputs named `anchor·<channel>·…`
(bottom to top): a background colour, the idle avatar (its mouth_closed.png, or idle.mp4 looping), the
program media source (the talking clip, rendered without subtitles), the subtitle text and the title text.
Nothing else in OBS is touched. Provisioning is idempotent and runs lazily on a channel's first
prepare/air and again after every reconnection (OBS may have been restarted with a fresh collection).

prepare() renders the clip (cached under data_dir/clips, like the file output) and, when the airing is
near, loads it into the program source and STOPs it, so at the instant only RESTART remains. air() makes
the scene the program scene, RESTARTs the media, times subtitles from the real MediaInputPlaybackStarted
event on the monotonic clock, and waits for MediaInputPlaybackEnded. Facts about OBS 29 used here are in
notes/obs-headless.md (media inputs advance only while on program; a newly loaded file starts at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from anchor import metrics
from anchor.avatar import DEFAULT_AVATAR, Avatar, load_avatar
from anchor.avatar.clip import CLIP_VERSION, CLIPS_FOLDER, ClipError, clip_seed, render_talking_clip
from anchor.outputs import register
from anchor.outputs.base import (AiredResult, AiringInterrupted, ClipOutputSettings, Cue, Output, OutputError,
                                 OutputSettings, OutputUnavailable)
from anchor.outputs.obs_connection import (ObsConnection, ObsError, ObsRequestError, ObsUnavailable, password_env_name,
                                           password_for)
from anchor.problems import InputError
from anchor.speech import audio
from anchor.speech.cache import cache_key
from anchor.video import FontMissing, check_font, touch

if TYPE_CHECKING:
    from anchor.config import Settings as AppSettings

log = logging.getLogger(__name__)

SEP = "·"
PRELOAD_WITHIN = timedelta(seconds=10)  # prepare() loads the clip into OBS when the airing is this near
PREROLL_INITIAL = 0.04  # OBS 29 here: RESTART → MediaInputPlaybackStarted is typically 40–50 ms
PREROLL_MAX = 0.25
STARTED_GRACE = 2.0  # seconds to wait for MediaInputPlaybackStarted before trusting the RESTART call's time
END_GUARD = 5.0  # seconds past the program's length before giving up on MediaInputPlaybackEnded
CLEANUP_TIMEOUT = 1.5
PREPARE_CONNECT_WAIT = 2.0  # prepare() waits this long for a connection, then leaves OBS work to air()
WATCH_PERIOD = 0.1
MEDIA_STOPPED = ("OBS_MEDIA_STATE_STOPPED", "OBS_MEDIA_STATE_ENDED", "OBS_MEDIA_STATE_NONE")
ROLES = ("background", "idle", "program", "subtitle", "title")  # bottom to top
STATE_PERIOD = 1.0  # seconds between updates of anchor_obs_connected / anchor_obs_reconnects_total
STATS_PERIOD = 5.0  # seconds between GetStats/GetStreamStatus polls while connected
STATS_REQUEST_TIMEOUT = 1.0


def scene_name(channel_id: str) -> str:
    return f"anchor{SEP}{channel_id}"


def input_name(channel_id: str, role: str) -> str:
    return f"anchor{SEP}{channel_id}{SEP}{role}"


class MeteredConnection(ObsConnection):
    """An ObsConnection whose answered requests feed anchor_obs_request_seconds{obs}."""

    async def call(self, request_name: str, /, *, request_timeout: float | None = None,
                   **data: Any) -> dict[str, Any]:
        started = time.monotonic()
        try:
            answer = await super().call(request_name, request_timeout=request_timeout, **data)
        except ObsRequestError:
            metrics.OBS_REQUEST_SECONDS.labels(self.name).observe(time.monotonic() - started)
            raise
        metrics.OBS_REQUEST_SECONDS.labels(self.name).observe(time.monotonic() - started)
        return answer


class ObsOutputSettings(ClipOutputSettings):
    """[outputs.obs]: the clip's picture (width, height, fps, font, background) plus the live text sources."""

    subtitle_size: int = Field(28, ge=8, le=400)
    subtitle_y: float = Field(0.85, ge=0.0, le=1.0)  # centre of the subtitle line, as a fraction of the height
    title_size: int = Field(24, ge=8, le=400)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("the OBS password never goes in anchor.toml: set ANCHOR_OBS_PASSWORD_<NAME> (e.g. "
                             f"{password_env_name('studio')}) or a credentials file obs-password-<name> "
                             "(systemd LoadCredential=)")
        return data


def _abgr(rgb: str) -> int:
    """0xRRGGBB → OBS's 0xAABBGGRR, opaque."""
    value = int(rgb, 16)
    r, g, b = (value >> 16) & 255, (value >> 8) & 255, value & 255
    return (0xFF << 24) | (b << 16) | (g << 8) | r


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue, seconds."""
    def seconds(stamp: str) -> float:
        h, m, s = stamp.strip().replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        lines = block.strip().splitlines()
        if len(lines) < 2 or "-->" not in lines[1]:
            continue
        start, end = lines[1].split("-->")
        cues.append((seconds(start), seconds(end), "\n".join(lines[2:])))
    return cues


def _contains(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Every wanted setting already has that value (nested tables compared the same way)."""
    for key, value in wanted.items():
        have = current.get(key)
        if isinstance(value, dict):
            if not isinstance(have, dict) or not _contains(have, value):
                return False
        elif have != value:
            return False
    return True


class _Channel:
    """What provisioning needs to (re)build a channel's scene."""

    def __init__(self, channel_id: str, avatar: Avatar) -> None:
        self.id = channel_id
        self.avatar = avatar
        self.scene = scene_name(channel_id)
        self.inputs = {role: input_name(channel_id, role) for role in ROLES}
        self.items: dict[str, int] = {}  # role → sceneItemId, in the current OBS

    def input(self, role: str) -> str:
        return self.inputs[role]


@register
class ObsOutput(Output):
    name = "obs"
    Settings = ObsOutputSettings
    settings: ObsOutputSettings

    def __init__(self, settings: OutputSettings, data_dir: Path, *, target: str = "default",
                 host: str = "127.0.0.1", port: int = 4455, password: str | None = None,
                 request_timeout: float = 3.0, **connection_options: Any) -> None:
        super().__init__(settings, data_dir)
        self.target = target
        self.conn = MeteredConnection(target, host, port, password, request_timeout=request_timeout,
                                      **connection_options)
        self.conn.on_connected.append(self._reprovision)
        self._channels: dict[str, _Channel] = {}
        self._provisioned: set[str] = set()
        self._provision_locks: dict[str, asyncio.Lock] = {}
        self._render_locks: dict[Path, asyncio.Lock] = {}
        self._avatars: dict[Path, Avatar] = {}
        self._canvas: tuple[int, int] | None = None
        self.last_start_lateness: float | None = None  # seconds from the RESTART call to PlaybackStarted
        self.preroll = PREROLL_INITIAL
        self._cued: dict[str, tuple[Path, int]] = {}  # scene → (clip, connection generation) cued by cue_up
        self._poller: asyncio.Task[None] | None = None
        self._reconnects_seen = 0
        metrics.OBS_CONNECTED.labels(target).set(0)
        metrics.OBS_RECONNECTS.labels(target)  # exported as 0 from the start

    @classmethod
    def create(cls, app: AppSettings, target: str, **connection_options: Any) -> "ObsOutput":
        obs = app.obs.get(target)
        if obs is None:
            known = ", ".join(sorted(app.obs)) or "none"
            raise OutputError(f"output 'obs:{target}': no [obs.{target}] table in the configuration "
                              f"(OBS connections defined: {known})")
        try:
            password = password_for(target)
        except ObsError as exc:
            raise OutputError(str(exc)) from exc
        return cls(app.output_settings(cls.name), app.data_dir, target=target, host=obs.host, port=obs.port,
                   password=password, request_timeout=obs.request_timeout, **connection_options)

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        await self.conn.close()
        metrics.OBS_CONNECTED.labels(self.target).set(0)

    # -- metrics ------------------------------------------------------------------------------------------

    async def _start(self) -> None:
        """Start the connection (background) and, with it, the stats poller."""
        await self.conn.start()
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name=f"obs-{self.target}-stats")

    def update_connection_metrics(self) -> None:
        metrics.OBS_CONNECTED.labels(self.target).set(1 if self.conn.connected else 0)
        new = self.conn.reconnects - self._reconnects_seen
        if new > 0:
            metrics.OBS_RECONNECTS.labels(self.target).inc(new)
            self._reconnects_seen = self.conn.reconnects

    async def poll_stats(self) -> bool:
        """One GetStats + GetStreamStatus into the gauges; False (logged at debug) when OBS did not answer."""
        self.update_connection_metrics()
        if not self.conn.connected:
            return False
        target = self.target
        try:
            stats = await self.conn.call("GetStats", request_timeout=STATS_REQUEST_TIMEOUT)
            stream = await self.conn.call("GetStreamStatus", request_timeout=STATS_REQUEST_TIMEOUT)
        except ObsError as exc:
            log.debug("OBS '%s': stats poll failed: %s", target, exc)
            return False
        try:
            metrics.OBS_ACTIVE_FPS.labels(target).set(float(stats.get("activeFps") or 0.0))
            metrics.OBS_RENDER_SKIPPED_FRAMES.labels(target).set(float(stats.get("renderSkippedFrames") or 0))
            metrics.OBS_OUTPUT_SKIPPED_FRAMES.labels(target).set(float(stats.get("outputSkippedFrames") or 0))
            metrics.OBS_STREAM_ACTIVE.labels(target).set(1 if stream.get("outputActive") else 0)
            metrics.OBS_STREAM_RECONNECTING.labels(target).set(1 if stream.get("outputReconnecting") else 0)
            metrics.OBS_STREAM_SENT_BYTES.labels(target).set(float(stream.get("outputBytes") or 0))
        except (TypeError, ValueError) as exc:
            log.debug("OBS '%s': unexpected stats %r / %r: %s", target, stats, stream, exc)
            return False
        return True

    async def _poll(self) -> None:
        """Connection state every STATE_PERIOD, OBS's statistics every STATS_PERIOD while connected."""
        next_stats = 0.0
        while True:
            try:
                self.update_connection_metrics()
                if self.conn.connected and time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + STATS_PERIOD
                    await self.poll_stats()
                elif not self.conn.connected:
                    next_stats = 0.0  # poll at once after a (re)connection
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # metrics must never take the output down
                log.debug("OBS '%s': stats poller: %r", self.target, exc)
            await asyncio.sleep(STATE_PERIOD)

    # -- the clip ---------------------------------------------------------------------------------------

    @property
    def clips_dir(self) -> Path:
        return self.data_dir / CLIPS_FOLDER

    def _avatar(self, cue: Cue) -> Avatar:
        folder = cue.avatar or DEFAULT_AVATAR
        if folder not in self._avatars:
            self._avatars[folder] = load_avatar(folder)
        return self._avatars[folder]

    def clip_path(self, cue: Cue) -> Path:
        """data_dir/clips/<program key>-<hash>.mp4; the hash covers the picture (no burned subtitles)."""
        s = self.settings
        shape = cache_key({
            "clip": CLIP_VERSION, "subtitles": False,
            "settings": {"width": s.width, "height": s.height, "fps": s.fps, "background": s.background},
            "avatar": self._avatar(cue).digest(),
        })[:16]
        return self.clips_dir / f"{cue.program.key}-{shape}.mp4"

    async def _ensure_clip(self, cue: Cue) -> Path:
        try:
            clip = await asyncio.to_thread(self.clip_path, cue)
        except InputError as exc:
            raise OutputError(str(exc)) from exc
        if clip.is_file():
            touch(clip)
            return clip
        lock = self._render_locks.setdefault(clip, asyncio.Lock())
        async with lock:
            if clip.is_file():
                return clip
            program = cue.program
            if program.directory is None or not (program.directory / "program.wav").is_file():
                raise OutputError(f"program '{program.script}' has no audio on disk")
            s = self.settings
            try:
                self.clips_dir.mkdir(parents=True, exist_ok=True)
                report = await render_talking_clip(
                    program.directory, self._avatar(cue), clip, width=s.width, height=s.height, fps=s.fps,
                    background=s.background, subtitles=False, font=s.font, seed=clip_seed(program.key))
            except (ClipError, audio.AudioError, OSError) as exc:
                raise OutputError(f"could not render the clip for '{program.script}': {exc}") from exc
            log.info("obs: rendered clip %s for '%s' in %.1f s", clip.name, program.script, report.render_seconds)
        return clip

    # -- connection and provisioning ----------------------------------------------------------------------

    async def _connect(self, deadline: datetime | None, fallback: float) -> None:
        """Connected (hooks run) by `deadline` (or within `fallback` s), else OutputUnavailable."""
        await self._start()
        if self.conn.ready:
            return
        if deadline is not None:
            wait = max(0.0, (deadline - datetime.now(timezone.utc)).total_seconds())
        else:
            wait = fallback
        try:
            await self.conn.wait_connected(wait)
        except ObsUnavailable as exc:
            raise OutputUnavailable(str(exc)) from exc

    def _channel(self, cue: Cue) -> _Channel:
        return self._channel_for(cue.channel_id, cue.avatar)

    def _channel_for(self, channel_id: str, avatar_folder: Path | None) -> _Channel:
        channel = self._channels.get(channel_id)
        if channel is None:
            folder = avatar_folder or DEFAULT_AVATAR
            try:
                if folder not in self._avatars:
                    self._avatars[folder] = load_avatar(folder)
            except InputError as exc:
                raise OutputError(str(exc)) from exc
            channel = self._channels[channel_id] = _Channel(channel_id, self._avatars[folder])
            metrics.CHANNEL_OBS_INFO.labels(channel_id, self.target).set(1)
        return channel

    async def _reprovision(self, conn: ObsConnection) -> None:
        """on_connected hook: OBS may be a fresh process; rebuild every channel seen so far."""
        self._provisioned.clear()
        self._canvas = None
        for channel in list(self._channels.values()):
            try:
                await self._provision(channel)
            except ObsError as exc:
                log.warning("OBS '%s': provisioning %s failed: %s", self.target, channel.scene, exc)

    async def _ensure_scene(self, channel: _Channel) -> None:
        if channel.id in self._provisioned:
            return
        lock = self._provision_locks.setdefault(channel.id, asyncio.Lock())
        async with lock:
            if channel.id not in self._provisioned:
                await self._provision(channel)

    async def provision(self, cue: Cue) -> str:
        """Build (or check) the channel's scene now; returns its name. For tests and `anchor obs` commands."""
        await self._connect(cue.deadline, self.conn.connect_timeout)
        channel = self._channel(cue)
        self._provisioned.discard(channel.id)
        await self._ensure_scene(channel)
        return channel.scene

    async def setup(self, channel_id: str, avatar_folder: Path | None, timeout: float) -> list[tuple[str, str]]:
        """`anchor obs setup`: connect (within `timeout` s) and provision the channel's scene now.
        Returns (what, action) pairs: created, updated, replaced, added to the scene or already there."""
        await self._start()
        await self.conn.wait_connected(timeout)
        channel = self._channel_for(channel_id, avatar_folder)  # after the hooks ran: the report is ours
        async with self._provision_locks.setdefault(channel.id, asyncio.Lock()):
            return await self._provision(channel)

    async def status(self, channel_ids: list[str], timeout: float) -> dict[str, Any]:
        """`anchor obs status`: what OBS says about itself and about these channels' scenes. Changes nothing."""
        await self._start()
        await self.conn.wait_connected(timeout)
        call = self.conn.call
        program = (await call("GetCurrentProgramScene")).get("currentProgramSceneName")
        scenes = {s["sceneName"] for s in (await call("GetSceneList"))["scenes"]}
        channels = []
        for channel_id in channel_ids:
            scene = scene_name(channel_id)
            media: str | None = None
            if scene in scenes:
                try:
                    answer = await call("GetMediaInputStatus", inputName=input_name(channel_id, "program"))
                    media = str(answer.get("mediaState") or "unknown").removeprefix("OBS_MEDIA_STATE_").lower()
                except ObsRequestError as exc:
                    media = f"unavailable ({exc.comment or exc.code})"
            channels.append({"channel": channel_id, "scene": scene, "exists": scene in scenes,
                             "on_program": program == scene, "media": media})
        stats = await call("GetStats")
        stream = await call("GetStreamStatus")
        record = await call("GetRecordStatus")
        await self.poll_stats()
        return {"obs_version": self.conn.obs_version, "websocket_version": self.conn.websocket_version,
                "program_scene": program, "channels": channels, "stats": stats, "stream": stream,
                "record": record}

    async def _canvas_size(self) -> tuple[int, int]:
        if self._canvas is None:
            video = await self.conn.call("GetVideoSettings")
            self._canvas = (int(video["baseWidth"]), int(video["baseHeight"]))
        return self._canvas

    def _input_settings(self, channel: _Channel, width: int, height: int) -> dict[str, tuple[str, dict[str, Any]]]:
        s = self.settings
        avatar = channel.avatar
        if avatar.idle is not None:
            idle = ("ffmpeg_source", {"local_file": str(avatar.idle), "is_local_file": True, "looping": True,
                                      "restart_on_activate": True, "close_when_inactive": False})
        else:
            idle = ("image_source", {"file": str(avatar.mouths[0])})

        def text(size: int) -> dict[str, Any]:
            return {"font": {"face": s.font, "size": size, "style": "Regular", "flags": 0},
                    "color1": 0xFFFFFFFF, "color2": 0xFFFFFFFF, "outline": True, "drop_shadow": False}

        return {
            "background": ("color_source_v3", {"color": _abgr(s.background), "width": width, "height": height}),
            "idle": idle,
            "program": ("ffmpeg_source", {"is_local_file": True, "looping": False, "restart_on_activate": False,
                                          "close_when_inactive": False, "clear_on_media_end": True}),
            "subtitle": ("text_ft2_source_v2", text(s.subtitle_size)),
            "title": ("text_ft2_source_v2", text(s.title_size)),
        }

    def _transforms(self, width: int, height: int) -> dict[str, dict[str, Any]]:
        s = self.settings
        whole = {"positionX": 0.0, "positionY": 0.0, "alignment": 5, "boundsType": "OBS_BOUNDS_SCALE_INNER",
                 "boundsWidth": float(width), "boundsHeight": float(height)}
        return {
            "background": {"positionX": 0.0, "positionY": 0.0, "alignment": 5, "boundsType": "OBS_BOUNDS_STRETCH",
                           "boundsWidth": float(width), "boundsHeight": float(height), "boundsAlignment": 0},
            # Like the clip's layout: fitted, centred, standing on the bottom edge.
            "idle": {**whole, "boundsAlignment": 8},
            "program": {**whole, "boundsAlignment": 0},
            # Centred on a point; long lines are shrunk to fit 92 % of the width.
            "subtitle": {"positionX": width / 2, "positionY": height * s.subtitle_y, "alignment": 0,
                         "boundsType": "OBS_BOUNDS_MAX_ONLY", "boundsWidth": width * 0.92,
                         "boundsHeight": float(s.subtitle_size * 3), "boundsAlignment": 0},
            "title": {"positionX": width / 2, "positionY": height * 0.04, "alignment": 4,
                      "boundsType": "OBS_BOUNDS_MAX_ONLY", "boundsWidth": width * 0.92,
                      "boundsHeight": float(s.title_size * 2), "boundsAlignment": 4},
        }

    async def _provision(self, channel: _Channel) -> list[tuple[str, str]]:
        """Create what is missing of the channel's scene and put our own inputs in order. Idempotent.
        Returns what was done, as (scene or input name, action) pairs."""
        call = self.conn.call
        done: list[tuple[str, str]] = []
        width, height = await self._canvas_size()
        scenes = {s["sceneName"] for s in (await call("GetSceneList"))["scenes"]}
        if channel.scene not in scenes:
            await call("CreateScene", sceneName=channel.scene)
            done.append((channel.scene, "created"))
        else:
            done.append((channel.scene, "already there"))
        existing = {i["inputName"]: i["inputKind"] for i in (await call("GetInputList"))["inputs"]}
        items = {i["sourceName"]: i for i in (await call("GetSceneItemList", sceneName=channel.scene))["sceneItems"]}
        wanted = self._input_settings(channel, width, height)
        transforms = self._transforms(width, height)
        channel.items.clear()
        for role in ROLES:
            name = channel.input(role)
            kind, settings = wanted[role]
            replaced = False
            if name in existing and existing[name] != kind:
                replaced = True
                await call("RemoveInput", inputName=name)  # ours, by name; the wrong kind (idle.mp4 added)
                existing.pop(name)
                items.pop(name, None)
            enabled = role != "program"
            if name not in existing:
                answer = await call("CreateInput", sceneName=channel.scene, inputName=name, inputKind=kind,
                                    inputSettings=settings, sceneItemEnabled=enabled)
                item_id = int(answer["sceneItemId"])
                done.append((name, f"replaced ({kind})" if replaced else "created"))
            else:
                actions = []
                current = (await call("GetInputSettings", inputName=name))["inputSettings"]
                if not _contains(current, settings):  # an update restarts a media source: only when needed
                    await call("SetInputSettings", inputName=name, inputSettings=settings, overlay=True)
                    actions.append("settings updated")
                if name in items:
                    item_id = int(items[name]["sceneItemId"])
                else:
                    answer = await call("CreateSceneItem", sceneName=channel.scene, sourceName=name,
                                        sceneItemEnabled=enabled)
                    item_id = int(answer["sceneItemId"])
                    actions.append("added to the scene")
                done.append((name, ", ".join(actions) or "already there"))
            channel.items[role] = item_id
            await call("SetSceneItemTransform", sceneName=channel.scene, sceneItemId=item_id,
                       sceneItemTransform=transforms[role])
        for index, role in enumerate(ROLES):  # bottom (0) to top; anything else someone added stays above
            await call("SetSceneItemIndex", sceneName=channel.scene, sceneItemId=channel.items[role],
                       sceneItemIndex=index)
        self._provisioned.add(channel.id)
        log.info("OBS '%s': scene %s provisioned", self.target, channel.scene)
        return done

    # -- the program media source --------------------------------------------------------------------------

    async def _loaded(self, channel: _Channel, clip: Path) -> bool:
        """The clip is in the program source and stopped: only RESTART remains."""
        name = channel.input("program")
        current = (await self.conn.call("GetInputSettings", inputName=name))["inputSettings"]
        if current.get("local_file") != str(clip):
            return False
        state = (await self.conn.call("GetMediaInputStatus", inputName=name)).get("mediaState")
        return state in MEDIA_STOPPED

    async def _load(self, channel: _Channel, clip: Path) -> None:
        """Put the clip into the program source and STOP it (a newly loaded file starts playing at once)."""
        name = channel.input("program")
        started = self.conn.next_event("MediaInputPlaybackStarted", lambda d: d.get("inputName") == name, 1.0)
        try:
            await self.conn.call("SetInputSettings", inputName=name, inputSettings={"local_file": str(clip)},
                                 overlay=True)
            try:
                await started  # its late arrival must not be taken for the airing's start
            except TimeoutError:
                pass
        finally:
            if not started.done():
                started.cancel()
        await self.conn.call("TriggerMediaInputAction", inputName=name,
                             mediaAction="OBS_WEBSOCKET_MEDIA_INPUT_ACTION_STOP")

    # -- prepare / air ------------------------------------------------------------------------------------

    async def prepare(self, cue: Cue) -> None:
        clip = await self._ensure_clip(cue)
        channel = self._channel(cue)
        try:
            await check_font(self.settings.font)
        except FontMissing as exc:
            raise OutputError(str(exc)) from exc
        await self._start()
        if not self.conn.ready:
            try:  # a connection just started is usually up within a second
                await self.conn.wait_connected(PREPARE_CONNECT_WAIT)
            except ObsUnavailable:
                pass
        if not self.conn.ready:
            log.info("OBS '%s' not connected: %s is prepared when it is (%s)", self.target, channel.scene,
                     self.conn.last_error or "connecting")
            return
        try:
            await self._ensure_scene(channel)
            if cue.planned_at - datetime.now(timezone.utc) <= PRELOAD_WITHIN and not await self._loaded(channel, clip):
                await self._load(channel, clip)
        except ObsUnavailable as exc:
            log.info("OBS '%s': prepare of %s left to air: %s", self.target, channel.scene, exc)
        except ObsError as exc:
            raise OutputError(str(exc)) from exc

    async def _cue(self, channel: _Channel, cue: Cue, clip: Path) -> None:
        """Everything before RESTART: the scene, the clip loaded and stopped, the title, the scene on program."""
        await self._ensure_scene(channel)
        if not await self._loaded(channel, clip):
            await self._load(channel, clip)
        await self._set_text(channel, "title", cue.program.title)
        await self._set_text(channel, "subtitle", "")
        current = (await self.conn.call("GetCurrentProgramScene")).get("currentProgramSceneName")
        if current != channel.scene:
            await self.conn.call("SetCurrentProgramScene", sceneName=channel.scene)
        await self._enable(channel, "program", True)

    async def cue_up(self, cue: Cue) -> None:
        """Done in the Station's lead, so at the instant only RESTART goes out."""
        if not self.conn.ready:
            return  # air() waits for the connection until the deadline
        try:
            clip = self.clip_path(cue)
            if not clip.is_file():
                return
            channel = self._channel(cue)
            await self._cue(channel, cue, clip)
            self._cued[channel.scene] = (clip, self.conn.reconnects)  # void if OBS reconnects in between
        except (InputError, ObsError) as exc:
            raise OutputError(str(exc)) from exc

    async def air(self, cue: Cue) -> AiredResult:
        try:
            clip = self.clip_path(cue)
        except InputError as exc:
            raise OutputError(str(exc)) from exc
        if not clip.is_file():
            log.warning("%s/%s: clip for '%s' was not prepared ahead; rendering it now", cue.channel_id, cue.slot,
                        cue.program.script)
            clip = await self._ensure_clip(cue)
        channel = self._channel(cue)
        await self._connect(cue.deadline, self.conn.request_timeout)
        program_srt = cue.program.directory / "program.srt" if cue.program.directory else None
        subtitles = parse_srt(program_srt.read_text(encoding="utf-8")) if program_srt and program_srt.is_file() else []
        started_at: datetime | None = None
        try:
            # Until RESTART nothing is on air: a lost connection before it means "missed", not "interrupted".
            try:
                if self._cued.pop(channel.scene, None) != (clip, self.conn.reconnects):
                    await self._cue(channel, cue, clip)
            except ObsUnavailable as exc:
                raise OutputUnavailable(str(exc)) from exc
            program = channel.input("program")
            is_ours = lambda d: d.get("inputName") == program  # noqa: E731
            restarted = False
            # An end reported before our RESTART went out is a stale one (an earlier load or airing).
            ours_after_restart = lambda d: restarted and is_ours(d)  # noqa: E731
            started_event = self.conn.next_event("MediaInputPlaybackStarted", ours_after_restart, STARTED_GRACE)
            ended_event = self.conn.next_event("MediaInputPlaybackEnded", ours_after_restart,
                                               cue.program.duration_seconds + END_GUARD + STARTED_GRACE)
            try:
                restart_wall = datetime.now(timezone.utc)
                restart_mono = time.monotonic()
                restarted = True
                try:
                    await self.conn.call("TriggerMediaInputAction", inputName=program,
                                         mediaAction="OBS_WEBSOCKET_MEDIA_INPUT_ACTION_RESTART")
                except ObsUnavailable as exc:
                    raise OutputUnavailable(str(exc)) from exc
                started_at, start_mono = restart_wall, restart_mono
                try:
                    await started_event
                    start_mono = time.monotonic()
                    started_at = restart_wall + timedelta(seconds=start_mono - restart_mono)
                except TimeoutError:
                    log.warning("OBS '%s': no MediaInputPlaybackStarted within %g s of RESTART; timing from the "
                                "request", self.target, STARTED_GRACE)
                self.last_start_lateness = start_mono - restart_mono
                # A running average of OBS's own start-up time: the Station sends RESTART this much early.
                self.preroll = min(PREROLL_MAX, 0.8 * self.preroll + 0.2 * self.last_start_lateness)
                await self._enable(channel, "idle", False)
                await self._play(channel, cue, subtitles, start_mono, ended_event)
                # OBS reports the end when the decoder reaches it, a few hundred ms before the last buffered
                # audio is out: hold the channel for the program's own length (bounded).
                rest = start_mono + cue.program.duration_seconds - time.monotonic()
                if rest > 0:
                    await asyncio.sleep(min(rest, 1.0))
            finally:
                for future in (started_event, ended_event):
                    if not future.done():
                        future.cancel()
            ended_at = started_at + timedelta(seconds=time.monotonic() - start_mono)
        except asyncio.CancelledError:
            await self._cleanup(channel, stop=True)
            raise
        except (ObsUnavailable, AiringInterrupted) as exc:
            if started_at is None:
                raise
            if isinstance(exc, AiringInterrupted):
                raise
            raise AiringInterrupted(f"OBS '{self.target}' lost '{cue.program.script}' midway: {exc}") from exc
        except OutputUnavailable:
            raise
        except ObsError as exc:
            await self._cleanup(channel, stop=True)
            if started_at is None:
                raise OutputError(str(exc)) from exc
            raise AiringInterrupted(f"OBS '{self.target}' failed during '{cue.program.script}': {exc}") from exc
        await self._cleanup(channel, stop=False)
        return AiredResult(started_at, ended_at, {"obs": self.target, "scene": channel.scene})

    async def _play(self, channel: _Channel, cue: Cue, subtitles: list[tuple[float, float, str]],
                    start_mono: float, ended: asyncio.Future[dict[str, Any]]) -> None:
        """Subtitles on the monotonic clock from the real start, until the media ends or the connection drops."""
        driver = asyncio.create_task(self._drive_subtitles(channel, subtitles, start_mono))
        limit = start_mono + cue.program.duration_seconds + END_GUARD
        try:
            while not ended.done():
                if not self.conn.connected:
                    raise AiringInterrupted(f"OBS '{self.target}' connection lost during '{cue.program.script}': "
                                            f"{self.conn.last_error}")
                if driver.done() and driver.exception() is not None:
                    raise driver.exception()  # type: ignore[misc]
                if time.monotonic() > limit:
                    state = (await self.conn.call("GetMediaInputStatus", inputName=channel.input("program"))
                             ).get("mediaState")
                    if state in MEDIA_STOPPED:
                        log.warning("OBS '%s': no MediaInputPlaybackEnded; the media is %s", self.target, state)
                        return
                    raise AiringInterrupted(f"OBS '{self.target}': '{cue.program.script}' still {state} "
                                            f"{END_GUARD:g} s after its length")
                await asyncio.wait([ended], timeout=WATCH_PERIOD)
            if ended.exception() is not None:  # closed connection or timeout
                exc = ended.exception()
                if isinstance(exc, ObsError):
                    raise exc
                raise AiringInterrupted(f"OBS '{self.target}': {exc}")
        finally:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)

    async def _drive_subtitles(self, channel: _Channel, subtitles: list[tuple[float, float, str]],
                               start_mono: float) -> None:
        for start, end, text in subtitles:
            await asyncio.sleep(max(0.0, start_mono + start - time.monotonic()))
            await self._set_text(channel, "subtitle", text)
            await asyncio.sleep(max(0.0, start_mono + end - time.monotonic()))
            # Clear unless the next cue starts right away (no flicker between touching cues).
            following = [s for s, _, _ in subtitles if s >= end - 1e-3]
            if not following or following[0] - end > 0.05:
                await self._set_text(channel, "subtitle", "")

    async def _set_text(self, channel: _Channel, role: str, text: str) -> None:
        await self.conn.call("SetInputSettings", inputName=channel.input(role), inputSettings={"text": text},
                             overlay=True)

    async def _enable(self, channel: _Channel, role: str, enabled: bool) -> None:
        await self.conn.call("SetSceneItemEnabled", sceneName=channel.scene, sceneItemId=channel.items[role],
                             sceneItemEnabled=enabled)

    async def _cleanup(self, channel: _Channel, *, stop: bool) -> None:
        """Back to idle, best effort and short: show idle, hide the program, clear the subtitles."""
        if not self.conn.connected or not channel.items:
            return
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT):
                await self._enable(channel, "idle", True)
                await self._enable(channel, "program", False)
                if stop:
                    await self.conn.call("TriggerMediaInputAction", inputName=channel.input("program"),
                                         mediaAction="OBS_WEBSOCKET_MEDIA_INPUT_ACTION_STOP")
                await self._set_text(channel, "subtitle", "")
        except (ObsError, TimeoutError) as exc:
            log.info("OBS '%s': cleanup of %s incomplete: %s", self.target, channel.scene, exc)
