"""The as-run log and the rotation positions: sqlmodel tables, SQLite (WAL) by default, any SQLAlchemy URL.

One row per planned airing, unique on (channel, slot, planned instant). A row is claimed (inserted as
`on-air`) before the output starts, so two processes or a restart can never air the same planned airing
twice; a row still `on-air` when the daemon starts was cut by a crash and becomes `interrupted`.

The one-shot commands read these tables through anchor.logview, which needs no SQLAlchemy; what a row's
values are is defined here, and tests/test_logview.py holds that reading to this one.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Table, UniqueConstraint, event, inspect, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlmodel import Field, Session, SQLModel, col, create_engine, func, select

from anchor.clock import as_utc
from anchor.logview import AUDIENCE_COUNTS as AUDIENCE_COUNTS
from anchor.logview import ApprovalAction as ApprovalAction
from anchor.logview import Outcome as Outcome
from anchor.logview import RotationState as RotationState
from anchor.logview import StoreError as StoreError
from anchor.logview import without_password

SUPPORTED_DATABASES = ("sqlite", "postgresql")


class Airing(SQLModel, table=True):
    __tablename__ = "airing"
    __table_args__ = (UniqueConstraint("channel", "slot", "planned_at", name="one_row_per_planned_airing"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True, max_length=64)
    slot: str = Field(max_length=200)
    planned_at: datetime = Field(index=True)  # UTC
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome = Field(max_length=16)
    script: str = Field(max_length=500)
    script_hash: str | None = Field(default=None, max_length=64)
    engine: str | None = Field(default=None, max_length=32)
    voice: str | None = Field(default=None, max_length=100)
    audio_hash: str | None = Field(default=None, max_length=64)
    aired_as: str | None = Field(default=None, max_length=16)  # clip, still or audio: how it went out
    degraded: str | None = Field(default=None, max_length=2000)  # why it went out below the full clip
    error: str | None = Field(default=None, max_length=2000)
    approval_id: int | None = Field(default=None)  # the approval its text aired under (approval = "required")
    note: str | None = Field(default=None, max_length=2000)  # e.g. why the slot's fallback aired instead
    # What viewers did while it was on air (not sealed: late events still arrive after the row is final).
    comments: int | None = None
    likes: int | None = None
    gifts: int | None = None
    gift_cny: float | None = None
    superchats: int | None = None
    enters: int | None = None
    follows: int | None = None
    viewers_peak: int | None = None
    viewers_mean: float | None = None
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class AudienceGap(SQLModel, table=True):
    """What viewers did between programs, by channel and hour (UTC): the gap is part of the picture too."""

    __tablename__ = "audience_gap"

    channel: str = Field(primary_key=True, max_length=64)
    hour: datetime = Field(primary_key=True)  # UTC, on the hour
    comments: int = 0
    likes: int = 0
    gifts: int = 0
    gift_cny: float = 0.0
    superchats: int = 0
    enters: int = 0
    follows: int = 0


class Comment(SQLModel, table=True):
    """A viewer's comment text, kept only for a channel that asks (keep_comment_days) and only that long."""

    __tablename__ = "comment"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True, max_length=64)
    at: datetime = Field(index=True)
    viewer: str | None = Field(default=None, max_length=64)  # a salted hash, never the platform's id
    text: str = Field(max_length=2000)


class Approval(SQLModel, table=True):
    """Who approved (or revoked, or rejected) which text of a script, when and why. Append-only, sealed."""

    __tablename__ = "approval"

    id: int | None = Field(default=None, primary_key=True)
    script: str = Field(index=True, max_length=500)  # its path under scripts_content/
    content_hash: str = Field(max_length=64)  # the text and speech settings approved (Script.content_hash)
    action: ApprovalAction = Field(max_length=16)
    by: str = Field(max_length=100)  # the approver's name in anchor.toml [approvers]
    role: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=2000)  # a note, or a revocation's reason
    accepted_hits: str | None = Field(default=None, max_length=20000)  # JSON: screening hits accepted, with why
    at: datetime


