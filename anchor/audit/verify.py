"""`anchor audit verify`: walk the seal chain and name the first row that is not what was sealed.

Two passes, no per-row query:
  1. the links, streamed in seq order: each link's `previous` is the seal before it (GENESIS first) and its seal
     is link(previous, digest): a link removed or edited breaks this at its seq;
  2. the rows of each table, streamed in id order beside their links streamed in row_id order (a merge): a row
     whose digest no longer matches its link was edited, a link whose row is gone names a deleted row, and a
     final row (an airing no longer `on-air`, any approval) with no link was inserted behind the daemon's back
     (or its link removed).
Pass 2 is split by id range over worker processes when the log is large (a row's digest costs ~20 µs of
Python), while this process walks the links.

Rows are read with the values the ORM would give (the same column types' own conversions) and digested with
anchor.store.digest: the canonical form is defined there, once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class

from anchor.store import (
    GENESIS,
    SEALED_AIRING_FIELDS,
    SEALED_APPROVAL_FIELDS,
    Airing,
    Approval,
    Outcome,
    Seal,
    canonical_value,
    digest_of,
    link,
    open_engine,
    table_of,
)

Kind = Literal["airing", "approval"]
KINDS: tuple[Kind, ...] = ("airing", "approval")
SEALED_FIELDS: dict[Kind, tuple[str, ...]] = {"airing": SEALED_AIRING_FIELDS, "approval": SEALED_APPROVAL_FIELDS}
MODELS: dict[Kind, type[Airing] | type[Approval]] = {"airing": Airing, "approval": Approval}
BATCH = 5000  # rows fetched at a time (a server-side cursor on PostgreSQL)
PARALLEL_FROM = 20_000  # rows from which pass 2 is split over processes
CHUNK = 5_000  # ids a worker checks at a time: many small ranges keep every core busy to the end

# -- rows as sealed ---------------------------------------------------------------------------------------


def row_object(kind: Kind, values: Mapping[str, Any]) -> Airing | Approval:
    """A row object holding `values` exactly, built the way the ORM's loader builds a loaded row (a new
    instance whose attributes are filled in), without a session or validation: what anchor.store.canonical
    reads is then exactly these values. A fraction of the cost of Airing(**values)."""
    row = _new_instance(kind)()
    row.__dict__.update(values)
    return row  # type: ignore[no-any-return]


@cache
def _new_instance(kind: Kind) -> Callable[[], Any]:
    configure_mappers()  # the instrumented attributes read the instance's values once the mappers are set up
    return manager_of_class(MODELS[kind]).new_instance


def _sqlite_datetime(result_value: Callable[[Any, Any], Any], dialect: Any) -> Callable[[Any], Any]:
    def convert(raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        try:
            return result_value(datetime.fromisoformat(raw), dialect)
        except ValueError:
            return raw  # not a time: kept as written, so its digest cannot match and the row is named
    return convert


def _sqlite_canonical_time(result_value: Callable[[Any, Any], Any], dialect: Any) -> Callable[[Any], Any]:
    as_stored = _sqlite_datetime(result_value, dialect)

    def convert(raw: Any) -> Any:
        if isinstance(raw, str) and len(raw) == 26 and raw[10] == " " and raw[19] == ".":
            # SQLAlchemy's SQLite text of a UTC time ("2026-12-02 14:30:00.000000"): its canonical value has the
            # same digits with a "T" and "+00:00" (tested against canonical_value). A fifth of the cost of
            # parsing it and printing it again. Text of this shape that is no time cannot match a seal either.
            return f"{raw[:10]}T{raw[11:]}+00:00"
        return canonical_value(as_stored(raw))
    return convert


# anchor.store.canonical_value of a time, as PostgreSQL's to_char writes a UTC timestamp.
_POSTGRES_CANONICAL_TIME = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


def _enum(members: Mapping[str, Any]) -> Callable[[Any], Any]:
    # SQLAlchemy stores an Enum by member name; a value it does not know is kept as written (never an error).
    return lambda raw: members.get(raw, raw) if isinstance(raw, str) else raw


@dataclass(frozen=True)
class _Reader:
    """The sealed columns of one table, selected so that each value converts as the ORM would convert it,
    but without raising on a value someone wrote by hand."""

    kind: Kind
    columns: list[Any]
    convert: list[Callable[[Any], Any] | None]  # to the value the ORM would give
    canonical_columns: list[Any]
    canonical: list[Callable[[Any], Any] | None]  # to anchor.store.canonical_value of that value

    @classmethod
    def of(cls, kind: Kind, dialect: sa.Dialect) -> _Reader:
        table = table_of(MODELS[kind])
        columns: list[Any] = []
        convert: list[Callable[[Any], Any] | None] = []
        canonical_columns: list[Any] = []
        canonical: list[Callable[[Any], Any] | None] = []
        for name in SEALED_FIELDS[kind]:
            column = table.c[name]
            kind_of = column.type
            is_time = isinstance(kind_of, sa.DateTime) or isinstance(getattr(kind_of, "impl_instance", None),
                                                                       sa.DateTime)
            if isinstance(kind_of, sa.Enum) and kind_of.enum_class is not None:
                columns.append(sa.type_coerce(column, sa.String).label(name))
                members = kind_of.enum_class.__members__
                convert.append(_enum(members))
                canonical_columns.append(columns[-1])
                canonical.append(_enum({name: canonical_value(member) for name, member in members.items()}))
            elif dialect.name == "sqlite" and is_time and isinstance(kind_of, sa.TypeDecorator):
                # SQLite keeps times as text: parsed here (fromisoformat, in C) then given the type's own
                # result conversion (naive → UTC), instead of SQLAlchemy's regex, which costs a third of a read.
                columns.append(sa.type_coerce(column, sa.String).label(name))
                convert.append(_sqlite_datetime(kind_of.process_result_value, dialect))
                canonical_columns.append(columns[-1])
                canonical.append(_sqlite_canonical_time(kind_of.process_result_value, dialect))
            elif dialect.name == "postgresql" and is_time:
                columns.append(column)
                convert.append(None)
                # The canonical text made by the server (tested against canonical_value): parsing each time
                # into a datetime and printing it again cost a third of verifying a row. A time Python cannot
                # hold (infinity) becomes no text, so its digest cannot match and the row is named.
                canonical_columns.append(sa.func.to_char(sa.func.timezone("UTC", column),
                                                         _POSTGRES_CANONICAL_TIME).label(name))
                canonical.append(None)
            else:
                columns.append(column)
                convert.append(None)
                canonical_columns.append(column)
                canonical.append(canonical_value if is_time else None)
        return cls(kind, columns, convert, canonical_columns, canonical)

    def _values(self, connection: Connection, where: Sequence[Any], columns: list[Any],
                converts: list[Callable[[Any], Any] | None]) -> Iterator[tuple[Sequence[Any], list[Any]]]:
        """Each row matching `where`, in id order, streamed: `columns` as read, and given `converts`."""
        table = table_of(MODELS[self.kind])
        converted = [(index, convert) for index, convert in enumerate(converts) if convert is not None]
        for raw in streamed(connection, sa.select(*columns).where(*where).order_by(table.c.id)):
            values = list(raw)
            for index, convert in converted:
                values[index] = convert(values[index])
            yield raw, values

    def rows(self, connection: Connection, where: Sequence[Any] = ()) -> Iterator[Airing | Approval]:
        """The rows matching `where`, in id order, streamed."""
        names = SEALED_FIELDS[self.kind]
        new_instance = _new_instance(self.kind)
        for _, values in self._values(connection, where, self.columns, self.convert):
            row = new_instance()
            row.__dict__.update(zip(names, values, strict=True))
            yield row

    def contents(self, connection: Connection, where: Sequence[Any] = ()) -> Iterator[Content]:
        """The rows matching `where`, in id order, streamed, as their sealed fields in canonical values: what
        verify digests, without building a row object per row (that and reading its instrumented attributes
        back cost more than the digest)."""
        names = SEALED_FIELDS[self.kind]
        outcome = names.index("outcome") if "outcome" in names else None
        on_air = Outcome.ON_AIR.name  # as stored: an Enum column holds the member's name
        for raw, values in self._values(connection, where, self.canonical_columns, self.canonical):
            final = outcome is None or raw[outcome] != on_air
            yield Content(values[0], dict(zip(names, values, strict=True)), final)


def streamed(connection: Connection, query: Any) -> Iterator[Any]:
    """The rows of `query`, fetched BATCH at a time (a server-side cursor on PostgreSQL) and handed on a batch
    at a time: a fraction of the cost of SQLAlchemy's row-at-a-time iteration."""
    for batch in connection.execution_options(stream_results=True, yield_per=BATCH).execute(query).partitions():
        yield from batch


