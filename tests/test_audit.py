"""`anchor audit`: the seal chain names what was tampered with, exports verify offline and fail on any changed
byte, the monthly report's figures read back from the PDF, and evidence is kept and swept. On SQLite and on a
real PostgreSQL; every command runs as the real `anchor` process."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from anchor import store
from anchor.audit import AuditError
from anchor.audit.evidence import Evidence
from anchor.store import Airing, Approval, ApprovalAction, AsRunLog, Outcome, open_store
from tests.conftest import Project, clock_now, no_traceback
from tests.daemon_harness import channel, slot

DECEMBER = datetime(2026, 12, 4, 2, tzinfo=UTC)  # 10:00 in Shanghai
KEY_ENV = "ANCHOR_AUDIT_SIGNING_KEY_INSTITUTION"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, project: Project) -> str:
    """The as-run log's URL, written into the project's anchor.toml."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres")
    else:
        url = f"sqlite:///{project.root / 'data' / 'anchor.db'}"
    project.write_config(extra=f'[daemon]\ndatabase_url = "{url}"\n')
    return url


@dataclass
class Seeded:
    log: AsRunLog
    airings: dict[str, int]  # slot → id
    approvals: list[int]


def _aired(log: AsRunLog, slot_name: str, planned: datetime, minutes: float, outcome: Outcome = Outcome.AIRED,
           audio_hash: str | None = None, approval_id: int | None = None, script: str = "health/a.md",
           channel_id: str = "t") -> int:
    """As the daemon does: claim the row on air, write its end, seal what is final."""
    row = Airing(channel=channel_id, slot=slot_name, planned_at=planned, outcome=Outcome.ON_AIR, script=script,
                 script_hash="5" * 64, engine="espeak", voice="cmn-latn-pinyin", audio_hash=audio_hash or "a" * 64,
                 approval_id=approval_id)
    assert log.claim(row)
    started = planned + timedelta(seconds=1)
    log.finish(row, {"outcome": outcome, "started_at": started, "ended_at": started + timedelta(minutes=minutes),
                     "aired_as": "clip"})
    log.seal_unsealed()
    return _id(log, slot_name, planned)


def _unaired(log: AsRunLog, slot_name: str, planned: datetime, outcome: Outcome, error: str,
             script: str = "health/a.md") -> int:
    assert log.claim(Airing(channel="t", slot=slot_name, planned_at=planned, outcome=outcome, script=script,
                            error=error))
    log.seal_unsealed()
    return _id(log, slot_name, planned)


def _id(log: AsRunLog, slot_name: str, planned: datetime) -> int:
    (found,) = [r for r in log.history() if r.slot == slot_name and r.planned_at == planned]
    assert found.id is not None
    return found.id


def _approve(log: AsRunLog, at: datetime, by: str = "wang", action: ApprovalAction = ApprovalAction.APPROVED,
             script: str = "health/a.md", note: str | None = "首次审核") -> int:
    made = log.record_approval(Approval(script=script, content_hash="5" * 64, action=action, by=by,
                                        role="主任医师", note=note, at=at))
    assert made.id is not None
    return made.id


def seed(url: str, audio_hash: str | None = None) -> Seeded:
    log = open_store(url)
    first = _approve(log, DECEMBER - timedelta(days=2))
    ids = {"morning": _aired(log, "morning", DECEMBER, 3, approval_id=first, audio_hash=audio_hash),
           "noon": _aired(log, "noon", DECEMBER + timedelta(hours=3), 2, Outcome.LATE, approval_id=first),
           "evening": _unaired(log, "evening", DECEMBER + timedelta(hours=8), Outcome.FAILED, ""),  # an empty error
           "night": _unaired(log, "night", DECEMBER + timedelta(hours=12), Outcome.MISSED,
                             "12.3s late, past its grace of 0:00:05；频道离线")}
    second = _approve(log, DECEMBER + timedelta(days=1), by="li", action=ApprovalAction.REVOKED, note="内容过期")
    on_air = Airing(channel="t", slot="later", planned_at=DECEMBER + timedelta(hours=14), outcome=Outcome.ON_AIR,
                    script="health/a.md")
    assert log.claim(on_air)  # on air: not final, not expected to be sealed
    return Seeded(log, ids, [first, second])


def _sql(url: str, statement: str, **params: object) -> None:
    with open_store(url).engine.begin() as connection:
        connection.execute(text(statement), params)


