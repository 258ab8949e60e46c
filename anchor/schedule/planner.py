"""The planner: every PlannedAiring of every channel in a window of time. The daemon schedules exactly
what this lists, so `anchor plan` shows what will air.

Schedules follow the wall clock of the channel's timezone. On the autumn night a wall time happens
twice it airs once (the first time); a wall time skipped in spring airs at the same offset after the
jump (02:30 → 03:30), as cron does.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from anchor.schedule.calendar import DayKind
from anchor.schedule.channel import Channel, Slot

if TYPE_CHECKING:
    from anchor.store import RotationState


MIDNIGHT = time(0)


@dataclass(frozen=True, slots=True)
class PlannedAiring:
    channel: str
    slot: str
    script: str
    planned_at: datetime  # in the channel's timezone
    planned_at_utc: datetime  # the same instant in UTC
    priority: int
    late: str
    grace: timedelta
    rotation_index: int | None = None  # which entry of the rotation, for rotating slots
    rotation_length: int | None = None
    fallback: str | None = None  # airs instead when the script's text is not approved

    @property
    def key(self) -> str:
        """Unique per airing: the job id and, with channel and slot, the as-run log's key."""
        return f"{self.channel}/{self.slot}/{self.planned_at_utc.isoformat()}"


def _day_allowed(channel: Channel, slot: Slot, day: date) -> bool:
    if (slot.first_day and day < slot.first_day) or (slot.last_day and day > slot.last_day):
        return False
    if day in slot.skipped_days or channel.blacked_out(day) is not None:
        return False
    if slot.days == "all" and not slot.skip_holidays:
        return True
    kind = channel.calendar.kind(day)
    if slot.skip_holidays and kind in (DayKind.STATUTORY_HOLIDAY, DayKind.CLOSED):
        return False  # except = "holidays": the days off of the notice and the channel's closed days, not weekends
    if slot.days == "workdays":
        return kind.is_workday
    if slot.days == "holidays":
        return not kind.is_workday
    return True


def _times_of_day(slot: Slot) -> list[time]:
    if slot.cron is not None:
        return [time(h, m) for h, m in slot.cron.times()]
    assert slot.every is not None
    first, last = slot.window
    step = slot.every.total_seconds()
    seconds = float(first.hour * 3600 + first.minute * 60)
    end = last.hour * 3600 + last.minute * 60 + last.second
    found = []
    while seconds <= end:
        found.append(time(int(seconds // 3600), int(seconds % 3600 // 60), int(seconds % 60)))
        seconds += step
    return found


def slot_instants(channel: Channel, slot: Slot, start: datetime, end: datetime) -> Iterator[datetime]:
    """Instants in [start, end) at which `slot` airs, ascending, in the channel's zone."""
    zone = channel.zone
    if slot.at is not None:
        local = slot.at.astimezone(zone)
        if start <= local < end and _day_allowed(channel, slot, local.date()):
            yield local
        return
    times = _times_of_day(slot)
    day, last_day = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date()
    seen: set[datetime] = set()
    midnight = datetime.combine(day, MIDNIGHT, tzinfo=zone)
    while day <= last_day:
        following = datetime.combine(day + timedelta(days=1), MIDNIGHT, tzinfo=zone)
        steady = midnight.utcoffset() == following.utcoffset()  # no DST change today: every wall time is once
        if _day_allowed(channel, slot, day) and (slot.cron is None or slot.cron.matches_date(day)):
            for clock in times:
                # fold=0 only: a repeated wall time airs once; a skipped one lands after the jump.
                instant = datetime.combine(day, clock, tzinfo=zone)
                if not start <= instant < end:
                    continue
                if steady:
                    yield instant
                    continue
                normal = instant.astimezone(UTC).astimezone(zone)
                if normal not in seen:
                    seen.add(normal)
                    yield normal
        day, midnight = day + timedelta(days=1), following


def _first_index(channel: Channel, slot: Slot, start: datetime, state: RotationState | None) -> int:
    """The rotation entry of the slot's first instant at or after `start`, counted from where the as-run
    log says the rotation stands: every instant after the last claimed airing takes the next entry,
    whether it airs or not, so a plan made at any time names the script that airs."""
    if state is None or state.as_of is None:
        return state.position if state else 0
    tick = timedelta(microseconds=1)
    if start > state.as_of:  # entries taken by the instants between the last claim and `start`
        return state.position + sum(1 for _ in slot_instants(channel, slot, state.as_of + tick, start))
    # `start` is at or before the last claim (a plan shown while it is on air): count back
    return state.position - sum(1 for _ in slot_instants(channel, slot, start, state.as_of + tick))


def _slot_airings(channel: Channel, slot: Slot, start: datetime, end: datetime,
                  state: RotationState | None) -> Iterator[PlannedAiring]:
    first = _first_index(channel, slot, start, state) if slot.rotates else 0
    length = len(slot.scripts)
    for count, instant in enumerate(slot_instants(channel, slot, start, end)):
        index = (first + count) % length if slot.rotates else None
        yield PlannedAiring(
            channel=channel.id, slot=slot.id, script=slot.scripts[index or 0], planned_at=instant,
            planned_at_utc=instant.astimezone(UTC), priority=slot.priority, late=slot.late, grace=slot.grace,
            rotation_index=index, rotation_length=length if slot.rotates else None, fallback=slot.fallback,
        )


def _air_order(item: PlannedAiring) -> tuple[datetime, str, int, str]:
    return item.planned_at_utc, item.channel, -item.priority, item.slot


def iter_plan(channels: list[Channel], start: datetime, end: datetime,
              rotation: Mapping[tuple[str, str], RotationState] | None = None) -> Iterator[PlannedAiring]:
    """Every airing in [start, end), in the order they air: by instant, then channel, then priority. Each
    slot's airings come in time order, so they are merged, never all held: a week of 50 channels airing
    every minute streams in constant memory.

    `rotation` says where each rotating slot stands (from the as-run log); without it rotations start
    at their first entry."""
    rotation = rotation or {}
    streams = [_slot_airings(channel, slot, start, end, rotation.get((channel.id, slot.id)))
               for channel in channels for slot in channel.slots]
    return heapq.merge(*streams, key=_air_order)


def plan(channels: list[Channel], start: datetime, end: datetime,
         rotation: Mapping[tuple[str, str], RotationState] | None = None) -> list[PlannedAiring]:
    """iter_plan, as a list."""
    return list(iter_plan(channels, start, end, rotation))
