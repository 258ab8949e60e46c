"""What can only be checked against the backends: the one place `anchor check`, every other command and the
daemon (at start and on reload) ask whether the inputs name engines, outputs, OBS connections and avatars
that exist. The input stage (config, schedule) knows no backend; this module knows them all.
"""

from __future__ import annotations

import dataclasses
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from anchor.config import Settings
from anchor.outputs import OUTPUTS
from anchor.problems import InputError, Problem
from anchor.registry import Registry
from anchor.speech.engines import ENGINES
from anchor.tomlsource import TomlSource, read_text, validation_problems

# Every command checks its settings here, and most read no channel: the channel files, avatars, fonts and ports
# are imported by the checks that use them (they are a fifth of `anchor say`'s start-up).
if TYPE_CHECKING:
    from anchor.schedule.channel import Channel, ChannelFile


def settings_problems(settings: Settings) -> list[Problem]:
    """anchor.toml's engine chain and its [speech.engines.X] / [outputs.X] tables, each checked by its backend."""
    if settings.source is None:
        return []
    source = TomlSource(settings.source, read_text(settings.source))
    problems: list[Problem] = []
    for name in settings.speech.chain.engines:
        if name not in ENGINES.names():
            problems.append(source.problem(("speech", "chain", "engines"), f"unknown engine '{name}'",
                                           f"choose from: {', '.join(ENGINES.names())}"))
    problems += _backend_tables(source, settings.speech.engines, ("speech", "engines"), "engine", ENGINES)
    problems += _backend_tables(source, settings.outputs, ("outputs",), "output", OUTPUTS)
    return problems


def _backend_tables(source: TomlSource, tables: dict[str, dict[str, Any]], location: tuple[str, ...],
                    kind: str, registry: Registry[Any]) -> list[Problem]:
    problems: list[Problem] = []
    known = registry.names()
    for name, table in tables.items():
        if name not in known:
            problems.append(source.problem((*location, name), f"unknown {kind} '{name}'",
                                           f"{kind} tables are: {', '.join(known)}"))
            continue
        model = registry.get(name).Settings
        try:
            model.model_validate(table)
        except ValidationError as exc:
            problems.extend(validation_problems(source, exc, model, (*location, name)))
    return problems


def room_problems(channel: Channel) -> list[Problem]:
    """Each [[room]] table against its platform's own settings, and its secrets set (building the source
    reads them; nothing connects)."""
    from anchor.audience.rooms import build_room
    from anchor.audience.sources import SOURCES, SourceError

    problems: list[Problem] = []
    names: set[str] = set()
    for index, (table, line) in enumerate(zip(channel.rooms, channel.room_lines, strict=True)):
        platform = table.get("platform")
        if platform not in SOURCES.names():
            problems.append(Problem(channel.source, line, f"room {index + 1}: unknown platform {platform!r}",
                                    f"write platform = one of: {', '.join(SOURCES.names())}", "room.platform"))
            continue
        name = str(table.get("name") or platform)
        if name in names:
            problems.append(Problem(channel.source, line, f"two rooms are both '{name}'",
                                    'give one of them a distinct name = "…"', "room.name"))
        names.add(name)
        try:
            build_room(channel, table)
        except ValidationError as exc:
            for item in exc.errors():
                where = ".".join(str(part) for part in item["loc"])
                problems.append(Problem(channel.source, line, f"room {name}: {where}: {item['msg']}",
                                        key=f"room.{where}"))
        except (SourceError, ValueError) as exc:
            problems.append(Problem(channel.source, line, f"room {name}: {exc}", key="room"))
    return problems


def channel_problems(settings: Settings, channel: Channel) -> list[Problem]:
    """A channel's output, avatar and rooms: the output kind exists, an OBS target is declared, the frames
    load. A room its platform does not accept is a warning here (the channel airs without it); `anchor
    check` reports it as the error it is."""
    problems: list[Problem] = [dataclasses.replace(p, warning=True, message=f"{p.message}; the channel airs "
                                                   "without this room")
                               for p in (room_problems(channel) if channel.rooms else [])]
    ref = channel.output
    if ref.kind not in OUTPUTS.names():
        problems.append(Problem(channel.source, channel.lines.get("output"), f"unknown output '{ref}'",
                                f"choose from: {', '.join(OUTPUTS.names())}", "channel.output"))
    elif ref.kind == "obs" and ref.target not in settings.obs:
        known = ", ".join(f"obs:{n}" for n in settings.obs) or "none yet: add an [obs.NAME] table to anchor.toml"
        problems.append(Problem(channel.source, channel.lines.get("output"), f"no OBS connection named "
                                f"'{ref.target}'", f"declared connections: {known}", "channel.output"))
    if channel.avatar is not None:
        from anchor.avatar.face import load_avatar

        try:
            load_avatar(channel.avatar)
        except InputError as exc:  # it airs without its avatar (a still background), so a warning
            problems.extend(Problem(channel.source, channel.lines.get("avatar"), f"{p}; until fixed, the channel "
                                    "airs its audio over the plain background",
                                    'write avatar = "default" or a folder of mouth_closed/half/open.png and '
                                    "blink.png (see README)", "channel.avatar", warning=True) for p in exc.problems)
    return problems