class Seal(SQLModel, table=True):
    """The tamper-evident chain: one link per sealed row — an airing once its outcome is final, an approval
    when made. seal = SHA-256(previous seal + digest of the row's canonical content). `previous` is unique, so
    two writers (a fleet sharing PostgreSQL) can never fork the chain: the second retries on the new end."""

    __tablename__ = "seal"
    __table_args__ = (UniqueConstraint("previous", name="one_link_after_each_seal"),
                      UniqueConstraint("kind", "row_id", name="one_seal_per_row"))

    seq: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # "airing" or "approval"
    row_id: int
    digest: str = Field(max_length=64)
    previous: str = Field(max_length=64)  # GENESIS for the first link
    seal: str = Field(max_length=64)
    sealed_at: datetime


def table_of(model: type[SQLModel]) -> Table:
    """The table of a store model (SQLAlchemy Core: for reads and writes that need no row objects)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


GENESIS = "0" * 64
# Statements built once, in SQLAlchemy Core: sealing is hot.
_LAST_SEAL = sa_select(table_of(Seal).c.seal).order_by(table_of(Seal).c.seq.desc()).limit(1)
_ADD_LINK = table_of(Seal).insert()
_CHAIN_END = "anchor.chain_end"  # Session.info key: the chain's end, read with a row about to be sealed
SEALED_AIRING_FIELDS = ("id", "channel", "slot", "planned_at", "started_at", "ended_at", "outcome", "script",
                        "script_hash", "engine", "voice", "audio_hash", "aired_as", "degraded", "error",
                        "approval_id", "note")
SEALED_APPROVAL_FIELDS = ("id", "script", "content_hash", "action", "by", "role", "note", "accepted_hits", "at")


# One encoder, made once: the canonical bytes are sorted, compact JSON, non-ASCII kept as written.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_value(value: object) -> object:
    """A sealed field's value as the canonical form holds it: a time in UTC to the microsecond, an outcome or
    action by its value, anything else as it is."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, Enum):
        return value.value
    return value


def canonical_of(content: Mapping[str, object]) -> bytes:
    """The canonical bytes of a row's sealed fields, given as canonical values (what canonical_value makes)."""
    return _CANONICAL_JSON.encode(content).encode()


def canonical(row: Airing | Approval) -> bytes:
    """The sealed content of a row, byte for byte: the fields that say what aired (or was approved), as
    sorted JSON with times in UTC to the microsecond. Bookkeeping (updated_at) is not sealed."""
    fields = SEALED_AIRING_FIELDS if isinstance(row, Airing) else SEALED_APPROVAL_FIELDS
    return canonical_of({name: canonical_value(getattr(row, name)) for name in fields})


def digest_of(content: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical_of(content)).hexdigest()


def digest(row: Airing | Approval) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def link(previous: str, row_digest: str) -> str:
    return hashlib.sha256(f"{previous}{row_digest}".encode()).hexdigest()


class RotationPosition(SQLModel, table=True):
    """Where a rotating slot stands: `position` is the entry for its first instant after `as_of` (the last
    airing claimed from it). The planner counts from here, so every plan and the daemon agree."""

    __tablename__ = "rotation_position"

    channel: str = Field(primary_key=True, max_length=64)
    slot: str = Field(primary_key=True, max_length=200)
    position: int = 0
    as_of: datetime | None = None  # UTC; None: position is the entry for the first instant of any plan


@dataclass(frozen=True)
class RotationStep:
    """A claimed airing of a rotating slot used entry `index` of `length`, at `instant`."""

    index: int
    length: int
    instant: datetime


