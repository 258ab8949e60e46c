"""`anchor approve`, `revoke`, `reject` and `approvals`: who answers for which text of each script.

Approving screens the script (its title and every line) first: a listed claim refuses the approval unless
it is accepted by name with a reason (--accept WORD=REASON), and what was accepted is recorded with it.
An approver with a scope ([approvers.NAME] channels = [...]) approves only texts a channel in it airs; a
text no channel airs yet only an approver of every channel may approve, since an approval follows the text
to whichever channel airs it later. An unchanged text already approved is not approved again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anchor.cli.common import AsJson, BadInput, channel_time, err, escape, out, read_log, report, settings
from anchor.problems import InputError, Problem

if TYPE_CHECKING:
    from anchor.config import Approver, Settings
    from anchor.content import Script
    from anchor.content.approvals import ApprovalStatus


def screening_problems(app_settings: Settings, scripts: list[Script]) -> list[Problem]:
    """Every listed claim in the scripts that no approval of the script's current text accepted, each at
    file:line:column with its list: errors for `check`, as such a text airs on no channel."""
    from anchor.content.approvals import ApprovalBook
    from anchor.content.clearance import clearance, hit_problem, screen_file
    from anchor.content.screening import Screen

    screen = Screen.from_lists(app_settings.screening_dir)
    book: ApprovalBook | None = None
    problems = []
    for script in scripts:
        hits = screen_file(screen, script.source)
        if not hits:
            continue
        if book is None:  # only a text with hits asks the as-run log which were accepted
            book = ApprovalBook(read_log(app_settings).approvals())
        found = clearance(script.name, hits, book.status(script.name, script.content_hash))
        problems += [hit_problem(script.source, script.name, hit) for hit in found.unaccepted]
    return problems


def _approver(app_settings: Settings, name: str) -> Approver:
    found = app_settings.approvers.get(name)
    if found is None:
        known = ", ".join(sorted(app_settings.approvers)) or "none: add [approvers.NAME] role = \"…\" to anchor.toml"
        raise BadInput(f"'{name}' is not an approver (approvers: {known})")
    return found


def _load(app_settings: Settings, given: str) -> Script:
    from anchor.content import load_script

    path = Path(given)
    if not path.exists():
        path = app_settings.scripts_dir / given
    return load_script(path, app_settings.scripts_dir)


def _accepted(accept: list[str]) -> dict[str, str]:
    reasons = {}
    for item in accept:
        word, sep, why = item.partition("=")
        if not sep or not word.strip() or not why.strip():
            raise BadInput(f"--accept {item}: write --accept 'WORD=why it is right here'")
        reasons[word.strip()] = why.strip()
    return reasons


def _airing_channels(app_settings: Settings) -> dict[str, list[str]]:
    """Script name → the ids of the channels whose slots air it (or air it as their fallback)."""
    from anchor.schedule.channel import read_channel_files

    try:
        files = read_channel_files(app_settings)
    except InputError:  # no schedules folder: no channel airs anything yet
        return {}
    airing: dict[str, list[str]] = {}
    for found in files:
        if found.channel is None:
            continue
        names = {name for s in found.channel.slots for name in (*s.scripts, s.fallback) if name}
        for name in names:
            airing.setdefault(name, []).append(found.channel.id)
    return airing


def _out_of_scope(by: str, approver: Approver, script: Script, channels: list[str]) -> Problem | None:
    """Why `by` may not approve this script: no channel that airs it is theirs; None when they may."""
    if approver.channels is None or any(approver.covers(c) for c in channels):
        return None
    theirs = ", ".join(approver.channels)
    if not channels:
        return Problem(script.source, None, f"{by} ({approver.role}) approves for channels {theirs} only, and "
                       f"{script.name} airs on no channel yet", "an approval follows the text to any channel, so "
                       "an approver of every channel (no channels = [...]) approves it, or schedule it first")
    return Problem(script.source, None, f"{by} ({approver.role}) approves for channels {theirs} only; "
                   f"{script.name} airs on {', '.join(sorted(channels))}",
                   "ask an approver of those channels, or add the channel to [approvers." + by + "] channels")


def approve(
    scripts: Annotated[list[str], typer.Argument(help="Scripts, by their path inside scripts_content/.")],
    by: Annotated[str, typer.Option("--by", help="Who approves: a name under [approvers] in anchor.toml.")],
    note: Annotated[str | None, typer.Option(help="A note kept with the approval.")] = None,
    accept: Annotated[list[str] | None, typer.Option(help="A listed claim accepted, as 'WORD=why' (repeatable).")]
    = None,
) -> None:
    """Approve the current text of each script; a script with listed claims needs each accepted by name."""
    from anchor.content.approvals import ApprovalBook
    from anchor.content.clearance import clearance, hit_problem, screen_file
    from anchor.content.screening import Screen
    from anchor.store import Approval, ApprovalAction, open_store

    app_settings = settings()
    approver = _approver(app_settings, by)
    reasons = _accepted(accept or [])
    loaded = [_load(app_settings, name) for name in scripts]
    airing = _airing_channels(app_settings) if approver.channels is not None else {}
    screen = Screen.from_lists(app_settings.screening_dir)
    asrun = open_store(app_settings.database_url)
    book = ApprovalBook(asrun.approvals())
    refused: list[Problem] = []
    records = []
    for script in loaded:
        outside = _out_of_scope(by, approver, script, airing.get(script.name, []))
        if outside is not None:
            refused.append(outside)
            continue
        hits = screen_file(screen, script.source)
        unaccepted = [h for h in hits if h.word not in reasons]
        if unaccepted:
            refused += [hit_problem(script.source, script.name, h) for h in unaccepted]
            continue
        status = book.status(script.name, script.content_hash)
        if status.approved and status.decision is not None and clearance(script.name, hits, status).clear:
            decided = status.decision
            out().print(f"{escape(script.name)} (text {script.content_hash[:12]}) is already approved by "
                        f"{escape(decided.by)} ({escape(decided.role)}) at "
                        f"{channel_time(decided.at, app_settings.daemon.zone, 'minutes')}: nothing recorded")
            continue
        accepted = [{"word": h.word, "category": h.category, "list": h.list_file.name, "line": h.line,
                     "column": h.column, "text": h.text, "reason": reasons[h.word]} for h in hits]
        records.append(Approval(script=script.name, content_hash=script.content_hash, action=ApprovalAction.APPROVED,
                                by=by, role=approver.role, note=note, at=datetime.now(UTC),
                                accepted_hits=json.dumps(accepted, ensure_ascii=False) if accepted else None))
    if refused:
        raise InputError(refused)
    for record in records:
        asrun.record_approval(record)
        out().print(f"approved {escape(record.script)} (text {record.content_hash[:12]}) by {escape(by)} "
                    f"({escape(approver.role)})")


def _decide(action_name: str, script_name: str, by: str, reason: str) -> None:
    from anchor.content.approvals import ApprovalBook, Standing
    from anchor.store import Approval, ApprovalAction, open_store

    app_settings = settings()
    approver = _approver(app_settings, by)
    script = _load(app_settings, script_name)
    asrun = open_store(app_settings.database_url)
    action = ApprovalAction(action_name)
    content_hash = script.content_hash
    if action is ApprovalAction.REVOKED:  # the approval in force, even of an earlier text
        status = ApprovalBook(asrun.approvals(script.name)).status(script.name, content_hash)
        earlier = status.decision if status.standing in (Standing.APPROVED, Standing.PENDING) else None
        if earlier is None or earlier.action is not ApprovalAction.APPROVED:
            raise BadInput(f"{script.name} has no approval to revoke")
        content_hash = earlier.content_hash
    asrun.record_approval(Approval(script=script.name, content_hash=content_hash, action=action, by=by,
                                   role=approver.role, note=reason, at=datetime.now(UTC)))
    out().print(f"{action.value} {escape(script.name)} (text {content_hash[:12]}) by {escape(by)}: {escape(reason)}")


def revoke(
    script: Annotated[str, typer.Argument(help="A script, by its path inside scripts_content/.")],
    by: Annotated[str, typer.Option("--by", help="Who revokes: a name under [approvers].")],
    reason: Annotated[str, typer.Option(help="Why: kept in the record an auditor reads.")],
) -> None:
    """Revoke a script's approval: it stops airing (its slots air their fallback, or are skipped)."""
    _decide("revoked", script, by, reason)