def readiness_problems(settings: Settings, channels: list[Channel]) -> list[Problem]:
    """What this machine lacks that would make airings fail or step down, found before air time: ffmpeg,
    the offline voice, the fonts the outputs draw text with. Blocking (it runs fc-list): call it in a thread."""
    where = settings.source or Path("anchor.toml")
    problems: list[Problem] = []
    if shutil.which("ffmpeg") is None:
        problems.append(Problem(where, None, "ffmpeg is not installed: no program can be rendered, nothing airs",
                                "apt-get install ffmpeg"))
    if "espeak" in settings.speech.chain.engines:
        binary = str(settings.speech.engines.get("espeak", {}).get("binary", "espeak-ng"))
        if shutil.which(binary) is None:
            problems.append(Problem(where, None, f"the offline voice ({binary}) is not installed: when the cloud "
                                    "voice fails, airings fail", "apt-get install espeak-ng", warning=True))
    from anchor.avatar.fonts import font_installed

    kinds = sorted({c.output.kind for c in channels} & set(OUTPUTS.names()))
    for kind in kinds:
        font = getattr(OUTPUTS.get(kind).settings_from(settings), "font", None)
        if font and not font_installed(font):
            problems.append(Problem(where, None, f"font '{font}' of [outputs.{kind}] is not installed: its airings "
                                    "go out without the lower third and subtitles (a still picture on the file "
                                    "output)", "apt-get install fonts-wqy-microhei, or set font to one "
                                    "`fc-list :lang=zh family` lists", f"outputs.{kind}.font", warning=True))
    return problems


DAEMON_PORTS = ("metrics_port", "http_port")  # settings of [daemon]; each has its *_host beside it


def port_problems(settings: Settings) -> list[Problem]:
    """The daemon's ports another program holds (or this PC cannot listen on), each naming the setting that
    moves it. Blocking (it reads /proc): call it in a thread."""
    from anchor.ports import probe

    problems = []
    for setting in DAEMON_PORTS:
        host, port = getattr(settings.daemon, setting.replace("port", "host")), getattr(settings.daemon, setting)
        error = probe(host, port) if port else None  # 0: the system chooses a free one
        if error is not None:
            problems.append(port_problem(settings, setting, error))
    return problems


def port_problem(settings: Settings, setting: str, error: OSError) -> Problem:
    """One line for a [daemon] port that cannot be listened on: by whom it is held (as far as this PC tells),
    and the setting and file that move it. Blocking (it reads /proc)."""
    from anchor.ports import in_use, listener

    host_setting = setting.replace("port", "host")
    host, port = getattr(settings.daemon, host_setting), getattr(settings.daemon, setting)
    source = settings.source or Path("anchor.toml")
    try:
        line = TomlSource(source, read_text(source)).line_of(("daemon", setting))
    except InputError:
        line = None
    if in_use(error):
        return Problem(source, line, f"port {port} on {host} is already in use by {listener(port)}",
                       f"stop it, or set [daemon] {setting} to a free port in {source.resolve()}", f"daemon.{setting}")
    return Problem(source, line, f"cannot listen on {host}:{port}: {error.strerror or error}",
                   f"set [daemon] {setting} or {host_setting} in {source.resolve()}", f"daemon.{setting}")


def checked_settings(settings: Settings) -> Settings:
    """`settings`, or InputError naming every backend problem in anchor.toml."""
    problems = settings_problems(settings)
    if problems:
        raise InputError(problems)
    return settings


def checked_channel_files(settings: Settings) -> list[ChannelFile]:
    """Every channel file, checked against the backends too: a channel with a backend problem is dropped
    from its file's result, with the problems beside it."""
    from anchor.schedule.channel import ChannelFile, read_channel_files

    checked = []
    for found in read_channel_files(settings):
        read = found.channel or found.draft  # a file with errors is checked as far as it could be read
        if read is None:
            checked.append(found)
            continue
        problems = channel_problems(settings, read)
        errors = [p for p in problems if not p.warning]
        checked.append(ChannelFile(found.path, None if errors else found.channel, [*found.problems, *problems],
                                   found.draft))
    return checked


def checked_channels(settings: Settings) -> tuple[list[Channel], list[Problem]]:
    """Every channel, checked against the backends: (channels, warnings), or InputError listing every problem
    of every file."""
    files = checked_channel_files(settings)
    problems = [p for f in files for p in f.problems]
    if any(not p.warning for p in problems):
        raise InputError(problems)
    return [f.channel for f in files if f.channel is not None], problems


CALENDAR_NOTICE = timedelta(days=31)  # `anchor check` looks this far ahead: a month to file a new year's notice


def calendar_problems(settings: Settings, channels: list[Channel], start: datetime, end: datetime) -> list[Problem]:
    """Warnings for the years of [start, end) no published holiday calendar covers, on channels that follow
    China's calendar, each saying what the plan assumes there and which file to write."""
    problems: list[Problem] = []
    for channel in channels:
        if channel.uses_calendar:
            first, last = start.astimezone(channel.zone).date(), end.astimezone(channel.zone).date()
            problems += channel.calendar.uncovered_problems(first, last, settings.calendar_dir)
    return list(dict.fromkeys(problems))


def lexicon_problems(settings: Settings) -> list[Problem]:
    """lexicon.toml's entries, each error with its line. No file is fine: the built-in readings apply."""
    if not settings.lexicon.is_file():
        return []
    from anchor.speech.frontend.lexicon import load_lexicon  # pypinyin's dictionaries: only when there is one

    try:
        load_lexicon(settings.lexicon)
    except InputError as exc:
        return list(exc.problems)
    return []


def permission_problems(settings: Settings) -> list[Problem]:
    """Folders of what airs that every user of the PC may write to: anyone could then change what goes on air.
    Warnings; under systemd the daemon refuses them (see anchor.daemon). Blocking (a walk): use a thread."""
    problems = []
    for folder, key in ((settings.schedules_dir, "paths.schedules_dir"), (settings.scripts_dir, "paths.scripts_dir")):
        if not folder.is_dir():
            continue
        for place in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            try:
                mode = place.stat().st_mode
            except OSError:
                continue
            if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
                problems.append(Problem(place, None, "every user of this PC may change the files here, and so "
                                        "what goes on air", f"chmod o-w '{place}'", key, warning=True))
    return problems