def cut_by_crash(row: Airing, now: datetime, last_alive: datetime | None) -> bool:
    """A row a crash left on air, settled in place: an airing whose instant had come may have gone out, so it
    becomes `interrupted`, never aired twice, its end taken as when the daemon was last known alive. False
    for one claimed ahead of an instant still to come: it is released, so this daemon airs it."""
    if row.started_at is None and as_utc(row.planned_at) > now:
        return False
    row.outcome = Outcome.INTERRUPTED
    began = as_utc(row.started_at or row.planned_at)
    row.ended_at = max(began, last_alive) if last_alive else began
    if row.started_at is None:
        row.error = "the daemon stopped at this airing's instant: whether it started is unknown"
    else:
        row.error = row.error or "the daemon stopped while this was on air"
    row.updated_at = datetime.now(UTC)
    return True


class DaemonState(SQLModel, table=True):
    """When a daemon was last known to be running: a restart catches up only on what it missed since."""

    __tablename__ = "daemon_state"

    name: str = Field(primary_key=True, max_length=64)
    last_alive: datetime


_T = TypeVar("_T")


class _AlreadyLogged(Exception):
    """A row for the planned airing exists (claim), or none does (upsert): leave the transaction."""


def open_store(url: str) -> AsRunLog:
    """The as-run log at `url` (Settings.database_url): the one way every command and the daemon open it."""
    return AsRunLog(open_engine(url))


def open_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"the database URL '{without_password(url)}' is not a URL: write e.g. "
                         "sqlite:////var/lib/anchor/anchor.db or postgresql+psycopg://user@host/anchor") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in SUPPORTED_DATABASES:
        raise StoreError(f"the as-run log at {shown}: anchor keeps it in SQLite or PostgreSQL, not "
                         f"'{parsed.get_backend_name()}' (write sqlite:///… or postgresql+psycopg://…)")
    try:
        return _open_engine(url)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(f"the as-run log at {shown}: no driver for it ({exc}); use postgresql+psycopg://…") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the as-run log at {shown}: {exc.__class__.__name__}: "
                         f"{str(exc.orig) if hasattr(exc, 'orig') else exc}") from None


def _open_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets `anchor history` read while the daemon writes; NORMAL is durable across app crashes.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        SQLModel.metadata.create_all(engine)
    except (OperationalError, ProgrammingError, IntegrityError):
        # Another process (the daemon, `anchor history`) created the tables between our check and CREATE.
        time.sleep(0.2)
        SQLModel.metadata.create_all(engine)
    _add_new_columns(engine)
    return engine


def _add_new_columns(engine: Engine) -> None:
    """Columns added to a table since an older anchor created it. Only nullable columns are ever added, so
    ADD COLUMN is all an upgrade needs; a migration tool would be worth it for anything more."""
    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise StoreError(f"the as-run log's table {table.name} lacks column {column.name}")
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as connection:
                connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}'))