def reject(
    script: Annotated[str, typer.Argument(help="A script, by its path inside scripts_content/.")],
    by: Annotated[str, typer.Option("--by", help="Who rejects: a name under [approvers].")],
    reason: Annotated[str, typer.Option(help="Why: kept in the record an auditor reads.")],
) -> None:
    """Reject the current text of a script (it stays off air until a new text is approved)."""
    _decide("rejected", script, by, reason)


def _standing_document(script: Script, status: ApprovalStatus, zone: tzinfo) -> dict[str, object]:
    """One script's standing for --json: its current text, the decision that stands and why it may not air."""
    from anchor.clock import as_utc

    decision = status.decision
    return {"script": script.name, "content_hash": script.content_hash, "standing": status.standing.value,
            "not_approved": None if status.approved else status.reason(),
            "decision": None if decision is None else {
                "action": decision.action.value, "content_hash": decision.content_hash, "by": decision.by,
                "role": decision.role, "note": decision.note, "at": as_utc(decision.at).astimezone(zone).isoformat()}}


def approvals(
    pending: Annotated[bool, typer.Option("--pending", help="Only scripts whose current text is not approved.")]
    = False,
    as_json: AsJson = False,
) -> None:
    """Every script's standing: approved, pending (never approved, or edited since), rejected or revoked."""
    from anchor.cli.jsonout import write_json_array
    from anchor.cli.tables import Column, write_table
    from anchor.content import find_scripts, load_script
    from anchor.content.approvals import ApprovalBook, Standing
    from anchor.wording import count

    app_settings = settings()
    book = ApprovalBook(read_log(app_settings).approvals())
    rows = []
    documents: list[dict[str, object]] = []
    problems: list[Problem] = []
    for path in find_scripts(app_settings.scripts_dir):
        try:
            script = load_script(path, app_settings.scripts_dir)
        except InputError as exc:
            problems += [Problem(p.file, p.line, p.message, p.hint, p.key, True) for p in exc.problems]
            continue
        status = book.status(script.name, script.content_hash)
        if pending and status.standing is Standing.APPROVED:
            continue
        decision = status.decision
        who = f"{decision.by} ({decision.role})" if decision else ""
        when = channel_time(decision.at, app_settings.daemon.zone, "minutes") if decision else ""
        rows.append((script.name, status.standing.value, who, when, "" if status.approved else status.reason()))
        documents.append(_standing_document(script, status, app_settings.daemon.zone))
    report(problems)
    if as_json:
        write_json_array(documents)
    else:  # the date and the time of day may fold onto two lines, the script path never
        write_table([Column("script"), Column("standing", fold=False), Column("by"), Column("when"),
                     Column("why not", floor=24)], rows, title=count(len(rows), "script"),
                    caption="times on the institution's clock ([daemon] timezone), with the UTC offset")
    if pending and rows:
        err().print(f"{count(len(rows), 'script')} not approved")
