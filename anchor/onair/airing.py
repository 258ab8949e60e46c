"""One airing, from its planned instant to its final row: on time or not at all, logged exactly once.

    too late for its grace (or late = "skip")  → missed
    its text not approved (approval = "required"),
    or with a listed claim no approval accepted (any channel) → its clean approved fallback airs, else skipped
    its Program (ready ahead, or made now offline) → none: failed
    claimed in the as-run log                    → already logged: not aired again
    cued up in the lead, started early by the output's own start-up time
    aired                                        → aired / late; missed, failed or interrupted by the output
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from anchor.audience.timeline import OnAirSpan, Timeline
from anchor.audit import AuditError
from anchor.audit.evidence import Evidence
from anchor.metrics import AIRING_LATENESS, DEAD_AIR, DEGRADED_AIRINGS, ON_AIR
from anchor.onair.outputs import OutputSet
from anchor.onair.programs import NOT_MADE, NotCleared, ReadyPrograms, cue_for
from anchor.outputs import AiringInterrupted, Output, OutputError, OutputUnavailable
from anchor.program import Program
from anchor.record import AsRunRecorder, Claim
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring
from anchor.store import Airing, Outcome, RotationStep
from anchor.wording import duration

log = logging.getLogger(__name__)

LEAD = timedelta(seconds=2)  # claimed and cued this early: only the output's start is left at the instant
ON_TIME = timedelta(seconds=2)  # started later than this after its instant, an airing is logged `late`
SKIP_TOLERANCE = timedelta(seconds=2)  # `late = "skip"` still airs what is only this late
SHUTDOWN = "cut by shutdown"
NOT_APPROVED = "not approved"


@dataclass
class OnAir:
    """What an airing needs from the station around it."""

    recorder: AsRunRecorder
    programs: ReadyPrograms
    outputs: OutputSet
    timeline: Timeline = field(default_factory=Timeline)  # what is on air when: the audience ties events to it
    evidence: Evidence | None = None  # where the exact audio that aired is kept for auditors
    _keeping: set[asyncio.Task[None]] = field(default_factory=set)

    def keep_evidence(self, program: Program, where: str) -> None:
        """Keep the audio going out as evidence, in the background: it never delays or stops an airing."""
        if self.evidence is None:
            return
        evidence = self.evidence

        async def keep() -> None:
            try:
                await asyncio.to_thread(evidence.keep, program.files.wav, program.audio_sha256)
            except (AuditError, OSError) as exc:
                log.warning("%s: the audio that aired is not kept as evidence: %s", where, exc)

        task = asyncio.ensure_future(keep())
        self._keeping.add(task)
        task.add_done_callback(self._keeping.discard)


async def air(planned: PlannedAiring, channel: Channel, on_air: OnAir) -> None:
    """Air one planned airing on its channel (the caller holds the channel) and log its outcome."""
    recorder = on_air.recorder
    where = f"channel {channel.id} airing {planned.key}"
    lateness = datetime.now(UTC) - planned.planned_at_utc
    if planned.late == "skip" and lateness > SKIP_TOLERANCE:
        await recorder.unaired(planned, Outcome.MISSED, f"{duration(lateness)} late and the slot says "
                                                        'late = "skip"')
        return
    if lateness > planned.grace:
        await recorder.unaired(planned, Outcome.MISSED, f"{duration(lateness)} late, past its grace of "
                                                        f"{duration(planned.grace)}")
        return
    if channel.output not in on_air.outputs:
        await recorder.unaired(planned, Outcome.FAILED, f"its output {channel.output} cannot be used")
        return
    output = on_air.outputs[channel.output]

    made = await _program(planned, channel, on_air)
    if isinstance(made, str):
        outcome = Outcome.SKIPPED if made.startswith(NOT_APPROVED) else Outcome.FAILED
        await recorder.unaired(planned, outcome, made)
        return
    planned, program, note = made

    row = Airing(channel=channel.id, slot=planned.slot, planned_at=planned.planned_at_utc, outcome=Outcome.ON_AIR,
                 script=planned.script, script_hash=program.content_hash, engine=program.engine,
                 voice=program.voice, audio_hash=program.audio_sha256, note=note,
                 approval_id=on_air.programs.approved_under.get(planned.key) if channel.approval_required else None)
    step = None
    if planned.rotation_index is not None and planned.rotation_length:
        step = RotationStep(planned.rotation_index, planned.rotation_length, planned.planned_at_utc)
    claim = await recorder.claim(row, step)
    if claim is Claim.ALREADY_LOGGED:
        log.info("%s: already in the as-run log, not airing again", where)
        return
    if claim is Claim.DEFERRED:
        log.error("%s: airing; the as-run log refused its row, which is kept and written when it can be", where)

    cue = cue_for(planned, channel, program)
    try:
        await output.cue_up(cue)
    except OutputError as exc:  # air() tries again and decides
        log.warning("%s: cue-up on %s failed: %s", where, channel.output, exc)
    await _until_start(planned, output)
    started_at = datetime.now(UTC)
    recorder.started(row, started_at)  # a crash from here on leaves the row `interrupted`, never re-aired
    on_air.keep_evidence(program, where)
    ON_AIR.labels(channel.id).set(1)
    span = OnAirSpan(channel.id, planned.slot, planned.planned_at_utc, planned.script, started_at)
    on_air.timeline.started(span)
    try:
        result = await output.air(cue)
    except OutputUnavailable as exc:
        await recorder.finish(row, Outcome.MISSED, error=str(exc))
        log.error("%s: missed on %s: %s", where, channel.output, exc)
        return
    except AiringInterrupted as exc:
        await recorder.finish(row, Outcome.INTERRUPTED, started_at=started_at, ended_at=datetime.now(UTC),
                              error=str(exc))
        log.error("%s: interrupted on %s: %s", where, channel.output, exc)
        return
    except OutputError as exc:
        await recorder.finish(row, Outcome.FAILED, error=str(exc), ended_at=datetime.now(UTC))
        log.error("%s: output %s failed: %s", where, channel.output, exc)
        return
    except asyncio.CancelledError:
        await asyncio.shield(recorder.finish(row, Outcome.INTERRUPTED, started_at=started_at,
                                             ended_at=datetime.now(UTC), error=SHUTDOWN))
        log.warning("%s: interrupted by shutdown", where)
        raise
    finally:
        ON_AIR.labels(channel.id).set(0)
        on_air.timeline.ended(span, datetime.now(UTC))

    late_by = result.started_at - planned.planned_at_utc
    outcome = Outcome.LATE if late_by > ON_TIME else Outcome.AIRED
    AIRING_LATENESS.labels(channel.id).observe(max(0.0, late_by.total_seconds()))
    down = result.degraded
    if down is not None:
        DEGRADED_AIRINGS.labels(channel.id, result.rung.value, down.reason).inc()
    if result.dead_air_seconds > 0:
        DEAD_AIR.labels(channel.id).inc(result.dead_air_seconds)
        log.warning("%s: %.1f s of dead air while %s was on air (its sound stayed below the threshold)", where,
                    result.dead_air_seconds, planned.script)
    await recorder.finish(row, outcome, started_at=result.started_at, ended_at=result.ended_at,
                          aired_as=result.rung.value, degraded=down.detail if down else None)
    log.info("%s: %s %s (%s, %.0f ms after the instant, %.1f s%s)", where, outcome.value, planned.script,
             program.engine, late_by.total_seconds() * 1000, program.duration_seconds,
             f"; as {result.rung.value} because {down.detail}" if down else "")


async def _program(planned: PlannedAiring, channel: Channel,
                   on_air: OnAir) -> tuple[PlannedAiring, Program, str | None] | str:
    """What airs for `planned`: its Program (made ready ahead, or now by the offline engine); only a text
    whose listed claims are all accepted, and on a channel that requires approval only an approved text, both
    checked afresh at air time; else the slot's fallback, if it is cleared. The airing (the fallback's, when it
    airs) and why the fallback aired — or why nothing does."""
    programs = on_air.programs
    ready = programs.get(planned)
    if ready is not None and ready.script != planned.script:
        ready = None  # its fallback's, made ready instead: the slot's own script is asked again
    try:
        if ready is not None and not channel.approval_required and planned.key not in programs.with_claims:
            return planned, ready, None
        # Not made ready ahead (a fresh edit, rendering failed): speak it now, offline. Or ready, but an
        # approval (or the acceptance of a claim) may have been revoked since: ask again (the Program itself
        # comes from the cache).
        return planned, await programs.make(planned, channel, offline=ready is None, fresh=True), None
    except NotCleared as exc:
        refused = exc.reason
    except NOT_MADE as exc:
        return f"could not render {planned.script}: {exc}"
    if not planned.fallback:
        return f"{NOT_APPROVED}: {refused}; the slot names no fallback"
    instead = dataclasses.replace(planned, script=planned.fallback, rotation_index=None, rotation_length=None)
    try:
        spare = programs.get(instead)
        program = await programs.make(instead, channel, offline=spare is None or spare.script != instead.script,
                                      fresh=True)
    except NotCleared as exc:
        return f"{NOT_APPROVED}: {refused}; nor is its fallback {planned.fallback}: {exc.reason}"
    except NOT_MADE as exc:
        return f"{NOT_APPROVED}: {refused}; its fallback {planned.fallback} could not be rendered: {exc}"
    # The rotation still moves past this instant: the slot's own script had its turn.
    instead = dataclasses.replace(instead, rotation_index=planned.rotation_index,
                                  rotation_length=planned.rotation_length)
    return instead, program, f"its fallback aired: {planned.script} {refused}"


async def _until_start(planned: PlannedAiring, output: Output) -> None:
    """Wait for the instant, less the output's own measured start-up time, so it is on air at the instant."""
    wait = (planned.planned_at_utc - datetime.now(UTC)).total_seconds() - output.preroll
    if wait > 0:
        await asyncio.sleep(wait)
