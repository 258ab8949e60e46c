"""Only approved words go on air: approve, edit, fall back, re-approve and revoke against the real daemon,
on SQLite and on PostgreSQL; screening refuses an approval until each listed claim is accepted by name."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request

import pytest

from anchor.content import load_script
from anchor.store import open_store
from tests.conftest import Project, no_traceback, script_text
from tests.daemon_harness import Daemon, at, channel, final, free_port, setup_site, slot, wait_rows

APPROVERS = '\n[approvers.zhang]\nrole = "主任医师"\n\n[approvers.li]\nrole = "宣传科"\n'


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres"))


def _site(project: Project, database: str) -> None:
    setup_site(project, free_port(), database_url=database)
    project.config.write_text(project.config.read_text(encoding="utf-8") + APPROVERS, encoding="utf-8")
    project.script("spare.md", script_text("这是一条备用通知。", title="备用"))


def _approve(project: Project, *args: str) -> None:
    result = project.run("approve", *args, "--by", "zhang")
    no_traceback(result)
    assert result.returncode == 0, result.stderr


def test_only_approved_text_airs_then_edits_fall_back_or_skip_and_revocation_stops_it(
        project: Project, database: str) -> None:
    _site(project, database)
    _approve(project, "short.md", "spare.md")
    path = channel(project, slot("first", f"at = {at(12)}"))
    path.write_text(path.read_text(encoding="utf-8").replace('timezone = "Asia/Shanghai"',
                                                           'timezone = "Asia/Shanghai"\napproval = "required"'),
                    encoding="utf-8")
    approved_text = load_script(project.scripts / "short.md", project.scripts).content_hash
    with Daemon(project) as daemon:
        wait_rows(project, lambda r: final(r, "first"), timeout=60, database_url=database)
        # One character changed: the text is no longer the approved one.
        short = project.scripts / "short.md"
        short.write_text(short.read_text(encoding="utf-8").replace("通知", "通告"), encoding="utf-8")
        path.write_text(path.read_text(encoding="utf-8") + slot("edited", f"at = {at(10)}")
                        + slot("covered", f"at = {at(16)}", fallback="spare.md"), encoding="utf-8")
        plan = project.run("plan", "--hours", "1", "--json")
        shown = {r["slot"]: r for r in json.loads(plan.stdout)}
        assert shown["edited"]["airs"] is None and "edited since" in shown["edited"]["not_approved"]
        assert shown["covered"]["airs"] == "spare.md"
        checked = project.run("check")
        assert "slot edited" in checked.stderr and "it will be skipped" in checked.stderr
        wait_rows(project, lambda r: final(r, "edited", "covered"), timeout=60, database_url=database)
        # Approved again, it airs; then revoked, it stops.
        _approve(project, "short.md")
        path.write_text(path.read_text(encoding="utf-8") + slot("again", f"at = {at(8)}"), encoding="utf-8")
        wait_rows(project, lambda r: final(r, "again"), timeout=60, database_url=database)
        revoked = project.run("revoke", "short.md", "--by", "li", "--reason", "数据需要复核")
        assert revoked.returncode == 0, revoked.stderr
        path.write_text(path.read_text(encoding="utf-8") + slot("revoked", f"at = {at(8)}"), encoding="utf-8")
        found = wait_rows(project, lambda r: final(r, "revoked"), timeout=60, database_url=database)
        assert daemon.stop() == 0
    by_slot = {r.slot: r for r in found}
    assert by_slot["first"].outcome.value in ("aired", "late") and by_slot["first"].script_hash == approved_text
    assert by_slot["first"].approval_id is not None
    assert by_slot["edited"].outcome.value == "skipped" and "edited since it was approved" in by_slot["edited"].error
    assert by_slot["edited"].started_at is None
    covered = by_slot["covered"]
    assert covered.outcome.value in ("aired", "late") and covered.script == "spare.md"
    assert covered.note and "fallback" in covered.note and covered.approval_id is not None
    assert by_slot["again"].outcome.value in ("aired", "late") and by_slot["again"].script_hash != approved_text
    assert by_slot["again"].approval_id not in (None, by_slot["first"].approval_id)
    assert by_slot["revoked"].outcome.value == "skipped" and "revoked by li: 数据需要复核" in by_slot["revoked"].error
    # Every approval is in the log with who and which text, and the airing rows say which one they aired under.
    approvals = open_store(database or f"sqlite:///{project.root / 'data' / 'anchor.db'}").approvals()
    assert [(a.script, a.action.value, a.by) for a in approvals] == [
        ("short.md", "approved", "zhang"), ("spare.md", "approved", "zhang"), ("short.md", "approved", "zhang"),
        ("short.md", "revoked", "li")]
    assert {a.id for a in approvals if a.script == "short.md" and a.action.value == "approved"} == {
        by_slot["first"].approval_id, by_slot["again"].approval_id}
    # The daemon sealed every final row as it wrote it, and the chain reads back intact.
    verified = project.run("audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr
    assert f"({len(found)} airings, {len(approvals)} approvals)" in verified.stdout, verified.stdout
    # The exact audio of each airing that went out is kept by its hash, for an auditor to play back.
    for row in found:
        kept = project.root / "data" / "evidence" / f"{row.audio_hash}.wav"
        if row.outcome.value in ("aired", "late"):
            assert hashlib.sha256(kept.read_bytes()).hexdigest() == row.audio_hash


def test_approve_refuses_listed_claims_until_each_is_accepted_by_name(project: Project) -> None:
    _site(project, "")
    project.script("cure.md", script_text("本疗法可以根 治高血压，\n\n无副作用，患者推荐。", title="新疗法"))
    refused = project.run("approve", "cure.md", "--by", "zhang")
    no_traceback(refused)
    assert refused.returncode == 2
    for word, where in (("根治", "5:6"), ("无副作用", "7:1"), ("患者推荐", "7:6")):  # line:column as written
        assert f"cure.md:{where}: “" in refused.stderr and f"claim “{word}”" in refused.stderr, refused.stderr
    assert "根 治" in refused.stderr  # the span as written, found through the inserted space
    partly = project.run("approve", "cure.md", "--by", "zhang", "--accept", "根治=手术名称，非疗效承诺")
    assert partly.returncode == 2 and "根治" not in partly.stderr.split("\n")[0]
    accepted = project.run("approve", "cure.md", "--by", "zhang", "--accept", "根治=手术名称，非疗效承诺",
                           "--accept", "无副作用=引用说明书原文", "--accept", "患者推荐=病友会活动名称")
    assert accepted.returncode == 0, accepted.stderr
    (record,) = open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}").approvals()
    hits = json.loads(record.accepted_hits or "[]")
    assert {(h["word"], h["reason"]) for h in hits} == {("根治", "手术名称，非疗效承诺"), ("无副作用", "引用说明书原文"),
                                                        ("患者推荐", "病友会活动名称")}
    assert all(h["line"] and h["column"] for h in hits)
    listed = project.run("approvals")
    assert "cure.md" in listed.stdout and "approved" in listed.stdout and "zhang" in listed.stdout
    pending = project.run("approvals", "--pending")
    assert "cure.md" not in pending.stdout and "short.md" in pending.stdout
    unknown = project.run("approve", "cure.md", "--by", "nobody")
    assert unknown.returncode == 2 and "not an approver" in unknown.stderr and "zhang" in unknown.stderr


CURE = "本疗法保证治愈，无副作用。"  # body line 5 of script_text: 保证治愈 at column 4, 无副作用 at column 9


def test_a_text_with_a_listed_claim_airs_on_no_channel_until_an_approval_of_it_accepts_the_claim(
        project: Project) -> None:
    _site(project, "")
    project.script("cure.md", script_text(CURE, title="新疗法"))
    # A channel that does not require approval (the default): screening still keeps the claim off air.
    path = channel(project, slot("claim", f"at = {at(600)}", script="cure.md")
                   + slot("covered", f"at = {at(620)}", script="cure.md", fallback="spare.md"))
    checked = project.run("check")
    no_traceback(checked)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "ok:" not in checked.stdout
    for word, where in (("保证治愈", "5:4"), ("无副作用", "5:9")):
        assert f"cure.md:{where}: “{word}” is the listed claim “{word}”" in checked.stderr, checked.stderr
    assert "--accept '保证治愈=" in checked.stderr
    shown = {r["slot"]: r for r in json.loads(project.run("plan", "--hours", "1", "--json").stdout)}
    assert shown["claim"]["airs"] is None and "listed claim" in shown["claim"]["not_approved"]
    assert shown["covered"]["airs"] == "spare.md" and "保证治愈" in shown["covered"]["not_approved"]
    table = "".join(project.run("plan", "--hours", "1").stdout.split())  # a narrow terminal folds the cells
    assert "SKIPPED:cure.md:" in table and "spare.md(fallback:cure.md:" in table, table
    path = channel(project, slot("claim", f"at = {at(12)}", script="cure.md")
            + slot("covered", f"at = {at(14)}", script="cure.md", fallback="spare.md"))
    with Daemon(project) as daemon:
        daemon.wait_log(r"on air: 1 channels")
        # The operator's alert counts both airings the claim keeps off (one skipped, one airing its fallback),
        # on a channel that does not require approval too.
        port = re.search(r"metrics_port = (\d+)", project.config.read_text(encoding="utf-8")).group(1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'anchor_unapproved_airings{channel="t"} 2.0' in metrics, metrics
        wait_rows(project, lambda r: final(r, "claim", "covered"), timeout=60)
        # Accepted by name in an approval of this very text, the claim airs, on this channel too.
        _approve(project, "cure.md", "--accept", "保证治愈=引用药品说明书原文", "--accept", "无副作用=引用药品说明书原文")
        assert project.run("check").returncode == 0
        path.write_text(path.read_text(encoding="utf-8") + slot("accepted", f"at = {at(8)}", script="cure.md"),
                        encoding="utf-8")
        found = wait_rows(project, lambda r: final(r, "accepted"), timeout=60)
        assert daemon.stop() == 0
    by_slot = {r.slot: r for r in found}
    claim = by_slot["claim"]
    assert claim.outcome.value == "skipped" and claim.started_at is None
    assert "listed claim" in claim.error and "“保证治愈”" in claim.error and "--accept" in claim.error
    covered = by_slot["covered"]
    assert covered.outcome.value in ("aired", "late") and covered.script == "spare.md", covered
    assert covered.note and "fallback" in covered.note and "保证治愈" in covered.note
    assert by_slot["accepted"].outcome.value in ("aired", "late") and by_slot["accepted"].script == "cure.md"


def test_a_listed_claim_in_the_fallback_too_skips_the_airing(project: Project) -> None:
    _site(project, "")
    project.script("cure.md", script_text(CURE, title="新疗法"))
    project.script("spare.md", script_text("这是根治高血压的好办法。", title="备用"))
    channel(project, slot("both", f"at = {at(10)}", script="cure.md", fallback="spare.md"))
    with Daemon(project) as daemon:
        found = wait_rows(project, lambda r: final(r, "both"), timeout=60)
        assert daemon.stop() == 0
    (row,) = found
    assert row.outcome.value == "skipped" and "保证治愈" in row.error and "nor is its fallback spare.md" in row.error
    assert "根治" in row.error


SCOPED = '''
[approvers.zhang]
role = "主任医师"
channels = ["hospital"]

[approvers.wang]
role = "新闻发言人"
channels = ["procuratorate"]

[approvers.chief]
role = "宣传科"
'''


def test_an_approver_approves_only_texts_a_channel_in_their_scope_airs(project: Project) -> None:
    setup_site(project, free_port())
    project.config.write_text(project.config.read_text(encoding="utf-8") + SCOPED, encoding="utf-8")
    project.script("fraud.md", script_text("警惕电信网络诈骗。", title="反诈"))
    channel(project, slot("p", "cron = \"0 9 * * *\"", script="fraud.md"), name="procuratorate")
    channel(project, slot("h", "cron = \"0 9 * * *\"", script="short.md"), name="hospital")
    refused = project.run("approve", "fraud.md", "--by", "zhang")
    no_traceback(refused)
    assert refused.returncode == 2
    assert "zhang (主任医师) approves for channels hospital only; fraud.md airs on procuratorate" in refused.stderr
    # A text no channel airs yet: only an approver of every channel, as the approval follows the text.
    project.script("draft.md", script_text("这是一份草稿。", title="草稿"))
    unscheduled = project.run("approve", "draft.md", "--by", "wang")
    said = " ".join(unscheduled.stderr.split())  # a problem longer than the terminal folds between words
    assert unscheduled.returncode == 2 and "wang (新闻发言人)" in said
    assert "draft.md airs on no channel yet" in said
    assert project.run("approve", "fraud.md", "--by", "wang").returncode == 0
    assert project.run("approve", "short.md", "--by", "zhang").returncode == 0
    assert project.run("approve", "draft.md", "--by", "chief").returncode == 0
    approvals = open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}").approvals()
    assert [(a.script, a.by) for a in approvals] == [("fraud.md", "wang"), ("short.md", "zhang"), ("draft.md", "chief")]


def test_approving_an_unchanged_approved_text_again_records_nothing(project: Project) -> None:
    _site(project, "")
    _approve(project, "short.md")
    again = project.run("approve", "short.md", "--by", "zhang")
    assert again.returncode == 0, again.stderr
    assert "short.md" in again.stdout and "already approved by zhang (主任医师)" in again.stdout
    store = open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}")
    assert len(store.approvals()) == 1
    # Revoked since, or edited since: approving records a new approval.
    assert project.run("revoke", "short.md", "--by", "li", "--reason", "复核").returncode == 0
    _approve(project, "short.md")
    assert [a.action.value for a in store.approvals()] == ["approved", "revoked", "approved"]
