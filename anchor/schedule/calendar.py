"""China's working days as the State Council moves them around the statutory holidays (调休).

Outpatient broadcasts follow the days the clinics are open, so a channel slot may say `days = "workdays"`,
`days = "holidays"` or `except = "holidays"`. Every day is exactly one of the two:

- **workday**: a Monday–Friday that is not a statutory day off, or a make-up working day (调休上班: a
  Saturday or Sunday the notice turns into a working day, e.g. 2026-02-14 and 2026-02-28).
- **holiday**: every other day, i.e. the days the clinics are closed: the statutory days off (法定节假日
  and the days joined to them in the notice, weekends inside a break included), ordinary Saturdays and
  Sundays, and the days an institution closes on its own (see `with_closed_days`).

So `is_holiday(day) == not is_workday(day)`. The narrower notions stay available: `is_statutory_holiday`
(listed as a day off in the notice), `is_makeup_workday`, and `kind`, which tells the five apart.

Where the dates come from, later ones winning:

1. the chinese-calendar package (State Council notices 2004 … 2026 in release 1.11.0);
2. calendar files: an institution files a year itself once the State Council publishes it (each
   November), because the package lags. A year in a file replaces the package's dates for that year;
3. a channel's own closed days (`with_closed_days`), which close even a make-up working day.

A year that neither the package nor a file holds is **uncovered**: `covered` says False,
`uncovered_years` and `uncovered_problems` list it, and the calendar then assumes Monday–Friday are
workdays and Saturday–Sunday are not (no statutory holidays, no make-up working days), which is what
`anchor check` should state.

Calendar file format (TOML, conventionally calendar/2027.toml; one file may hold several years):

    # 国务院办公厅关于2027年部分节假日安排的通知
    [year.2027]
    notice = "国办发明电〔2026〕…号"       # optional: where the dates come from, shown in messages
    holidays = [                          # every day off, weekends inside a break included
      2027-01-01,
      [2027-02-05, 2027-02-13],           # [first, last]: a break, both ends included
      [2027-10-01, 2027-10-07],
    ]
    workdays = [2027-02-20, 2027-10-09]   # make-up working days (调休上班): Saturdays or Sundays only

Dates are TOML dates (no quotes). A date filed under [year.2027] lies in 2027, or in the last week of
December 2026: the notice for a year may start its New Year's break, or the make-up day for it, then
(the 2019 notice gave 2018-12-30 and 12-31 off and made Saturday 2018-12-29 a working day).
Every mistake is an anchor.problems.Problem naming the file and line.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, TypeGuard

from anchor.problems import InputError, Problem
from anchor.tomlsource import TomlSource, read_text

PACKAGE = "chinese-calendar"
_PACKAGE_MODULE = "chinese_calendar"

UNCOVERED_ASSUMPTION = (
    "Monday–Friday are workdays and Saturday–Sunday are not (no statutory holidays, no make-up working days)"
)

# The longest break so far is 9 days (Spring Festival 2026, 02-15 … 02-23). A range much longer than
# that is a typo (a wrong month), which would otherwise silently close weeks of broadcasts.
_LONGEST_RANGE_DAYS = 14
# A notice's New Year's break (or its make-up day) may begin in the previous December, never earlier
# than the 29th so far: the last week leaves room and still catches a year typed wrong.
_EARLIEST_DECEMBER_DAY = 25
_FILE_KEYS = ("year",)
_YEAR_KEYS = ("holidays", "workdays", "notice")
_YEAR_NAME = re.compile(r"[1-9]\d{3}")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EXAMPLE = "[year.2027]\nholidays = [2027-01-01, [2027-02-05, 2027-02-13]]\nworkdays = [2027-02-20]"


class DayKind(Enum):
    """What a day is, for a broadcast schedule. `is_workday` splits them into workdays and holidays."""

    WORKDAY = "workday"  # Monday–Friday, no statutory day off
    MAKEUP_WORKDAY = "make-up workday"  # 调休上班: a Saturday or Sunday worked to lengthen a break
    STATUTORY_HOLIDAY = "statutory holiday"  # a day off in the State Council's notice
    WEEKEND = "weekend"  # an ordinary Saturday or Sunday
    CLOSED = "closed"  # a day the institution closes on its own

    @property
    def is_workday(self) -> bool:
        return self in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY)


@dataclass(frozen=True)
class PublishedYear:
    """One year's arrangement as a calendar file states it."""

    year: int
    holidays: frozenset[date]  # days off, weekends inside a break included
    workdays: frozenset[date]  # make-up working days, each a Saturday or Sunday
    file: Path
    line: int | None  # of its [year.YYYY] header
    notice: str = ""

    @property
    def source(self) -> str:
        return f"{self.file} ({self.notice})" if self.notice else str(self.file)


