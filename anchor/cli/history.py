"""`anchor history`: the as-run log, what aired, when and how, each time in its channel's own clock."""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from anchor.cli.common import channel_time, channel_zones, escape, out, parse_instant, settings, utc

FIELDS = ("channel", "slot", "planned_at", "started_at", "ended_at", "outcome", "script", "script_hash", "engine",
          "voice", "audio_hash", "error")


def _value(row: Any, name: str, zone: Any) -> str:
    value = getattr(row, name)
    if isinstance(value, datetime):
        return channel_time(value, zone, "milliseconds")
    return "" if value is None else str(getattr(value, "value", value))


def history(
    channel: Annotated[str | None, typer.Option(help="Only this channel id.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date-time: airings planned from then on.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV for a spreadsheet.")] = False,
) -> None:
    """Print the as-run log: what aired, when, and how."""
    from rich import box
    from rich.table import Table

    from anchor.store import open_store

    app_settings = settings()
    rows = open_store(app_settings.database_url).history(channel, parse_instant(since, "--since"))
    zones = channel_zones(app_settings)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([_value(row, f, zones.get(row.channel)) for f in FIELDS])
        return
    table = Table(title=f"as-run log: {len(rows)} airings", box=box.SIMPLE_HEAD,
                  caption="times are each channel's own, with its UTC offset; --csv has every field")
    table.add_column("planned", no_wrap=True)
    table.add_column("channel", overflow="fold")
    table.add_column("slot", overflow="fold")
    table.add_column("script / error", overflow="fold")
    table.add_column("outcome", no_wrap=True)
    for row in rows:
        zone = zones.get(row.channel)
        outcome = row.outcome.value
        if row.started_at is not None:
            late = (utc(row.started_at) - utc(row.planned_at)).total_seconds()
            outcome += f" {late:+.2f}s"
        what = escape(row.script) + (f"\n[dim]{escape(row.error)}[/]" if row.error else "")
        table.add_row(channel_time(row.planned_at, zone, "minutes"), row.channel, row.slot, what, outcome)
    out().print(table)
