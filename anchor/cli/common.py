"""What every command shares: the options, the consoles, loading the settings and channels, reporting
problems, and the one rule that bad input exits 2 with file:line and no traceback (raise BadInput or
InputError; main() turns either into that)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anchor.clock import as_utc
from anchor.problems import InputError, Problem

# Options several commands share, spelled once.
OnlyChannel = Annotated[str | None, typer.Option("--channel", help="Only this channel id.")]
PlannedSince = Annotated[str | None, typer.Option("--since", help="ISO date-time: airings planned from then on.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print CSV for a spreadsheet.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (times ISO 8601 with their UTC offset).")]

if TYPE_CHECKING:  # rich and the settings models load with the first command that needs them
    from rich.console import Console

    from anchor.config import Settings
    from anchor.logview import AsRunReading
    from anchor.schedule.channel import Channel

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
DEFAULT_CONFIG = Path("anchor.toml")


class BadInput(Exception):
    """A command-line argument that cannot be used; the message says what to write instead."""


class Failed(Exception):
    """The command ran but did not do what was asked (exit 1); the message says why."""


class Options:
    config: Path = DEFAULT_CONFIG
    verbose: bool = False
    lasting: bool = False  # the daemon: it stops the interpreter's usual way (see anchor.cli.main)


_consoles: dict[str, Console] = {}


def out() -> Console:
    if "out" not in _consoles:
        from rich.console import Console

        _consoles["out"] = Console()
    return _consoles["out"]


def err() -> Console:
    if "err" not in _consoles:
        from rich.console import Console

        _consoles["err"] = Console(stderr=True, soft_wrap=True)  # report() folds, between words
    return _consoles["err"]


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def report(problems: list[Problem]) -> None:
    """Each problem on stderr, starting `error:` or `warning:`; a long one folds between words onto indented
    lines, to the terminal's width (COLUMNS, or 80 when piped) — but the daemon's: one problem, one line of
    the journal."""
    from anchor.cli.tables import fold

    console = err()
    width = sys.maxsize if Options.lasting else console.width
    for problem in dict.fromkeys(problems):  # a calendar file's error reaches every channel that uses it
        label, style = ("warning", "yellow") if problem.warning else ("error", "red")
        first, *rest = fold(f"{label}: {problem}", width, "    ")
        console.print(f"[{style}]{label}[/]{escape(first[len(label):])}", highlight=False)
        for line in rest:
            console.print(escape(line), highlight=False)


def settings() -> Settings:
    """anchor.toml, checked against the backends too; InputError (exit 2) when it has problems."""
    from anchor.config import load_settings
    from anchor.preflight import checked_settings

    loaded = checked_settings(load_settings(Options.config))
    logging.getLogger().setLevel(logging.DEBUG if Options.verbose else loaded.log.level)
    return loaded


def read_log(settings: Settings) -> AsRunReading:
    """The as-run log, to read: with the database's own driver (anchor.logview), which spares a command the half
    second of loading SQLAlchemy; through anchor.store for a URL only it opens (and names what is wrong with)."""
    from anchor.logview import open_log_view

    view = open_log_view(settings.database_url)
    if view is not None:
        return view
    from anchor.store import open_store

    return open_store(settings.database_url)


def logged_airings(channel: str | None, since: str | None) -> tuple[Settings, Sequence[Any]]:
    """The settings and the as-run log's rows, for the commands that read it (--channel, --since)."""
    app_settings = settings()
    return app_settings, read_log(app_settings).history(channel, parse_instant(since, "--since"))


def channels(settings: Settings) -> list[Channel]:
    """Every channel, checked; warnings printed, InputError (exit 2) on errors."""
    from anchor.preflight import checked_channels

    found, warnings = checked_channels(settings)
    report(warnings)
    return found


def channel_zones(settings: Settings) -> dict[str, tzinfo]:
    """Each channel's timezone, from the channel files that load; for showing times in channel time."""
    from anchor.schedule.channel import read_channel_files

    try:
        files = read_channel_files(settings)
    except InputError:
        return {}
    return {f.channel.id: f.channel.zone for f in files if f.channel is not None}


def channel_time(instant: datetime, zone: tzinfo | None, timespec: str = "seconds", with_date: bool = True) -> str:
    """The one way a person is shown a time: the channel's own clock, labelled with its UTC offset
    (UTC when the channel is unknown), e.g. 2026-12-04 10:00:00+08:00 (or 10:00:00+08:00 without the date)."""
    text = as_utc(instant).astimezone(zone or UTC).isoformat(sep=" ", timespec=timespec)
    return text if with_date else text.split(" ", 1)[1]


def parse_instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option} {text} is not an ISO date-time; write e.g. 2026-12-04T09:00+08:00") from None
    return value if value.tzinfo else value.astimezone()  # a bare time means this machine's clock


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # This machine's clock, labelled with its offset, to the millisecond.
        return datetime.fromtimestamp(record.created).astimezone().isoformat(sep=" ", timespec="milliseconds")


def setup_logging(verbose: bool) -> None:
    """Every line with its time: journald adds its own, so under it (JOURNAL_STREAM) the line goes without."""
    handler = logging.StreamHandler(sys.stderr)
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    form = "%(levelname)s %(name)s: %(message)s"
    if not under_journald:
        form = "%(asctime)s " + form
    handler.setFormatter(_Formatter(form))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every job run at INFO