@dataclass(frozen=True)
class ChinaWorkCalendar:
    """Which days are workdays in China. Build it with `load_calendar`; the empty one only assumes."""

    statutory_holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    # covered year → where its dates come from; a year missing here is uncovered. Not mutated after build.
    sources: Mapping[int, str] = field(default_factory=dict)
    closed_days: frozenset[date] = frozenset()

    def kind(self, day: date) -> DayKind:
        _require_date(day)
        if day in self.closed_days:
            return DayKind.CLOSED
        if day in self.makeup_workdays:
            return DayKind.MAKEUP_WORKDAY
        if day in self.statutory_holidays:
            return DayKind.STATUTORY_HOLIDAY
        # Also the assumption for uncovered years: an ordinary week.
        return DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKDAY

    def is_workday(self, day: date) -> bool:
        """A weekday that is no statutory day off, or a make-up working day; never a closed day."""
        return self.kind(day).is_workday

    def is_holiday(self, day: date) -> bool:
        """A day the clinics are closed: statutory day off, ordinary weekend, or closed day."""
        return not self.kind(day).is_workday

    def is_statutory_holiday(self, day: date) -> bool:
        """Listed as a day off in the notice (which includes the weekends inside a break)."""
        _require_date(day)
        return day in self.statutory_holidays

    def is_makeup_workday(self, day: date) -> bool:
        _require_date(day)
        return day in self.makeup_workdays

    def covered(self, day: date) -> bool:
        """Whether published data (the package or a calendar file) holds the year of `day`."""
        _require_date(day)
        return day.year in self.sources

    def source_of(self, year: int) -> str | None:
        """Where a year's dates come from, e.g. "chinese-calendar 1.11.0" or "calendar/2027.toml"."""
        return self.sources.get(year)

    def uncovered_years(self, start: date, end: date) -> list[int]:
        """Years from `start` to `end` (both included) that no published data covers."""
        _require_date(start)
        _require_date(end)
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        return [year for year in range(start.year, end.year + 1) if year not in self.sources]

    def uncovered_problems(self, start: date, end: date, calendar_dir: Path) -> list[Problem]:
        """One warning per uncovered year, saying what the plan assumes and which file to add."""
        return [
            Problem(
                calendar_dir / f"{year}.toml", None,
                f"no published holiday calendar covers {year}: the plan assumes {UNCOVERED_ASSUMPTION}",
                f"once the State Council publishes {year}'s holidays (each November), write them in "
                f"{calendar_dir / f'{year}.toml'} as [year.{year}] holidays = […] workdays = […], "
                f"or upgrade {PACKAGE}",
                f"year.{year}", warning=True,
            )
            for year in self.uncovered_years(start, end)
        ]

    def with_closed_days(self, days: Iterable[date]) -> ChinaWorkCalendar:
        """This calendar plus days an institution closes on its own; this one stays as it was (shared)."""
        extra = frozenset(days)
        for day in extra:
            _require_date(day)
        return replace(self, closed_days=self.closed_days | extra)


def _require_date(day: date) -> None:
    # A datetime is a date to the type checker, but it never equals a date key, so it would silently
    # read as an ordinary week; and which local day a moment falls on is the caller's (channel zone's) call.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"expected a date, got {day!r}: pass the local day in the channel's timezone")


