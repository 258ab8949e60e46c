"""Wall-clock steps: APScheduler sleeps on the monotonic clock, so a wall clock set forward or back (NTP, an
operator) makes its jobs late or early unless someone notices and re-plans. This notices. And the one rule
for a stored time without a zone: it is UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime

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


def as_utc(value: datetime) -> datetime:
    """A time from the as-run log, aware (a database may hand back naive UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
