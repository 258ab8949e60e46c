"""`anchor run`: wiring, signals and sd_notify around the scheduler and the Station. Nothing else."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import start_http_server

from anchor import __version__, systemd
from anchor.config import Settings
from anchor.metrics import BUILD_INFO, CLOCK_JUMPS, NEXT_AIRING, SCHEDULE_RELOADS, SCHEDULER_TICK
from anchor.onair import LEAD, Station
from anchor.problems import InputError
from anchor.schedule.channel import Channel, load_channels
from anchor.schedule.planner import PlannedAiring, plan
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.store import AsRunLog, Outcome, database_url, open_engine

log = logging.getLogger(__name__)

UTC = timezone.utc
HEARTBEAT_SECONDS = 15  # bounds every scheduler sleep, so a wall-clock step is noticed within this
WATCH_SECONDS = 2.0
CATCH_UP = timedelta(hours=24)  # how far back a restarted daemon looks for airings it missed
CLOCK_JUMP = 2.0  # seconds of disagreement between wall and monotonic clocks that count as a jump
AIRING_JOB = "airing:"


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.reload_wanted = asyncio.Event()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.asrun = AsRunLog(open_engine(database_url(settings.daemon.database_url, settings.data_dir)))
        self.chain = EngineChain(settings)
        self.cache = ProgramCache(settings.cache_dir, settings.cache.max_size_mb * 1024 * 1024)
        self.station = Station(settings, self.asrun, self.chain, self.cache)
        self.channels: list[Channel] = []
        self.prepare_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.dispatched: dict[str, datetime] = {}  # airing jobs that have fired, by job id → instant
        self._clock = (time.time(), time.monotonic())
        self._fingerprint = self._files_fingerprint()
        self.metrics_port: int | None = None

    # -- schedule ---------------------------------------------------------------------------------

    def horizon(self) -> timedelta:
        return timedelta(hours=max((c.prerender_hours for c in self.channels), default=6.0))

    async def _schedule(self, now: datetime) -> list[PlannedAiring]:
        """Jobs for every airing from now to the horizon; stale jobs (edited away) are removed."""
        rotation = await asyncio.to_thread(self.asrun.rotation)  # a database read: off the loop
        planned = plan(self.channels, now, now + self.horizon(), rotation)
        groups: dict[tuple[str, datetime], list[PlannedAiring]] = defaultdict(list)
        for item in planned:
            groups[(item.channel, item.planned_at_utc)].append(item)
        wanted = {f"{AIRING_JOB}{channel}/{instant.isoformat()}": items for (channel, instant), items in groups.items()}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(AIRING_JOB) and job.id not in wanted:
                job.remove()
        self.dispatched = {k: t for k, t in self.dispatched.items() if t > now - timedelta(hours=1)}
        for job_id, items in wanted.items():
            if job_id in self.dispatched:
                continue  # fired already and waiting out its lead: the as-run log would refuse a second anyway
            job = self.scheduler.get_job(job_id)
            if job is not None and [p.key for p in job.args[1]] == [p.key for p in items]:
                continue
            # Lateness is decided by the Station (grace, late = "skip"), so APScheduler must never drop a job.
            self.scheduler.add_job(self._air_group, DateTrigger(items[0].planned_at_utc - LEAD), args=[job_id, items], id=job_id,
                                   replace_existing=True, misfire_grace_time=None, coalesce=False)
        for channel in self.channels:
            upcoming = [p for p in planned if p.channel == channel.id]
            NEXT_AIRING.labels(channel.id).set(upcoming[0].planned_at_utc.timestamp() if upcoming else 0)
        return planned

    async def _air_group(self, job_id: str, items: list[PlannedAiring]) -> None:
        self.dispatched[job_id] = items[0].planned_at_utc
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        await self.station.air_group(items)

    async def _catch_up(self, now: datetime) -> None:
        """Airings planned while the daemon was down (since it was last alive, at most a day back): the
        latest of each slot airs late if within its grace; everything else is logged missed."""
        last_alive = await asyncio.to_thread(self.asrun.last_alive)
        if last_alive is None:
            log.info("first start with this as-run log: nothing to catch up on")
            return
        since = max(last_alive, now - CATCH_UP)
        missed = plan(self.channels, since, now, await asyncio.to_thread(self.asrun.rotation))
        handled = {c.id: await asyncio.to_thread(self.asrun.handled, c.id, since) for c in self.channels}
        unhandled = [p for p in missed if (p.slot, p.planned_at_utc) not in handled[p.channel]]
        latest = {(p.channel, p.slot): p for p in unhandled}  # plan() is in time order: the last one wins
        for item in unhandled:
            if latest[(item.channel, item.slot)] is not item:
                await self.station.record_unaired(item, Outcome.MISSED, "the daemon was not running at its instant "
                                                   "(a later airing of the slot took its place)")
            elif item.late == "air" and now - item.planned_at_utc <= item.grace:
                log.info("channel %s airing %s: planned while the daemon was down; airing it late", item.channel, item.key)
                self._spawn(self.station.air(item))
            else:
                await self.station.record_unaired(item, Outcome.MISSED, "the daemon was not running at its instant")

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _prepare(self, planned: list[PlannedAiring]) -> None:
        """(Re)start pre-rendering the horizon in the background; the newest plan wins."""
        if self.prepare_task is not None and not self.prepare_task.done():
            self.prepare_task.cancel()
        self.prepare_task = asyncio.ensure_future(self.station.prepare(planned))

    def status(self) -> str:
        upcoming = [j for j in self.scheduler.get_jobs() if j.id.startswith(AIRING_JOB) and j.next_run_time]
        if not upcoming:
            return f"{len(self.channels)} channels, nothing planned in the next {self.horizon()}"
        job = min(upcoming, key=lambda j: j.next_run_time)
        first: PlannedAiring = job.args[1][0]
        return f"next: {first.channel} {first.script} at {first.planned_at.isoformat(timespec='minutes')}"

    # -- reload -----------------------------------------------------------------------------------

    def _files_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        found = []
        for folder, pattern in ((self.settings.schedules_dir, "*.toml"), (self.settings.scripts_dir, "**/*.md")):
            for path in folder.glob(pattern):
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))

    async def reload(self) -> bool:
        """Apply edited channel files if all of them are valid; otherwise keep airing the last good schedule."""
        try:
            channels, warnings = await asyncio.to_thread(load_channels, self.settings)
        except InputError as exc:
            SCHEDULE_RELOADS.labels("rejected").inc()
            for problem in exc.problems:
                log.error("schedule not reloaded: %s", problem)
            log.error("the previous schedule keeps airing until the files are fixed")
            return False
        for problem in warnings:
            log.warning("%s", problem)
        self.channels = channels
        self.station.use_channels(channels)
        self.station.programs.clear()  # scripts may have changed: the cache makes re-checking cheap
        self._prepare(await self._schedule(datetime.now(UTC)))
        SCHEDULE_RELOADS.labels("applied").inc()
        log.info("schedule loaded: %d channels; %s", len(channels), self.status())
        return True

    # -- heartbeat --------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        wall, mono = time.time(), time.monotonic()
        jump = (wall - self._clock[0]) - (mono - self._clock[1])
        self._clock = (wall, mono)
        SCHEDULER_TICK.set(wall)
        if abs(jump) > CLOCK_JUMP:
            CLOCK_JUMPS.inc()
            log.warning("the wall clock jumped by %+.1f s; re-planning", jump)
        await self.station.record_unrecorded()
        await self.station.logged("note that the daemon is alive", self.asrun.mark_alive, datetime.now(UTC))
        planned = await self._schedule(datetime.now(UTC))  # extends the horizon as time moves
        if self.prepare_task is None or self.prepare_task.done():
            self._prepare(planned)

    async def _watch(self) -> None:
        while not self.stopping.is_set():
            fingerprint = await asyncio.to_thread(self._files_fingerprint)
            if fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                log.info("files under %s or %s changed", self.settings.paths.schedules_dir, self.settings.paths.scripts_dir)
                self.reload_wanted.set()
            try:
                await asyncio.wait_for(self.stopping.wait(), WATCH_SECONDS)
            except asyncio.TimeoutError:
                pass

    # -- run --------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        BUILD_INFO.info({"version": __version__})
        channels, warnings = load_channels(self.settings)  # at start there is no last good schedule
        for problem in warnings:
            log.warning("%s", problem)
        for row in await asyncio.to_thread(self.asrun.recover):
            log.warning("channel %s: airing of %s planned %s was cut by a crash: logged interrupted",
                        row.channel, row.script, row.planned_at.isoformat())
        self.channels = channels
        self.station.use_channels(channels)
        daemon = self.settings.daemon
        server, _ = start_http_server(daemon.metrics_port, addr=daemon.metrics_host)
        self.metrics_port = server.server_port
        log.info("metrics on http://%s:%d/metrics", daemon.metrics_host, self.metrics_port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_wanted.set)
        self.scheduler.start()
        self.scheduler.add_job(self._heartbeat, IntervalTrigger(seconds=HEARTBEAT_SECONDS), id="heartbeat",
                               misfire_grace_time=None, coalesce=True, max_instances=1)
        now = datetime.now(UTC)
        await self._catch_up(now)
        await asyncio.to_thread(self.asrun.mark_alive, now)
        self._prepare(await self._schedule(now))
        SCHEDULER_TICK.set(time.time())
        systemd.notify("READY=1", f"STATUS={self.status()}")
        log.info("on air: %d channels; %s", len(channels), self.status())
        watchdog = systemd.watchdog_interval()
        background = [asyncio.ensure_future(self._watch()), asyncio.ensure_future(self._reloads())]
        if watchdog:
            background.append(asyncio.ensure_future(systemd.watchdog_loop(watchdog, self.status)))
        try:
            await self.stopping.wait()
        finally:
            systemd.notify("STOPPING=1")
            log.info("stopping")
            await self._stop(background, server)
        return 0

    async def _reloads(self) -> None:
        while True:
            await self.reload_wanted.wait()
            self.reload_wanted.clear()
            await self.reload()

    async def _stop(self, background: list[asyncio.Task[None]], server) -> None:  # type: ignore[no-untyped-def]
        self.scheduler.shutdown(wait=False)
        await self.station.logged("note when the daemon stopped", self.asrun.mark_alive, datetime.now(UTC))
        for task in [*background, *self.tasks, *([self.prepare_task] if self.prepare_task else [])]:
            task.cancel()
        pending = [*background, *self.tasks, *([self.prepare_task] if self.prepare_task else [])]
        if pending:
            await asyncio.wait(pending, timeout=self.settings.daemon.stop_timeout)
        await self.station.close()
        server.shutdown()


def run_daemon(settings: Settings) -> int:
    return asyncio.run(Daemon(settings).run())
