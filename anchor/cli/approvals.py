"""`anchor approve`, `revoke`, `reject` and `approvals`: who answers for which text of each script.

Approving screens the script (its title and every line) first: a listed claim refuses the approval unless
it is accepted by name with a reason (--accept WORD=REASON), and what was accepted is recorded with it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anchor.cli.common import BadInput, channel_time, err, escape, out, read_log, report, settings
from anchor.problems import InputError, Problem

if TYPE_CHECKING:
    from anchor.config import Approver, Settings
    from anchor.content import Script
    from anchor.content.screening import Hit


def screening_problems(app_settings: Settings, scripts: list[Script]) -> list[Problem]:
    """Every listed claim in the scripts, each at file:line:column with its list: warnings for `check`."""
    from anchor.content.screening import Screen

    screen = Screen.from_lists(app_settings.screening_dir)
    problems = []
    for script in scripts:
        for hit in screen.screen(script.source.read_text(encoding="utf-8-sig")):
            problems.append(_hit_problem(script.source, hit))
    return problems


def _hit_problem(path: Path, hit: Hit) -> Problem:
    return Problem(path, hit.line, f"“{hit.text}” is the listed claim “{hit.word}” ({hit.category}, "
                   f"{hit.list_file.name}:{hit.list_line})", f"reword it, or approve with --accept "
                   f"'{hit.word}=<why it is right here>'", warning=True, column=hit.column)


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


def approve(
    scripts: Annotated[list[str], typer.Argument(help="Scripts, by their path inside scripts_content/.")],
    by: Annotated[str, typer.Option("--by", help="Who approves: a name under [approvers] in anchor.toml.")],
    note: Annotated[str | None, typer.Option(help="A note kept with the approval.")] = None,
    accept: Annotated[list[str] | None, typer.Option(help="A listed claim accepted, as 'WORD=why' (repeatable).")]
    = None,
) -> None:
    """Approve the current text of each script; a script with listed claims needs each accepted by name."""
    from anchor.content.screening import Screen
    from anchor.store import Approval, ApprovalAction, open_store

    app_settings = settings()
    approver = _approver(app_settings, by)
    reasons = _accepted(accept or [])
    loaded = [_load(app_settings, name) for name in scripts]
    screen = Screen.from_lists(app_settings.screening_dir)
    refused: list[Problem] = []
    records = []
    for script in loaded:
        hits = screen.screen(script.source.read_text(encoding="utf-8-sig"))
        unaccepted = [h for h in hits if h.word not in reasons]
        if unaccepted:
            refused += [_hit_problem(script.source, h) for h in unaccepted]
            continue
        accepted = [{"word": h.word, "category": h.category, "list": h.list_file.name, "line": h.line,
                     "column": h.column, "text": h.text, "reason": reasons[h.word]} for h in hits]
        records.append(Approval(script=script.name, content_hash=script.content_hash, action=ApprovalAction.APPROVED,
                                by=by, role=approver.role, note=note, at=datetime.now(UTC),
                                accepted_hits=json.dumps(accepted, ensure_ascii=False) if accepted else None))
    if refused:
        raise InputError([Problem(p.file, p.line, p.message, p.hint, p.key, False, p.column) for p in refused])
    asrun = open_store(app_settings.database_url)
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


def approvals(
    pending: Annotated[bool, typer.Option("--pending", help="Only scripts whose current text is not approved.")]
    = False,
) -> None:
    """Every script's standing: approved, pending (never approved, or edited since), rejected or revoked."""
    from anchor.cli.tables import Column, write_table
    from anchor.content import find_scripts, load_script
    from anchor.content.approvals import ApprovalBook, Standing

    app_settings = settings()
    book = ApprovalBook(read_log(app_settings).approvals())
    rows = []
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
        when = channel_time(decision.at, None, "minutes") if decision else ""
        rows.append((script.name, status.standing.value, who, when, "" if status.approved else status.reason()))
    report(problems)
    write_table([Column("script"), Column("standing", fold=False), Column("by"), Column("when", fold=False),
                 Column("why not")], rows, title=f"{len(rows)} scripts", caption="times in UTC")
    if pending and rows:
        err().print(f"{len(rows)} script{'s' * (len(rows) != 1)} not approved")
