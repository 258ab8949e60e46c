"""Channel files (schedules/*.toml): one live room each, with its slots and blackouts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from anchor.clock import zone_name
from anchor.config import OutputRef, Settings
from anchor.problems import InputError, Problem
from anchor.schedule.calendar import ChinaWorkCalendar, load_calendar
from anchor.schedule.cron import EXAMPLE as CRON_EXAMPLE
from anchor.schedule.cron import CronError, CronSpec
from anchor.tomlsource import TomlSource, read_text, validation_problems
from anchor.wording import duration

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a duration: write e.g. \"90s\", \"5m\" or \"2h\"")
    return timedelta(seconds=float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)])


def _clock(text: str) -> time:
    m = _CLOCK.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a time of day: write e.g. \"10:00\"")
    return time(int(m.group(1)), int(m.group(2)))


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SlotModel(Model):
    name: str | None = None
    script: str | None = None
    rotate: list[str] | None = None
    cron: str | None = None
    at: datetime | None = None
    every: str | None = None
    between: list[str] | None = None
    from_: date | None = Field(None, alias="from")
    until: date | None = None
    except_: list[date] | Literal["holidays"] = Field(default_factory=list, alias="except")
    days: Literal["all", "workdays", "holidays"] = "all"  # China's working days, make-up days included
    priority: int = 0
    late: Literal["air", "skip"] = "air"
    grace: str = "5m"
    fallback: str | None = None  # airs instead when the slot's script is not approved (approval = "required")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                CronSpec.parse(v)
            except CronError as exc:
                raise ValueError(str(exc) if "write" in str(exc) else f"{exc}: write e.g. {CRON_EXAMPLE}") from None
        return v

    @field_validator("every", "grace")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None and parse_duration(v) <= timedelta(0):
            raise ValueError("must be longer than zero")
        return v

    @field_validator("between")
    @classmethod
    def _between(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if len(v) != 2:
                raise ValueError('between takes two times: between = ["10:00", "11:30"]')
            if _clock(v[0]) >= _clock(v[1]):
                raise ValueError(f"between starts at {v[0]} but ends earlier, at {v[1]}")
        return v

    @field_validator("rotate")
    @classmethod
    def _rotation(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError('rotate needs at least one script: rotate = ["a.md", "b.md"]')
        return v

    @model_validator(mode="after")
    def _one_of_each(self) -> SlotModel:
        if (self.script is None) == (self.rotate is None):
            raise ValueError('a slot needs exactly one of script = "health/x.md" or rotate = ["a.md", "b.md"]')
        whens = [k for k in ("cron", "at", "every") if getattr(self, k) is not None]
        if len(whens) != 1:
            raise ValueError('a slot needs exactly one of cron = "0 9 * * mon-fri", at = 2026-12-04T10:00:00+08:00, '
                             'or every = "30m" (with between = ["10:00", "11:30"])')
        if self.between is not None and self.every is None:
            raise ValueError("between goes with every")
        if self.from_ and self.until and self.from_ > self.until:
            raise ValueError(f"from {self.from_} is after until {self.until}")
        return self


class BlackoutModel(Model):
    from_: date = Field(alias="from")
    until: date
    reason: str = ""

    @model_validator(mode="after")
    def _order(self) -> BlackoutModel:
        if self.from_ > self.until:
            raise ValueError(f"blackout from {self.from_} is after until {self.until}")
        return self


class ChannelModel(Model):
    id: str
    name: str | None = None
    timezone: str
    language: str | None = None
    voice: str | None = None
    fallback_voice: str | None = None
    output: str | None = None
    avatar: str | None = None
    prerender_hours: float | None = Field(None, gt=0, le=168)
    approval: Literal["required", "none"] | None = None  # default: [channels] approval in anchor.toml
    closed: list[date] = Field(default_factory=list)  # the institution's own closed days (with days = …)
    keep_comment_days: int = Field(0, ge=0, le=3650)  # viewers' comment texts kept this long; 0: none

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError('id is lower-case letters, digits, - and _, e.g. id = "hospital-health"')
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return zone_name(v)


class ChannelFileModel(Model):
    channel: ChannelModel
    slot: list[SlotModel] = Field(min_length=1)
    blackout: list[BlackoutModel] = Field(default_factory=list)
    # Live rooms ([[room]] tables), checked against their platform's own settings by preflight.
    room: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class Slot:
    id: str  # stable across edits and reordering: the as-run log's key
    scripts: tuple[str, ...]  # one, or the rotation
    rotates: bool
    cron: CronSpec | None
    at: datetime | None
    every: timedelta | None
    window: tuple[time, time]
    first_day: date | None
    last_day: date | None
    skipped_days: frozenset[date]
    priority: int
    late: str
    grace: timedelta
    days: str = "all"  # "all", "workdays" or "holidays" (China's calendar)
    skip_holidays: bool = False  # except = "holidays"
    fallback: str | None = None


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    zone: ZoneInfo
    language: str
    voice: str | None
    fallback_voice: str | None
    output: OutputRef
    avatar: Path | None  # a folder of frames; None: the avatar anchor ships
    prerender_hours: float
    slots: tuple[Slot, ...]
    blackouts: tuple[tuple[date, date, str], ...]
    source: Path
    lines: dict[str, int | None]  # line of each [channel] key as written, for errors found later (preflight)
    approval_required: bool = False
    closed_days: frozenset[date] = frozenset()
    keep_comment_days: int = 0
    rooms: tuple[dict[str, Any], ...] = ()  # [[room]] tables as written; preflight checks them
    room_lines: tuple[int | None, ...] = ()
    # China's workdays with this channel's closed days; read only when a slot says days = or except = "holidays"
    calendar: ChinaWorkCalendar = field(default_factory=ChinaWorkCalendar)

    @property
    def uses_calendar(self) -> bool:
        return any(slot.days != "all" or slot.skip_holidays for slot in self.slots)

    def blacked_out(self, day: date) -> str | None:
        for first, last, reason in self.blackouts:
            if first <= day <= last:
                return reason or "blackout"
        return None


def _in_line_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def _slot_id(model: SlotModel) -> str:
    if model.name:
        return model.name
    if model.cron:
        return f"cron {model.cron}"
    if model.at:
        return f"at {model.at.isoformat()}"
    window = f" {model.between[0]}-{model.between[1]}" if model.between else ""
    return f"every {model.every}{window}"


def _script_problem(settings: Settings, name: str) -> str | None:
    """Why a script path is unusable, or None. It must stay inside scripts_content/."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return f"script path '{name}' must be relative to {settings.paths.scripts_dir}/ without '..'"
    root = settings.scripts_dir.resolve()
    target = (settings.scripts_dir / name).resolve()
    if not target.is_relative_to(root):
        return f"script path '{name}' leads outside {settings.paths.scripts_dir}/ (through a symlink)"
    if not target.is_file():
        return f"script '{name}' does not exist in {settings.paths.scripts_dir}/"
    return None