def _stored_time(url: str, instant: datetime) -> object:
    """A time as a hand-written INSERT would put it: SQLite keeps UTC text, PostgreSQL a timestamptz."""
    return instant.strftime("%Y-%m-%d %H:%M:%S.%f") if url.startswith("sqlite") else instant


def verify(project: Project) -> subprocess.CompletedProcess[str]:
    result = project.run("audit", "verify")
    no_traceback(result)
    return result


# -- the chain ------------------------------------------------------------------------------------------------


def test_verify_names_the_row_edited_deleted_or_inserted(project: Project, database: str) -> None:
    seeded = seed(database)
    morning, evening = seeded.airings["morning"], seeded.airings["evening"]

    result = verify(project)
    assert result.returncode == 0, result.stderr
    assert "intact: 6 rows verified (4 airings, 2 approvals) against 6 links" in result.stdout
    assert "1 airing still on air" in result.stdout

    # Edited: one sealed field changed by hand.
    _sql(database, "UPDATE airing SET error = 'nothing happened' WHERE id = :id", id=evening)
    result = verify(project)
    assert result.returncode == 1
    # Channel t has no channel file here: its times are on the institution's clock ([daemon] timezone's default).
    assert f"airing {evening} (channel t, slot evening, planned 2026-12-04 18:00:00+08:00, failed) was edited" \
           in result.stderr
    assert "seal seq" in result.stderr and "Restore the row from a backup" in result.stderr
    _sql(database, "UPDATE airing SET error = '' WHERE id = :id", id=evening)
    # Bookkeeping and audience totals are not sealed: changing them is no tampering.
    _sql(database, "UPDATE airing SET updated_at = :now WHERE id = :id", id=evening, now=_stored_time(
        database, clock_now()))
    assert verify(project).returncode == 0

    # Inserted: a final row nobody sealed.
    _sql(database, "INSERT INTO airing (channel, slot, planned_at, outcome, script, updated_at) "
                   "VALUES ('t', 'forged', :at, 'AIRED', 'health/a.md', :at)",
         at=_stored_time(database, DECEMBER + timedelta(days=1)))
    result = verify(project)
    assert result.returncode == 1
    assert re.search(r"airing \d+ \(channel t, slot forged, planned 2026-12-05 10:00:00\+08:00, aired\) is final but "
                     r"has no seal", result.stderr), result.stderr
    _sql(database, "DELETE FROM airing WHERE slot = 'forged'")
    assert verify(project).returncode == 0

    # A link edited: the chain breaks at its seq.
    _sql(database, "UPDATE seal SET previous = :p WHERE seq = (SELECT MIN(seq) FROM seal) + 2", p="f" * 64)
    result = verify(project)
    assert result.returncode == 1 and "the seal chain is broken at seq" in result.stderr, result.stderr
    assert "Restore the seal table from a backup" in result.stderr
    _sql(database, "UPDATE seal SET previous = (SELECT s.seal FROM seal s WHERE s.seq = seal.seq - 1) "
                   "WHERE seq = (SELECT MIN(seq) FROM seal) + 2")
    assert verify(project).returncode == 0

    # Deleted: a sealed row gone, and an approval edited after it — the first in chain order is named.
    _sql(database, "DELETE FROM airing WHERE id = :id", id=morning)
    _sql(database, "UPDATE approval SET note = 'changed' WHERE id = :id", id=seeded.approvals[1])
    result = verify(project)
    assert result.returncode == 1
    assert f"error: airing {morning} was deleted after it was sealed" in result.stderr, result.stderr
    assert "(1 more problem after it: --all lists them)" in result.stderr
    result = project.run("audit", "verify", "--all")
    assert f"approval {seeded.approvals[1]} was edited" in result.stdout


