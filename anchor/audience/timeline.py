"""What was on air when: each channel's airings as they start and end, kept for a few hours, so an event is
tied to the airing on air at its own timestamp — even one a platform delivers late — or to the gap between
programs. It also keeps anchor_airing_info{channel,script} at 1 while a script airs, so PromQL can join
interactions to programs."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from anchor.metrics import AIRING_INFO

KEEP = timedelta(hours=6)  # how long an ended airing still takes late events


@dataclass
class OnAirSpan:
    channel: str
    slot: str
    planned_at: datetime  # UTC: with channel and slot, the airing's row in the as-run log
    script: str
    started_at: datetime
    ended_at: datetime | None = None  # None while on air

    @property
    def key(self) -> tuple[str, str, datetime]:
        return self.channel, self.slot, self.planned_at

    def covers(self, at: datetime) -> bool:
        return self.started_at <= at and (self.ended_at is None or at < self.ended_at)


class Timeline:
    def __init__(self) -> None:
        self._spans: dict[str, list[OnAirSpan]] = {}  # channel → spans in start order

    def know(self, channel: str, scripts: Iterable[str]) -> None:
        """Export the channel's script catalog at 0 from the start (for joins and absent() in alerts)."""
        for script in scripts:
            AIRING_INFO.labels(channel, script)

    def started(self, span: OnAirSpan) -> None:
        spans = self._spans.setdefault(span.channel, [])
        spans.append(span)
        cutoff = span.started_at - KEEP
        while spans and spans[0].ended_at is not None and spans[0].ended_at < cutoff:
            spans.pop(0)
        AIRING_INFO.labels(span.channel, span.script).set(1)

    def ended(self, span: OnAirSpan, at: datetime) -> None:
        span.ended_at = at
        AIRING_INFO.labels(span.channel, span.script).set(0)

    def on_air(self, channel: str, at: datetime) -> OnAirSpan | None:
        """The airing on air on `channel` at `at`, or None (the gap between programs)."""
        spans = self._spans.get(channel, [])
        if spans and spans[-1].covers(at):  # nearly every event: the program on air now
            return spans[-1]
        index = bisect_right([s.started_at for s in spans], at) - 1
        if index >= 0 and spans[index].covers(at):
            return spans[index]
        return None

    def now(self, channel: str) -> OnAirSpan | None:
        spans = self._spans.get(channel, [])
        return spans[-1] if spans and spans[-1].ended_at is None else None