def load_calendar(files: Iterable[Path] = ()) -> ChinaWorkCalendar:
    """The package's years plus the calendar files' years; raises InputError listing every problem."""
    problems: list[Problem] = []
    filed: dict[int, PublishedYear] = {}
    for path in files:
        try:
            years = read_calendar_file(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        for published in years:
            first = filed.get(published.year)
            if first is not None:
                problems.append(Problem(
                    published.file, published.line, f"{published.year} is already filed in {first.file}",
                    f"keep each year in one file: remove one of the two [year.{published.year}] tables",
                    f"year.{published.year}"))
                continue
            filed[published.year] = published
    # A notice may reach into the previous December, so two years' files can state the same day.
    stated: dict[date, tuple[bool, PublishedYear]] = {}  # day → (is a day off, where it is filed)
    for published in filed.values():
        for day, is_off in [(d, True) for d in published.holidays] + [(d, False) for d in published.workdays]:
            earlier = stated.get(day)
            if earlier is not None and earlier[0] != is_off:
                off, on = (published, earlier[1]) if is_off else (earlier[1], published)
                problems.append(Problem(
                    published.file, published.line,
                    f"{day} is a holiday under [year.{off.year}] in {off.file} but a make-up workday under "
                    f"[year.{on.year}] in {on.file}",
                    "check both notices and keep the day in one list only", f"year.{published.year}"))
            stated[day] = (is_off, published)
    if problems:
        raise InputError(problems)

    package_holidays, package_workdays, package_years, package_name = _package_data()
    # A filed year replaces the package's dates of that year; a date filed under the next year (its
    # New Year's break reaching back into December) wins over the package too.
    holidays = {d for d in package_holidays if d.year not in filed and d not in stated}
    workdays = {d for d in package_workdays if d.year not in filed and d not in stated}
    holidays |= {d for d, (is_off, _) in stated.items() if is_off}
    workdays |= {d for d, (is_off, _) in stated.items() if not is_off}
    sources = {year: package_name for year in package_years}
    sources.update({year: published.source for year, published in filed.items()})
    return ChinaWorkCalendar(frozenset(holidays), frozenset(workdays), dict(sorted(sources.items())))


def _package_data() -> tuple[frozenset[date], frozenset[date], range, str]:
    """Days off, make-up working days, years covered, and name-version of the chinese-calendar package."""
    # Imported here so importing anchor stays cheap (the package builds its tables at import, ~6 ms), and
    # through importlib because it ships no type information: what we read from it is checked below.
    package: Any = importlib.import_module(_PACKAGE_MODULE)
    holidays = frozenset(d for d in package.holidays if isinstance(d, date))
    workdays = frozenset(d for d in package.workdays if isinstance(d, date))
    # The package raises outside the years of its holiday table and assumes nothing inside them.
    years = range(min(d.year for d in holidays), max(d.year for d in holidays) + 1)
    return holidays, workdays, years, f"{PACKAGE} {package.__version__}"


def read_calendar_file(path: Path) -> list[PublishedYear]:
    """The years one calendar file states; raises InputError listing every problem in it."""
    text = read_text(path)
    source = TomlSource(path, text)
    reader = _FileReader(source, text.splitlines())
    years = reader.read()
    if reader.problems:
        raise InputError(reader.problems)
    return years


class _FileReader:
    """Checks one parsed calendar file, collecting every problem so they can all be fixed at once."""

    def __init__(self, source: TomlSource, lines: list[str]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def problem(self, location: tuple[str | int, ...], message: str, hint: str, line: int | None = None) -> None:
        found = self.source.problem(location, message, hint)
        self.problems.append(replace(found, line=line) if line is not None else found)

    def read(self) -> list[PublishedYear]:
        data = self.source.data
        for key in data:
            if key not in _FILE_KEYS:
                self.problem((key,), f"unknown key '{key}'",
                             "a calendar file holds only [year.YYYY] tables, e.g. [year.2027]")
        tables = data.get("year")
        if not isinstance(tables, dict) or not tables:
            self.problem(("year",), "no [year.YYYY] table in this calendar file", f"write e.g.\n{_EXAMPLE}")
            return []
        years: list[PublishedYear] = []
        for name, table in tables.items():
            published = self.read_year(name, table)
            if published is not None:
                years.append(published)
        return years

    def read_year(self, name: str, table: object) -> PublishedYear | None:
        location: tuple[str | int, ...] = ("year", name)
        if not _YEAR_NAME.fullmatch(name):
            self.problem(location, f"[year.{name}] does not name a year", "write the year in four digits: [year.2027]")
            return None
        if not isinstance(table, dict):
            self.problem(location, f"year.{name} must be a table",
                         f"write [year.{name}] on its own line, then holidays = […] and workdays = […]")
            return None
        year = int(name)
        for key in table:
            if key not in _YEAR_KEYS:
                self.problem((*location, key), f"unknown key '{key}'", f"allowed keys here: {', '.join(_YEAR_KEYS)}")
        notice = table.get("notice", "")
        if not isinstance(notice, str):
            self.problem((*location, "notice"), "notice is text",
                         'write notice = "国办发明电〔2026〕…号" (with quotes)')
            notice = ""
        if "holidays" not in table:
            self.problem(location, f"missing required key 'holidays' in [year.{name}]",
                         f"add holidays = [{year}-01-01, …]: every day off in the State Council's notice")
        holidays = self.read_dates((*location, "holidays"), table.get("holidays", []), year)
        if table.get("holidays") == []:
            # A placeholder for a year not yet published would mark it covered and silence the warning
            # that the plan only assumes an ordinary week there.
            self.problem((*location, "holidays"), f"holidays of {year} is empty",
                         f"list the days off from the State Council's notice, or remove [year.{year}] until it "
                         "is published")
        workdays = self.read_dates((*location, "workdays"), table.get("workdays", []), year)
        for day, line in workdays.items():
            if day in holidays:
                self.problem((*location, "workdays"), f"{day} is listed both as a holiday and as a make-up workday",
                             "keep it in holidays if the notice gives the day off (放假), in workdays if it says "
                             "上班", line)
            elif day.weekday() < 5:
                self.problem((*location, "workdays"),
                             f"{day} is a {_WEEKDAY_NAMES[day.weekday()]}, a workday anyway: workdays lists only "
                             "the Saturdays and Sundays the notice makes working days (调休上班)",
                             "remove it, or check the date against the notice", line)
        line = self.source.line_of(location)
        return PublishedYear(year, frozenset(holidays), frozenset(workdays), self.source.path, line, notice)

    def read_dates(self, location: tuple[str | int, ...], value: object, year: int) -> dict[date, int | None]:
        """Each day a holidays/workdays list states, with the line it is written on."""
        list_name = str(location[-1])
        if not isinstance(value, list):
            self.problem(location, f"{list_name} is a list of dates",
                         f"write {list_name} = [{year}-01-01, [{year}-02-05, {year}-02-13]]")
            return {}
        days: dict[date, int | None] = {}
        earliest = date(year - 1, 12, _EARLIEST_DECEMBER_DAY)
        key_line = self.source.line_of(location)
        cursor = (key_line, 0) if key_line is not None else None
        for item in value:
            line, cursor = self.line_of_entry(key_line, cursor, item)
            stated = self.read_item(location, item, year, line)
            for day in stated:
                if not earliest <= day <= date(year, 12, 31):
                    self.problem(location, f"{day} is not in {year}, the year it is filed under",
                                 f"file it under [year.{day.year}], or correct the year; only a New Year's break "
                                 f"may reach back, into {earliest} … {year - 1}-12-31", line)
                    break
                days[day] = line
        return days

    def read_item(self, location: tuple[str | int, ...], item: object, year: int, line: int | None) -> list[date]:
        """The days of one list entry: a date, or a [first, last] range with both ends included."""
        if isinstance(item, list):
            if len(item) != 2 or not all(_plain_date(end) for end in item):
                self.problem(location, f"a range is two dates, [first, last]; got {_shown(item)}",
                             f"write e.g. [{year}-10-01, {year}-10-07]", line)
                return []
            first, last = item
            if first > last:
                self.problem(location, f"the range [{first}, {last}] ends before it starts",
                             f"write the first day first: [{last}, {first}]", line)
                return []
            length = (last - first).days + 1
            if length > _LONGEST_RANGE_DAYS:
                self.problem(location, f"the range [{first}, {last}] is {length} days long; no break has been "
                             f"longer than 9", "check the month of both ends against the notice", line)
                return []
            return [first + timedelta(days=n) for n in range(length)]
        if _plain_date(item):
            return [item]
        if isinstance(item, datetime):
            self.problem(location, f"{item.isoformat()} is a date-time; a day is a date alone",
                         f"write {item.date()}", line)
        elif isinstance(item, str) and _looks_like_date(item):
            self.problem(location, f'"{item}" is text, not a date', f"write dates without quotes: {item}", line)
        else:
            self.problem(location, f"{_shown(item)} is not a date",
                         f"write a date such as {year}-10-01, or a range [{year}-10-01, {year}-10-07]", line)
        return []

    def line_of_entry(self, key_line: int | None, cursor: tuple[int, int] | None,
                      entry: object) -> tuple[int | None, tuple[int, int] | None]:
        """The line an array entry starts on, and where to look for the next entry.

        tomllib gives no positions, so look for the entry's text after the previous entry's (a date may be
        written twice in one list, and ranges repeat dates); comments are skipped. Not found: the key's line.
        """
        parts = entry if isinstance(entry, list) and entry else [entry]
        line = None
        for part in parts:
            found = self.find_after(cursor, part)
            if found is None:
                return key_line, cursor
            if line is None:
                line = found[0]
            cursor = found
        return line, cursor

    def find_after(self, cursor: tuple[int, int] | None, value: object) -> tuple[int, int] | None:
        """Line and end column of the first `value` written after `cursor`, outside comments."""
        if cursor is None:
            return None
        written = value.isoformat() if isinstance(value, date) else _shown(value).strip('"')
        line, column = cursor
        while line <= len(self.lines):
            found = self.lines[line - 1].split("#", 1)[0].find(written, column)
            if found >= 0:
                return line, found + len(written)
            line, column = line + 1, 0
        return None


def _plain_date(value: object) -> TypeGuard[date]:
    return isinstance(value, date) and not isinstance(value, datetime)


def _looks_like_date(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _shown(value: object) -> str:
    """A value as it looks in TOML, for messages."""
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
