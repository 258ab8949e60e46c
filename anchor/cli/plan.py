"""`anchor plan`: what will air, when and which script, exactly as the daemon will air it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from anchor.cli.common import BadInput, channel_time, channels, out, parse_instant, settings


def plan(
    channel: Annotated[str | None, typer.Option(help="Only this channel id.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO date-time to start from (default now).")] = None,
    hours: Annotated[float | None, typer.Option(help="How many hours ahead (default 24).")] = None,
    days: Annotated[float | None, typer.Option(help="How many days ahead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON objects instead of a table.")] = False,
) -> None:
    """List planned airings, rotations resolved, each in its channel's time."""
    from rich import box
    from rich.table import Table

    from anchor.schedule.planner import plan as make_plan
    from anchor.store import open_store

    app_settings = settings()
    chosen = [c for c in channels(app_settings) if channel is None or c.id == channel]
    if channel is not None and not chosen:
        raise BadInput(f"no channel with id '{channel}'")
    begin = parse_instant(start, "--from") or datetime.now(UTC)
    span = timedelta(days=days) if days is not None else timedelta(hours=hours if hours is not None else 24)
    rotation = open_store(app_settings.database_url).rotation()
    planned = make_plan(chosen, begin, begin + span, rotation)
    if as_json:
        rows = [{"channel": p.channel, "slot": p.slot, "script": p.script, "planned_at": p.planned_at.isoformat(),
                 "planned_at_utc": p.planned_at_utc.isoformat(), "priority": p.priority} for p in planned]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    zones = {c.id: c.zone for c in chosen}
    table = Table(title=f"{len(planned)} planned airings from {channel_time(begin, None, 'minutes')} for {span}",
                  box=box.SIMPLE_HEAD, caption="each time is its channel's own clock, with its UTC offset")
    table.add_column("time", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    table.add_column("slot", overflow="fold")
    table.add_column("script", overflow="fold", min_width=min(30, max((len(p.script) for p in planned), default=6)))
    day = ""
    for p in planned:
        local = p.planned_at.astimezone(zones[p.channel])
        if local.strftime("%Y-%m-%d") != day:  # one heading per day, then times of day
            day = local.strftime("%Y-%m-%d")
            table.add_row(f"[bold]{local.strftime('%Y-%m-%d %a')}[/]", "", "", "")
        table.add_row(channel_time(p.planned_at, zones[p.channel], "minutes", with_date=False), p.channel, p.slot,
                      p.script)
    out().print(table)
