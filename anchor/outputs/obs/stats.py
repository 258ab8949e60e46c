"""OBS's health as metrics: connected, reconnections, fps, skipped frames, stream state, polled off the loop."""

from __future__ import annotations

import asyncio
import logging
import time

from anchor import metrics
from anchor.outputs.obs.connection import ObsConnection
from anchor.outputs.obs.errors import ObsError

log = logging.getLogger(__name__)

STATE_PERIOD = 1.0  # seconds between updates of anchor_obs_connected / anchor_obs_reconnects_total
STATS_PERIOD = 5.0  # seconds between GetStats/GetStreamStatus polls while connected
STATS_REQUEST_TIMEOUT = 1.0


class StatsPoller:
    """Keeps the anchor_obs_* gauges of one OBS current while it runs."""

    def __init__(self, conn: ObsConnection) -> None:
        self.conn = conn
        self._task: asyncio.Task[None] | None = None
        self._reconnects_seen = 0
        self.streaming: bool | None = None  # OBS streaming to the platform at the last poll; None: not known
        self.stream_reconnecting = False
        metrics.OBS_CONNECTED.labels(conn.name).set(0)
        metrics.OBS_RECONNECTS.labels(conn.name)  # exported as 0 from the start

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"obs-{self.conn.name}-stats")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        metrics.OBS_CONNECTED.labels(self.conn.name).set(0)

    def update_connection(self) -> None:
        metrics.OBS_CONNECTED.labels(self.conn.name).set(1 if self.conn.connected else 0)
        new = self.conn.reconnects - self._reconnects_seen
        if new > 0:
            metrics.OBS_RECONNECTS.labels(self.conn.name).inc(new)
            self._reconnects_seen = self.conn.reconnects

    async def poll(self) -> bool:
        """One GetStats + GetStreamStatus into the gauges; False (logged at debug) when OBS did not answer."""
        self.update_connection()
        if not self.conn.connected:
            self.streaming = None
            return False
        name = self.conn.name
        try:
            stats = await self.conn.call("GetStats", request_timeout=STATS_REQUEST_TIMEOUT)
            stream = await self.conn.call("GetStreamStatus", request_timeout=STATS_REQUEST_TIMEOUT)
        except ObsError as exc:
            log.debug("OBS '%s': stats poll failed: %s", name, exc)
            self.streaming = None
            return False
        try:
            metrics.OBS_ACTIVE_FPS.labels(name).set(float(stats.get("activeFps") or 0.0))
            metrics.OBS_RENDER_SKIPPED_FRAMES.labels(name).set(float(stats.get("renderSkippedFrames") or 0))
            metrics.OBS_OUTPUT_SKIPPED_FRAMES.labels(name).set(float(stats.get("outputSkippedFrames") or 0))
            metrics.OBS_STREAM_ACTIVE.labels(name).set(1 if stream.get("outputActive") else 0)
            metrics.OBS_STREAM_RECONNECTING.labels(name).set(1 if stream.get("outputReconnecting") else 0)
            metrics.OBS_STREAM_SENT_BYTES.labels(name).set(float(stream.get("outputBytes") or 0))
            self.streaming = bool(stream.get("outputActive"))
            self.stream_reconnecting = bool(stream.get("outputReconnecting"))
        except (TypeError, ValueError) as exc:
            log.debug("OBS '%s': unexpected stats %r / %r: %s", name, stats, stream, exc)
            return False
        return True

    async def _run(self) -> None:
        """Connection state every STATE_PERIOD, OBS's statistics every STATS_PERIOD while connected."""
        next_stats = 0.0
        while True:
            try:
                self.update_connection()
                if self.conn.connected and time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + STATS_PERIOD
                    await self.poll()
                elif not self.conn.connected:
                    next_stats = 0.0  # poll at once after a (re)connection
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # metrics must never take the output down
                log.debug("OBS '%s': stats poller: %r", self.conn.name, exc)
            await asyncio.sleep(STATE_PERIOD)
