"""`anchor plan`: what will air, when and which script, exactly as the daemon will air it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from anchor.cli.common import (
    BadInput,
    OnlyChannel,
    channel_time,
    channels,
    parse_instant,
    read_log,
    reading_zone,
    report,
    settings,
)

if TYPE_CHECKING:
    from anchor.config import Settings
    from anchor.logview import AsRunReading
    from anchor.onair.outlook import ApprovalOutlook
    from anchor.schedule.channel import Channel
    from anchor.schedule.planner import PlannedAiring


def _outlook(app_settings: Settings, chosen: list[Channel], asrun: AsRunReading) -> ApprovalOutlook:
    """What approval and screening allow: a text with a listed claim not accepted airs on no channel."""
    from anchor.content.approvals import ApprovalBook
    from anchor.content.screening import Screen
    from anchor.onair.outlook import ApprovalOutlook

    return ApprovalOutlook({c.id: c for c in chosen}, ApprovalBook(asrun.approvals()), app_settings.scripts_dir,
                           Screen.from_lists(app_settings.screening_dir))


def _script_cell(p: PlannedAiring, seeing: ApprovalOutlook | None) -> str:
    seen = seeing.of(p) if seeing else None
    if seen is None or seen.reason is None:
        return p.script
    return f"{seen.airs} (fallback: {seen.reason})" if seen.airs else f"SKIPPED: {seen.reason}"


def _json_rows(planned: Iterator[PlannedAiring], seeing: ApprovalOutlook | None) -> Iterator[dict[str, object]]:
    for p in planned:
        row: dict[str, object] = {"channel": p.channel, "slot": p.slot, "script": p.script,
                                  "planned_at": p.planned_at.isoformat(),
                                  "planned_at_utc": p.planned_at_utc.isoformat(), "priority": p.priority}
        seen = seeing.of(p) if seeing else None
        if seen is not None:  # what really airs, and why not the script (not approved, or a listed claim)
            row["airs"], row["not_approved"] = seen.airs, seen.reason
        yield row


def plan(
    channel: OnlyChannel = None,
    start: Annotated[str | None, typer.Option(
        "--from", help="Start from: today, tomorrow, a date or an ISO date-time (without an offset: the "
                       "--channel's clock, else [daemon] timezone; default now).")] = None,
    hours: Annotated[float | None, typer.Option(help="How many hours ahead (default 24).")] = None,
    days: Annotated[float | None, typer.Option(help="How many days ahead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON objects instead of a table.")] = False,
) -> None:
    """List planned airings, rotations resolved, each in its channel's time."""
    from rich.cells import cell_len

    from anchor.cli.jsonout import write_json_array
    from anchor.cli.tables import Column, write_table
    from anchor.preflight import calendar_problems
    from anchor.schedule.planner import iter_plan
    from anchor.wording import count, duration

    app_settings = settings()
    chosen = [c for c in channels(app_settings) if channel is None or c.id == channel]
    if channel is not None and not chosen:
        raise BadInput(f"no channel with id '{channel}'")
    zone = reading_zone(app_settings, channel)
    begin = parse_instant(start, "--from", zone) or datetime.now(UTC)
    span = timedelta(days=days) if days is not None else timedelta(hours=hours if hours is not None else 24)
    report(calendar_problems(app_settings, chosen, begin, begin + span))  # what the plan assumes, on stderr
    asrun = read_log(app_settings)
    rotation = asrun.rotation()
    planned = iter_plan(chosen, begin, begin + span, rotation)  # streamed: a big plan is never held whole
    seeing = _outlook(app_settings, chosen, asrun)
    if as_json:
        write_json_array(_json_rows(planned, seeing))  # streamed: half a million airings in constant memory
        return
    zones = {c.id: c.zone for c in chosen}

    shown = 0

    def lines() -> Iterator[tuple[str, ...]]:
        nonlocal shown
        day = ""
        for p in planned:
            shown += 1
            when = channel_time(p.planned_at, zones[p.channel], "minutes")
            if when[:10] != day:  # one heading per day (in the channel's calendar), then times of day
                day = when[:10]
                yield (f"── {day} {p.planned_at.astimezone(zones[p.channel]):%a} ──",)
            yield when[11:], p.channel, p.slot, _script_cell(p, seeing)

    slots = [s for c in chosen for s in c.slots]
    columns = [Column("time", fold=False, widest=len("00:00+00:00")),
               Column("channel", fold=False, widest=max((len(c.id) for c in chosen), default=7)),
               Column("slot", widest=max((cell_len(s.id) for s in slots), default=4)),
               Column("script", widest=max((len(name) for s in slots for name in s.scripts), default=6))]
    write_table(columns, lines(), title=f"planned airings from {channel_time(begin, zone, 'minutes')} "
                f"for {duration(span)}", caption=lambda: f"{count(shown, 'airing')}; each time is its channel's own "
                "clock, with its UTC offset")