def _script_path_problems(source: TomlSource, settings: Settings) -> list[Problem]:
    """Every slot's script, rotation and fallback paths as written. Read from the TOML itself, not the validated
    model, so a missing script shows beside a bad cron or an unknown key of the same file, in one `anchor check`."""
    slots = source.data.get("slot")
    problems: list[Problem] = []
    for index, table in enumerate(slots if isinstance(slots, list) else []):
        if not isinstance(table, dict):
            continue
        for key in ("script", "rotate", "fallback"):
            value = table.get(key)
            names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            for name in names:
                why = _script_problem(settings, name) if isinstance(name, str) else None
                if why:
                    problems.append(source.problem(("slot", index, key), why,
                                                   'write a path such as "health/hypertension.md"'))
    return problems


CalendarSource = Callable[[], ChinaWorkCalendar]


def calendar_files(settings: Settings) -> list[Path]:
    """The institution's calendar files: every *.toml in calendar/."""
    folder = settings.calendar_dir
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def calendar_source(settings: Settings) -> CalendarSource:
    """China's calendar, read on first use and then kept: most schedules never need it. InputError on errors."""
    loaded: list[ChinaWorkCalendar] = []

    def get() -> ChinaWorkCalendar:
        if not loaded:
            loaded.append(load_calendar(calendar_files(settings)))
        return loaded[0]

    return get


def load_channel(path: Path, settings: Settings, now: datetime | None = None,
                 calendar: CalendarSource | None = None) -> tuple[Channel, list[Problem]]:
    """One channel file; raises InputError on errors, returns warnings beside the channel."""
    channel, problems = read_channel(path, settings, now, calendar)
    errors = [p for p in problems if not p.warning]
    if channel is None or errors:
        raise InputError(errors)
    return channel, problems


