"""The station: each channel airs one program at a time. A channel is a lock an airing holds for the
program's length; the airings a channel has at one instant go in priority order. Airings run as tasks of
the station's own, so a shutdown cuts them cleanly (each logged `interrupted`, no traceback)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from anchor.metrics import AIRING_LATENESS, AIRINGS, DEAD_AIR, DEGRADED_AIRINGS, ON_AIR, UNAPPROVED_AIRINGS
from anchor.onair import airing
from anchor.onair.airing import OnAir
from anchor.outputs import Rung
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring
from anchor.store import Outcome

log = logging.getLogger(__name__)


def start_at_zero(channel: str) -> None:
    """Every series a channel can have, exported as 0 from the start: rate() and alerts can tell "none yet"
    from "unknown", and a dashboard panel is never empty for a quiet channel."""
    for outcome in Outcome:
        if outcome is not Outcome.ON_AIR:
            AIRINGS.labels(channel, outcome.value)
    for rung in (Rung.STILL, Rung.AUDIO):
        for reason in DEGRADATION_REASONS:
            DEGRADED_AIRINGS.labels(channel, rung.value, reason)
    DEAD_AIR.labels(channel)
    UNAPPROVED_AIRINGS.labels(channel)
    ON_AIR.labels(channel)
    AIRING_LATENESS.labels(channel)


DEGRADATION_REASONS = ("font", "ffmpeg", "avatar", "render", "disk", "late", "audio")


class Station:
    def __init__(self, on_air: OnAir) -> None:
        self.on_air = on_air
        self.channels: dict[str, Channel] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.airing: dict[str, PlannedAiring] = {}  # channel → what it is airing now

    async def use_channels(self, channels: Sequence[Channel]) -> None:
        self.channels = {c.id: c for c in channels}
        for channel in channels:
            self._locks.setdefault(channel.id, asyncio.Lock())
            start_at_zero(channel.id)
        await self.on_air.outputs.use(channels)

    def start_group(self, group: list[PlannedAiring]) -> None:
        """Air the airings one channel has at one instant, highest priority first, in a task of our own."""
        self._spawn(self._air_group(group), f"airing {group[0].key}")

    def start(self, planned: PlannedAiring) -> None:
        self._spawn(self.air(planned), f"airing {planned.key}")

    async def _air_group(self, group: list[PlannedAiring]) -> None:
        for planned in sorted(group, key=lambda p: -p.priority):
            await self.air(planned)

    async def air(self, planned: PlannedAiring) -> None:
        channel = self.channels.get(planned.channel)
        if channel is None:
            return  # removed by a reload after this was scheduled
        async with self._locks[channel.id]:
            self.airing[channel.id] = planned
            try:
                await airing.air(planned, channel, self.on_air)
            finally:
                self.airing.pop(channel.id, None)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            log.error("%s ended by an unexpected error", task.get_name(), exc_info=failure)

    async def stop(self, timeout: float) -> None:
        """Cut what is on air (each airing logs its own `interrupted`) and wait for the rows to be written."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