@dataclass(frozen=True, slots=True)
class Content:
    """One row as verify reads it."""

    id: int
    fields: dict[str, Any]  # the sealed fields, as anchor.store.canonical_value gives them
    final: bool  # an approval, or an airing no longer on air: expected to be sealed


def is_final(row: Airing | Approval) -> bool:
    """Expected to be sealed: any approval; an airing once its outcome is no longer on-air."""
    return not isinstance(row, Airing) or row.outcome not in (Outcome.ON_AIR, Outcome.ON_AIR.name)


# -- problems ---------------------------------------------------------------------------------------------

Shown = Callable[[datetime, str], str]  # (instant, channel) → how a person is shown that time


def _utc_shown(instant: datetime, _channel: str) -> str:
    instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).isoformat(sep=" ", timespec="seconds")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the log: what happened, to which row or link, and what to do."""

    what: Literal["edited", "deleted", "inserted", "link"]
    table: str  # "airing", "approval" or "seal"
    row_id: int | None
    seq: int | None  # the link concerned, if any
    detail: str = ""
    channel: str | None = None
    slot: str | None = None
    planned_at: datetime | None = None
    outcome: str | None = None

    @property
    def order(self) -> tuple[int, str, int]:
        """Chain order: problems at a link by its seq, then rows with no link by table and id."""
        return (self.seq if self.seq is not None else 1 << 62, self.table, self.row_id or 0)

    def _row(self, shown: Shown) -> str:
        text = f"{self.table} {self.row_id}"
        if self.channel is not None and self.planned_at is not None:
            text += (f" (channel {self.channel}, slot {self.slot}, planned {shown(self.planned_at, self.channel)}"
                     + (f", {self.outcome}" if self.outcome else "") + ")")
        return text

    def message(self, shown: Shown = _utc_shown) -> str:
        if self.what == "edited":
            return (f"{self._row(shown)} was edited after it was sealed: its content no longer matches seal seq "
                    f"{self.seq}. Restore the row from a backup of the as-run log, and investigate who changed it.")
        if self.what == "deleted":
            return (f"{self.table} {self.row_id} was deleted after it was sealed: seal seq {self.seq} names it but "
                    f"the {self.table} table no longer has it. Restore it from a backup of the as-run log, and "
                    "investigate who deleted it.")
        if self.what == "inserted":
            return (f"{self._row(shown)} is final but has no seal: it was inserted (or made final) behind the "
                    "daemon's back, or its link was removed. Investigate; a running daemon seals a row it has just "
                    "finished within a minute, so run this again if the row is that fresh.")
        return (f"the seal chain is broken at seq {self.seq} ({self.detail}): a link was removed or edited. "
                "Restore the seal table from a backup of the as-run log, and investigate.")


@dataclass
class ChainReport:
    links: int = 0
    last_seq: int | None = None
    last_seal: str = GENESIS
    rows: dict[str, int] = field(default_factory=lambda: {"airing": 0, "approval": 0})  # rows verified
    on_air: int = 0  # airings still on air: not final, not sealed yet
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def verified(self) -> int:
        return sum(self.rows.values())

    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.order) if self.problems else None


# -- pass 1: the links ------------------------------------------------------------------------------------


def walk_links(connection: Connection, report: ChainReport) -> None:
    """Each link follows the one before it and its seal is link(previous, digest)."""
    seal = table_of(Seal)
    query = sa.select(seal.c.seq, seal.c.kind, seal.c.row_id, seal.c.digest, seal.c.previous,
                      seal.c.seal).order_by(seal.c.seq)
    expected, before = GENESIS, None
    for seq, kind, row_id, row_digest, previous, sealed in streamed(connection, query):
        report.links += 1
        if previous != expected:
            after = f"the seal of seq {before}" if before is not None else "the chain's start (GENESIS)"
            report.problems.append(Problem("link", "seal", row_id, seq,
                                           f"{kind} {row_id}: its previous is not {after}"))
        elif link(previous, row_digest) != sealed:
            report.problems.append(Problem("link", "seal", row_id, seq,
                                           f"{kind} {row_id}: its seal is not sha256(previous + digest)"))
        elif kind not in KINDS:
            report.problems.append(Problem("link", "seal", row_id, seq, f"it names an unknown kind '{kind}'"))
        expected, before = sealed, seq
    report.last_seq, report.last_seal = before, expected


# -- pass 2: the rows beside their links ------------------------------------------------------------------


@dataclass
class _Part:
    rows: int = 0
    on_air: int = 0
    problems: list[Problem] = field(default_factory=list)


def _row_problem(what: Literal["edited", "inserted"], kind: Kind, row: Content, seq: int | None) -> Problem:
    if kind == "airing":
        return Problem(what, "airing", row.id, seq, channel=str(row.fields["channel"]), slot=str(row.fields["slot"]),
                       planned_at=_instant(row.fields["planned_at"]), outcome=str(row.fields["outcome"]))
    return Problem(what, "approval", row.id, seq)


def _instant(value: Any) -> datetime | None:
    """A canonical time back as a time, to show it (None when someone wrote something else there)."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def check_rows(connection: Connection, kind: Kind, low: int | None = None, high: int | None = None) -> _Part:
    """Merge the rows of `kind` with id in [low, high] and their links, both in id order."""
    table = table_of(MODELS[kind])
    seal = table_of(Seal)
    row_where: list[Any] = []
    seal_where: list[Any] = [seal.c.kind == kind]
    if low is not None:
        row_where.append(table.c.id >= low)
        seal_where.append(seal.c.row_id >= low)
    if high is not None:
        row_where.append(table.c.id <= high)
        seal_where.append(seal.c.row_id <= high)
    pending = streamed(connection, sa.select(seal.c.row_id, seal.c.seq, seal.c.digest).where(*seal_where)
                        .order_by(seal.c.row_id))
    part = _Part()
    sealed = next(pending, None)
    for row in reader(kind, connection.dialect).contents(connection, row_where):
        while sealed is not None and sealed[0] < row.id:  # a link whose row is gone
            part.problems.append(Problem("deleted", kind, sealed[0], sealed[1]))
            sealed = next(pending, None)
        if sealed is not None and sealed[0] == row.id:
            if digest_of(row.fields) != sealed[2]:
                part.problems.append(_row_problem("edited", kind, row, sealed[1]))
            else:
                part.rows += 1
            sealed = next(pending, None)
        elif row.final:
            part.problems.append(_row_problem("inserted", kind, row, None))
        else:
            part.on_air += 1
    while sealed is not None:
        part.problems.append(Problem("deleted", kind, sealed[0], sealed[1]))
        sealed = next(pending, None)
    return part


