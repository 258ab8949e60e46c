"""`anchor run`: the parts of the data flow wired together, the heartbeat, signals and sd_notify."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from wsgiref.simple_server import WSGIServer

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import start_http_server

from anchor import __version__, systemd
from anchor.audience.rooms import Rooms
from anchor.audience.tally import Tally
from anchor.audience.timeline import Timeline
from anchor.audience.webhook_server import WebhookServer
from anchor.audit.evidence import Evidence
from anchor.clock import WallClockWatch, shown_time
from anchor.config import Settings
from anchor.content.screening import LIST_GLOB
from anchor.lineup import Lineup, LineupKeeper
from anchor.memory import return_big_blocks_to_the_os
from anchor.metrics import BUILD_INFO, CLOCK_JUMPS, NEXT_AIRING, SCHEDULE_RELOADS, SCHEDULER_TICK, UNAPPROVED_AIRINGS
from anchor.onair.airing import OnAir
from anchor.onair.outlook import Outlook, approval_outlook
from anchor.onair.outputs import OutputSet
from anchor.onair.programs import ApprovalReader, ReadyPrograms
from anchor.onair.station import Station
from anchor.onair.timetable import Timetable
from anchor.pending import PendingRows
from anchor.preflight import checked_settings, permission_problems, port_problem, port_problems, readiness_problems
from anchor.problems import InputError
from anchor.record import AsRunRecorder
from anchor.schedule.catchup import catch_up
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring, iter_plan, plan
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.store import Outcome, open_store
from anchor.watch import InputWatch

log = logging.getLogger(__name__)

EVIDENCE_SWEEP_HOURS = 6
HEARTBEAT_SECONDS = 15  # bounds every scheduler sleep, so a wall-clock step is noticed within this
WATCH_SECONDS = 2.0
CATCH_UP = timedelta(hours=24)  # how far back a restarted daemon looks for airings it missed
RUNNING_NOTE = "daemon.json"  # under data_dir: the running daemon's pid and ports
OUTLOOK = timedelta(hours=24)  # how far ahead unapproved airings are counted
# How far past the pre-render horizon a channel's next airing is looked for (`anchor status`, the next-airing
# gauge): a weekly or monthly slot, or a one-off months ahead, is still "next".
LOOK_BEYOND = timedelta(days=400)
LOOK_AGAIN = timedelta(hours=1)  # a channel with nothing in LOOK_BEYOND is looked at again after this


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.reload_wanted = asyncio.Event()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.asrun = open_store(settings.database_url)
        self.recorder = AsRunRecorder(self.asrun, PendingRows(settings.data_dir))
        cache = ProgramCache(settings.cache_dir, settings.cache.max_size_mb * 1024 * 1024)
        self.approvals = ApprovalReader(self.asrun)
        self.programs = ReadyPrograms(settings, EngineChain(settings), cache, self.approvals)
        self.timeline = Timeline()
        self.evidence = Evidence(settings.data_dir)
        self.station = Station(OnAir(self.recorder, self.programs, OutputSet(settings), self.timeline,
                                     self.evidence))
        self.tally = Tally(self.timeline, self.asrun)
        self.http = WebhookServer(settings.daemon.http_host, settings.daemon.http_port)
        self.http.add_reader("/status", self.state)
        self.rooms = Rooms(self.tally, self.http)
        self.timetable = Timetable(self.scheduler, self.station.start_group)
        self.clock = WallClockWatch()
        self.keeper = LineupKeeper(settings)
        self.channels: list[Channel] = []
        self.prepare_task: asyncio.Task[None] | None = None
        # channel → its next airing beyond the horizon (None: none in LOOK_BEYOND), and until when that holds
        self.beyond: dict[str, tuple[PlannedAiring | None, datetime]] = {}
        self.metrics_port: int | None = None

    # -- plan -------------------------------------------------------------------------------------------

    def horizon(self) -> timedelta:
        return timedelta(hours=max((c.prerender_hours for c in self.channels), default=6.0))

    async def _plan(self, start: datetime, end: datetime) -> list[PlannedAiring]:
        rotation = await asyncio.to_thread(self.asrun.rotation)  # a database read: off the loop
        return plan(self.channels, start, end, rotation)

    async def _schedule(self, now: datetime) -> list[PlannedAiring]:
        """Jobs for every airing from now to the horizon."""
        planned = await self._plan(now, now + self.horizon())
        self.timetable.update(planned, now)
        nearest: dict[str, PlannedAiring] = {}
        for item in planned:
            nearest.setdefault(item.channel, item)
        await self._look_beyond(now, nearest)
        for channel in self.channels:
            upcoming = self.next_airing(channel.id, nearest)
            NEXT_AIRING.labels(channel.id).set(upcoming.planned_at_utc.timestamp() if upcoming else 0)
        return planned

    async def _look_beyond(self, now: datetime, nearest: dict[str, PlannedAiring]) -> None:
        """Each channel with nothing inside the horizon: its next airing after it (kept until it is due to
        enter the horizon, so a heartbeat rarely plans that far)."""
        horizon_end = now + self.horizon()
        wanted = [c for c in self.channels if c.id not in nearest
                  and (c.id not in self.beyond or self.beyond[c.id][1] <= horizon_end)]
        if not wanted:
            return

        def first_airings() -> dict[str, PlannedAiring | None]:  # planning months ahead: off the loop
            rotation = self.asrun.rotation()
            return {c.id: next(iter_plan([c], horizon_end, horizon_end + LOOK_BEYOND, rotation), None)
                    for c in wanted}

        for channel_id, found in (await asyncio.to_thread(first_airings)).items():
            self.beyond[channel_id] = (found, found.planned_at_utc if found else now + LOOK_AGAIN)

    def next_airing(self, channel_id: str, nearest: dict[str, PlannedAiring]) -> PlannedAiring | None:
        """The channel's next airing: inside the horizon (scheduled), else beyond it (only planned yet)."""
        if channel_id in nearest:
            return nearest[channel_id]
        found, _ = self.beyond.get(channel_id, (None, None))
        return found if found is not None and found.planned_at_utc > datetime.now(UTC) else None

    async def _catch_up(self, now: datetime) -> None:
        """Airings planned while the daemon was down (since it was last alive, at most a day back)."""
        last_alive = await asyncio.to_thread(self.asrun.last_alive)
        if last_alive is None:
            log.info("first start with this as-run log: nothing to catch up on")
            return
        since = max(last_alive, now - CATCH_UP)
        logged = await asyncio.to_thread(self.asrun.logged_since, since) | self.recorder.held()
        decided = catch_up(await self._plan(since, now), logged, now)
        for item, reason in decided.missed:
            await self.recorder.unaired(item, Outcome.MISSED, reason)
        for item in decided.air_late:
            log.info("channel %s airing %s: planned while the daemon was down; airing it late", item.channel,
                     item.key)
            self.station.start(item)

    def _prepare(self, planned: list[PlannedAiring]) -> None:
        """(Re)start making the horizon's programs ready in the background; the newest plan wins."""
        if self.prepare_task is not None and not self.prepare_task.done():
            self.prepare_task.cancel()
        self.prepare_task = asyncio.create_task(
            self.programs.prepare(planned, self.station.channels, self.station.on_air.outputs), name="prepare")

    def status(self) -> str:
        upcoming = self.timetable.upcoming()
        if not upcoming:
            return f"{len(self.channels)} channels, nothing planned in the next {self.horizon()}"
        first = upcoming[0]
        when = shown_time(first.planned_at, first.planned_at.tzinfo or UTC, "minutes")  # the channel's clock
        return f"next: {first.channel} {first.script} at {when}"

    # -- reload -----------------------------------------------------------------------------------------

    async def _use(self, channels: list[Channel]) -> None:
        self.channels = channels
        self.beyond = {}  # what lies beyond the horizon is planned anew from the new files
        await self.station.use_channels(channels)
        for channel in channels:
            self.timeline.know(channel.id, {name for s in channel.slots for name in (*s.scripts, s.fallback) if name})
        await self.rooms.use(channels)

    def state(self) -> dict[str, object]:
        """`anchor status`: what is on air now and next on each channel, the rooms and the outputs."""
        upcoming = self.timeline_next()
        channels = []
        for channel in self.channels:
            now = self.timeline.now(channel.id)
            following = upcoming.get(channel.id)
            channels.append({
                "id": channel.id, "name": channel.name, "timezone": str(channel.zone),
                "on_air": {"script": now.script, "slot": now.slot,
                           "since": now.started_at.isoformat()} if now else None,
                "next": {"script": following.script, "slot": following.slot,
                         "at": following.planned_at.isoformat()} if following else None,
            })
        return {"now": datetime.now(UTC).isoformat(), "channels": channels, "rooms": self.rooms.states(),
                "outputs": self.station.on_air.outputs.health()}

    def timeline_next(self) -> dict[str, PlannedAiring]:
        """Each channel's next airing: the first scheduled job, else the first beyond the horizon."""
        scheduled: dict[str, PlannedAiring] = {}
        for item in self.timetable.upcoming():
            scheduled.setdefault(item.channel, item)
        found: dict[str, PlannedAiring] = {}
        for channel in self.channels:
            upcoming = self.next_airing(channel.id, scheduled)
            if upcoming is not None:
                found[channel.id] = upcoming
        return found

    async def _load_lineup(self) -> Lineup:
        """Every channel file on its own: the good ones as written, a broken one as its last good version."""
        lineup = await asyncio.to_thread(self.keeper.load)
        for problem in lineup.problems:
            if problem.warning:
                log.warning("%s", problem)
            else:
                log.error("channel file not loaded: %s", problem)
        return lineup

    async def reload(self) -> bool:
        """Apply the edited channel files; a file with errors keeps airing its last good version."""
        try:
            lineup = await self._load_lineup()
        except InputError as exc:  # the schedules folder itself is gone
            SCHEDULE_RELOADS.labels("rejected").inc()
            for problem in exc.problems:
                log.error("schedule not reloaded: %s", problem)
            log.error("the previous schedule keeps airing until the files are fixed")
            return False
        await self._use(lineup.channels)
        self.programs.forget()
        self._prepare(await self._schedule(datetime.now(UTC)))
        clean = not any(not p.warning for p in lineup.problems)
        SCHEDULE_RELOADS.labels("applied" if clean else "partial").inc()
        log.info("schedule loaded: %d channels; %s", len(lineup.channels), self.status())
        return clean

    async def _reloads(self) -> None:
        while True:
            await self.reload_wanted.wait()
            self.reload_wanted.clear()
            await self.reload()

    async def _watch(self, watch: InputWatch) -> None:
        while not self.stopping.is_set():
            if await watch.changed():
                log.info("inputs changed (%s, %s, %s or %s)", self.settings.paths.schedules_dir,
                         self.settings.paths.scripts_dir, self.settings.paths.calendar_dir, self.settings.paths.lexicon)
                self.reload_wanted.set()
            try:
                await asyncio.wait_for(self.stopping.wait(), WATCH_SECONDS)
            except TimeoutError:
                pass

    # -- heartbeat --------------------------------------------------------------------------------------

    async def _count_unapproved(self, now: datetime) -> None:
        """anchor_unapproved_airings: airings of the next 24 hours whose script's text will not air — not
        approved on a channel that requires it, or holding a listed claim no approval accepted, on any channel."""
        if not self.channels:
            return
        planned = await self._plan(now, now + OUTLOOK)
        book = await self.approvals.book(fresh=True)
        outlook = await asyncio.to_thread(approval_outlook, planned, {c.id: c for c in self.channels}, book,
                                          self.settings.scripts_dir, await self.programs.screen())
        for channel in self.channels:
            UNAPPROVED_AIRINGS.labels(channel.id).set(sum(
                1 for p in planned if p.channel == channel.id and outlook.get(p.key, Outlook(p.script, None)).reason))

    async def _sweep_evidence(self) -> None:
        """Let go of the audio no airing used within [audit] evidence_days."""
        try:
            swept = await asyncio.to_thread(self.evidence.sweep, datetime.now(UTC), self.settings.audit.evidence_days)
        except OSError as exc:
            log.warning("evidence under %s could not be swept: %s", self.evidence.directory, exc)
            return
        if swept.removed:
            log.info("evidence: %d audio files older than %d days removed (%.1f MB), %d kept", swept.removed,
                     self.settings.audit.evidence_days, swept.removed_bytes / 1e6, swept.kept)

    async def _heartbeat(self) -> None:
        SCHEDULER_TICK.set(time.time())
        jump = self.clock.jump()
        if jump:
            CLOCK_JUMPS.inc()
            log.warning("the wall clock jumped by %+.1f s; re-planning", jump)
        await self.recorder.retry_deferred()
        await self.tally.flush()
        await self.recorder.mark_alive(datetime.now(UTC))
        planned = await self._schedule(datetime.now(UTC))  # extends the horizon as time moves
        if self.prepare_task is None or self.prepare_task.done():
            self._prepare(planned)
        await self._count_unapproved(datetime.now(UTC))

    # -- run --------------------------------------------------------------------------------------------

    async def run(self) -> int:
        BUILD_INFO.info({"version": __version__})
        for result in ("applied", "partial", "rejected"):  # known series start at 0
            SCHEDULE_RELOADS.labels(result)
        checked_settings(self.settings)
        taken = await asyncio.to_thread(port_problems, self.settings)  # before any work: a second daemon stops here
        if taken:
            raise InputError(taken)
        await self._refuse_open_folders()
        inputs = [(self.settings.schedules_dir, "*.toml"), (self.settings.scripts_dir, "**/*.md"),
                  (self.settings.calendar_dir, "*.toml"),  # a year filed in November changes what airs
                  (self.settings.lexicon.parent, self.settings.lexicon.name),  # re-render what it re-reads
                  (self.settings.screening_dir, LIST_GLOB)]  # a word added to a list keeps its texts off air
        # The baseline is taken before the first load, so an edit made while the daemon starts is a change.
        watch = await InputWatch.start(inputs)
        lineup = await self._load_lineup()
        channels = lineup.channels
        for problem in await asyncio.to_thread(readiness_problems, self.settings, channels):
            (log.warning if problem.warning else log.error)("%s", problem)
        now = datetime.now(UTC)
        await self.recorder.recover(now)
        await self._use(channels)
        try:  # taken since the check above
            server = self._serve_metrics()
        except OSError as exc:
            raise InputError([await asyncio.to_thread(port_problem, self.settings, "metrics_port", exc)]) from None
        try:
            port = await self.http.start()
        except OSError as exc:
            server.shutdown()
            raise InputError([await asyncio.to_thread(port_problem, self.settings, "http_port", exc)]) from None
        log.info("status and live-room webhooks on http://%s:%d", self.http.host, port)
        await asyncio.to_thread(self._note_ports, port)
        self._handle_signals()
        self.scheduler.start()
        self.scheduler.add_job(self._heartbeat, IntervalTrigger(seconds=HEARTBEAT_SECONDS), id="heartbeat",
                               misfire_grace_time=None, coalesce=True, max_instances=1)
        self.scheduler.add_job(self._sweep_evidence, IntervalTrigger(hours=EVIDENCE_SWEEP_HOURS), id="evidence",
                               next_run_time=datetime.now(UTC), misfire_grace_time=None, coalesce=True,
                               max_instances=1)
        await self._catch_up(now)
        await self.recorder.mark_alive(now)
        self._prepare(await self._schedule(now))
        await self._count_unapproved(now)
        SCHEDULER_TICK.set(time.time())
        systemd.notify("READY=1", f"STATUS={self.status()}")
        log.info("on air: %d channels; %s", len(channels), self.status())
        background = [asyncio.create_task(self._watch(watch)), asyncio.create_task(self._reloads())]
        interval = systemd.watchdog_interval()
        if interval:
            background.append(asyncio.create_task(systemd.watchdog_loop(interval, self.status)))
        try:
            await self.stopping.wait()
        finally:
            systemd.notify("STOPPING=1")
            log.info("stopping")
            await self._stop(background, server)
        return 0

    async def _refuse_open_folders(self) -> None:
        """World-writable schedules or scripts: a warning at a terminal, a refusal as a service (systemd sets
        INVOCATION_ID), where nobody reads the warning and the PC runs for months."""
        problems = await asyncio.to_thread(permission_problems, self.settings)
        if problems and os.environ.get("INVOCATION_ID"):
            raise InputError([dataclasses.replace(p, warning=False) for p in problems])
        for problem in problems:
            log.warning("%s", problem)

    def _note_ports(self, http_port: int) -> None:
        """Where `anchor status` finds this daemon when its ports were chosen by the system (port 0)."""
        note = self.settings.data_dir / RUNNING_NOTE
        try:
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_text(json.dumps({"pid": os.getpid(), "http": f"{self.http.host}:{http_port}",
                                        "metrics_port": self.metrics_port}), encoding="utf-8")
        except OSError as exc:
            log.warning("cannot note the daemon's ports in %s: %s", note, exc.strerror or exc)

    def _serve_metrics(self) -> WSGIServer:
        daemon = self.settings.daemon
        server, _ = start_http_server(daemon.metrics_port, addr=daemon.metrics_host)
        self.metrics_port = server.server_port
        log.info("metrics on http://%s:%d/metrics", daemon.metrics_host, self.metrics_port)
        return server

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_wanted.set)

    async def _stop(self, background: list[asyncio.Task[None]], server: WSGIServer) -> None:
        self.scheduler.shutdown(wait=False)
        timeout = self.settings.daemon.stop_timeout
        await self.station.stop(timeout)  # each airing cut logs its own `interrupted`
        await self.recorder.mark_alive(datetime.now(UTC))
        others = [*background, *([self.prepare_task] if self.prepare_task else [])]
        for task in others:
            task.cancel()
        await asyncio.wait(others, timeout=timeout)
        await self.rooms.stop()
        await self.tally.flush()
        await self.http.stop()
        await self.station.on_air.outputs.close()
        await self.recorder.close()
        server.shutdown()


def run_daemon(settings: Settings) -> int:
    return_big_blocks_to_the_os()
    return asyncio.run(Daemon(settings).run())
