"""`anchor audit …`: verify the as-run log's seal chain, export a period signed, verify an export offline, and
the monthly broadcast report. Each command imports what it needs (the store, cryptography, fpdf2) when it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from anchor.cli.common import (
    BadInput,
    Failed,
    OnlyChannel,
    channel_time,
    channel_zones,
    escape,
    out,
    parse_instant,
    reading_zone,
    settings,
)
from anchor.wording import count

audit_app = typer.Typer(no_args_is_help=True, help="Audit the as-run log: verify its seal chain, export a period "
                                                    "signed, verify an export offline, the monthly report.")


@contextmanager
def _audit_errors() -> Iterator[None]:
    from sqlalchemy.exc import SQLAlchemyError

    from anchor.audit import AuditError
    from anchor.credentials import CredentialError

    try:
        yield
    except (AuditError, CredentialError) as exc:
        raise Failed(str(exc)) from None
    except SQLAlchemyError as exc:  # the database went away mid-way
        reason = getattr(exc, "orig", None) or exc
        raise Failed(f"the as-run log could not be read: {exc.__class__.__name__}: {reason}") from None


@audit_app.command()
def verify(
    every: Annotated[bool, typer.Option("--all", help="List every problem, not only the first.")] = False,
) -> None:
    """Walk the seal chain: name the first row edited, deleted or inserted behind the daemon's back (exit 1)."""
    from anchor.audit.verify import verify_chain

    app_settings = settings()
    with _audit_errors():
        report = verify_chain(app_settings.database_url)
    first = report.first()
    if first is not None:
        zones = channel_zones(app_settings)

        def shown(instant: datetime, channel: str) -> str:
            return channel_time(instant, zones[channel])

        if every:
            for problem in report.problems:
                out().print(escape(problem.message(shown)), highlight=False, soft_wrap=True)
        more = len(report.problems) - 1
        raise Failed(first.message(shown) + (f" ({count(more, 'more problem', 'more problems')} after it: "
                                             "--all lists them)" if more and not every else ""))
    tail = f", ending at seal {report.last_seal[:16]}… (seq {report.last_seq})" if report.links else ""
    on_air = f"; {count(report.on_air, 'airing')} still on air, sealed when they end" if report.on_air else ""
    out().print(f"the seal chain is intact: {count(report.verified, 'row')} verified "
                f"({count(report.rows['airing'], 'airing')}, {count(report.rows['approval'], 'approval')}) against "
                f"{count(report.links, 'link')}{tail}{on_air}", highlight=False, soft_wrap=True)


@audit_app.command()
def export(
    start: Annotated[str, typer.Option("--from", help="Airings planned from then on: a date, an ISO date-time, today, "
                                                      "yesterday, 7d… (without an offset: the --channel's clock, "
                                                      "else [daemon] timezone).")],
    end: Annotated[str, typer.Option("--to", help="Airings planned before then (the same forms).")],
    folder: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the export.")],
    channel: OnlyChannel = None,
) -> None:
    """Export a period's airings, the approvals they aired under and their seals, signed (manifest.sig)."""
    from anchor.audit.export import export_period, signing_key

    app_settings = settings()
    zone = reading_zone(app_settings, channel)
    begins, ends = parse_instant(start, "--from", zone), parse_instant(end, "--to", zone)
    assert begins is not None and ends is not None
    if begins >= ends:
        raise BadInput(f"--from {start} is not before --to {end}")
    with _audit_errors():
        key = signing_key()  # before any work: a missing key is said at once
        done = export_period(app_settings.database_url, begins, ends, channel, folder, key, app_settings.data_dir)
    counts = done.counts
    out().print(f"exported {count(counts['airings'], 'airing')}, {count(counts['approvals'], 'approval')} and "
                f"{count(counts['seals'], 'link')} "
                f"to {escape(str(folder))} (evidence named for {counts['evidence_named']}, "
                f"{counts['evidence_kept']} kept); signed with key "
                f"{done.manifest['signing_key']['public_key_sha256'][:16]}…", highlight=False, soft_wrap=True)
    if counts["left_out_on_air"]:
        left = counts["left_out_on_air"]
        out().print(f"{count(left, 'airing')} still on air {'was' if left == 1 else 'were'} left out", highlight=False,
                    soft_wrap=True)


@audit_app.command("verify-export")
def verify_export(
    folder: Annotated[Path, typer.Argument(help="The export's folder.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The institution's public key (PEM).")],
) -> None:
    """Check an export offline: its signature, every file's SHA-256, every digest and link recomputed."""
    from anchor.audit import AuditError
    from anchor.audit.export import load_public_key
    from anchor.audit.export import verify_export as check

    try:
        key = load_public_key(public_key.read_bytes(), str(public_key))
    except OSError as exc:
        raise BadInput(f"cannot read the public key {public_key}: {exc.strerror}") from None
    except AuditError as exc:
        raise BadInput(str(exc)) from None
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder")
    with _audit_errors():
        done = check(folder, key, str(public_key))
    chain = (f"{count(done.links, 'link')} ending at seal {done.last_seal[:16]}… (seq {done.last_seq})" if done.links
             else "no links (nothing sealed in the period)")
    out().print(f"export verified: manifest.json signed by {escape(str(public_key))} ({done.key_id[:16]}…), "
                f"the SHA-256 of {count(done.files - 1, 'file')} as signed, {count(done.rows['airing'], 'airing')} and "
                f"{count(done.rows['approval'], 'approval')} recomputed against {chain}", highlight=False,
                soft_wrap=True)


@audit_app.command()
def report(
    month: Annotated[str, typer.Option(help="The month, e.g. 2026-12 (each channel's own clock).")],
    file: Annotated[Path, typer.Option("--out", help="The PDF to write.")],
    channel: OnlyChannel = None,
) -> None:
    """The monthly broadcast report per channel, as a PDF: airings, minutes, reasons, approvals, audience."""
    from anchor.audit.report import gather, parse_month, write_pdf

    try:
        year, number = parse_month(month)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if file.suffix.lower() != ".pdf":
        raise BadInput(f"--out {file}: the report is a PDF; name it e.g. report-{month}.pdf")
    app_settings = settings()
    with _audit_errors():
        found = gather(app_settings.database_url, year, number, channel_zones(app_settings), app_settings.daemon.zone,
                       channel)
        write_pdf(found, file)
    planned = sum(c.planned for c in found.channels)
    out().print(f"wrote {escape(str(file))}: {found.label}, {count(len(found.channels), 'channel')}, "
                f"{count(planned, 'airing')}, {count(len(found.approvals), 'approval action')}", highlight=False,
                soft_wrap=True)
