"""`anchor report`: which topics resonate — scripts ranked by viewer interactions per minute aired."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field

from anchor.cli.common import AsCsv, OnlyChannel, PlannedSince, logged_airings
from anchor.clock import as_utc

AIRED = ("aired", "late", "interrupted")  # went out, at least in part: their minutes count


@dataclass
class ScriptTotals:
    script: str
    airings: int = 0
    minutes: float = 0.0
    counts: dict[str, float] = field(default_factory=dict)

    @property
    def interactions(self) -> float:
        return sum(v for k, v in self.counts.items() if k != "gift_cny")

    @property
    def per_minute(self) -> float:
        return self.interactions / self.minutes if self.minutes else 0.0


def report(
    channel: OnlyChannel = None,
    since: PlannedSince = None,
    as_csv: AsCsv = False,
) -> None:
    """Rank scripts by viewer interactions per minute aired over a period, with airings and minutes aired."""
    from anchor.cli.tables import Column, write_table
    from anchor.logview import AUDIENCE_COUNTS

    _, rows = logged_airings(channel, since)
    totals: dict[str, ScriptTotals] = {}
    for row in rows:
        if row.outcome.value not in AIRED or row.started_at is None or row.ended_at is None:
            continue
        entry = totals.setdefault(row.script, ScriptTotals(row.script))
        entry.airings += 1
        entry.minutes += (as_utc(row.ended_at) - as_utc(row.started_at)).total_seconds() / 60
        for name in AUDIENCE_COUNTS:
            entry.counts[name] = entry.counts.get(name, 0) + (getattr(row, name) or 0)
    ranked = sorted(totals.values(), key=lambda t: (-t.per_minute, t.script))
    fields = ("script", "airings", "minutes_aired", *AUDIENCE_COUNTS, "interactions", "interactions_per_minute")
    table = [(t.script, str(t.airings), f"{t.minutes:.1f}", *(_number(t.counts.get(n, 0)) for n in AUDIENCE_COUNTS),
              _number(t.interactions), f"{t.per_minute:.2f}") for t in ranked]
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(fields)
        writer.writerows(table)
        return
    write_table([Column("script"), Column("airings", fold=False), Column("minutes", fold=False),
                 Column("comments", fold=False), Column("likes", fold=False), Column("gifts", fold=False),
                 Column("¥", fold=False), Column("per min", fold=False)],
                [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[-1]) for r in table],
                title=f"scripts by interactions per minute aired{f' on {channel}' if channel else ''}",
                caption="interactions: comments, likes, gifts, super chats, enters, follows; --csv has each")


def _number(value: float) -> str:
    return f"{value:.2f}" if value != int(value) else str(int(value))
