"""The as-run log read with the database's own driver, for one-shot commands (`anchor history`, `plan`,
`check`, `approvals`): loading SQLAlchemy and the sqlmodel tables costs a command half a second, more than all
the rest it does. anchor.store defines the tables and does every write (and creates and upgrades the tables);
this reads them back as the ORM would give them: the same rows, in the same order, with the same values.

What a read needs to know of the storage: an Enum column holds its member's name, and SQLite keeps a time as
text in UTC. The enums are defined here (anchor.store's tables use them) and tests/test_logview.py holds this
reading to anchor.store's, column for column, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol


class Outcome(str, Enum):
    ON_AIR = "on-air"  # claimed and playing; anything else is final
    AIRED = "aired"
    LATE = "late"
    MISSED = "missed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"  # not aired on purpose: its text is not approved (and no approved fallback)


class ApprovalAction(str, Enum):
    APPROVED = "approved"
    REVOKED = "revoked"
    REJECTED = "rejected"


# The columns of an airing (and of a gap between airings) that count what viewers did.
AUDIENCE_COUNTS = ("comments", "likes", "gifts", "gift_cny", "superchats", "enters", "follows")

# The Enum columns of anchor.store's tables, by table: what their stored member names read as.
ENUM_COLUMNS: dict[str, dict[str, type[Enum]]] = {"airing": {"outcome": Outcome},
                                                  "approval": {"action": ApprovalAction}}


@dataclass(frozen=True)
class RotationState:
    position: int
    as_of: datetime | None


class StoreError(Exception):
    """The as-run log cannot be opened; the message says which database, without its password."""


def without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class Row(SimpleNamespace):
    """One row as read: its columns as attributes, like the ORM's row objects. A column that an older anchor's
    table lacks reads as None, as it will once the daemon (anchor.store) adds it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return None


class AsRunReading(Protocol):
    """What the one-shot commands read: a LogView, or anchor.store.AsRunLog for a URL only SQLAlchemy opens."""

    def history(self, channel: str | None = None, since: datetime | None = None,
                limit: int = 10_000) -> Sequence[Any]: ...

    def approvals(self, script: str | None = None) -> Sequence[Any]: ...

    def rotation(self) -> dict[tuple[str, str], RotationState]: ...


_SQLITE = "sqlite:///"
_POSTGRESQL = "postgresql+psycopg://"


def open_log_view(url: str) -> LogView | None:
    """The as-run log at `url` (Settings.database_url) to read, or None for a URL this does not read (any but
    sqlite:///<file> and postgresql+psycopg://…): open that with anchor.store.open_store, which also says
    what is wrong with a URL it cannot open."""
    if url.startswith(_SQLITE) and "?" not in url and url != _SQLITE:
        return LogView(_SqliteFile(Path(url.removeprefix(_SQLITE))), without_password(url))
    if url.startswith(_POSTGRESQL):
        return LogView(_Postgres("postgresql://" + url.removeprefix(_POSTGRESQL)), without_password(url))
    return None


class _Database(Protocol):
    placeholder: str

    def connect(self) -> Any | None:
        """A DB-API connection, or None when the file does not exist (nothing logged yet)."""

    def tables(self, connection: Any) -> set[str]: ...

    def bound_time(self, utc: datetime) -> object:
        """A UTC time as a query compares it with a stored one."""

    def converters(self, connection: Any, table: str) -> dict[str, Callable[[Any], Any]]:
        """Column → conversion of the value the driver gives to the value the ORM gives, where they differ."""


