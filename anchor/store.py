"""The as-run log and the rotation positions: sqlmodel tables, SQLite (WAL) by default, any SQLAlchemy URL.

One row per planned airing, unique on (channel, slot, planned instant). A row is claimed (inserted as
`on-air`) before the output starts, so two processes or a restart can never air the same planned airing
twice; a row still `on-air` when the daemon starts was cut by a crash and becomes `interrupted`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from sqlalchemy import UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, create_engine, select

DATABASE_URL_ENV = "ANCHOR_DATABASE_URL"


class Outcome(str, Enum):
    ON_AIR = "on-air"  # claimed and playing; anything else is final
    AIRED = "aired"
    LATE = "late"
    MISSED = "missed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


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
    error: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class RotationPosition(SQLModel, table=True):
    __tablename__ = "rotation_position"

    channel: str = Field(primary_key=True, max_length=64)
    slot: str = Field(primary_key=True, max_length=200)
    position: int = 0  # the rotation entry the next airing uses


class DaemonState(SQLModel, table=True):
    """When a daemon was last known to be running: a restart catches up only on what it missed since."""

    __tablename__ = "daemon_state"

    name: str = Field(primary_key=True, max_length=64)
    last_alive: datetime


def database_url(configured: str, data_dir: Path) -> str:
    return os.environ.get(DATABASE_URL_ENV) or configured or f"sqlite:///{data_dir / 'anchor.db'}"


class StoreError(Exception):
    """The as-run log cannot be opened; the message says which database, without its password."""


def open_engine(url: str) -> Engine:
    try:
        return _open_engine(url)
    except SQLAlchemyError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
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
    return engine


class AsRunLog:
    """Blocking database calls: the daemon runs them in a thread (asyncio.to_thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def claim(self, row: Airing) -> bool:
        """Insert the row if no row exists for its planned airing; False if one does (already handled)."""
        with self._session() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
        return True

    def finish(self, row: Airing, **changes: object) -> Airing:
        with self._session() as session:
            stored = session.get(Airing, row.id)
            assert stored is not None
            for key, value in changes.items():
                setattr(stored, key, value)
            stored.updated_at = datetime.now(timezone.utc)
            session.add(stored)
            session.commit()
            session.refresh(stored)
            return stored

    def recover(self) -> list[Airing]:
        """After a crash: rows that had started airing become `interrupted` (returned); rows claimed but
        never started are released, so the restarted daemon airs them late or logs them missed."""
        with self._session() as session:
            rows = list(session.exec(select(Airing).where(Airing.outcome == Outcome.ON_AIR)))
            for row in [r for r in rows if r.started_at is None]:
                session.delete(row)
            rows = [r for r in rows if r.started_at is not None]
            for row in rows:
                row.outcome = Outcome.INTERRUPTED
                row.error = row.error or "the daemon stopped while this was on air"
                row.updated_at = datetime.now(timezone.utc)
                session.add(row)
            session.commit()
            return rows

    def handled(self, channel: str, since: datetime) -> set[tuple[str, datetime]]:
        """(slot, planned_at) of every row of `channel` planned at or after `since`."""
        with self._session() as session:
            rows = session.exec(select(Airing.slot, Airing.planned_at)
                                .where(Airing.channel == channel, Airing.planned_at >= since))
            return {(slot, _utc(planned)) for slot, planned in rows}

    def history(self, channel: str | None = None, since: datetime | None = None, limit: int = 10_000) -> list[Airing]:
        with self._session() as session:
            query = select(Airing)
            if channel:
                query = query.where(Airing.channel == channel)
            if since:
                query = query.where(Airing.planned_at >= since)
            return list(session.exec(query.order_by(Airing.planned_at, Airing.channel).limit(limit)))

    def rotation(self) -> dict[tuple[str, str], int]:
        with self._session() as session:
            return {(r.channel, r.slot): r.position for r in session.exec(select(RotationPosition))}

    def advance_rotation(self, channel: str, slot: str, used_index: int, length: int) -> None:
        with self._session() as session:
            row = session.get(RotationPosition, (channel, slot)) or RotationPosition(channel=channel, slot=slot)
            row.position = (used_index + 1) % length
            session.add(row)
            session.commit()


    def last_alive(self, name: str = "daemon") -> datetime | None:
        with self._session() as session:
            state = session.get(DaemonState, name)
            return _utc(state.last_alive) if state else None

    def mark_alive(self, when: datetime, name: str = "daemon") -> None:
        with self._session() as session:
            state = session.get(DaemonState, name) or DaemonState(name=name, last_alive=when)
            state.last_alive = when
            session.add(state)
            session.commit()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
