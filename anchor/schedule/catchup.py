"""Catch-up: what a restarted daemon does about the airings planned while it was down. A pure function,
so the daemon and the tests (and anyone reading the plan) get the same answer.

Per slot, only the latest airing it missed may still air, late: if the slot allows it (late = "air") and it
is within the slot's grace. Every other missed airing is logged missed, with the reason.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from anchor.schedule.planner import PlannedAiring

NOT_RUNNING = "the daemon was not running at its instant"
REPLACED = f"{NOT_RUNNING} (a later airing of the slot took its place)"


@dataclass(frozen=True)
class CatchUp:
    air_late: list[PlannedAiring] = field(default_factory=list)
    missed: list[tuple[PlannedAiring, str]] = field(default_factory=list)  # with the reason


def catch_up(while_down: list[PlannedAiring], logged: Collection[tuple[str, str, datetime]],
             now: datetime) -> CatchUp:
    """`while_down`: the plan from when the daemon was last alive to `now`, in time order. `logged`:
    (channel, slot, planned instant UTC) of every row the as-run log already has for that span."""
    unhandled = [p for p in while_down if (p.channel, p.slot, p.planned_at_utc) not in logged]
    latest = {(p.channel, p.slot): p for p in unhandled}  # time order: the last one of each slot wins
    result = CatchUp()
    for item in unhandled:
        if latest[(item.channel, item.slot)] is not item:
            result.missed.append((item, REPLACED))
        elif item.late == "air" and now - item.planned_at_utc <= item.grace:
            result.air_late.append(item)
        else:
            result.missed.append((item, NOT_RUNNING))
    return result
