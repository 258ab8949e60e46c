"""The as-run log on real PostgreSQL: the daemon writes to it, `anchor history` reads it, rows stay unique."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from anchor.store import Airing, AsRunLog, Outcome, open_engine
from tests.conftest import Project
from tests.daemon_harness import Daemon, at, channel, final, free_port, setup_site, slot, wait_rows


def test_one_row_per_planned_airing_on_postgres(postgres: str) -> None:
    log = AsRunLog(open_engine(postgres))
    planned = datetime(2026, 12, 4, 2, tzinfo=timezone.utc)

    def row() -> Airing:
        return Airing(channel="c", slot="s", planned_at=planned, outcome=Outcome.ON_AIR, script="a.md")

    first = row()
    assert log.claim(first) and not log.claim(row())  # a second process would be refused
    log.finish(first, outcome=Outcome.AIRED, started_at=planned)
    (stored,) = log.history()
    assert stored.outcome == Outcome.AIRED and stored.planned_at == planned


def test_daemon_logs_to_postgres_and_history_reads_it(project: Project, postgres: str) -> None:
    setup_site(project, free_port(), database_url=postgres)
    channel(project, slot("pg", f"at = {at(6)}"))
    with Daemon(project) as daemon:
        found = wait_rows(project, lambda r: final(r, "pg"), timeout=60, database_url=postgres)
        assert daemon.stop() == 0
    assert [(r.slot, r.outcome.value) for r in found] == [("pg", "aired")]
    assert not (project.root / "data" / "anchor.db").exists()  # nothing went to SQLite behind our back
    result = project.run("history", "--csv")
    assert result.returncode == 0, result.stderr
    (line,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert line["slot"] == "pg" and line["outcome"] == "aired" and line["engine"] == "espeak"


def test_unreachable_database_is_a_clear_error(project: Project) -> None:
    setup_site(project, free_port(), database_url=f"postgresql+psycopg://anchor@127.0.0.1:{free_port()}/none")
    result = project.run("history")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot open the as-run log at postgresql+psycopg://anchor@127.0.0.1" in result.stderr
