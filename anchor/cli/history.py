"""`anchor history`: the as-run log, what aired, when and how, each time in its channel's own clock."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from anchor.cli.common import (
    AsCsv,
    AsJson,
    OnlyChannel,
    PlannedSince,
    channel_time,
    channel_zones,
    logged_airings,
)
from anchor.clock import as_utc

FIELDS = ("channel", "slot", "planned_at", "started_at", "ended_at", "outcome", "aired_as", "degraded", "script",
          "script_hash", "engine", "voice", "audio_hash", "approval_id", "note", "error", "comments", "likes",
          "gifts", "gift_cny", "superchats", "enters", "follows", "viewers_peak", "viewers_mean")


def _value(row: Any, name: str, zone: Any) -> str:
    value = getattr(row, name)
    if isinstance(value, datetime):
        return channel_time(value, zone, "milliseconds")
    return "" if value is None else str(getattr(value, "value", value))


def _audience(row: Any) -> str:
    """What viewers did while it aired, in words; empty when the channel has no live room data."""
    parts = [f"{value} {label}" for value, label in ((row.comments, "comments"), (row.likes, "likes"),
                                                       (row.gifts, "gifts"), (row.superchats, "super chats"),
                                                       (row.enters, "entered"), (row.follows, "follows")) if value]
    if row.gift_cny:
        parts.append(f"¥{row.gift_cny:.2f} in gifts")
    if row.viewers_peak:
        parts.append(f"{row.viewers_peak} viewers at most (mean {row.viewers_mean})")
    return "audience: " + ", ".join(parts) if parts else ""


def _document(row: Any, zone: Any) -> dict[str, object]:
    """One row for --json: every field, times ISO 8601 on the channel's clock with its offset."""
    found: dict[str, object] = {}
    for name in FIELDS:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = as_utc(value).astimezone(zone).isoformat(timespec="milliseconds")
        found[name] = getattr(value, "value", value)
    return found


def history(
    channel: OnlyChannel = None,
    since: PlannedSince = None,
    as_csv: AsCsv = False,
    as_json: AsJson = False,
) -> None:
    """Print the as-run log: what aired, when, and how."""
    from anchor.cli.jsonout import write_json_array
    from anchor.cli.tables import Column, write_table
    from anchor.wording import count, duration

    app_settings, rows = logged_airings(channel, since)
    zones = channel_zones(app_settings)
    if as_json:
        write_json_array(_document(row, zones[row.channel]) for row in rows)
        return
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([_value(row, f, zones[row.channel]) for f in FIELDS])
        return
    def lines() -> Iterator[tuple[str, ...]]:
        for row in rows:
            outcome = row.outcome.value
            if row.aired_as and row.aired_as != "clip":
                outcome += f" as {row.aired_as}"
            if row.started_at is not None:
                late = (as_utc(row.started_at) - as_utc(row.planned_at)).total_seconds()
                outcome += f" {'+' * (late >= 0)}{duration(late)}"
            yield (channel_time(row.planned_at, zones[row.channel], "minutes"), row.channel, row.slot,
                   row.script, outcome)
            for note in (row.note, row.degraded, row.error, _audience(row)):
                if note:
                    yield (f"    └ {note}",)

    columns = [Column("planned", fold=False), Column("channel", fold=False), Column("slot"), Column("script"),
               Column("outcome", fold=False)]
    write_table(columns, lines(), title=f"as-run log: {count(len(rows), 'airing')}",
                caption="each time is its channel's own clock, with its UTC offset; --csv has every field")
