"""Wall-clock steps: APScheduler sleeps on the monotonic clock, so a wall clock set forward or back (NTP, an
operator) makes its jobs late or early unless someone notices and re-plans. This notices. And the one rule
for a stored time without a zone: it is UTC. And the one clock a person meets: how a time is shown
(shown_time) and how a time a person writes is read (read_time)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as time_of_day
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JUMP_SECONDS = 2.0  # disagreement between the wall and monotonic clocks that counts as a step


class WallClockWatch:
    def __init__(self) -> None:
        self._last = (time.time(), time.monotonic())

    def jump(self) -> float:
        """Seconds the wall clock stepped since the last call, beyond the monotonic clock; 0.0 when it kept pace."""
        wall, mono = time.time(), time.monotonic()
        jump = (wall - self._last[0]) - (mono - self._last[1])
        self._last = (wall, mono)
        return jump if abs(jump) > JUMP_SECONDS else 0.0


def zone_name(value: str) -> str:
    """`value` when it names an IANA timezone; ValueError saying what to write otherwise (a settings validator)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone '{value}': use an IANA name such as \"Asia/Shanghai\"") from None
    return value


def as_utc(value: datetime) -> datetime:
    """A time from the as-run log, aware (a database may hand back naive UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def shown_time(instant: datetime, zone: tzinfo, timespec: str = "seconds", with_date: bool = True) -> str:
    """The one way a person is shown a time: on the given clock (a channel's, or the institution's), labelled
    with its UTC offset, e.g. 2026-12-04 10:00:00+08:00 (or 10:00:00+08:00 without the date)."""
    text = as_utc(instant).astimezone(zone).isoformat(sep=" ", timespec=timespec)
    return text if with_date else text.split(" ", 1)[1]


_AGO = re.compile(r"^(\d+)\s*([dh])$")
_DAYS_FROM_TODAY = {"yesterday": -1, "today": 0, "tomorrow": 1}
TIME_FORMS = "today, yesterday, 7d, 12h, 2026-12-04, 2026-12-04T09:00 or 2026-12-04T09:00+08:00"


def read_time(text: str, zone: tzinfo, now: datetime) -> datetime:
    """A time as a person writes it on the command line, aware: today / yesterday / tomorrow (midnight on
    `zone`'s clock), 7d / 12h (that long before `now`), an ISO date (its midnight) or date-time; a date, a
    date-time or a time of day (today) without an offset is on `zone`'s clock, never this machine's.
    ValueError, naming the forms, for anything else."""
    written = text.strip()
    word = written.lower()
    today = as_utc(now).astimezone(zone).date()
    if word in _DAYS_FROM_TODAY:
        return datetime.combine(today + timedelta(days=_DAYS_FROM_TODAY[word]), time_of_day(0), tzinfo=zone)
    ago = _AGO.match(word)
    if ago:
        count = int(ago.group(1))
        return as_utc(now) - (timedelta(days=count) if ago.group(2) == "d" else timedelta(hours=count))
    try:
        value = datetime.fromisoformat(written)
    except ValueError:
        try:
            clock = time_of_day.fromisoformat(written)
        except ValueError:
            raise ValueError(f"'{text}' is not a time: write {TIME_FORMS}") from None
        value = datetime.combine(today, clock)
    return value if value.tzinfo else value.replace(tzinfo=zone)
