"""Airs Programs through OBS Studio (obs-websocket v5), each channel in its own scene (scene.py).

prepare() has the clip made (the shared clip cache; no text in it: OBS draws the lower third and the
subtitles as live text sources) and, when the airing is near, loads it into the program source stopped.
cue_up(), in the on-air lead, puts the title in place and the scene on program, so at the instant only
RESTART goes out. air() starts the media, follows it to its end with live subtitles, and goes back to idle.
Scenes are provisioned lazily on a channel's first use and again after every reconnection (OBS may have
been restarted with a fresh collection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor.avatar.clips import ClipCache, ClipPicture, ClipUnavailable
from anchor.avatar.face import Avatar
from anchor.avatar.fonts import FontMissing, check_font
from anchor.credentials import CredentialError, find_secret
from anchor.outputs import register
from anchor.outputs.base import (
    AiredResult,
    AiringInterrupted,
    Cue,
    Degradation,
    Output,
    OutputError,
    OutputSettings,
    OutputUnavailable,
    Rung,
)
from anchor.outputs.dead_air import DeadAirMeter
from anchor.outputs.obs import scene as obs_scene
from anchor.outputs.obs.errors import ObsError, ObsUnavailable, PlaybackLost
from anchor.outputs.obs.scene import ChannelScene
from anchor.outputs.obs.settings import PASSWORD, ObsOutputSettings
from anchor.speech.subtitles import read_srt

if TYPE_CHECKING:
    from anchor.config import OutputRef
    from anchor.config import Settings as AppSettings
    from anchor.outputs.obs.connection import ObsConnection
    from anchor.outputs.obs.playback import ProgramMedia

# The websocket client (connection, playback) and the metrics load when an output is made, not when this
# module is imported to check an [outputs.obs] table.

log = logging.getLogger(__name__)

PRELOAD_WITHIN = timedelta(seconds=10)  # prepare() loads the clip into OBS when the airing is this near
PREROLL_INITIAL = 0.04  # OBS 29 here: RESTART → MediaInputPlaybackStarted is typically 40–50 ms
PREROLL_MAX = 0.25
CLEANUP_TIMEOUT = 1.5
PREPARE_CONNECT_WAIT = 2.0  # prepare() waits this long for a connection, then leaves OBS work to air()


@register
class ObsOutput(Output):
    name = "obs"
    Settings = ObsOutputSettings
    settings: ObsOutputSettings

    def __init__(self, settings: OutputSettings, data_dir: Path, *, target: str = "default",
                 host: str = "127.0.0.1", port: int = 4455, password: str | None = None,
                 request_timeout: float = 3.0, **connection_options: Any) -> None:
        from anchor.outputs.obs.connection import ObsConnection
        from anchor.outputs.obs.stats import StatsPoller

        super().__init__(settings, data_dir)
        self.target = target
        self.conn = ObsConnection(target, host, port, password, request_timeout=request_timeout,
                                  **connection_options)
        self.conn.on_connected.append(self._reprovision)
        self.stats = StatsPoller(self.conn)
        self.clips = ClipCache.shared(data_dir)
        self._scenes: dict[str, ChannelScene] = {}
        self._provisioned: set[str] = set()
        self._provision_locks: dict[str, asyncio.Lock] = {}
        self._cued: dict[str, tuple[Path, int]] = {}  # scene → (media, connection generation) cued by cue_up
        self._steps_down: dict[tuple[str, Path | None], Degradation] = {}  # (program, avatar) → why no clip
        self._late_renders: set[asyncio.Task[Path | None]] = set()
        self.last_start_lateness: float | None = None  # seconds from the RESTART call to PlaybackStarted
        self.preroll = PREROLL_INITIAL

    @classmethod
    def create(cls, app: AppSettings, ref: OutputRef, **connection_options: Any) -> ObsOutput:
        obs = app.obs.get(ref.target)
        if obs is None:
            known = ", ".join(sorted(app.obs)) or "none"
            raise OutputError(f"output '{ref}': no [obs.{ref.target}] table in the configuration "
                              f"(OBS connections defined: {known})")
        try:
            password = find_secret(PASSWORD, ref.target)
        except CredentialError as exc:
            raise OutputError(str(exc)) from exc
        return cls(cls.settings_from(app), app.data_dir, target=ref.target, host=obs.host, port=obs.port,
                   password=password, request_timeout=obs.request_timeout, **connection_options)

    async def start(self) -> None:
        """Start connecting (in the background) and polling OBS's health."""
        await self.conn.start()
        self.stats.start()

    def health(self) -> dict[str, object]:
        return {"obs": self.target, "connected": self.conn.connected, "version": self.conn.obs_version,
                "last_error": None if self.conn.connected else self.conn.last_error,
                "reconnects": self.conn.reconnects,
                # is the live room getting a picture? (as of the last stats poll, every few seconds)
                "streaming": self.stats.streaming, "stream_reconnecting": self.stats.stream_reconnecting}

    async def close(self) -> None:
        for task in list(self._late_renders):
            task.cancel()
        await asyncio.gather(*self._late_renders, return_exceptions=True)
        await self.stats.stop()
        await self.conn.close()

    # -- scenes -----------------------------------------------------------------------------------------

    async def scene_for(self, channel_id: str, avatar_folder: Path | None) -> ChannelScene:
        scene = self._scenes.get(channel_id)
        if scene is None:
            try:
                avatar: Avatar | None = await self.clips.avatar(avatar_folder)
            except ClipUnavailable as exc:  # the scene still airs the program's audio, over no picture
                log.warning("OBS '%s': channel %s has no avatar to show: %s", self.target, channel_id, exc)
                avatar = None
            scene = self._scenes[channel_id] = ChannelScene(channel_id, avatar)
            from anchor import metrics

            metrics.CHANNEL_OBS_INFO.labels(channel_id, self.target).set(1)
        return scene

    async def _reprovision(self, conn: ObsConnection) -> None:
        """on_connected hook: OBS may be a fresh process; rebuild every channel's scene seen so far."""
        self._provisioned.clear()
        for scene in list(self._scenes.values()):
            try:
                await self._provision(scene)
            except ObsError as exc:
                log.warning("OBS '%s': provisioning %s failed: %s", self.target, scene.name, exc)

    async def _provision(self, scene: ChannelScene) -> list[tuple[str, str]]:
        async with self._provision_locks.setdefault(scene.channel_id, asyncio.Lock()):
            done = await obs_scene.provision(self.conn, scene, self.settings)
            self._provisioned.add(scene.channel_id)
            return done

    async def _ensure_scene(self, scene: ChannelScene) -> None:
        if scene.channel_id not in self._provisioned:
            await self._provision(scene)

    async def provision(self, cue: Cue) -> str:
        """Build (or check) the channel's scene now; returns its name. For tests and `anchor obs setup`."""
        await self._connect(cue.deadline, self.conn.connect_timeout)
        scene = await self.scene_for(cue.channel_id, cue.avatar)
        await self._provision(scene)
        return scene.name

    async def setup(self, channel_id: str, avatar_folder: Path | None, timeout: float) -> list[tuple[str, str]]:
        """`anchor obs setup`: connect (within `timeout` s) and provision the channel's scene now.
        Returns (what, action) pairs: created, updated, replaced, added to the scene or already there."""
        await self.start()
        await self.conn.wait_first_attempt(timeout)
        scene = await self.scene_for(channel_id, avatar_folder)  # after the hooks ran: the report is ours
        return await self._provision(scene)

    async def _connect(self, deadline: datetime | None, fallback: float) -> None:
        """Connected (hooks run) by `deadline` (or within `fallback` s), else OutputUnavailable."""
        await self.start()
        if self.conn.ready:
            return
        wait = max(0.0, (deadline - datetime.now(UTC)).total_seconds()) if deadline else fallback
        try:
            await self.conn.wait_connected(wait)
        except ObsUnavailable as exc:
            raise OutputUnavailable(str(exc)) from exc

    # -- the clip ---------------------------------------------------------------------------------------

    def picture(self) -> ClipPicture:
        return self.settings.picture(subtitles=False, lower_third=None)  # OBS draws its own text

    async def _make_clip(self, cue: Cue) -> Path | None:
        """The talking clip, rendered unless cached; None (and why, said once) when it cannot be made."""
        key = (cue.program.key, cue.avatar)
        try:
            clip = await self.clips.clip(cue.clip_request, self.picture(), cue.avatar)
        except ClipUnavailable as exc:
            down = Degradation(exc.reason, str(exc))
            if self._steps_down.get(key) != down:
                log.warning("%s: the talking clip of '%s' cannot be made (%s); its audio airs over the still "
                            "avatar instead", cue.label, cue.program.script, down.detail)
            self._steps_down[key] = down
            return None
        self._steps_down.pop(key, None)
        return clip

    async def _ready_media(self, cue: Cue, scene: ChannelScene) -> tuple[Path, Rung, Degradation | None]:
        """What the program source plays now, without waiting for a render: the clip, else the program's
        audio over the still avatar (or over nothing, when the avatar cannot be shown)."""
        try:
            clip = await self.clips.find(cue.clip_request, self.picture(), cue.avatar)
        except ClipUnavailable:
            clip = None
        if clip is not None:
            return clip, Rung.CLIP, None
        down = self._steps_down.get((cue.program.key, cue.avatar))
        if down is None:  # nobody tried: not made ready in time; have it made for the next airing
            down = Degradation("late", "the talking clip was not ready at air time")
            task = asyncio.create_task(self._make_clip(cue), name=f"clip for {cue.program.script}")
            self._late_renders.add(task)
            task.add_done_callback(self._late_renders.discard)
        return cue.program.files.wav, Rung.STILL if scene.avatar is not None else Rung.AUDIO, down

    # -- prepare, cue up, air ---------------------------------------------------------------------------

    async def prepare(self, cue: Cue) -> None:
        clip = await self._make_clip(cue) or cue.program.files.wav
        try:
            await check_font(self.settings.font)
        except FontMissing as exc:  # the lower third and subtitles would be empty boxes: say so, air anyway
            log.warning("OBS '%s': %s", self.target, exc)
        scene = await self.scene_for(cue.channel_id, cue.avatar)
        await self.start()
        if not self.conn.ready:
            try:  # a connection just started is usually up within a second
                await self.conn.wait_connected(PREPARE_CONNECT_WAIT)
            except ObsUnavailable:
                log.info("OBS '%s' not connected: %s is prepared when it is (%s)", self.target, scene.name,
                         self.conn.last_error or "connecting")
                return
        try:
            await self._ensure_scene(scene)
            media = self._media(scene)
            if cue.planned_at - datetime.now(UTC) <= PRELOAD_WITHIN and not await media.is_loaded(clip):
                await media.load(clip)
        except ObsUnavailable as exc:
            log.info("OBS '%s': prepare of %s left to air: %s", self.target, scene.name, exc)
        except ObsError as exc:
            raise OutputError(str(exc)) from exc

    async def _cue(self, scene: ChannelScene, cue: Cue, clip: Path) -> None:
        """Everything before RESTART: the scene, the clip loaded and stopped, the lower third, the scene on
        program."""
        await self._ensure_scene(scene)
        media = self._media(scene)
        if not await media.is_loaded(clip):
            await media.load(clip)
        await obs_scene.set_text(self.conn, scene, "name", cue.channel_name)
        await obs_scene.set_text(self.conn, scene, "title", cue.program.title)
        await obs_scene.set_text(self.conn, scene, "subtitle", "")
        current = (await self.conn.call("GetCurrentProgramScene")).get("currentProgramSceneName")
        if current != scene.name:
            await self.conn.call("SetCurrentProgramScene", sceneName=scene.name)
        await obs_scene.show(self.conn, scene, "program", True)

    async def cue_up(self, cue: Cue) -> None:
        """Done in the on-air lead, so at the instant only RESTART goes out."""
        if not self.conn.ready:
            return  # air() waits for the connection until the deadline
        scene = await self.scene_for(cue.channel_id, cue.avatar)
        media, _, _ = await self._ready_media(cue, scene)
        try:
            await self._cue(scene, cue, media)
        except ObsError as exc:
            raise OutputError(str(exc)) from exc
        self._cued[scene.name] = (media, self.conn.reconnects)  # void if OBS reconnects in between

    async def air(self, cue: Cue) -> AiredResult:
        scene = await self.scene_for(cue.channel_id, cue.avatar)
        clip, rung, down = await self._ready_media(cue, scene)
        await self._connect(cue.deadline, self.conn.request_timeout)
        captions = await asyncio.to_thread(read_srt, cue.program.files.srt)
        media = self._media(scene)
        try:
            # Until RESTART has gone out nothing is on air: a lost OBS means "missed", a refusal "failed".
            try:
                if self._cued.pop(scene.name, None) != (clip, self.conn.reconnects):
                    await self._cue(scene, cue, clip)
                started = await media.start(cue.program.duration_seconds)
            except ObsUnavailable as exc:
                raise OutputUnavailable(str(exc)) from exc
            except ObsError as exc:
                await self._back_to_idle(scene, stop=True)
                raise OutputError(str(exc)) from exc
            self.last_start_lateness = started.lateness
            # A running average of OBS's own start-up time: the on-air queue sends RESTART this much early.
            self.preroll = min(PREROLL_MAX, 0.8 * self.preroll + 0.2 * started.lateness)
            try:
                if rung is Rung.CLIP:  # below it the still avatar stays up under the program's audio
                    await obs_scene.show(self.conn, scene, "idle", False)
                meter = DeadAirMeter(self.settings.dead_air_dbfs, self.settings.dead_air_seconds)
                dead_air = await media.follow(captions, started, cue.program.duration_seconds, meter)
                if not meter.readings:
                    log.warning("OBS '%s' sent no volume meters during '%s': its sound could not be checked",
                                self.target, cue.program.script)
            except (PlaybackLost, ObsError) as exc:
                await self._back_to_idle(scene, stop=True)
                raise AiringInterrupted(f"OBS '{self.target}' lost '{cue.program.script}' midway: {exc}") from exc
        except asyncio.CancelledError:
            await self._back_to_idle(scene, stop=True)
            raise
        finally:
            media.forget_events()
        ended_at = started.at + timedelta(seconds=time.monotonic() - started.monotonic)
        await self._back_to_idle(scene, stop=False)
        return AiredResult(started.at, ended_at, {"obs": self.target, "scene": scene.name}, rung, down, dead_air)

    def _media(self, scene: ChannelScene) -> ProgramMedia:
        from anchor.outputs.obs.playback import ProgramMedia

        return ProgramMedia(self.conn, scene)

    async def _back_to_idle(self, scene: ChannelScene, *, stop: bool) -> None:
        """Show idle, hide the program, clear the subtitles: best effort and short."""
        if not self.conn.connected or not scene.items:
            return
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT):
                await obs_scene.show(self.conn, scene, "idle", True)
                await obs_scene.show(self.conn, scene, "program", False)
                if stop:
                    await self._media(scene).action("STOP")
                await obs_scene.set_text(self.conn, scene, "subtitle", "")
        except (ObsError, TimeoutError) as exc:
            log.info("OBS '%s': cleanup of %s incomplete: %s", self.target, scene.name, exc)