@cache
def reader(kind: Kind, dialect: sa.Dialect) -> _Reader:
    return _Reader.of(kind, dialect)


_worker_engines: dict[str, Engine] = {}


def _check_rows_apart(url: str, kind: Kind, low: int, high: int) -> _Part:
    """In a worker process: one id range, on the process's own engine (opened at its first range)."""
    engine = _worker_engines.get(url)
    if engine is None:
        engine = _worker_engines[url] = open_engine(url)
    with engine.connect() as connection:
        return check_rows(connection, kind, low, high)


def _id_ranges(connection: Connection, kind: Kind) -> tuple[int, list[tuple[int, int]]]:
    """How many rows `kind` has, and id ranges of about CHUNK ids covering every row and link of it."""
    table = table_of(MODELS[kind])
    seal = table_of(Seal)
    count, low, high = connection.execute(sa.select(sa.func.count(), sa.func.min(table.c.id),
                                                    sa.func.max(table.c.id))).one()
    seal_low, seal_high = connection.execute(sa.select(sa.func.min(seal.c.row_id), sa.func.max(seal.c.row_id))
                                             .where(seal.c.kind == kind)).one()
    bounds = [b for b in (low, high, seal_low, seal_high) if b is not None]
    if not bounds:
        return count, []
    low, high = min(bounds), max(bounds)
    return count, [(start, min(start + CHUNK - 1, high)) for start in range(low, high + 1, CHUNK)]