def test_verify_in_worker_processes_finds_the_same(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from anchor.audit import verify as chain

    url = f"sqlite:///{project.root / 'data' / 'anchor.db'}"
    seeded = seed(url)
    for n in range(6):
        _aired(seeded.log, f"extra{n}", DECEMBER + timedelta(days=2, hours=n), 1)
    _sql(url, "UPDATE airing SET voice = 'other' WHERE slot = 'extra4'")
    monkeypatch.setattr(chain, "PARALLEL_FROM", 2)
    alone, apart = chain.verify_chain(url, workers=1), chain.verify_chain(url, workers=3)
    assert apart.rows == alone.rows == {"airing": 9, "approval": 2} and apart.links == alone.links == 12
    assert [p.message() for p in apart.problems] == [p.message() for p in alone.problems]
    assert [(p.what, p.slot) for p in apart.problems] == [("edited", "extra4")]


def test_verify_reads_each_stored_time_as_the_seal_wrote_it(project: Project, database: str) -> None:
    """verify reads SQLite's time text without parsing it, and PostgreSQL's as the server writes it in the
    canonical form: every way a time can be written (no microseconds, their last digit, another offset, none at
    all, text that is no time, a time Python cannot hold) digests as the sealed row does, or fails to match."""
    from anchor.audit.verify import reader

    log = open_store(database)
    shanghai = timezone(timedelta(hours=8))
    times = [DECEMBER, DECEMBER.replace(microsecond=999_999), datetime(2027, 1, 1, 7, 59, 59, 1, tzinfo=shanghai),
             datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    for n, started in enumerate(times):
        row = Airing(channel="t", slot=f"s{n}", planned_at=DECEMBER + timedelta(hours=n), outcome=Outcome.ON_AIR,
                     script="health/a.md")
        assert log.claim(row)
        log.finish(row, {"outcome": Outcome.AIRED, "started_at": started, "ended_at": None if n == 3 else started})
    with log.engine.connect() as connection:
        found = {r.id: r for r in reader("airing", connection.dialect).contents(connection)}
    sealed = {r.id: r for r in log.history()}
    assert found.keys() == sealed.keys() and len(found) == len(times)
    for row_id, row in sealed.items():
        assert found[row_id].final and store.digest_of(found[row_id].fields) == store.digest(row)
    assert found[min(sealed)].fields["started_at"] == "2026-12-04T02:00:00.000000+00:00"
    # Still read, never an error: SQLite text with a time's shape that is no time; a PostgreSQL time Python
    # cannot hold.
    odd = "'2026-13-45 99:00:00.000000'" if database.startswith("sqlite") else "'infinity'"
    _sql(database, f"UPDATE airing SET ended_at = {odd} WHERE slot = 's0'")
    with log.engine.connect() as connection:
        (first, *_) = reader("airing", connection.dialect).contents(connection)
    assert store.digest_of(first.fields) != store.digest(sealed[first.id])


# -- export and its offline verification ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two Ed25519 key pairs made by openssl, as an institution would make them."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name in ("institution", "stranger"):
        private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
        subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
        made[name], made[f"{name}.pub"] = private, public
    return made


def test_export_verifies_offline_and_any_changed_byte_fails(project: Project, database: str,
                                                             keys: dict[str, Path]) -> None:
    wav = project.root / "program.wav"
    wav.write_bytes(b"RIFF" + os.urandom(4000))
    audio_hash = hashlib.sha256(wav.read_bytes()).hexdigest()
    seeded = seed(database, audio_hash=audio_hash)
    Evidence(project.root / "data").keep(wav, audio_hash)
    _approve(seeded.log, DECEMBER + timedelta(days=40), by="zhao")  # outside the period
    key_env = {KEY_ENV: keys["institution"].read_text()}
    out = project.root / "export"

    missing = project.run("audit", "export", "--from", "2026-12-01T00:00Z", "--to", "2027-01-01T00:00Z", "--out",
                          str(out))
    assert missing.returncode == 1 and KEY_ENV in missing.stderr
    assert "openssl genpkey -algorithm ed25519" in missing.stderr
    no_traceback(missing)

    result = project.run("audit", "export", "--from", "2026-12-01T00:00Z", "--to", "2027-01-01T00:00Z", "--channel",
                         "t", "--out", str(out), env=key_env)
    assert result.returncode == 0, result.stderr
    assert "exported 4 airings, 2 approvals and 7 links" in result.stdout
    assert "evidence named for 2, 1 kept" in result.stdout and "1 airing still on air was left out" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["outcomes"] == {"aired": 1, "failed": 1, "late": 1, "missed": 1}
    assert manifest["channel"] == "t" and manifest["period"]["from"] == "2026-12-01T00:00:00.000000+00:00"
    with open_store(database).engine.connect() as connection:
        last = connection.execute(text("SELECT seal FROM seal ORDER BY seq DESC LIMIT 1")).scalar()
    assert manifest["chain"]["last_seal"] == last
    lines = io.StringIO((out / "airings.csv").read_text(encoding="utf-8-sig"))
    records = {r["slot"]: r for r in csv.DictReader(lines)}
    assert (records["morning"]["evidence"], records["morning"]["evidence_kept"]) == (f"evidence/{audio_hash}.wav",
                                                                                    "yes")
    assert (records["noon"]["evidence"], records["noon"]["evidence_kept"]) == (f"evidence/{'a' * 64}.wav", "no")
    assert records["evening"]["evidence"] == "" and "频道离线" in records["night"]["error"]
    assert (records["evening"]["error"], records["evening"]["empty_fields"]) == ("", "error")  # "", not null
    assert (records["morning"]["error"], records["morning"]["empty_fields"]) == ("", "")  # null

    public = str(keys["institution.pub"])
    result = project.run("audit", "verify-export", str(out), "--public-key", public)
    assert result.returncode == 0, result.stderr
    assert "4 airings and 2 approvals recomputed against 7 links" in result.stdout
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in",
                    str(out / "manifest.json"), "-sigfile", str(out / "manifest.sig")], check=True,
                   capture_output=True)  # an auditor's own tool agrees

    wrong = project.run("audit", "verify-export", str(out), "--public-key", str(keys["stranger.pub"]))
    assert wrong.returncode == 1 and "not by" in wrong.stderr and "institution's public key" in wrong.stderr
    for name in ("airings.csv", "approvals.csv", "seals.csv", "manifest.json", "manifest.sig"):
        changed = project.root / f"changed-{name}"
        shutil.copytree(out, changed)
        data = bytearray((changed / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (changed / name).write_bytes(bytes(data))
        result = project.run("audit", "verify-export", str(changed), "--public-key", public)
        no_traceback(result)
        assert result.returncode == 1, (name, result.stdout)
        assert name in result.stderr, (name, result.stderr)


def test_verify_export_recomputes_the_links(project: Project, keys: dict[str, Path], tmp_path: Path) -> None:
    """A forger holding the key still cannot change a row: its digest no longer matches its link."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from anchor.audit.export import export_period, load_public_key, verify_export

    url = f"sqlite:///{project.root / 'data' / 'anchor.db'}"
    seed(url)
    key = load_pem_private_key(keys["institution"].read_bytes(), None)
    public = load_public_key(keys["institution.pub"].read_bytes(), "institution.pub.pem")
    out = tmp_path / "export"
    export_period(url, DECEMBER - timedelta(days=3), DECEMBER + timedelta(days=3), None, out, key,  # type: ignore[arg-type]
                  project.root / "data")
    assert verify_export(out, public).rows == {"airing": 4, "approval": 2}
    airings = (out / "airings.csv").read_text(encoding="utf-8-sig").replace("noon,", "n00n,")
    (out / "airings.csv").write_text(airings, encoding="utf-8-sig")
    manifest = json.loads((out / "manifest.json").read_bytes())
    manifest["files"]["airings.csv"]["sha256"] = hashlib.sha256((out / "airings.csv").read_bytes()).hexdigest()
    signed = json.dumps(manifest).encode()
    (out / "manifest.json").write_bytes(signed)
    (out / "manifest.sig").write_bytes(key.sign(signed))  # type: ignore[union-attr]
    with pytest.raises(AuditError, match=r"airings.csv line 3 \(airing \d+\): its digest is not the one sealed"):
        verify_export(out, public)


# -- the monthly report ---------------------------------------------------------------------------------------


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_monthly_report_figures(project: Project, database: str) -> None:
    (project.root / "schedules").mkdir()
    project.script("health/a.md", "+++\ntitle = \"测试\"\n+++\n\n各位观众，大家好。\n")
    channel(project, slot("s", 'at = 2027-03-01T10:00:00+08:00', script="health/a.md"))  # Asia/Shanghai
    log = open_store(database)
    before = _approve(log, datetime(2026, 11, 20, tzinfo=UTC), by="zhao")  # November: not in the report
    approved = _approve(log, datetime(2026, 12, 2, 1, tzinfo=UTC))
    _approve(log, datetime(2026, 12, 20, 1, tzinfo=UTC), by="li", action=ApprovalAction.REVOKED, note="内容过期")
    _approve(log, datetime(2026, 12, 21, 1, tzinfo=UTC), by="li", action=ApprovalAction.REJECTED, note="数据有误",
             script="health/b.md")
    _aired(log, "first", datetime(2026, 11, 30, 17, tzinfo=UTC), 1, approval_id=before)  # 1 Dec 01:00 in Shanghai
    _aired(log, "a", DECEMBER, 5, approval_id=approved)
    _aired(log, "b", DECEMBER + timedelta(days=1), 2.5, approval_id=approved)
    _aired(log, "c", DECEMBER + timedelta(days=2), 3, Outcome.LATE)
    _aired(log, "d", DECEMBER + timedelta(days=3), 1, Outcome.INTERRUPTED)
    _aired(log, "after", datetime(2026, 12, 31, 16, 30, tzinfo=UTC), 9)  # 1 Jan 00:30 in Shanghai: January
    _unaired(log, "m1", DECEMBER + timedelta(days=4), Outcome.MISSED, "12.3s late, past its grace of 0:00:05")
    _unaired(log, "m2", DECEMBER + timedelta(days=5), Outcome.MISSED, "40.1s late, past its grace of 0:00:05")
    _unaired(log, "f", DECEMBER + timedelta(days=6), Outcome.FAILED, "its output obs:studio cannot be used")
    _unaired(log, "s", DECEMBER + timedelta(days=7), Outcome.SKIPPED, "its text was never approved (anchor approve)")
    audience = "AUDIENCE_COUNTS" in vars(store)
    if audience:  # per-airing audience totals, where this store keeps them
        _sql(database, "UPDATE airing SET comments = 7, likes = 30, viewers_peak = 120 WHERE slot = 'a'")
        _sql(database, "UPDATE airing SET comments = 5, likes = 12, viewers_peak = 80 WHERE slot = 'b'")

    out = project.root / "report-2026-12.pdf"
    result = project.run("audit", "report", "--month", "2026-12", "--out", str(out))
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "1 channel, 9 airings, 3 approval actions" in result.stdout
    shown = _pdf_text(out)
    flat = re.sub(r"\s+", " ", shown)
    assert "月度播出报告 Monthly broadcast report 2026-12" in flat and "频道 Channel t" in flat
    assert "计划 9 planned · 播出 5 went out · 播出时长 12.5 minutes aired" in flat
    for label, count, minutes in (("aired", 3, "8.5"), ("late", 1, "3.0"), ("interrupted", 1, "1.0")):
        assert re.search(rf"{label}\s+{count}\s+{minutes}", shown), (label, shown)
    for label, count in (("missed", 2), ("failed", 1), ("skipped", 1)):
        assert re.search(rf"{label}\s+{count}\s+—", shown), (label, shown)
    assert re.search(r"missed\s+2\s+2026-12-08 10:00\+08:00\s+例 e.g. 12.3s late, past its grace of 0:00:05", shown)
    assert "its output obs:studio cannot be used" in flat and "its text was never approved" in flat
    assert re.search(r"2026-12-02 09:00\+08:00\s+wang（主任医师）\s+批准 approved\s+health/a.md\s+首次审核", shown)
    assert re.search(r"li（主任医师）\s+撤销 revoked\s+health/a.md\s+内容过期", shown)
    assert re.search(r"li（主任医师）\s+驳回 rejected\s+health/b.md\s+数据有误", shown)
    assert "zhao" not in shown
    if audience:
        assert "2 次播出有观众数据 airings with audience totals" in flat
        assert re.search(r"评论 comments\s+12\b", shown) and re.search(r"点赞 likes\s+42\b", shown)
        assert re.search(r"峰值观众 viewers \(highest peak\)\s+120\b", shown)
    else:
        assert "no audience data" in flat

    bad = project.run("audit", "report", "--month", "2026-13", "--out", str(out))
    assert bad.returncode == 2 and "write e.g. 2026-12" in bad.stderr


# -- evidence -------------------------------------------------------------------------------------------------


@pytest.mark.dated
def test_evidence_is_kept_by_hash_and_swept(tmp_path: Path) -> None:
    program = tmp_path / "cache" / "program.wav"
    program.parent.mkdir()
    program.write_bytes(b"RIFF" + os.urandom(1000))
    audio_hash = hashlib.sha256(program.read_bytes()).hexdigest()
    evidence = Evidence(tmp_path / "data")
    kept = evidence.keep(program, audio_hash)
    assert kept == tmp_path / "data" / "evidence" / f"{audio_hash}.wav" and kept.read_bytes() == program.read_bytes()
    assert kept.stat().st_ino == program.stat().st_ino  # a hard link: no copy, no space
    program.unlink()  # the cache evicts the Program: what aired stays
    assert evidence.keep(program, audio_hash) == kept  # idempotent: only touched
    other = tmp_path / "other.wav"
    other.write_bytes(b"not what aired")
    with pytest.raises(AuditError, match="it is not the audio that aired"):
        evidence.keep(other, "b" * 64)
    with pytest.raises(AuditError, match="not an audio hash"):
        evidence.keep(other, "../../etc/passwd")
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]

    old = time.time() - 200 * 86400
    os.utime(kept, (old, old))
    now = clock_now()
    assert evidence.sweep(now, 365).removed == 0 and kept.exists()
    swept = evidence.sweep(now, 180)
    assert swept.removed == 1 and not kept.exists()
