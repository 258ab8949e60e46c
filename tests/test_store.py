"""The as-run log on real PostgreSQL (and SQLite where two writers share it): the daemon writes to it,
`anchor history` reads it, rows stay unique, two writers keep one seal chain."""

from __future__ import annotations

import csv
import io
import threading
from datetime import datetime, timedelta, timezone

import pytest

from anchor.store import Airing, AsRunLog, Outcome, RotationState, RotationStep, StoreError, open_engine
from tests.conftest import Project, clock_now
from tests.daemon_harness import STARTUP, Daemon, at, channel, final, free_port, setup_site, slot, wait_rows


@pytest.mark.dated  # recovery compares planned instants with the clock
def test_one_row_per_planned_airing_on_postgres(postgres: str, now: datetime) -> None:
    log = AsRunLog(open_engine(postgres))
    # Rows are stamped by the clock, so the instants are tomorrow's: a recovery "now" of 04:00 then
    # comes after every write, as it does at a real start, whatever today's date is.
    tomorrow = now + timedelta(days=1)
    planned = tomorrow.replace(hour=2, minute=0, second=0, microsecond=0)

    def row() -> Airing:
        return Airing(channel="c", slot="s", planned_at=planned, outcome=Outcome.ON_AIR, script="a.md")

    first = row()
    step = RotationStep(index=2, length=3, instant=planned)
    assert log.claim(first, step) and not log.claim(row(), step)  # a second process would be refused
    assert log.rotation() == {("c", "s"): RotationState(0, planned)}  # moved past entry 2, in the same transaction
    # A final write the database refused earlier is written whole later, over the claim.
    later = Airing(channel="c", slot="s", planned_at=planned, outcome=Outcome.INTERRUPTED, script="a.md",
                   started_at=planned, ended_at=planned, error="cut")
    log.upsert(later)
    (stored,) = log.history()
    assert (stored.outcome, stored.error) == (Outcome.INTERRUPTED, "cut") and stored.planned_at == planned
    # Final means sealed in the same transaction: the row can no longer change.
    with pytest.raises(StoreError, match="is sealed"):
        log.finish(first, {"outcome": Outcome.AIRED, "started_at": planned})
    assert log.history()[0].outcome == Outcome.INTERRUPTED and log.seal_unsealed() == 0
    # After a crash: a row whose instant had come is interrupted (never aired twice), one still ahead released.
    ahead = Airing(channel="c", slot="s", planned_at=planned.replace(hour=5), outcome=Outcome.ON_AIR, script="a.md")
    came = Airing(channel="c", slot="s", planned_at=planned.replace(hour=3), outcome=Outcome.ON_AIR, script="a.md")
    assert log.claim(ahead) and log.claim(came)
    cut = log.recover(now=planned.replace(hour=4), last_alive=planned.replace(hour=3, minute=30))
    assert [(r.planned_at, r.outcome) for r in cut] == [(came.planned_at, Outcome.INTERRUPTED)]
    assert cut[0].ended_at == planned.replace(hour=3, minute=30) and "unknown" in cut[0].error
    assert [r.planned_at.hour for r in log.history()] == [2, 3]
    # A recovery the database refused at start, retried later, leaves alone what this process claimed since.
    mine = Airing(channel="c", slot="s", planned_at=planned.replace(hour=6), outcome=Outcome.ON_AIR, script="a.md",
                  started_at=planned.replace(hour=6))
    assert log.claim(mine)
    assert log.recover(now=clock_now() - timedelta(minutes=1), last_alive=None) == []
    assert [r.outcome for r in log.history()][-1] == Outcome.ON_AIR


def test_two_writers_sealing_at_once_keep_one_chain(asrun_url: str) -> None:
    """Two writers sealing at the same moment (a main and a backup PC on one PostgreSQL; two processes on one
    SQLite file): the second to take the chain's end is refused by the database and starts again, so every
    final row is sealed once, in one chain."""
    from anchor.audit.verify import verify_chain

    planned = datetime(2026, 12, 4, 2, tzinfo=timezone.utc)
    each, failures = 25, list[Exception]()
    start = threading.Barrier(2)

    def seal_airings(channel_id: str) -> None:
        log = AsRunLog(open_engine(asrun_url))
        try:
            start.wait(timeout=30)
            for n in range(each):
                row = Airing(channel=channel_id, slot="s", planned_at=planned + timedelta(minutes=n),
                             outcome=Outcome.ON_AIR, script="a.md")
                assert log.claim(row)
                log.finish(row, {"outcome": Outcome.AIRED, "started_at": row.planned_at, "ended_at": row.planned_at})
        except Exception as exc:  # handed to the test's thread
            failures.append(exc)
        finally:
            log.engine.dispose()

    writers = [threading.Thread(target=seal_airings, args=(name,)) for name in ("main", "backup")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert not any(writer.is_alive() for writer in writers) and not failures, failures
    report = verify_chain(asrun_url, workers=1)
    assert report.intact and report.links == 2 * each and report.rows["airing"] == 2 * each, report.problems


def test_daemon_logs_to_postgres_and_history_reads_it(project: Project, postgres: str) -> None:
    setup_site(project, free_port(), database_url=postgres)
    channel(project, slot("pg", f"at = {at(STARTUP)}"))
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


def test_a_database_url_anchor_cannot_use_is_a_clear_error(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_site(project, free_port())
    for url, words in (("postgres//no-colon", "is not a URL"), ("mysql://u@127.0.0.1/db", "SQLite or PostgreSQL"),
                       ("postgresql+nosuchdriver://u:secret@127.0.0.1/db", "no driver")):
        monkeypatch.setenv("ANCHOR_DATABASE_URL", url)
        result = project.run("history")
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and words in result.stderr and "secret" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
