"""The record stage: every write to the as-run log, off the event loop, with explicit results.

An airing is claimed (its row inserted `on-air`) before it starts, so no restart or second process can air
it twice; its start and end are written as they happen. A database that refuses a write (disk full, server
down) never stops an airing: the row is held, brought up to date as the airing goes on, and written by
retry_deferred() once the database takes it again. Held rows are also kept on the data disk (PendingRows),
so a crash meanwhile loses none: the next start takes them over. Nothing that aired is left out of the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from anchor.clock import as_utc
from anchor.metrics import AIRINGS
from anchor.pending import PendingRows
from anchor.schedule.planner import PlannedAiring
from anchor.store import Airing, AsRunLog, Outcome, RotationStep, cut_by_crash

log = logging.getLogger(__name__)

T = TypeVar("T")


class Claim(Enum):
    CLAIMED = "claimed"  # the row is in the log: air
    ALREADY_LOGGED = "already logged"  # a row exists (a restart, another PC): do not air again
    DEFERRED = "deferred"  # the database refused the write: air anyway; the row is written later


class Unwritten(Exception):
    """The database refused a write; the message says why."""


class AsRunRecorder:
    def __init__(self, asrun: AsRunLog, pending: PendingRows | None = None) -> None:
        self.asrun = asrun
        self.pending = pending
        self._deferred: dict[tuple[str, str, datetime], tuple[Airing, RotationStep | None]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._saving = asyncio.Lock()
        # A recovery the database refused at start: (the start's instant, when the daemon was last alive).
        self._recovery: tuple[datetime, datetime | None] | None = None

    async def _write(self, what: str, write: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(write, *args)
        except (SQLAlchemyError, OSError, LookupError) as exc:
            log.error("as-run log: cannot %s: %s", what, exc)
            raise Unwritten(str(exc)) from None

    @staticmethod
    def _key(row: Airing) -> tuple[str, str, datetime]:
        return (row.channel, row.slot, as_utc(row.planned_at).astimezone(UTC))

    async def _hold(self, row: Airing, step: RotationStep | None) -> None:
        self._deferred[self._key(row)] = (row, step)
        await self._save_held()

    async def _save_held(self) -> None:
        """The held rows as they are now, onto the data disk (one writer at a time)."""
        if self.pending is None:
            return
        async with self._saving:
            await asyncio.to_thread(self.pending.save, list(self._deferred.values()))

    def held(self) -> set[tuple[str, str, datetime]]:
        """(channel, slot, planned instant UTC) of the rows held until the database takes them: logged too."""
        return set(self._deferred)

    # -- one airing's row ---------------------------------------------------------------------------------

    async def claim(self, row: Airing, step: RotationStep | None = None) -> Claim:
        """Insert the `on-air` row (and move the slot's rotation past it) before the airing starts."""
        if self._key(row) in self._deferred:
            return Claim.ALREADY_LOGGED  # held since a refused write (this process's or the last one's)
        try:
            inserted = await self._write(f"claim {row.channel} {row.slot}", self.asrun.claim, row, step)
        except Unwritten:
            await self._hold(row, step)
            return Claim.DEFERRED
        return Claim.CLAIMED if inserted else Claim.ALREADY_LOGGED

    def started(self, row: Airing, at: datetime) -> None:
        """The airing went out at `at`: written in the background, never delaying what is on air."""
        row.started_at = at
        if self._key(row) in self._deferred:  # written whole, later; held with its start meanwhile
            task = asyncio.ensure_future(self._save_held())
        else:
            task = asyncio.ensure_future(self._update(row, started_at=at))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def finish(self, row: Airing, outcome: Outcome, *, started_at: datetime | None = None,
                     ended_at: datetime | None = None, error: str | None = None, aired_as: str | None = None,
                     degraded: str | None = None) -> None:
        """The airing's final state; counted in anchor_airings_total whether or not the database took it."""
        if self._writes:  # the start lands before the end
            await asyncio.wait(list(self._writes), timeout=5)
        changes: dict[str, Any] = {"outcome": outcome, "ended_at": ended_at, "error": error, "aired_as": aired_as,
                                   "degraded": degraded}
        if started_at is not None or outcome in (Outcome.MISSED, Outcome.FAILED):
            changes["started_at"] = started_at  # missed and failed airings never started
        for key, value in changes.items():
            setattr(row, key, value)
        AIRINGS.labels(row.channel, outcome.value).inc()
        if self._key(row) in self._deferred:
            await self._save_held()
        else:
            await self._update(row, **changes)  # sealed in the same transaction

    async def _update(self, row: Airing, **changes: Any) -> None:
        try:
            await self._write(f"record {row.channel} {row.slot}", self.asrun.finish, row, changes)
        except Unwritten:
            await self._hold(row, None)  # rewritten whole: the claim's row may be gone

    async def unaired(self, planned: PlannedAiring, outcome: Outcome, error: str) -> bool:
        """Log an airing that did not go out (missed, failed, skipped). False if a row already existed."""
        row = Airing(channel=planned.channel, slot=planned.slot, planned_at=planned.planned_at_utc,
                     outcome=outcome, script=planned.script, error=error)
        claim = await self.claim(row)
        if claim is Claim.ALREADY_LOGGED:
            return False
        AIRINGS.labels(planned.channel, outcome.value).inc()
        log.warning("channel %s airing %s: %s (%s)", planned.channel, planned.key, outcome.value, error)
        return True

    # -- the log as a whole -------------------------------------------------------------------------------

    @property
    def deferred(self) -> int:
        return len(self._deferred)

    async def seal(self) -> None:
        """Seal what is final; a refusal is only logged: the heartbeat seals it later."""
        try:
            await self._write("seal the final rows", self.asrun.seal_unsealed)
        except Unwritten:
            pass

    async def retry_deferred(self) -> int:
        """Settle a recovery and write the rows the database refused earlier, and seal what is final; returns
        how many rows are still waiting."""
        await self._retry_rows()  # first: a held row is newer than the same row left on air in the database
        if self._recovery is not None:
            await self._recover(*self._recovery)
        await self.seal()
        return len(self._deferred)

    async def _retry_rows(self) -> None:
        written = 0
        for key, (row, step) in list(self._deferred.items()):
            if row.outcome is Outcome.ON_AIR:
                continue  # still airing: written whole when it ends
            try:
                await self._write(f"record {row.channel} {row.slot} later", self.asrun.upsert, row, step)
            except Unwritten:
                break  # still refused: try again at the next heartbeat
            del self._deferred[key]
            written += 1
            log.info("as-run log: wrote the %s row of %s %s the database refused earlier", row.outcome.value,
                     row.channel, row.slot)
        if written:
            await self._save_held()

    async def recover(self, now: datetime) -> list[Airing]:
        """At start: rows a crash left on air (see AsRunLog.recover), each logged. A database that refuses
        (a full disk) does not keep the daemon off air: the same recovery is tried at every heartbeat. Rows
        the last process held are taken over first, those it left on air settled the same way."""
        try:
            last_alive = await self._write("read when the daemon was last alive", self.asrun.last_alive)
        except Unwritten:
            last_alive = None
        cut = await self._take_over_held(now, last_alive)
        await self._retry_rows()
        return cut + await self._recover(now, last_alive)

    async def _take_over_held(self, now: datetime, last_alive: datetime | None) -> list[Airing]:
        if self.pending is None or not await asyncio.to_thread(self.pending.reserve):
            return []
        cut: list[Airing] = []
        for row, step in await asyncio.to_thread(self.pending.load):
            if row.outcome is Outcome.ON_AIR:
                if not cut_by_crash(row, now, last_alive):
                    continue  # claimed ahead of its instant: released, this process airs it
                cut.append(row)
                self._log_cut(row)
            self._deferred[self._key(row)] = (row, step)
        if self._deferred:
            log.warning("as-run log: took over %d rows the last run held while the database refused them",
                        len(self._deferred))
        await self._save_held()
        return cut

    @staticmethod
    def _log_cut(row: Airing) -> None:
        log.warning("channel %s airing of %s planned %s was cut by a crash: logged interrupted (%s)",
                    row.channel, row.script, row.planned_at.isoformat(), row.error)

    async def _recover(self, now: datetime, last_alive: datetime | None) -> list[Airing]:
        try:
            cut = await self._write("settle the rows a crash left on air", self.asrun.recover, now, last_alive)
        except Unwritten:
            if self._recovery is None:
                log.error("as-run log: the rows a crash left on air are settled once the database takes writes "
                          "again; airing meanwhile")
            self._recovery = (now, last_alive)
            return []
        self._recovery = None
        for row in cut:
            self._log_cut(row)
        return cut

    async def mark_alive(self, when: datetime) -> None:
        try:
            await self._write("note that the daemon is alive", self.asrun.mark_alive, when)
        except Unwritten:
            pass

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=10)
        if self._deferred:
            await self.retry_deferred()
        for row, _ in self._deferred.values():
            log.error("as-run log: the %s row of %s %s planned %s could not be written yet: %s", row.outcome.value,
                      row.channel, row.slot, row.planned_at.isoformat(),
                      "the next start writes it" if self.pending and self.pending.reserved else "it is lost")
        if self.pending is not None:
            self.pending.close()