class AsRunLog:
    """Blocking database calls: the daemon runs them in a thread (asyncio.to_thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._unsealed_from = 0  # seal_unsealed: every final airing below this id is sealed

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def _transaction(self, body: Callable[[Session], _T], attempts: int = 10,
                     refused: Callable[[], None] | None = None) -> _T:
        """Run `body` and commit; from the start again when another writer took the chain's end first (a
        unique constraint on the link refuses the second: on PostgreSQL, or on SQLite when the end was read
        before the write lock was taken, as _stored reads it). `refused` may tell a conflict that retrying
        cannot cure (see _refuse_resealing)."""
        for attempt in range(attempts):
            with self._session() as session:
                try:
                    result = body(session)  # a link is inserted here: its constraints may refuse it already
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    if refused is not None:
                        refused()
                    # A random wait that grows: two writers refused together must not retry in step for ever.
                    time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
                    continue
                return result
        raise OperationalError("seal", {}, Exception(f"the chain's end kept moving ({attempts} tries)"))

    def _sealed_write(self, write: Callable[[Session], list[Airing]]) -> list[Airing]:
        """Run `write`, then link every final airing it wrote to the chain's end, in one transaction: a final
        row is never stored unsealed, and sealing costs no commit of its own."""
        final: list[Airing] = []

        def body(session: Session) -> list[Airing]:
            rows = write(session)
            final[:] = [row for row in rows if row.outcome is not Outcome.ON_AIR]
            if final:
                session.flush()  # the digest is of the values as written: what `audit verify` reads back
                for row in final:
                    self._link(session, "airing", row)
            return rows

        return self._transaction(body, refused=lambda: self._refuse_resealing("airing", final))

    @staticmethod
    def _link(session: Session, kind: str, row: Airing | Approval) -> str:
        """Link `row` (flushed in `session`) after the chain's last, in the caller's transaction; returns its
        seal. Sealing a row twice breaks the one-seal-per-row constraint at the insert (see _sealed_write)."""
        assert row.id is not None
        # Core statements on the session's connection, not ORM ones through the session: a link is never read
        # back as an object, and the ORM's execution and unit of work cost more than the rest of sealing.
        connection = session.connection()
        # The chain's end as _stored read it with the row, saving a round trip; an end that moved since is
        # refused by the one-link-after-each-seal constraint and the transaction starts again.
        previous = session.info.pop(_CHAIN_END, None) or connection.execute(_LAST_SEAL).scalar() or GENESIS
        row_digest = digest(row)
        sealed = link(previous, row_digest)
        connection.execute(_ADD_LINK, {"kind": kind, "row_id": row.id, "digest": row_digest, "previous": previous,
                                       "seal": sealed, "sealed_at": datetime.now(UTC)})
        return sealed

    def _refuse_resealing(self, kind: str, rows: list[Airing] | list[Approval]) -> None:
        """After a refused link: a row of `rows` already sealed means its content may no longer change."""
        ids = [row.id for row in rows if row.id is not None]
        with self._session() as session:
            taken = session.exec(select(Seal.row_id).where(Seal.kind == kind, col(Seal.row_id).in_(ids))).first()
        if taken is not None:
            raise StoreError(f"{kind} {taken} is sealed: its content can no longer change")

    def claim(self, row: Airing, step: RotationStep | None = None) -> bool:
        """Insert the row if no row exists for its planned airing, and move its slot's rotation past it, in
        one transaction (sealed there if its outcome is already final); False if a row exists (already
        handled)."""
        fields = row.model_dump(exclude={"id"})

        def write(session: Session) -> list[Airing]:
            if step is not None:
                state = session.get(RotationPosition, (row.channel, row.slot)) or RotationPosition(
                    channel=row.channel, slot=row.slot)
                state.position = (step.index + 1) % step.length
                state.as_of = step.instant
                session.add(state)
            stored = Airing(**fields)  # fresh on each try: a rolled-back insert leaves its id behind
            session.add(stored)
            try:
                session.flush()
            except IntegrityError:
                raise _AlreadyLogged from None
            return [stored]

        try:
            (stored,) = self._sealed_write(write)
        except _AlreadyLogged:
            return False
        row.id = stored.id
        return True

    def finish(self, row: Airing, changes: dict[str, object]) -> None:
        """Apply `changes` to the stored row of `row`'s planned airing; sealed in the same transaction when
        its outcome is final."""
        def write(session: Session) -> list[Airing]:
            stored = self._stored(session, row)
            if stored is None:
                raise LookupError(f"no as-run row for {row.channel} {row.slot} {row.planned_at.isoformat()}")
            for key, value in changes.items():
                setattr(stored, key, value)
            stored.updated_at = datetime.now(UTC)
            session.add(stored)
            return [stored]

        self._sealed_write(write)

    def upsert(self, row: Airing, step: RotationStep | None = None) -> None:
        """Write `row` whole, over its planned airing's row if one exists and is still on air (a row the
        database refused earlier, now complete)."""
        fields = row.model_dump(exclude={"id", "updated_at"})

        def write(session: Session) -> list[Airing]:
            stored = self._stored(session, row)
            if stored is None:
                raise _AlreadyLogged  # no row: claimed whole below
            if stored.outcome is not Outcome.ON_AIR:
                return []  # final and sealed: written before (a held row replayed after a crash)
            for key, value in fields.items():
                setattr(stored, key, value)
            stored.updated_at = datetime.now(UTC)
            session.add(stored)
            return [stored]

        try:
            self._sealed_write(write)
        except _AlreadyLogged:
            self.claim(Airing(**fields), step)

    @staticmethod
    def _stored(session: Session, row: Airing) -> Airing | None:
        """The stored row of `row`'s planned airing, read with the chain's end for _link."""
        found = session.exec(select(Airing, _LAST_SEAL.scalar_subquery()).where(
            Airing.channel == row.channel, Airing.slot == row.slot, Airing.planned_at == row.planned_at)).first()
        if found is None:
            return None
        stored, session.info[_CHAIN_END] = found
        return stored

    def recover(self, now: datetime, last_alive: datetime | None) -> list[Airing]:
        """After a crash, rows still `on-air` and last written before `now` (this process's start): each
        settled by cut_by_crash (returned, sealed) or released."""
        def write(session: Session) -> list[Airing]:
            rows = list(session.exec(select(Airing).where(Airing.outcome == Outcome.ON_AIR)))
            cut = []
            for row in rows:
                if as_utc(row.updated_at) >= now:
                    continue  # claimed by this process since it started (a recovery retried late)
                if not cut_by_crash(row, now, last_alive):
                    session.delete(row)
                    continue
                session.add(row)
                cut.append(row)
            return cut

        return self._sealed_write(write)

    def logged_since(self, since: datetime) -> set[tuple[str, str, datetime]]:
        """(channel, slot, planned instant UTC) of every row planned at or after `since`."""
        with self._session() as session:
            rows = session.exec(select(Airing.channel, Airing.slot, Airing.planned_at)
                                .where(Airing.planned_at >= since))
            return {(channel, slot, as_utc(planned)) for channel, slot, planned in rows}

    def history(self, channel: str | None = None, since: datetime | None = None, limit: int = 10_000) -> list[Airing]:
        with self._session() as session:
            query = select(Airing)
            if channel:
                query = query.where(Airing.channel == channel)
            if since:
                query = query.where(Airing.planned_at >= since)
            return list(session.exec(query.order_by(col(Airing.planned_at), col(Airing.channel)).limit(limit)))

    def seal(self, kind: str, row_id: int) -> str:
        """Add a stored row to the chain (idempotent: a sealed row keeps its link); returns its seal."""
        def body(session: Session) -> str:
            existing = session.exec(select(Seal.seal).where(Seal.kind == kind, Seal.row_id == row_id)).first()
            if existing is not None:
                return existing
            row = session.get(Airing, row_id) if kind == "airing" else session.get(Approval, row_id)
            if row is None:
                raise LookupError(f"no {kind} row {row_id} to seal")
            return self._link(session, kind, row)

        return self._transaction(body)

    def seal_unsealed(self) -> int:
        """Seal every final airing that has no link yet, oldest first; returns how many. Final rows are sealed
        as they are written, so this is the heartbeat's repair for rows written otherwise (by an older
        anchor, or by hand). Rows below the first id a pass left open or on air are not looked at again."""
        with self._session() as session:
            sealed = select(Seal.row_id).where(Seal.kind == "airing")
            recent = col(Airing.id) >= self._unsealed_from
            ids = list(session.exec(select(Airing.id).where(recent, Airing.outcome != Outcome.ON_AIR,
                                                            col(Airing.id).not_in(sealed)).order_by(col(Airing.id))))
            on_air = session.exec(select(func.min(Airing.id)).where(recent, Airing.outcome == Outcome.ON_AIR)).one()
            top = session.exec(select(func.max(Airing.id))).one()
        for row_id in ids:
            assert row_id is not None
            self.seal("airing", row_id)
        self._unsealed_from = on_air if on_air is not None else (top or 0) + 1
        return len(ids)

    def record_approval(self, approval: Approval) -> Approval:
        """Append an approval, sealed in the same transaction."""
        fields = approval.model_dump(exclude={"id"})

        def body(session: Session) -> Approval:
            stored = Approval(**fields)  # fresh on each try: a rolled-back insert leaves its id behind
            session.add(stored)
            session.flush()
            self._link(session, "approval", stored)
            return stored

        return self._transaction(body)

    def approvals(self, script: str | None = None) -> list[Approval]:
        with self._session() as session:
            query = select(Approval)
            if script is not None:
                query = query.where(Approval.script == script)
            return list(session.exec(query.order_by(col(Approval.id))))

    def add_audience(self, totals: dict[tuple[str, str, datetime], dict[str, float]],
                     gaps: dict[tuple[str, datetime], dict[str, float]],
                     viewers: dict[tuple[str, str, datetime], tuple[int, float]]) -> int:
        """Add counts to airing rows ((channel, slot, planned UTC) → counts), to the gaps ((channel, hour) →
        counts) and set viewers (peak, mean). Rows not written yet (an airing still being claimed) are left
        for the caller to retry: returns how many keys found no row."""
        missing = 0
        with self._session() as session:
            for (channel, slot, planned), counts in totals.items():
                row = session.exec(select(Airing).where(Airing.channel == channel, Airing.slot == slot,
                                                        Airing.planned_at == planned)).first()
                if row is None:
                    missing += 1
                    continue
                for name, value in counts.items():
                    setattr(row, name, (getattr(row, name) or 0) + value)
                session.add(row)
            for (channel, slot, planned), (peak, mean) in viewers.items():
                row = session.exec(select(Airing).where(Airing.channel == channel, Airing.slot == slot,
                                                        Airing.planned_at == planned)).first()
                if row is not None:
                    row.viewers_peak, row.viewers_mean = peak, round(mean, 1)
                    session.add(row)
            for (channel, hour), counts in gaps.items():
                gap = session.get(AudienceGap, (channel, hour)) or AudienceGap(channel=channel, hour=hour)
                for name, value in counts.items():
                    setattr(gap, name, getattr(gap, name) + value)
                session.add(gap)
            session.commit()
        return missing

    def has_airing(self, channel: str, slot: str, planned_at: datetime) -> bool:
        with self._session() as session:
            return session.exec(select(Airing.id).where(Airing.channel == channel, Airing.slot == slot,
                                                        Airing.planned_at == planned_at)).first() is not None

    def keep_comments(self, comments: list[Comment]) -> None:
        with self._session() as session:
            session.add_all(comments)
            session.commit()

    def forget_comments(self, channel: str, before: datetime) -> None:
        with self._session() as session:
            for comment in session.exec(select(Comment).where(Comment.channel == channel, Comment.at < before)):
                session.delete(comment)
            session.commit()

    def gaps(self, since: datetime | None = None) -> list[AudienceGap]:
        with self._session() as session:
            query = select(AudienceGap)
            if since is not None:
                query = query.where(AudienceGap.hour >= since)
            return list(session.exec(query.order_by(col(AudienceGap.hour))))

    def rotation(self) -> dict[tuple[str, str], RotationState]:
        with self._session() as session:
            return {(r.channel, r.slot): RotationState(r.position, as_utc(r.as_of) if r.as_of else None)
                    for r in session.exec(select(RotationPosition))}

    def last_alive(self, name: str = "daemon") -> datetime | None:
        with self._session() as session:
            state = session.get(DaemonState, name)
            return as_utc(state.last_alive) if state else None

    def mark_alive(self, when: datetime, name: str = "daemon") -> None:
        with self._session() as session:
            state = session.get(DaemonState, name) or DaemonState(name=name, last_alive=when)
            state.last_alive = when
            session.add(state)
            session.commit()

