"""anchor.logview reads the as-run log with the database's own driver, for the one-shot commands: it must give
exactly what anchor.store gives (the same rows, order, values and types), on SQLite and PostgreSQL, and the
commands that read the log must not load SQLAlchemy (that is the half second it saves)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from anchor.logview import ENUM_COLUMNS, LogView, Outcome, open_log_view
from anchor.store import Airing, Approval, ApprovalAction, AsRunLog, RotationStep, open_engine, table_of
from tests.conftest import Project
from tests.daemon_harness import free_port, setup_site

PLANNED = datetime(2026, 12, 4, 2, tzinfo=UTC)


def _fill(log: AsRunLog) -> None:
    """Rows in every outcome and approval action, every column holding a value in some row, written out of
    planned order, on two channels, with rotations."""
    for n, outcome in enumerate(reversed(Outcome)):
        planned = PLANNED + timedelta(minutes=7 * n)
        row = Airing(channel="east" if n % 2 else "west", slot=f"slot {n}", planned_at=planned,
                     outcome=Outcome.ON_AIR, script=f"health/{n}.md")
        assert log.claim(row, RotationStep(index=n, length=3, instant=planned))
        if outcome is not Outcome.ON_AIR:
            log.finish(row, {"outcome": outcome, "started_at": planned + timedelta(microseconds=123_456),
                             "ended_at": planned + timedelta(seconds=90), "script_hash": "ab" * 32,
                             "engine": "espeak", "voice": "cmn", "audio_hash": "cd" * 32, "aired_as": "still",
                             "degraded": "the avatar clip failed", "error": "血压 “高” note", "approval_id": n,
                             "note": "fallback aired"})
    totals = {("west", "slot 0", PLANNED): {"comments": 3, "likes": 40, "gifts": 2, "gift_cny": 12.5,
                                            "superchats": 1, "enters": 9, "follows": 1}}
    assert log.add_audience(totals, {}, {("west", "slot 0", PLANNED): (77, 61.25)}) == 0
    for n, action in enumerate(ApprovalAction):
        log.record_approval(Approval(script=f"policy/{n % 2}.md", content_hash=str(n) * 64, action=action,
                                     by="王医生", role="科室主任", note="checked", accepted_hits='[{"hit": "最"}]',
                                     at=PLANNED - timedelta(days=1, microseconds=n)))


def _same(view_rows: list[object], store_rows: list[Airing] | list[Approval]) -> None:
    assert len(view_rows) == len(store_rows)
    for seen, stored in zip(view_rows, store_rows, strict=True):
        expected = stored.model_dump()
        got = vars(seen)
        assert got == expected
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


def test_the_view_reads_exactly_what_the_store_gives(asrun_url: str) -> None:
    log = AsRunLog(open_engine(asrun_url))
    _fill(log)
    view = open_log_view(asrun_url)
    assert isinstance(view, LogView)
    eight_hours_east = timezone(timedelta(hours=8))
    for channel, since, limit in ((None, None, 10_000), ("east", None, 10_000), (None, None, 3),
                                  (None, (PLANNED + timedelta(minutes=14)).astimezone(eight_hours_east), 10_000),
                                  ("west", PLANNED + timedelta(minutes=15), 10_000)):
        _same(view.history(channel, since, limit), log.history(channel, since, limit))
    everything = view.history()
    assert [r.outcome for r in everything] == list(reversed(Outcome)) and everything[0].likes == 40
    for table, rows in (("airing", everything), ("approval", view.approvals())):
        unfilled = [c.name for c in table_of(Airing if table == "airing" else Approval).columns
                    if all(getattr(r, c.name) is None for r in rows)]
        assert not unfilled, f"fill these {table} columns in _fill, so this test reads them: {unfilled}"
    _same(view.approvals(), log.approvals())
    _same(view.approvals("policy/1.md"), log.approvals("policy/1.md"))
    assert view.rotation() == log.rotation() and len(view.rotation()) == len(Outcome)
    log.engine.dispose()


def test_enum_and_time_columns_are_read_as_the_tables_declare_them() -> None:
    """The two facts of storage the view relies on, held to anchor.store's tables: which columns hold an Enum
    (by member name), and that every time column is declared DATETIME in SQLite (a time is text there)."""
    enums: dict[str, dict[str, type]] = {}
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, sa.Enum):
                enums.setdefault(table.name, {})[column.name] = column.type.enum_class
            if isinstance(column.type, sa.DateTime) or isinstance(getattr(column.type, "impl_instance", None),
                                                                  sa.DateTime):
                from sqlalchemy.dialects import sqlite

                assert column.type.compile(dialect=sqlite.dialect()) == "DATETIME", column
    assert enums == ENUM_COLUMNS


def test_a_log_not_made_yet_reads_as_empty_and_is_not_made(tmp_path: Path) -> None:
    path = tmp_path / "data" / "anchor.db"
    view = open_log_view(f"sqlite:///{path}")
    assert view is not None
    assert view.history() == [] and view.approvals() == [] and view.rotation() == {}
    assert not path.parent.exists()
    path.parent.mkdir()
    sqlite3.connect(path).close()  # a file with no tables yet
    assert view.history() == [] and view.rotation() == {}


def test_a_column_an_older_anchor_lacks_reads_as_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'anchor.db'}"
    log = AsRunLog(open_engine(url))
    log.claim(Airing(channel="c", slot="s", planned_at=PLANNED, outcome=Outcome.ON_AIR, script="a.md",
                     degraded="x"))
    log.engine.dispose()
    with sqlite3.connect(tmp_path / "anchor.db") as connection:
        connection.execute("ALTER TABLE airing DROP COLUMN degraded")
    view = open_log_view(url)
    assert view is not None
    (row,) = view.history()
    assert row.degraded is None and row.script == "a.md" and row.planned_at == PLANNED


def test_urls_it_does_not_read_are_left_to_the_store() -> None:
    for url in ("sqlite://", "sqlite:///a.db?mode=ro", "postgresql://u@127.0.0.1/db", "mysql://u@127.0.0.1/db",
                "postgres//no-colon"):
        assert open_log_view(url) is None, url


def test_a_file_that_is_not_a_database_is_a_clear_error(project: Project) -> None:
    setup_site(project, free_port())
    (project.root / "data").mkdir(exist_ok=True)
    (project.root / "data" / "anchor.db").write_bytes(b"not a database, only some text " * 40)
    result = project.run("history")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "as-run log at sqlite:///" in result.stderr and "not a database" in result.stderr


def test_an_unreachable_database_keeps_its_password_out_of_the_error(project: Project) -> None:
    setup_site(project, free_port(),
               database_url=f"postgresql+psycopg://anchor:s3cret@127.0.0.1:{free_port()}/none")
    result = project.run("plan", "--hours", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot open the as-run log at postgresql+psycopg://anchor:***@127.0.0.1" in result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize("command", [("history", "--csv"), ("plan", "--json", "--hours", "1"), ("approvals",),
                                     ("report", "--csv")])
def test_the_reading_commands_do_not_load_sqlalchemy(project: Project, command: tuple[str, ...]) -> None:
    """What keeps them quick to start (benchmarks/cli.py times it): the log is read, and no module of
    SQLAlchemy or sqlmodel is imported."""
    setup_site(project, free_port())
    (project.root / "schedules" / "t.toml").write_text(
        '[channel]\nid = "t"\nname = "测试频道"\ntimezone = "Asia/Shanghai"\napproval = "required"\n\n'
        '[[slot]]\nevery = "10m"\nrotate = ["short.md", "long.md"]\n', encoding="utf-8")
    url = f"sqlite:///{project.root / 'data' / 'anchor.db'}"
    log = AsRunLog(open_engine(url))
    log.claim(Airing(channel="t", slot="every 10m", planned_at=PLANNED, outcome=Outcome.ON_AIR, script="short.md"),
              RotationStep(index=0, length=2, instant=PLANNED))
    log.engine.dispose()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "anchor", "--config", str(project.config),
                             *command], cwd=project.root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")]
    assert "anchor.logview" in loaded and not [m for m in loaded if m.split(".")[0] in ("sqlalchemy", "sqlmodel")]
    if command[0] == "history":
        assert "every 10m" in result.stdout and "short.md" in result.stdout
    if command[0] == "plan":  # neither script is approved: the approvals were read, and each airing skipped
        planned = json.loads(result.stdout)
        assert len(planned) == 6 and all(p["airs"] is None and "never approved" in p["not_approved"] for p in planned)
    if command[0] == "approvals":
        assert "short.md" in result.stdout and "pending" in result.stdout
    if command[0] == "report":  # the one airing is still on air: nothing aired to rank yet
        assert result.stdout.splitlines()[0].startswith("script,airings,minutes_aired,comments,")