def verify_chain(url: str, workers: int | None = None) -> ChainReport:
    """Verify the whole log at `url`: every link, every sealed row, every final row sealed. From PARALLEL_FROM
    rows on, the rows are checked in ranges of CHUNK ids by `workers` processes (one per core by default)
    while this one walks the links."""
    if workers is None:  # the cores this process may use (systemd's CPUAffinity=, taskset), else all
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    report = ChainReport()
    engine: Engine = open_engine(url)
    with engine.connect() as connection:
        found = {kind: _id_ranges(connection, kind) for kind in KINDS}
    jobs = [(kind, low, high) for kind, (_, ranges) in found.items() for low, high in ranges]
    parts: list[_Part] = []
    if workers <= 1 or sum(count for count, _ in found.values()) < PARALLEL_FROM:  # small: all here
        with engine.connect() as connection:
            walk_links(connection, report)
            parts = [check_rows(connection, kind, ranges[0][0], ranges[-1][1])
                     for kind, (_, ranges) in found.items() if ranges]
        jobs = [(kind, 0, 0) for kind, (_, ranges) in found.items() if ranges]
    else:
        engine.dispose()  # no pooled connection is inherited by a forked worker
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            futures: list[Future[_Part]] = [pool.submit(_check_rows_apart, url, kind, low, high)
                                            for kind, low, high in jobs]
            with engine.connect() as connection:
                walk_links(connection, report)
            parts = [future.result() for future in futures]
    engine.dispose()
    for (kind, _, _), part in zip(jobs, parts, strict=True):
        report.rows[kind] += part.rows
        report.on_air += part.on_air
        report.problems.extend(part.problems)
    report.problems.sort(key=lambda p: p.order)
    return report