class LogView:
    """Reads the as-run log (blocking; for the one-shot commands). Each call opens and closes a connection."""

    def __init__(self, database: _Database, shown_url: str) -> None:
        self._database = database
        self._shown = shown_url

    def history(self, channel: str | None = None, since: datetime | None = None, limit: int = 10_000) -> list[Row]:
        """Airings by planned instant, then channel: what AsRunLog.history gives."""
        where: list[str] = []
        values: list[object] = []
        if channel:
            where.append("channel = {}")
            values.append(channel)
        if since:
            where.append("planned_at >= {}")
            values.append(self._database.bound_time(since.astimezone(UTC)))  # as anchor.store binds a time: UTC
        return self._rows("airing", where, values, "planned_at, channel", limit)

    def approvals(self, script: str | None = None) -> list[Row]:
        """Approval records in the order made: what AsRunLog.approvals gives."""
        where, values = (["script = {}"], [script]) if script is not None else ([], [])
        return self._rows("approval", where, values, "id")

    def rotation(self) -> dict[tuple[str, str], RotationState]:
        """Where each rotating slot stands: what AsRunLog.rotation gives."""
        return {(r.channel, r.slot): RotationState(r.position, r.as_of)
                for r in self._rows("rotation_position", [], [], None)}

    def _rows(self, table: str, where: Sequence[str], values: Sequence[object], order: str | None,
              limit: int | None = None) -> list[Row]:
        with self._connection() as connection:
            if connection is None or table not in self._database.tables(connection):
                return []  # nothing logged yet: the daemon (anchor.store) creates the tables
            converters = self._database.converters(connection, table)
            for column, kind in ENUM_COLUMNS.get(table, {}).items():
                converters[column] = _enum(kind.__members__)
            mark = self._database.placeholder
            query = f"SELECT * FROM {table}"
            if where:
                query += " WHERE " + " AND ".join(w.format(mark) for w in where)
            if order:
                query += f" ORDER BY {order}"
            if limit is not None:
                query += f" LIMIT {int(limit)}"
            with closing(connection.cursor()) as cursor:
                cursor.execute(query, values)
                names = [d[0] for d in cursor.description]
                converted = [(i, converters[n]) for i, n in enumerate(names) if n in converters]
                rows = []
                for raw in cursor.fetchall():
                    found = list(raw)
                    for index, convert in converted:
                        found[index] = convert(found[index])
                    rows.append(Row(**dict(zip(names, found, strict=True))))
                return rows

    @contextmanager
    def _connection(self) -> Iterator[Any | None]:
        try:
            connection = self._database.connect()
        except Exception as exc:  # the driver's own error says why (unreachable, refused, not a database…)
            raise StoreError(f"cannot open the as-run log at {self._shown}: {exc.__class__.__name__}: "
                             f"{exc}".rstrip()) from None
        if connection is None:
            yield None
            return
        try:
            yield connection
        except StoreError:
            raise
        except Exception as exc:
            if not _is_driver_error(exc):
                raise
            raise StoreError(f"cannot read the as-run log at {self._shown}: {exc.__class__.__name__}: "
                             f"{exc}".rstrip()) from None
        finally:
            connection.close()


def _is_driver_error(exc: Exception) -> bool:
    # DB-API errors of either driver, without importing psycopg to name its classes.
    return any(cls.__name__ in ("DatabaseError", "InterfaceError") for cls in type(exc).__mro__)


def _enum(members: Mapping[str, Enum]) -> Callable[[Any], Any]:
    # A name no member has (written by hand) is kept as written, never an error.
    return lambda raw: members.get(raw, raw) if isinstance(raw, str) else raw


# How SQLAlchemy writes a time into SQLite (its DATETIME's storage format).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _utc(value: Any) -> Any:
    """A stored time as the ORM gives it: aware, in UTC (a time stored without an offset is UTC)."""
    if not isinstance(value, datetime):
        return value
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _sqlite_time(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return _utc(datetime.fromisoformat(raw))
    except ValueError:
        return raw  # not a time (written by hand): kept as written


class _SqliteFile:
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> Any | None:
        import sqlite3

        if not self.path.exists():
            return None
        # Read-write without creating (mode=rw): a reader of a WAL database may need to set up its shared
        # memory, which a read-only connection cannot.
        return sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=rw", uri=True, timeout=30)

    def tables(self, connection: Any) -> set[str]:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def bound_time(self, utc: datetime) -> object:
        return utc.strftime(_SQLITE_TIME)  # compared as the text stored

    def converters(self, connection: Any, table: str) -> dict[str, Callable[[Any], Any]]:
        # A time is text in SQLite; its column says DATETIME, as anchor.store's tables declare it.
        return {column[1]: _sqlite_time for column in connection.execute(f"PRAGMA table_info({table})")
                if str(column[2]).upper() == "DATETIME"}


class _Postgres:
    placeholder = "%s"

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo  # a libpq URI: the same user, password, host, port, database and options

    def connect(self) -> Any | None:
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=True)

    def tables(self, connection: Any) -> set[str]:
        with closing(connection.cursor()) as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            return {name for (name,) in cursor.fetchall()}

    def bound_time(self, utc: datetime) -> object:
        return utc

    def converters(self, connection: Any, table: str) -> dict[str, Callable[[Any], Any]]:
        with closing(connection.cursor()) as cursor:  # times come in the session's zone: given in UTC
            cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                           "AND table_name = %s AND data_type LIKE 'timestamp%%'", [table])
            return {name: _utc for (name,) in cursor.fetchall()}
