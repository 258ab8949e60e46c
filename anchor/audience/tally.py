"""The tally: every Interaction counted where it belongs — in the metrics at once, and in the totals of the
airing on air at its timestamp (or of the gap between programs), written to the as-run log every few
seconds off the loop. Viewers' counts give each airing its peak and mean. A comment's text is kept only
for a channel that asks for it, and only for its number of days."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from anchor.audience.interaction import Interaction, Kind
from anchor.audience.timeline import Timeline
from anchor.metrics import GIFT_VALUE, INTERACTIONS, ROOM_LAST_EVENT, VIEWERS
from anchor.store import AsRunLog, Comment

log = logging.getLogger(__name__)

COUNTED = {Kind.COMMENT: "comments", Kind.LIKE: "likes", Kind.GIFT: "gifts", Kind.SUPERCHAT: "superchats",
           Kind.ENTER: "enters", Kind.FOLLOW: "follows"}
PAID = (Kind.GIFT, Kind.SUPERCHAT, Kind.GUARD)  # what has a value in yuan
MAX_PENDING_FLUSHES = 20  # totals of an airing whose row is not written yet wait this many flushes, then go


@dataclass
class _Viewers:
    peak: int = 0
    total: float = 0.0
    samples: int = 0


@dataclass
class _Pending:
    totals: dict[tuple[str, str, datetime], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    gaps: dict[tuple[str, datetime], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    viewers: dict[tuple[str, str, datetime], _Viewers] = field(default_factory=lambda: defaultdict(_Viewers))
    comments: list[Comment] = field(default_factory=list)


class Tally:
    def __init__(self, timeline: Timeline, asrun: AsRunLog) -> None:
        self.timeline = timeline
        self.asrun = asrun
        self.keep_comment_days: dict[str, int] = {}  # channel → days its comment texts are kept (0: none)
        self._pending = _Pending()
        self._waiting: dict[tuple[str, str, datetime], int] = {}  # airing key → flushes its row was missing
        self._viewers: dict[tuple[str, str, datetime], _Viewers] = defaultdict(_Viewers)

    def count(self, event: Interaction) -> None:
        """On the loop, for every event: metrics now, totals for the next flush. Never blocks."""
        kind = event.kind
        ROOM_LAST_EVENT.labels(event.channel, event.room).set(event.at.timestamp())
        if kind is Kind.VIEWERS:
            VIEWERS.labels(event.channel, event.platform).set(event.count)
        elif kind not in (Kind.LIVE_START, Kind.LIVE_END):
            INTERACTIONS.labels(event.channel, event.platform, kind.value).inc(event.count)
        if event.value_cny and kind in PAID:
            GIFT_VALUE.labels(event.channel, event.platform).inc(event.value_cny)
        span = self.timeline.on_air(event.channel, event.at)
        pending = self._pending
        if kind is Kind.VIEWERS:
            if span is not None:  # all samples of an airing, kept until it ends: its peak and mean
                seen = self._viewers[span.key]
                seen.peak = max(seen.peak, event.count)
                seen.total += event.count
                seen.samples += 1
                pending.viewers[span.key] = seen
            return
        counts = (pending.totals[span.key] if span is not None
                  else pending.gaps[(event.channel, event.at.replace(minute=0, second=0, microsecond=0))])
        name = COUNTED.get(kind)
        if name is not None:
            counts[name] += event.count
        if event.value_cny and kind in PAID:
            counts["gift_cny"] += event.value_cny
        if kind is Kind.COMMENT and event.text and self.keep_comment_days.get(event.channel, 0) > 0:
            pending.comments.append(Comment(channel=event.channel, at=event.at, viewer=event.viewer,
                                            text=event.text[:2000]))

    async def flush(self) -> None:
        """Write what was counted since the last flush, in a thread. What the database refuses is kept for
        the next flush; totals of an airing whose row is still being written wait for it a while."""
        pending, self._pending = self._pending, _Pending()
        if not (pending.totals or pending.gaps or pending.viewers or pending.comments):
            return
        viewers = {key: (seen.peak, seen.total / seen.samples) for key, seen in pending.viewers.items()
                   if seen.samples}
        try:
            missing = await asyncio.to_thread(self._write, pending, viewers)
        except (SQLAlchemyError, OSError) as exc:
            log.error("audience totals not written (kept for the next try): %s", exc)
            self._merge(pending)
            return
        for key in missing:
            waited = self._waiting.get(key, 0) + 1
            if waited < MAX_PENDING_FLUSHES:
                self._waiting[key] = waited
                for name, value in pending.totals[key].items():
                    self._pending.totals[key][name] += value
            else:
                self._waiting.pop(key, None)
                log.warning("channel %s: audience totals for %s %s dropped: the airing never got a row", *key[:2],
                            key[2].isoformat())

    def _write(self, pending: _Pending, viewers: dict[tuple[str, str, datetime], tuple[int, float]]
               ) -> list[tuple[str, str, datetime]]:
        missing = [key for key in pending.totals if not self._row_exists(key)]
        present = {key: dict(value) for key, value in pending.totals.items() if key not in missing}
        self.asrun.add_audience(present, {k: dict(v) for k, v in pending.gaps.items()}, viewers)
        if pending.comments:
            self.asrun.keep_comments(pending.comments)
        return missing

    def _row_exists(self, key: tuple[str, str, datetime]) -> bool:
        return self.asrun.has_airing(*key)

    def _merge(self, pending: _Pending) -> None:
        for key, counts in pending.totals.items():
            for name, value in counts.items():
                self._pending.totals[key][name] += value
        for gap, counts in pending.gaps.items():
            for name, value in counts.items():
                self._pending.gaps[gap][name] += value
        self._pending.viewers.update(pending.viewers)
        self._pending.comments += pending.comments

    def forget_ended(self, key: tuple[str, str, datetime]) -> None:
        self._viewers.pop(key, None)

    async def forget_old_comments(self, now: datetime) -> None:
        for channel, days in self.keep_comment_days.items():
            if days > 0:
                await asyncio.to_thread(self.asrun.forget_comments, channel, now - timedelta(days=days))


