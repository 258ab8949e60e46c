"""On air: each channel airs one program at a time, on the minute, and every airing is logged once.

A channel is a lock: an airing holds it for the program's duration. Airings planned for the same
instant arrive together and go in priority order; one that cannot start within its grace is missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy.exc import SQLAlchemyError

from anchor.config import Settings
from anchor.content import load_script
from anchor.metrics import AIRING_LATENESS, AIRINGS, ON_AIR, PROGRAMS_READY
from anchor.outputs import AiringInterrupted, Cue, Output, OutputError, OutputUnavailable, output_type
from anchor.problems import InputError
from anchor.program import Program, RenderError, render_program
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.speech.engines import UnknownVoice
from anchor.store import Airing, AsRunLog, Outcome

log = logging.getLogger(__name__)

UTC = timezone.utc
LEAD = timedelta(seconds=2)  # airings are claimed and cued this early, so only the output's start is left at the instant
ON_TIME = timedelta(seconds=2)  # started later than this after its instant, an airing is logged `late`
SKIP_TOLERANCE = timedelta(seconds=2)  # `late = "skip"` still airs what is only this late


class Station:
    """All channels' on-air state: programs made ready ahead, outputs, and the as-run log."""

    def __init__(self, settings: Settings, log_: AsRunLog, chain: EngineChain, cache: ProgramCache) -> None:
        self.settings = settings
        self.asrun = log_
        self.chain = chain
        self.cache = cache
        self.channels: dict[str, Channel] = {}
        self.programs: dict[str, Program] = {}  # PlannedAiring.key → its ready Program
        self.outputs: dict[str, Output] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.airing: dict[str, asyncio.Task[None]] = {}
        self.pending: set[asyncio.Future[object]] = set()
        self.unrecorded: list[Airing] = []  # missed/failed rows the database refused (disk full, server down)

    def use_channels(self, channels: Sequence[Channel]) -> None:
        self.channels = {c.id: c for c in channels}
        for channel in channels:
            self.locks.setdefault(channel.id, asyncio.Lock())
            if channel.output not in self.outputs:
                kind, _, target = channel.output.partition(":")
                self.outputs[channel.output] = output_type(kind).create(self.settings, target)

    def _voices(self, channel: Channel) -> list[str]:
        return [v for v in (channel.voice, channel.fallback_voice) if v]

    async def make_program(self, planned: PlannedAiring, chain: EngineChain | None = None) -> Program:
        channel = self.channels[planned.channel]
        script = await asyncio.to_thread(load_script, self.settings.scripts_dir / planned.script, self.settings.scripts_dir)
        program = await render_program(script, self.settings, chain or self.chain, self.cache,
                                       voices=self._voices(channel))
        self.programs[planned.key] = program
        return program

    def cue(self, planned: PlannedAiring, program: Program) -> Cue:
        channel = self.channels[planned.channel]
        return Cue(channel.id, channel.name, planned.slot, planned.planned_at, program, channel.avatar,
                   deadline=planned.planned_at_utc + planned.grace)

    async def prepare(self, planned: list[PlannedAiring]) -> None:
        """Render ahead of air time, soonest first, so at the instant only the output action remains."""
        ready: dict[str, int] = {}
        for item in planned:
            if item.channel not in self.channels:
                continue
            try:
                program = self.programs.get(item.key) or await self.make_program(item)
                await self.outputs[self.channels[item.channel].output].prepare(self.cue(item, program))
            except (InputError, RenderError, UnknownVoice, OutputError, OSError) as exc:
                log.error("channel %s airing %s: cannot prepare %s: %s", item.channel, item.key, item.script, exc)
                continue
            ready[item.channel] = ready.get(item.channel, 0) + 1
        for channel in self.channels:
            PROGRAMS_READY.labels(channel).set(ready.get(channel, 0))
        keep = {p.key for p in planned}
        self.programs = {k: v for k, v in self.programs.items() if k in keep}

    async def air_group(self, group: list[PlannedAiring]) -> None:
        """The airings one channel has at one instant, highest priority first."""
        for planned in sorted(group, key=lambda p: -p.priority):
            await self.air(planned)

    async def air(self, planned: PlannedAiring) -> None:
        channel = self.channels.get(planned.channel)
        if channel is None:
            return  # removed by a reload after this was scheduled
        async with self.locks[channel.id]:
            await self._air_now(channel, planned)

    async def record_unaired(self, planned: PlannedAiring, outcome: Outcome, error: str) -> None:
        row = Airing(channel=planned.channel, slot=planned.slot, planned_at=planned.planned_at_utc, outcome=outcome,
                     script=planned.script, error=error)
        recorded = await self.logged(f"record {planned.key} as {outcome.value}", self.asrun.claim, row)
        if recorded is None:
            self.unrecorded.append(row)  # retried by the heartbeat until the database takes it
        if recorded is not False:
            AIRINGS.labels(planned.channel, outcome.value).inc()
            log.warning("channel %s airing %s: %s (%s)", planned.channel, planned.key, outcome.value, error)

    async def _air_now(self, channel: Channel, planned: PlannedAiring) -> None:
        lateness = datetime.now(UTC) - planned.planned_at_utc
        if planned.late == "skip" and lateness > SKIP_TOLERANCE:
            await self.record_unaired(planned, Outcome.MISSED, f"{lateness.total_seconds():.1f}s late and the slot says late = \"skip\"")
            return
        if lateness > planned.grace:
            await self.record_unaired(planned, Outcome.MISSED, f"{lateness.total_seconds():.1f}s late, past its grace of {planned.grace}")
            return
        program = self.programs.get(planned.key)
        if program is None:
            # Not rendered ahead (a fresh edit, or rendering failed): speak it now with the offline engine.
            try:
                offline = EngineChain(self.settings, only=self.chain.engines[-1].name)
                program = await self.make_program(planned, chain=offline)
            except (InputError, RenderError, UnknownVoice, OSError) as exc:
                await self.record_unaired(planned, Outcome.FAILED, f"could not render {planned.script}: {exc}")
                return
        row = Airing(channel=channel.id, slot=planned.slot, planned_at=planned.planned_at_utc, outcome=Outcome.ON_AIR,
                     script=planned.script, script_hash=program.content_hash, engine=program.engine,
                     voice=program.voice, audio_hash=program.audio_sha256)
        claimed = await self.logged(f"claim {planned.key}", self.asrun.claim, row)
        if claimed is False:
            log.info("channel %s airing %s: already in the as-run log, not airing again", channel.id, planned.key)
            return
        if claimed is None:
            log.error("channel %s airing %s: airing without an as-run row", channel.id, planned.key)
        output = self.outputs[channel.output]
        cue = self.cue(planned, program)
        try:
            await output.cue_up(cue)
        except OutputError as exc:  # air() tries again and decides
            log.warning("channel %s airing %s: cue-up on %s failed: %s", channel.id, planned.key, channel.output, exc)
        # Start early by the output's own start-up time, so it is really on air at the instant.
        wait = (planned.planned_at_utc - datetime.now(UTC)).total_seconds() - output.preroll
        if wait > 0:
            await asyncio.sleep(wait)
        # Recorded off the on-air path: a crash from here on leaves the row `interrupted`, never re-aired.
        self._background(self._finish(row, started_at=datetime.now(UTC)))
        ON_AIR.labels(channel.id).set(1)
        task = asyncio.current_task()
        assert task is not None
        self.airing[channel.id] = task
        try:
            result = await output.air(cue)
        except (OutputUnavailable, AiringInterrupted) as exc:
            missed = isinstance(exc, OutputUnavailable)
            outcome = Outcome.MISSED if missed else Outcome.INTERRUPTED
            if self.pending:
                await asyncio.wait(self.pending, timeout=5)  # the started_at write lands before this one
            await self._finish(row, outcome=outcome, error=str(exc), ended_at=None if missed else datetime.now(UTC),
                               **({"started_at": None} if missed else {}))
            AIRINGS.labels(channel.id, outcome.value).inc()
            log.error("channel %s airing %s: %s on %s: %s", channel.id, planned.key, outcome.value, channel.output, exc)
            return
        except OutputError as exc:
            await self._finish(row, outcome=Outcome.FAILED, error=str(exc), ended_at=datetime.now(UTC))
            AIRINGS.labels(channel.id, Outcome.FAILED.value).inc()
            log.error("channel %s airing %s: output %s failed: %s", channel.id, planned.key, channel.output, exc)
            return
        except asyncio.CancelledError:
            await asyncio.wait(self.pending, timeout=5) if self.pending else None
            await asyncio.shield(self._finish(row, outcome=Outcome.INTERRUPTED, error="cut by shutdown",
                                              ended_at=datetime.now(UTC)))
            AIRINGS.labels(channel.id, Outcome.INTERRUPTED.value).inc()
            log.warning("channel %s airing %s: interrupted by shutdown", channel.id, planned.key)
            raise
        finally:
            ON_AIR.labels(channel.id).set(0)
            self.airing.pop(channel.id, None)
        late_by = result.started_at - planned.planned_at_utc
        outcome = Outcome.LATE if late_by > ON_TIME else Outcome.AIRED
        AIRING_LATENESS.labels(channel.id).observe(max(0.0, late_by.total_seconds()))
        if self.pending:
            await asyncio.wait(self.pending, timeout=5)  # the started_at write lands before the final one
        await self._finish(row, outcome=outcome, started_at=result.started_at, ended_at=result.ended_at)
        AIRINGS.labels(channel.id, outcome.value).inc()
        slot = next((s for s in channel.slots if s.id == planned.slot), None)
        if slot is not None and slot.rotates and planned.rotation_index is not None:
            await self.logged("advance the rotation", self.asrun.advance_rotation, channel.id, slot.id,
                               planned.rotation_index, len(slot.scripts))
        log.info("channel %s airing %s: %s %s (%s, %.0f ms after the instant, %.1f s)", channel.id, planned.key,
                 outcome.value, planned.script, program.engine, late_by.total_seconds() * 1000,
                 program.duration_seconds)

    async def logged(self, what: str, write, *args, **changes):  # type: ignore[no-untyped-def]
        """A write to the as-run log, off the loop. A failing database (disk full, server down) is logged
        loudly but never stops airing: None means the write did not happen."""
        try:
            return await asyncio.to_thread(write, *args, **changes)
        except (SQLAlchemyError, OSError) as exc:
            log.error("as-run log: cannot %s: %s", what, exc)
            return None

    async def record_unrecorded(self) -> None:
        """Write the rows a failing database refused earlier, so the as-run log ends up complete."""
        waiting, self.unrecorded = self.unrecorded, []
        for row in waiting:
            fresh = Airing.model_validate(row.model_dump(exclude={"id"}))  # the failed flush gave `row` an id
            if await self.logged(f"record {row.channel} {row.slot} later", self.asrun.claim, fresh) is None:
                self.unrecorded.append(row)

    async def _finish(self, row: Airing, **changes: object) -> None:
        if row.id is not None:
            await self.logged(f"record the end of {row.channel} {row.slot}", self.asrun.finish, row, **changes)

    def _background(self, work) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def close(self) -> None:
        if self.pending:
            await asyncio.wait(self.pending, timeout=10)
        for output in self.outputs.values():
            await output.close()
