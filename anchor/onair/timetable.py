"""The timetable: the plan as APScheduler jobs, one per channel and instant, each firing LEAD before its
instant. Kept equal to the plan as the plan changes (time moves on, a reload): jobs of airings no longer
planned go, new ones come, and a job that has fired is never added again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger

from anchor.onair.airing import LEAD
from anchor.schedule.planner import PlannedAiring

JOB_PREFIX = "airing:"
FORGET_FIRED_AFTER = timedelta(hours=1)

Group = list[PlannedAiring]


class Timetable:
    def __init__(self, scheduler: BaseScheduler, start_group: Callable[[Group], None]) -> None:
        self.scheduler = scheduler
        self.start_group = start_group
        self.fired: dict[str, datetime] = {}  # job id → its instant, for jobs that have fired

    @staticmethod
    def job_id(item: PlannedAiring) -> str:
        return f"{JOB_PREFIX}{item.channel}/{item.planned_at_utc.isoformat()}"

    def update(self, planned: list[PlannedAiring], now: datetime) -> None:
        """Make the jobs match `planned` (airings from now to the horizon, in time order)."""
        wanted: dict[str, Group] = defaultdict(list)
        for item in planned:
            wanted[self.job_id(item)].append(item)
        for job in self.scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                job.remove()
        self.fired = {k: t for k, t in self.fired.items() if t > now - FORGET_FIRED_AFTER}
        for job_id, group in wanted.items():
            if job_id in self.fired:
                continue  # fired already and in its lead: the as-run log would refuse a second anyway
            job = self.scheduler.get_job(job_id)
            if job is not None and _same(job.args[1], group):
                continue
            # Lateness is decided on air (grace, late = "skip"), so APScheduler must never drop a job.
            self.scheduler.add_job(self._fire, DateTrigger(group[0].planned_at_utc - LEAD), args=[job_id, group],
                                   id=job_id, replace_existing=True, misfire_grace_time=None, coalesce=False)

    async def _fire(self, job_id: str, group: Group) -> None:
        # A coroutine, so APScheduler's asyncio executor runs it on the loop (a plain function would go to
        # a thread); it returns at once: the airing is the station's own task, not the scheduler's.
        self.fired[job_id] = group[0].planned_at_utc
        self.start_group(group)

    def upcoming(self) -> list[PlannedAiring]:
        """The planned airings still to fire, soonest first."""
        jobs = [j for j in self.scheduler.get_jobs() if j.id.startswith(JOB_PREFIX) and j.next_run_time]
        jobs.sort(key=lambda j: j.next_run_time)
        return [item for job in jobs for item in job.args[1]]


def _same(old: Group, new: Group) -> bool:
    return [(p.key, p.script, p.priority) for p in old] == [(p.key, p.script, p.priority) for p in new]