def read_channel(path: Path, settings: Settings, now: datetime | None = None,
                 calendar: CalendarSource | None = None) -> tuple[Channel | None, list[Problem]]:
    """One channel file: the channel as far as it can be read, errors or not (None when its keys do not
    validate), and every problem of the file in line order, warnings too. InputError if it cannot be parsed."""
    source = TomlSource(path, read_text(path))
    errors = _script_path_problems(source, settings)
    try:
        parsed = ChannelFileModel.model_validate(source.data)
    except ValidationError as exc:
        return None, _in_line_order(validation_problems(source, exc, ChannelFileModel) + errors)
    warnings: list[Problem] = []
    defaults = settings.channels
    zone = ZoneInfo(parsed.channel.timezone)
    try:
        output = OutputRef.parse(parsed.channel.output or defaults.output)
    except ValueError as exc:
        errors.append(source.problem(("channel", "output"), str(exc)))
        output = OutputRef("file")
    avatar_name = parsed.channel.avatar or defaults.avatar
    avatar = None if avatar_name == "default" else settings.resolve(Path(avatar_name))
    slots: list[Slot] = []
    seen: dict[str, int] = {}
    now = now or datetime.now(UTC)
    for index, model in enumerate(parsed.slot):
        names = [model.script] if model.script else list(model.rotate or [])
        slot_id = _slot_id(model)
        if slot_id in seen:
            errors.append(source.problem(("slot", index), f"two slots are both '{slot_id}'",
                                         "give one of them a distinct name = \"…\""))
        seen[slot_id] = index
        at = model.at
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=zone)  # a local date-time means the channel's own clock
        grace = parse_duration(model.grace)
        if at is not None and at + grace < now:  # within its grace it may still air late (catch-up)
            warnings.append(source.problem(("slot", index, "at"), f"{at.isoformat()} is in the past, beyond its grace "
                                           f"of {duration(grace)}: it will not air", warning=True))
        window = (_clock(model.between[0]), _clock(model.between[1])) if model.between else (time(0), time(23, 59, 59))
        slots.append(Slot(
            id=slot_id, scripts=tuple(names), rotates=model.rotate is not None,
            cron=CronSpec.parse(model.cron) if model.cron else None, at=at,
            every=parse_duration(model.every) if model.every else None, window=window,
            first_day=model.from_, last_day=model.until,
            skipped_days=frozenset(model.except_) if isinstance(model.except_, list) else frozenset(),
            priority=model.priority, late=model.late, grace=grace, days=model.days,
            skip_holidays=model.except_ == "holidays", fallback=model.fallback,
        ))
    work_calendar = ChinaWorkCalendar()
    if any(slot.days != "all" or slot.skip_holidays for slot in slots):
        try:
            work_calendar = (calendar or calendar_source(settings))().with_closed_days(parsed.channel.closed)
        except InputError as exc:  # the channel's days cannot be known: it keeps its last good copy
            errors.extend(exc.problems)
    elif parsed.channel.closed:
        warnings.append(source.problem(("channel", "closed"), "closed days only stop slots that follow China's "
                                       'calendar: no slot here says days = "workdays" or except = "holidays"',
                                       'add days = "workdays" to the slots that stop on closed days', warning=True))
    channel = Channel(
        id=parsed.channel.id, name=parsed.channel.name or parsed.channel.id, zone=zone,
        language=parsed.channel.language or settings.speech.language,
        voice=parsed.channel.voice or defaults.voice,
        fallback_voice=parsed.channel.fallback_voice or defaults.fallback_voice,
        output=output, avatar=avatar, prerender_hours=parsed.channel.prerender_hours or defaults.prerender_hours,
        slots=tuple(slots), blackouts=tuple((b.from_, b.until, b.reason) for b in parsed.blackout), source=path,
        lines={key: source.line_of(("channel", key)) for key in ("id", "output", "avatar", "language", "voice")},
        approval_required=(parsed.channel.approval or defaults.approval) == "required",
        closed_days=frozenset(parsed.channel.closed), keep_comment_days=parsed.channel.keep_comment_days,
        rooms=tuple(parsed.room), room_lines=tuple(source.line_of(("room", i)) for i in range(len(parsed.room))),
        calendar=work_calendar,
    )
    return channel, _in_line_order(errors + warnings)


@dataclass(frozen=True)
class ChannelFile:
    """One file under schedules/ as read: its channel, or None when it has errors; its problems either way."""

    path: Path
    channel: Channel | None
    problems: list[Problem]
    # The channel as far as a file with errors could be read, so `anchor check` can check its output, avatar
    # and rooms too; never aired.
    draft: Channel | None = None


def read_channel_files(settings: Settings, now: datetime | None = None) -> list[ChannelFile]:
    """Every *.toml under schedules/, each standing alone; a second file with an id already used is an error."""
    folder = settings.schedules_dir
    if not folder.is_dir():
        raise InputError([Problem(settings.source or Path("anchor.toml"), None,
                                  f"schedules folder {folder} does not exist", "create it or set paths.schedules_dir",
                                  "paths.schedules_dir")])
    found: list[ChannelFile] = []
    first_file: dict[str, Path] = {}
    calendar = calendar_source(settings)
    for path in sorted(folder.glob("*.toml")):
        try:
            channel, problems = read_channel(path, settings, now, calendar)
        except InputError as exc:
            found.append(ChannelFile(path, None, list(exc.problems)))
            continue
        if channel is None or any(not p.warning for p in problems):
            found.append(ChannelFile(path, None, problems, channel))
            continue
        if channel.id in first_file:
            found.append(ChannelFile(path, None, [Problem(
                path, channel.lines["id"], f"channel id '{channel.id}' is already used by {first_file[channel.id]}",
                "every channel file needs its own id", "channel.id")], channel))
            continue
        first_file[channel.id] = path
        found.append(ChannelFile(path, channel, problems))
    return found


def load_channels(settings: Settings, now: datetime | None = None) -> tuple[list[Channel], list[Problem]]:
    """Every channel under schedules/; raises InputError listing every problem when any file has an error."""
    files = read_channel_files(settings, now)
    problems = [p for f in files for p in f.problems]
    if any(not p.warning for p in problems):
        raise InputError(problems)
    return [f.channel for f in files if f.channel is not None], problems
