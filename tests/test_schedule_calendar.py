"""Slots that follow China's calendar: days = "workdays" / "holidays", except = "holidays", a channel's
closed days, a year an institution files itself, and what `anchor check` and `anchor plan` say where no
published calendar covers the plan."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from anchor.config import load_settings
from anchor.schedule.channel import load_channels
from anchor.schedule.planner import plan
from tests.conftest import Project, clock_now, no_traceback, script_text

# Dated: China's calendar data ends at a year; `make test` runs these again with the clock a year ahead.
pytestmark = pytest.mark.dated

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR_2027 = """# 国务院办公厅关于2027年部分节假日安排的通知 (as an institution files it)
[year.2027]
notice = "国办发明电〔2026〕9号"
holidays = [
  2027-01-01,
  [2027-02-06, 2027-02-13],
]
workdays = [2027-02-20]
"""


@pytest.fixture
def site(project: Project) -> Project:
    (project.root / "schedules").mkdir()
    project.script("clinic.md", script_text("门诊时间通知。"))
    project.script("rest.md", script_text("节假日就诊提示。"))
    return project


def channel(project: Project, slots: str, extra: str = "") -> Path:
    path = project.root / "schedules" / "clinic.toml"
    path.write_text(f'[channel]\nid = "clinic"\ntimezone = "Asia/Shanghai"\n{extra}\n{slots}', encoding="utf-8")
    return path


def slot(days: str = "", except_: str = "", name: str = "outpatient", script: str = "clinic.md") -> str:
    keys = (f'days = "{days}"\n' if days else "") + (f'except = "{except_}"\n' if except_ else "")
    return f'[[slot]]\nname = "{name}"\ncron = "0 8 * * *"\nscript = "{script}"\n{keys}\n'


def aired_days(project: Project, first: date, last: date, slot_name: str | None = None) -> list[date]:
    channels, _ = load_channels(load_settings(project.config))
    start = datetime.combine(first, datetime.min.time(), SHANGHAI)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), SHANGHAI)
    return [p.planned_at.date() for p in plan(channels, start, end) if slot_name in (None, p.slot)]


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_a_make_up_saturday_airs_a_workday_slot(site: Project) -> None:
    channel(site, slot(days="workdays"))
    # 2026-02-28 is a Saturday worked for the Spring Festival break; Sunday 03-01 is an ordinary weekend.
    assert aired_days(site, date(2026, 2, 27), date(2026, 3, 2)) == [date(2026, 2, 27), date(2026, 2, 28),
                                                                     date(2026, 3, 2)]


def test_a_holiday_weekday_does_not_air_a_workday_slot(site: Project) -> None:
    channel(site, slot(days="workdays") + slot(days="holidays", name="holiday-notice", script="rest.md"))
    # National Day 2026: Thursday 10-01 … Wednesday 10-07 off; 10-05 is a Monday.
    workdays = aired_days(site, date(2026, 9, 28), date(2026, 10, 11), "outpatient")
    holidays = aired_days(site, date(2026, 9, 28), date(2026, 10, 11), "holiday-notice")
    assert date(2026, 10, 5) not in workdays and date(2026, 10, 5) in holidays
    assert sorted(workdays + holidays) == days(date(2026, 9, 28), date(2026, 10, 11))  # each day exactly one


def test_except_holidays_pauses_for_the_break_but_airs_at_weekends(site: Project) -> None:
    channel(site, slot(except_="holidays"))
    aired = aired_days(site, date(2026, 9, 19), date(2026, 10, 11))
    assert not set(days(date(2026, 10, 1), date(2026, 10, 7))) & set(aired)  # the statutory break
    assert not set(days(date(2026, 9, 25), date(2026, 9, 27))) & set(aired)  # Mid-Autumn
    assert date(2026, 9, 20) in aired and date(2026, 10, 11) in aired  # ordinary Sundays
    assert len(aired) == 23 - 10


def test_a_channels_closed_days_stop_its_workday_slots(site: Project) -> None:
    channel(site, slot(days="workdays"), extra="closed = [2026-03-03]")
    assert aired_days(site, date(2026, 3, 2), date(2026, 3, 4)) == [date(2026, 3, 2), date(2026, 3, 4)]


def test_a_year_filed_by_the_institution(site: Project) -> None:
    channel(site, slot(days="workdays"))
    # Without the file 2027 is an ordinary calendar: the Monday of the break airs, the make-up Saturday not.
    assumed = aired_days(site, date(2027, 2, 6), date(2027, 2, 21))
    assert date(2027, 2, 8) in assumed and date(2027, 2, 20) not in assumed
    (site.root / "calendar").mkdir()
    (site.root / "calendar" / "2027.toml").write_text(CALENDAR_2027, encoding="utf-8")
    filed = aired_days(site, date(2027, 2, 6), date(2027, 2, 21))
    assert filed == [date(2027, 2, 15), date(2027, 2, 16), date(2027, 2, 17), date(2027, 2, 18),
                     date(2027, 2, 19), date(2027, 2, 20)]


def test_plan_says_what_it_assumes_where_no_calendar_covers_it(site: Project) -> None:
    channel(site, slot(days="workdays"))
    args = ("plan", "--from", "2027-03-01T00:00:00+08:00", "--days", "2", "--json")
    uncovered = site.run(*args)
    no_traceback(uncovered)
    assert uncovered.returncode == 0, uncovered.stderr
    said = " ".join(uncovered.stderr.split())
    assert "no published holiday calendar covers 2027" in said and "Monday–Friday are workdays" in said
    assert "calendar/2027.toml" in said
    assert [p["planned_at"][:10] for p in json.loads(uncovered.stdout)] == ["2027-03-01", "2027-03-02"]
    (site.root / "calendar").mkdir()
    (site.root / "calendar" / "2027.toml").write_text(CALENDAR_2027, encoding="utf-8")
    covered = site.run(*args)
    assert covered.returncode == 0 and "covers 2027" not in covered.stderr, covered.stderr


def test_a_channel_without_calendar_slots_is_never_warned(site: Project) -> None:
    channel(site, slot())
    result = site.run("plan", "--from", "2031-03-01T00:00:00+08:00", "--days", "1")
    assert result.returncode == 0 and "holiday calendar" not in result.stderr, result.stderr


def test_a_bad_calendar_file_is_named_by_check_and_spares_other_channels(site: Project) -> None:
    channel(site, slot(days="workdays"))
    (site.root / "schedules" / "notices.toml").write_text(
        '[channel]\nid = "notices"\ntimezone = "Asia/Shanghai"\n' + slot(name="daily"), encoding="utf-8")
    (site.root / "calendar").mkdir()
    (site.root / "calendar" / "2027.toml").write_text("[year.2027]\nholidays = [2027-02-30]\n", encoding="utf-8")
    result = site.run("check")
    no_traceback(result)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "2027.toml" in line]
    assert len(lines) == 1 and "2027.toml:2" in lines[0], result.stderr  # once, though it reaches every channel
    planned = site.run("plan", "--from", "2027-03-01T00:00:00+08:00", "--hours", "24", "--json")
    assert planned.returncode == 2  # plan refuses inputs with errors, naming them
    channels_read = load_channels_leniently(site)
    assert channels_read == ["notices"]


def load_channels_leniently(project: Project) -> list[str]:
    from anchor.schedule.channel import read_channel_files

    return [f.channel.id for f in read_channel_files(load_settings(project.config)) if f.channel is not None]


def test_closed_days_without_calendar_slots_are_a_warning(site: Project) -> None:
    channel(site, slot(), extra="closed = [2026-03-03]")
    result = site.run("check")
    assert result.returncode == 0, result.stderr
    assert "closed days only stop slots that follow China's calendar" in " ".join(result.stderr.split())


def test_check_warns_a_month_ahead_of_an_uncovered_year(site: Project) -> None:
    from anchor.schedule.calendar import load_calendar

    channel(site, slot(days="workdays"))
    today = clock_now().astimezone(SHANGHAI).date()
    uncovered = load_calendar().uncovered_years(today, today + timedelta(days=31))
    result = site.run("check")
    assert result.returncode == 0, result.stderr
    for year in uncovered:  # on 2026-12-02 with chinese-calendar 1.11.0: 2027
        assert f"no published holiday calendar covers {year}" in " ".join(result.stderr.split())
    if not uncovered:
        assert "holiday calendar covers" not in result.stderr
