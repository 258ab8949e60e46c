"""The program media source of a channel's scene: load a clip stopped, start it, follow it to its end.

Facts about OBS 29 used here are in notes/obs-headless.md: a media input advances only while its scene is
on program, and a newly loaded file starts playing at once (so load() stops it again). The start is
OBS's own MediaInputPlaybackStarted event, subtitles are timed from it on the monotonic clock, and the end
is MediaInputPlaybackEnded (or the media found stopped once the program's length has passed).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anchor.outputs.dead_air import DeadAirMeter, dbfs
from anchor.outputs.obs import scene as obs_scene
from anchor.outputs.obs.connection import ObsConnection
from anchor.outputs.obs.errors import ObsError, PlaybackLost
from anchor.outputs.obs.scene import ChannelScene
from anchor.speech.subtitles import Caption

log = logging.getLogger(__name__)

MEDIA_STOPPED = ("OBS_MEDIA_STATE_STOPPED", "OBS_MEDIA_STATE_ENDED", "OBS_MEDIA_STATE_NONE")
ENDED = "OBS_MEDIA_STATE_ENDED"
SETTLE_TIMEOUT = 1.0
SETTLE_POLL = 0.02
STARTED_GRACE = 2.0  # seconds to wait for MediaInputPlaybackStarted before trusting the RESTART call's time
END_GUARD = 5.0  # seconds past the program's length before giving up on MediaInputPlaybackEnded
WATCH_PERIOD = 0.1
TOUCHING = 0.05  # captions closer than this follow each other without clearing the line between them
ACTION = "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_"


@dataclass(frozen=True)
class Started:
    at: datetime  # aware UTC, from OBS's own start event when it came
    monotonic: float
    lateness: float  # seconds from sending RESTART to OBS reporting the start


class ProgramMedia:
    """One channel's program source in one OBS."""

    def __init__(self, conn: ObsConnection, scene: ChannelScene) -> None:
        self.conn = conn
        self.scene = scene
        self.name = scene.input("program")
        self._restarted = False
        self._started: asyncio.Future[dict[str, Any]] | None = None
        self._ended: asyncio.Future[dict[str, Any]] | None = None

    async def is_loaded(self, clip: Path) -> bool:
        """The clip is in the program source and stopped: only RESTART remains."""
        current = (await self.conn.call("GetInputSettings", inputName=self.name))["inputSettings"]
        if current.get("local_file") != str(clip):
            return False
        return await self.state() in MEDIA_STOPPED

    async def state(self) -> str | None:
        answer = await self.conn.call("GetMediaInputStatus", inputName=self.name)
        return answer.get("mediaState")

    async def load(self, clip: Path) -> None:
        """Put the clip into the program source and STOP it (a newly loaded file starts playing at once)."""
        started = self.conn.next_event("MediaInputPlaybackStarted", self._ours, 1.0)
        try:
            await self.conn.call("SetInputSettings", inputName=self.name, inputSettings={"local_file": str(clip)},
                                 overlay=True)
            try:
                await started  # its late arrival must not be taken for the airing's start
            except TimeoutError:
                pass
        finally:
            if not started.done():
                started.cancel()
        await self.action("STOP")
        # OBS 29 passes through STOPPED and settles at ENDED a moment later; a RESTART sent in between is
        # ended by that late transition (seen here: the program ended 50 ms after it started).
        for _ in range(round(SETTLE_TIMEOUT / SETTLE_POLL)):  # OBS has no event for it: ask
            if await self.state() == ENDED:
                break
            await asyncio.sleep(SETTLE_POLL)

    async def action(self, what: str) -> None:
        await self.conn.call("TriggerMediaInputAction", inputName=self.name, mediaAction=ACTION + what)

    def _ours(self, data: dict[str, Any]) -> bool:
        return bool(data.get("inputName") == self.name)

    def _ours_since_restart(self, data: dict[str, Any]) -> bool:
        # An event from before our RESTART went out is a stale one (an earlier load or airing).
        return self._restarted and self._ours(data)

    async def start(self, duration: float) -> Started:
        """RESTART, then the time OBS reports the playback started. Raises ObsError before anything aired."""
        self._started = self.conn.next_event("MediaInputPlaybackStarted", self._ours_since_restart, STARTED_GRACE)
        self._ended = self.conn.next_event("MediaInputPlaybackEnded", self._ours_since_restart,
                                           duration + END_GUARD + STARTED_GRACE)
        wall, mono = datetime.now(UTC), time.monotonic()
        self._restarted = True
        await self.action("RESTART")
        started_mono = mono
        try:
            await self._started
            started_mono = time.monotonic()
        except TimeoutError:
            log.warning("OBS '%s': no MediaInputPlaybackStarted within %g s of RESTART; timing from the request",
                        self.conn.name, STARTED_GRACE)
        return Started(wall + timedelta(seconds=started_mono - mono), started_mono, started_mono - mono)

    async def follow(self, captions: list[Caption], started: Started, duration: float,
                     meter: DeadAirMeter) -> float:
        """Show the captions on time until the media ends, listening to OBS's meters of the source meanwhile;
        returns the seconds of dead air `meter` counted. Raises PlaybackLost when OBS loses the program."""
        assert self._ended is not None, "start() first"
        ended = self._ended
        driver = asyncio.create_task(self._captions(captions, started.monotonic))
        meter.start(started.monotonic)
        listening = self._listen(meter)
        limit = started.monotonic + duration + END_GUARD
        try:
            while True:
                if ended.done() and ended.exception() is None and await self.state() not in MEDIA_STOPPED:
                    # An end OBS reported for the file this source held before (loading, stopping): the program
                    # is still opening or playing. Wait for its own end.
                    log.info("OBS '%s': a stale MediaInputPlaybackEnded while %s plays; still on air",
                             self.conn.name, self.name)
                    ended = self._ended = self.conn.next_event("MediaInputPlaybackEnded", self._ours,
                                                               max(1.0, limit - time.monotonic()))
                if ended.done():
                    break
                if not self.conn.connected:
                    raise PlaybackLost(f"connection lost: {self.conn.last_error}")
                if driver.done() and (failure := driver.exception()) is not None:
                    raise PlaybackLost(f"subtitles could not be shown: {failure}")
                if time.monotonic() > limit:
                    state = await self.state()
                    if state in MEDIA_STOPPED:
                        log.warning("OBS '%s': no MediaInputPlaybackEnded; the media is %s", self.conn.name, state)
                        return meter.finish(time.monotonic())
                    raise PlaybackLost(f"still {state} {END_GUARD:g} s after its length")
                await asyncio.wait([ended], timeout=WATCH_PERIOD)
            if (failure := ended.exception()) is not None:  # a closed connection or a timeout
                raise PlaybackLost(str(failure))
            # OBS reports the end when the decoder reaches it, a few hundred ms before the last buffered
            # audio is out: hold the channel for the program's own length (bounded).
            rest = started.monotonic + duration - time.monotonic()
            if rest > 0:
                await asyncio.sleep(min(rest, 1.0))
            return meter.finish(time.monotonic())
        except ObsError as exc:
            raise PlaybackLost(str(exc)) from exc
        finally:
            listening()
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)

    def _listen(self, meter: DeadAirMeter) -> Callable[[], None]:
        """Feed the meter from OBS's volume meters of this source (silence while it is muted); returns the
        function that stops listening."""
        muted = False

        async def heard(data: dict[str, Any]) -> None:
            level = -math.inf  # a source OBS does not list is not sounding
            for item in data.get("inputs") or []:
                if item.get("inputName") == self.name:
                    peaks = [channel[1] for channel in item.get("inputLevelsMul") or [] if len(channel) > 1]
                    level = dbfs(max(peaks, default=0.0))
            meter.feed(-math.inf if muted else level, time.monotonic())

        async def mute_changed(data: dict[str, Any]) -> None:
            nonlocal muted
            if data.get("inputName") == self.name:
                muted = bool(data.get("inputMuted"))

        async def ask_mute() -> None:
            nonlocal muted
            try:
                muted = bool((await self.conn.call("GetInputMute", inputName=self.name)).get("inputMuted"))
            except ObsError:
                pass

        stops = [self.conn.subscribe("InputVolumeMeters", heard),
                 self.conn.subscribe("InputMuteStateChanged", mute_changed)]
        asking = asyncio.create_task(ask_mute())

        def stop() -> None:
            asking.cancel()
            for unsubscribe in stops:
                unsubscribe()

        return stop

    def forget_events(self) -> None:
        for future in (self._started, self._ended):
            if future is not None and not future.done():
                future.cancel()

    async def _captions(self, captions: list[Caption], start_mono: float) -> None:
        for index, caption in enumerate(captions):
            await asyncio.sleep(max(0.0, start_mono + caption.start - time.monotonic()))
            await obs_scene.set_text(self.conn, self.scene, "subtitle", caption.text)
            await asyncio.sleep(max(0.0, start_mono + caption.end - time.monotonic()))
            following = captions[index + 1].start if index + 1 < len(captions) else None
            if following is None or following - caption.end > TOUCHING:  # no flicker between touching cues
                await obs_scene.set_text(self.conn, self.scene, "subtitle", "")
