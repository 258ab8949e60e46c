"""China's working-day calendar: the real 2026 arrangement, years filed by an institution, file errors
that name file:line, uncovered years and what is assumed there, and a channel's own closed days."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from anchor.problems import InputError
from anchor.schedule.calendar import (
    UNCOVERED_ASSUMPTION,
    ChinaWorkCalendar,
    DayKind,
    load_calendar,
)

# Dated: China's calendar data ends at a year; `make test` runs these again with the clock a year ahead.
pytestmark = pytest.mark.dated

# Made up for the tests, shaped like a real notice (Spring Festival 2027 is Saturday 02-06); it is not
# the State Council's 2027 arrangement.
TEST_2027 = """\
# test-made, not the published 2027 notice
[year.2027]
notice = "测试用"
holidays = [
  2027-01-01,
  [2027-02-05, 2027-02-13],
  [2027-10-01, 2027-10-07],
]
workdays = [
  2027-02-20,
  2027-10-09,
]
"""


@pytest.fixture(scope="module")
def calendar() -> ChinaWorkCalendar:
    return load_calendar()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_calendar(paths)
    return [str(problem) for problem in caught.value.problems]


# --- the real 2026 calendar, from the package -------------------------------------------------------

def test_2026_make_up_saturday_is_a_workday(calendar: ChinaWorkCalendar) -> None:
    day = date(2026, 2, 28)
    assert day.weekday() == 5
    assert calendar.is_workday(day)
    assert not calendar.is_holiday(day)
    assert calendar.kind(day) is DayKind.MAKEUP_WORKDAY


def test_2026_national_day_monday_is_not_a_workday(calendar: ChinaWorkCalendar) -> None:
    day = date(2026, 10, 5)
    assert day.weekday() == 0
    assert not calendar.is_workday(day)
    assert calendar.is_holiday(day)
    assert calendar.is_statutory_holiday(day)


def test_2026_ordinary_wednesday_and_sunday(calendar: ChinaWorkCalendar) -> None:
    wednesday, sunday = date(2026, 3, 11), date(2026, 3, 15)
    assert calendar.kind(wednesday) is DayKind.WORKDAY and calendar.is_workday(wednesday)
    assert calendar.kind(sunday) is DayKind.WEEKEND and calendar.is_holiday(sunday)
    assert not calendar.is_statutory_holiday(sunday)


@pytest.mark.parametrize("day", [date(2026, 2, 14), date(2026, 10, 10)])
def test_2026_make_up_workdays(calendar: ChinaWorkCalendar, day: date) -> None:
    assert day.weekday() == 5
    assert calendar.is_makeup_workday(day)
    assert calendar.is_workday(day)


def test_a_weekend_inside_a_break_is_a_statutory_holiday(calendar: ChinaWorkCalendar) -> None:
    day = date(2026, 10, 3)  # Saturday inside the National Day break
    assert calendar.kind(day) is DayKind.STATUTORY_HOLIDAY


def test_every_day_the_package_knows_agrees_with_the_package(calendar: ChinaWorkCalendar) -> None:
    day, last = date(2004, 1, 1), date(2026, 12, 31)
    while day <= last:
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
        assert calendar.is_holiday(day) != calendar.is_workday(day), day
        assert calendar.covered(day)
        day += timedelta(days=1)
    assert calendar.source_of(2026) == f"chinese-calendar {chinese_calendar.__version__}"


# --- years filed by the institution ------------------------------------------------------------------

def test_a_filed_year_is_used_and_its_make_up_days_count(tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 2, 20))  # the package does not know 2027
    path = write(tmp_path, "2027.toml", TEST_2027)
    calendar = load_calendar([path])
    assert calendar.covered(date(2027, 6, 1))
    assert calendar.source_of(2027) == f"{path} (测试用)"
    assert calendar.kind(date(2027, 2, 20)) is DayKind.MAKEUP_WORKDAY  # Saturday
    assert calendar.is_workday(date(2027, 10, 9))  # Saturday
    assert calendar.is_holiday(date(2027, 2, 8))  # Monday inside the range
    assert calendar.is_holiday(date(2027, 1, 1))
    assert calendar.is_workday(date(2027, 2, 15))  # Monday after the break
    assert calendar.is_holiday(date(2027, 2, 21))  # ordinary Sunday
    assert calendar.is_workday(date(2026, 2, 28))  # 2026 still comes from the package


def test_a_filed_year_replaces_the_package_for_that_year(tmp_path: Path) -> None:
    path = write(tmp_path, "2026.toml", "[year.2026]\nholidays = [2026-10-01]\nworkdays = [2026-10-10]\n")
    calendar = load_calendar([path])
    assert calendar.source_of(2026) == str(path)
    assert calendar.is_workday(date(2026, 10, 5))  # the package's day off is gone
    assert calendar.is_holiday(date(2026, 2, 28))  # and so is its make-up Saturday
    assert calendar.is_workday(date(2026, 10, 10))
    assert calendar.is_workday(date(2025, 10, 7)) == chinese_calendar.is_workday(date(2025, 10, 7))


def test_a_new_year_break_may_reach_back_into_december(tmp_path: Path) -> None:
    path = write(tmp_path, "2027.toml",
                 "[year.2027]\nholidays = [[2026-12-31, 2027-01-01]]\nworkdays = [2026-12-26]\n")
    calendar = load_calendar([path])
    assert calendar.is_holiday(date(2026, 12, 31))  # a Thursday, off by the 2027 notice
    assert calendar.kind(date(2026, 12, 26)) is DayKind.MAKEUP_WORKDAY
    assert calendar.is_workday(date(2026, 12, 30))  # the rest of 2026 is the package's
    assert calendar.source_of(2026) == f"chinese-calendar {chinese_calendar.__version__}"


def test_several_years_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "calendar.toml", TEST_2027 + "\n[year.2028]\nholidays = [2028-01-03]\n")
    calendar = load_calendar([path])
    assert calendar.uncovered_years(date(2026, 1, 1), date(2028, 12, 31)) == []
    assert calendar.is_holiday(date(2028, 1, 3))


# --- file errors name file:line ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "words"), [
    ("[year.2027]\nholidays = [\n  2027-01-01,\n  2027-02-20,\n]\nworkdays = [\n  2027-02-20,\n]\n",
     7, "both as a holiday and as a make-up workday"),
    ("[year.2027]\nholidays = [\n  2027-01-01,\n  2026-10-01,\n]\n", 4, "not in 2027, the year it is filed under"),
    ("[year.2027]\nholidays = [2027-01-01]\nworkdays = [\n  2027-02-20,\n  2027-02-08,\n]\n",
     5, "2027-02-08 is a Monday, a workday anyway"),
    ('[year.2027]\nholidays = ["2027-01-01"]\n', 2, "write dates without quotes: 2027-01-01"),
    ("[year.2027]\nholidays = [2027-01-01T00:00:00]\n", 2, "write 2027-01-01"),
    ("[year.2027]\nholidays = [\n  [2027-10-07, 2027-10-01],\n]\n", 3, "ends before it starts"),
    ("[year.2027]\nholidays = [[2027-10-01, 2027-11-07]]\n", 2, "38 days long"),
    ("[year.2027]\nholidays = [\n  [2027-10-07, 2027-10-01],\n  [2027-10-01, 2027-11-07],\n  true,\n]\n",
     4, "38 days long"),  # the same date written earlier does not pull the line back
    ("[year.2027]\nholidays = [\n  [2027-10-07, 2027-10-01],\n  [2027-10-01, 2027-11-07],\n  true,\n]\n",
     5, "true is not a date"),
    ("[year.2027]\nholidays = []\n", 2, "holidays of 2027 is empty"),
    ("[year.2027]\nholidays = [[2027-10-01]]\n", 2, "a range is two dates, [first, last]; got [2027-10-01]"),
    ("[year.2027]\nholidays = 2027-01-01\n", 2, "holidays is a list of dates"),
    ("\n[year.2027]\nholiday = [2027-01-01]\n", 3, "unknown key 'holiday'"),
    ("\n[year.2027]\nworkdays = [2027-02-20]\n", 2, "missing required key 'holidays'"),
    ("\n\n[year.27]\nholidays = [2027-01-01]\n", 3, "[year.27] does not name a year"),
    ('[year.2027]\nholidays = [2027-01-01]\nnotice = 12\n', 3, "notice is text"),
    ("holidays = [2027-01-01]\n", 1, "unknown key 'holidays'"),
    ("[year.2027]\nholidays = [2027-01-01\n", 3, "TOML syntax error"),
])
def test_file_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, "2027.toml", text)
    problems = problems_of(path)
    assert any(p.startswith(f"{path}:{line}:") and words in p for p in problems), problems


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "2027.toml",
                 "[year.2027]\nholidays = [2026-10-01]\nworkdays = [2027-02-08]\nextra = 1\n")
    problems = problems_of(path)
    assert len(problems) == 3, problems
    assert all(" — " in p for p in problems), "each problem says what to write instead"


def test_a_year_filed_twice_names_the_second_file(tmp_path: Path) -> None:
    first = write(tmp_path, "a.toml", TEST_2027)
    second = write(tmp_path, "b.toml", "\n[year.2027]\nholidays = [2027-01-01]\n")
    problems = problems_of(first, second)
    assert any(p.startswith(f"{second}:2:") and f"already filed in {first}" in p for p in problems), problems


def test_two_notices_disagreeing_on_a_december_day(tmp_path: Path) -> None:
    a = write(tmp_path, "2026.toml", "[year.2026]\nholidays = [2026-10-01]\nworkdays = [2026-12-26]\n")
    b = write(tmp_path, "2027.toml", "[year.2027]\nholidays = [[2026-12-26, 2027-01-01]]\n")
    problems = problems_of(a, b)
    assert any("2026-12-26 is a holiday under [year.2027]" in p and "make-up workday under [year.2026]" in p
               for p in problems), problems


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "2027.toml"
    assert problems_of(path) == [f"{path}: file not found — check the path"]


# --- uncovered years ---------------------------------------------------------------------------------

def test_uncovered_years_are_reported(calendar: ChinaWorkCalendar, tmp_path: Path) -> None:
    start, end = date(2026, 11, 1), date(2028, 3, 31)
    assert calendar.uncovered_years(start, end) == [2027, 2028]
    filed = load_calendar([write(tmp_path, "2027.toml", TEST_2027)])
    assert filed.uncovered_years(start, end) == [2028]
    assert not filed.covered(date(2028, 3, 1)) and filed.source_of(2028) is None
    with pytest.raises(ValueError, match="after end"):
        filed.uncovered_years(end, start)


def test_uncovered_days_assume_an_ordinary_week(calendar: ChinaWorkCalendar, tmp_path: Path) -> None:
    assert calendar.is_workday(date(2028, 3, 1))  # Wednesday
    assert calendar.is_holiday(date(2028, 3, 4))  # Saturday
    assert calendar.is_workday(date(2028, 1, 3))  # whatever the 2028 notice will say
    [warning] = calendar.uncovered_problems(date(2028, 1, 1), date(2028, 6, 30), tmp_path / "calendar")
    assert warning.warning
    assert warning.file == tmp_path / "calendar" / "2028.toml"
    assert UNCOVERED_ASSUMPTION in warning.message
    assert "Monday–Friday are workdays and Saturday–Sunday are not" in str(warning)
    assert "[year.2028]" in warning.hint


def test_an_empty_calendar_only_assumes() -> None:
    empty = ChinaWorkCalendar()
    assert empty.is_workday(date(2026, 10, 5)) and empty.is_holiday(date(2026, 2, 28))
    assert empty.uncovered_years(date(2026, 1, 1), date(2026, 12, 31)) == [2026]


# --- a channel's own closed days ---------------------------------------------------------------------

def test_extra_closed_days_merge(calendar: ChinaWorkCalendar) -> None:
    wednesday, makeup_saturday = date(2026, 3, 11), date(2026, 2, 28)
    clinic = calendar.with_closed_days([wednesday, makeup_saturday])
    assert clinic.kind(wednesday) is DayKind.CLOSED and clinic.is_holiday(wednesday)
    assert clinic.is_holiday(makeup_saturday)  # closed wins over a make-up working day
    assert clinic.is_holiday(date(2026, 10, 5))  # the statutory days stay
    assert clinic.is_workday(date(2026, 3, 12))
    assert calendar.is_workday(wednesday), "the shared calendar is unchanged"
    both = clinic.with_closed_days([date(2026, 3, 12)])
    assert both.closed_days == {wednesday, makeup_saturday, date(2026, 3, 12)}


# --- misuse and cost ---------------------------------------------------------------------------------

def test_a_datetime_is_refused(calendar: ChinaWorkCalendar) -> None:
    with pytest.raises(TypeError, match="channel's timezone"):
        calendar.is_workday(datetime(2026, 2, 28, 9, 0))


def test_importing_the_module_does_not_import_the_package() -> None:
    code = "import sys, anchor.schedule.calendar; print('chinese_calendar' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "False"
