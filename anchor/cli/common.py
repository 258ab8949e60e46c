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

from anchor.clock import read_time, shown_time
from anchor.problems import InputError, Problem

# Options several commands share, spelled once.
OnlyChannel = Annotated[str | None, typer.Option("--channel", help="Only this channel id.")]
PlannedSince = Annotated[str | None, typer.Option(
    "--since", help="Airings planned from then on: today, yesterday, 7d, 12h, a date or an ISO date-time (without an "
                    "offset: the --channel's clock, else [daemon] timezone).")]
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
    _Formatter.zone = loaded.daemon.zone  # log lines on the institution's clock
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
    since_instant = parse_instant(since, "--since", reading_zone(app_settings, channel))
    return app_settings, read_log(app_settings).history(channel, since_instant)


def channels(settings: Settings) -> list[Channel]:
    """Every channel, checked; warnings printed, InputError (exit 2) on errors."""
    from anchor.preflight import checked_channels

    found, warnings = checked_channels(settings)
    report(warnings)
    return found


class ChannelZones(dict[str, tzinfo]):
    """Each channel's timezone by id; a channel no file names (an old row of the as-run log) is on the
    institution's clock ([daemon] timezone)."""

    def __init__(self, zones: dict[str, tzinfo], institution: tzinfo) -> None:
        super().__init__(zones)
        self.institution = institution

    def __missing__(self, channel: str) -> tzinfo:
        return self.institution


def channel_zones(settings: Settings) -> ChannelZones:
    """Each channel's timezone, from the channel files that load; for showing times in channel time."""
    from anchor.schedule.channel import read_channel_files

    try:
        files = read_channel_files(settings)
    except InputError:
        return ChannelZones({}, settings.daemon.zone)
    return ChannelZones({f.channel.id: f.channel.zone for f in files if f.channel is not None}, settings.daemon.zone)


def reading_zone(settings: Settings, channel: str | None) -> tzinfo:
    """The clock a time written without an offset is read on: the channel's when one is named, else the
    institution's ([daemon] timezone); never this machine's."""
    return channel_zones(settings)[channel] if channel else settings.daemon.zone


def channel_time(instant: datetime, zone: tzinfo, timespec: str = "seconds", with_date: bool = True) -> str:
    """The one way a person is shown a time (anchor.clock.shown_time): the channel's own clock — or the
    institution's for a time tied to no channel — labelled with its UTC offset, e.g. 2026-12-04 10:00:00+08:00."""
    return shown_time(instant, zone, timespec, with_date)


def parse_instant(text: str | None, option: str, zone: tzinfo) -> datetime | None:
    """The one reading of a time an option takes (anchor.clock.read_time): today, yesterday, 7d, 12h, a date or an
    ISO date-time; without an offset, on `zone`'s clock (see reading_zone). BadInput naming the option."""
    if text is None:
        return None
    try:
        return read_time(text, zone, datetime.now(UTC))
    except ValueError as exc:
        raise BadInput(f"{option} {exc}") from None


class _Formatter(logging.Formatter):
    zone: tzinfo = UTC  # the institution's clock once the settings are read (see settings())

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # The institution's clock, labelled with its offset, to the millisecond.
        return shown_time(datetime.fromtimestamp(record.created, UTC), self.zone, "milliseconds")


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
