"""Planning: what airs when, across DST, cron's Sunday, rotations, blackouts, and bad channel files."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from anchor.config import load_settings
from anchor.problems import InputError
from anchor.schedule.channel import load_channels
from anchor.schedule.planner import plan
from anchor.store import Airing, AsRunLog, Outcome, RotationStep, open_engine
from tests.conftest import Project, no_traceback, script_text

# Dated: plans are made from the clock; `make test` runs these again with the clock a year ahead.
pytestmark = pytest.mark.dated

UTC = timezone.utc


@pytest.fixture
def site(project: Project) -> Project:
    (project.root / "schedules").mkdir()
    for name in ("a.md", "b.md", "c.md"):
        project.script(name, script_text(f"{name} 的内容。"))
    return project


def channel_file(project: Project, name: str, text: str) -> Path:
    path = project.root / "schedules" / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def planned(project: Project, start: datetime, hours: float, rotation: dict | None = None) -> list:
    channels, _ = load_channels(load_settings(project.config), now=start)
    return plan(channels, start, start + timedelta(hours=hours), rotation)


def test_new_york_across_both_dst_transitions(site: Project) -> None:
    channel_file(site, "ny", """
[channel]
id = "ny"
timezone = "America/New_York"

[[slot]]
name = "early"
cron = "30 1 * * *"
script = "a.md"

[[slot]]
name = "gap"
cron = "30 2 * * *"
script = "b.md"

[[slot]]
name = "morning"
cron = "0 9 * * *"
script = "c.md"
""")
    spring = planned(site, datetime(2026, 3, 7, 12, tzinfo=UTC), 48)
    by_slot = {s: [p.planned_at for p in spring if p.slot == s] for s in ("early", "gap", "morning")}
    # 9:00 is 9:00 local on both sides of the jump: 14:00 UTC before it, 13:00 UTC after.
    assert [p.astimezone(UTC).hour for p in by_slot["morning"]] == [14, 13]
    # 02:30 does not exist on 8 March: it airs once, at 03:30 EDT (as cron would), never twice or not at all.
    gap_day = [p for p in by_slot["gap"] if p.date() == date(2026, 3, 8)]
    assert len(gap_day) == 1 and gap_day[0].isoformat() == "2026-03-08T03:30:00-04:00"
    autumn = planned(site, datetime(2026, 10, 31, 12, tzinfo=UTC), 48)
    early = [p.planned_at for p in autumn if p.slot == "early"]
    # 01:30 happens twice on 1 November: it airs once, the first time (EDT).
    assert [p.isoformat() for p in early] == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    assert [p.planned_at.astimezone(UTC).hour for p in autumn if p.slot == "morning"] == [13, 14]


def test_shanghai_has_no_dst_and_planned_times_carry_its_offset(site: Project) -> None:
    channel_file(site, "sh", '[channel]\nid = "sh"\ntimezone = "Asia/Shanghai"\n\n'
                             '[[slot]]\ncron = "0 9 * * *"\nscript = "a.md"\n')
    days = planned(site, datetime(2026, 3, 1, tzinfo=UTC), 24 * 300)
    assert len(days) == 300 and all(p.planned_at.utcoffset() == timedelta(hours=8) for p in days)
    assert {p.planned_at_utc.hour for p in days} == {1}


@pytest.mark.parametrize("weekday", ["0", "7", "sun", "SUN", "0,7"])
def test_cron_zero_seven_and_sun_all_mean_sunday(site: Project, weekday: str) -> None:
    channel_file(site, "c", f'[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n\n'
                            f'[[slot]]\ncron = "0 9 * * {weekday}"\nscript = "a.md"\n')
    found = planned(site, datetime(2026, 11, 1, tzinfo=UTC), 24 * 28)
    assert len(found) == 4 and all(p.planned_at.strftime("%A") == "Sunday" for p in found)


def test_weekday_ranges_and_every_within_hours(site: Project) -> None:
    channel_file(site, "c", """
[channel]
id = "c"
timezone = "Asia/Shanghai"

[[slot]]
cron = "0 9 * * 1-5"
script = "a.md"

[[slot]]
every = "30m"
between = ["10:00", "11:30"]
script = "b.md"
""")
    found = planned(site, datetime(2026, 11, 22, 16, tzinfo=UTC), 24 * 7)  # Monday 23rd 00:00 Shanghai, one week
    weekday_9 = [p for p in found if p.slot == "cron 0 9 * * 1-5"]
    assert [p.planned_at.strftime("%a") for p in weekday_9] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    windows = [p.planned_at.strftime("%H:%M") for p in found if p.script == "b.md"]
    assert windows[:4] == ["10:00", "10:30", "11:00", "11:30"] and len(windows) == 28


def test_blackouts_except_and_from_until(site: Project) -> None:
    channel_file(site, "c", """
[channel]
id = "c"
timezone = "Asia/Shanghai"

[[blackout]]
from = 2026-12-10
until = 2026-12-12
reason = "选举静默期"

[[slot]]
cron = "0 9 * * *"
script = "a.md"
except = [2026-12-05]
from = 2026-12-03
until = 2026-12-20
""")
    days = {p.planned_at.day for p in planned(site, datetime(2026, 12, 1, tzinfo=UTC), 24 * 31)}
    assert days == set(range(3, 21)) - {5, 10, 11, 12}


def test_same_instant_slots_are_ordered_by_priority(site: Project) -> None:
    channel_file(site, "c", """
[channel]
id = "c"
timezone = "Asia/Shanghai"

[[slot]]
name = "routine"
cron = "0 10 * * *"
script = "a.md"

[[slot]]
name = "special"
at = 2026-12-04T10:00:00+08:00
script = "b.md"
priority = 10
""")
    found = planned(site, datetime(2026, 12, 4, 1, 59, tzinfo=UTC), 1)
    assert [p.slot for p in found] == ["special", "routine"]


def test_rotation_order_survives_a_restart(site: Project) -> None:
    channel_file(site, "c", '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n\n'
                            '[[slot]]\nname = "r"\ncron = "0 * * * *"\nrotate = ["a.md", "b.md", "c.md"]\n')
    start = datetime(2026, 12, 1, tzinfo=UTC)
    assert [p.script for p in planned(site, start, 4)] == ["a.md", "b.md", "c.md", "a.md"]
    # The 01:00 airing is claimed (entry 1, b.md); a new process (a new engine on the same file) picks up after it.
    url = f"sqlite:///{site.root / 'data' / 'anchor.db'}"
    one = start + timedelta(hours=1)
    row = Airing(channel="c", slot="r", planned_at=one, outcome=Outcome.ON_AIR, script="b.md")
    assert AsRunLog(open_engine(url)).claim(row, RotationStep(index=1, length=3, instant=one))
    rotation = AsRunLog(open_engine(url)).rotation()
    assert [p.script for p in planned(site, start + timedelta(hours=2), 4, rotation)] == ["c.md", "a.md", "b.md", "c.md"]
    # A plan that starts before the claim (shown while it is on air) names what aired and what will.
    assert [p.script for p in planned(site, start, 4, rotation)] == ["a.md", "b.md", "c.md", "a.md"]
    # Every later instant takes the next entry whether it airs or not: a plan made days later, or after a
    # restart, names the same scripts as one made now.
    later = start + timedelta(days=3, hours=2)
    assert [p.script for p in planned(site, later, 2, rotation)] == ["c.md", "a.md"]  # 72 hours = 24 turns


def test_the_plan_names_what_airs_through_claims_and_restarts(site: Project) -> None:
    """Over a simulated day of hourly rotations with claims, missed airings and restarts, the plan made at
    any moment names, for every later airing, the script the daemon then claims."""
    channel_file(site, "c", '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n\n'
                            '[[slot]]\nname = "r"\ncron = "0 * * * *"\nrotate = ["a.md", "b.md", "c.md"]\n')
    url = f"sqlite:///{site.root / 'data' / 'anchor.db'}"
    start = datetime(2026, 12, 1, tzinfo=UTC)
    predicted: dict[datetime, str] = {}
    aired: dict[datetime, str] = {}
    for hour in range(24):
        now = start + timedelta(hours=hour, minutes=30)
        log = AsRunLog(open_engine(url))  # every hour a fresh process, as after a restart
        for item in planned(site, now, 30, log.rotation()):
            assert predicted.setdefault(item.planned_at_utc, item.script) == item.script, item
        if hour % 5 == 4:
            continue  # the daemon was down: this hour's airing is missed, nothing claimed
        item = planned(site, now, 1, log.rotation())[0]  # what the daemon airs next
        row = Airing(channel="c", slot="r", planned_at=item.planned_at_utc, outcome=Outcome.ON_AIR, script=item.script)
        log.claim(row, RotationStep(item.rotation_index, item.rotation_length, item.planned_at_utc))
        aired[item.planned_at_utc] = item.script
    assert len(aired) >= 19 and all(predicted[t] == script for t, script in aired.items())
    # `anchor plan` reads the same state from the as-run log.
    result = site.run("plan", "--from", (start + timedelta(hours=24, minutes=30)).isoformat(), "--hours", "2", "--json")
    assert result.returncode == 0, result.stderr
    shown = {datetime.fromisoformat(r["planned_at_utc"]): r["script"] for r in json.loads(result.stdout)}
    assert shown == {t: s for t, s in predicted.items() if t in shown} and len(shown) == 2


def test_plan_json_carries_offsets(site: Project) -> None:
    channel_file(site, "c", '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n\n'
                            '[[slot]]\ncron = "0 9 * * *"\nscript = "a.md"\n')
    result = site.run("plan", "--channel", "c", "--from", "2026-12-01T00:00:00+08:00", "--days", "2", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["planned_at"] for r in rows] == ["2026-12-01T09:00:00+08:00", "2026-12-02T09:00:00+08:00"]
    assert rows[0]["planned_at_utc"] == "2026-12-01T01:00:00+00:00"
    assert set(rows[0]) >= {"channel", "slot", "script", "planned_at", "planned_at_utc"}


BAD_CHANNELS = [
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]\ncron = "0 9 * * *"\n', 4, ["TOML syntax error"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\ncolor = "red"\n[[slot]]\ncron = "0 9 * * *"\nscript = "a.md"\n',
     4, ["unknown key 'color'", "allowed keys here: id, name, timezone"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 25 * * *"\nscript = "a.md"\n',
     5, ["cron hour 25 is outside 0–23"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Beijing"\n[[slot]]\ncron = "0 9 * * *"\nscript = "a.md"\n',
     3, ["unknown timezone 'Asia/Beijing'", "Asia/Shanghai"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 9 * * *"\nscript = "nope.md"\n',
     6, ["script 'nope.md' does not exist"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 9 * * *"\nscript = "../anchor.toml"\n',
     6, ["without '..'"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 9 * * *"\nscript = "/etc/passwd"\n',
     6, ["must be relative"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 9 * * *"\nrotate = []\n',
     6, ["rotate needs at least one script"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\nscript = "a.md"\n',
     4, ["exactly one of cron"]),
    ('[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\nevery = "soon"\nscript = "a.md"\n',
     5, ['"5m"']),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_CHANNELS,
                         ids=["syntax", "unknown-key", "bad-cron", "bad-zone", "missing-script", "dotdot",
                              "absolute", "empty-rotation", "no-when", "bad-duration"])
def test_bad_channel_files_name_line_and_fix(site: Project, text: str, line: int, words: list[str]) -> None:
    channel_file(site, "bad", text)
    result = site.run("check")
    no_traceback(result)
    assert result.returncode == 2, result.stdout
    assert f"bad.toml:{line}" in result.stderr, result.stderr
    said = " ".join(result.stderr.split())  # a problem longer than the terminal folds between words
    for word in words:
        assert word in said, result.stderr


def test_a_missing_avatar_is_a_warning_the_channel_airs_without_it(site: Project) -> None:
    """Degrade, don't fail: without its frames a channel airs its audio over the plain background."""
    channel_file(site, "c", '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\navatar = "faces/none"\n[[slot]]\n'
                            'cron = "0 9 * * *"\nscript = "a.md"\n')
    result = site.run("check")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())  # a problem longer than the terminal folds between words
    assert "warning" in said and "c.toml:4" in said and "avatar folder not found" in said, result.stderr
    assert "airs its audio over the plain background" in said


def test_symlink_out_of_scripts_is_refused(site: Project) -> None:
    outside = site.root / "secret.md"
    outside.write_text(script_text("外面的文件。"))
    os.symlink(outside, site.scripts / "link.md")
    channel_file(site, "c", '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 9 * * *"\n'
                            'script = "link.md"\n')
    result = site.run("check")
    assert result.returncode == 2 and "c.toml:6" in result.stderr and "symlink" in result.stderr


def test_duplicate_channel_id_names_both_files(site: Project) -> None:
    body = '[channel]\nid = "same"\ntimezone = "Asia/Shanghai"\n[[slot]]\ncron = "0 9 * * *"\nscript = "a.md"\n'
    channel_file(site, "one", body)
    channel_file(site, "two", body)
    result = site.run("check")
    assert result.returncode == 2 and "two.toml:2" in result.stderr and "one.toml" in result.stderr


def test_at_in_the_past_is_a_warning_not_an_error(site: Project) -> None:
    channel_file(site, "c", '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\n[[slot]]\nat = 2020-01-01T10:00:00+08:00\n'
                            'script = "a.md"\n')
    result = site.run("check")
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "c.toml:5" in result.stderr and "in the past" in result.stderr


def test_every_problem_in_every_file_at_once(site: Project) -> None:
    channel_file(site, "x", BAD_CHANNELS[2][0])
    channel_file(site, "y", BAD_CHANNELS[3][0])
    with pytest.raises(InputError) as caught:
        load_channels(load_settings(site.config))
    assert {p.file.name for p in caught.value.problems} == {"x.toml", "y.toml"}


def test_the_shipped_channels_plan_fast(samples_project: Project, tmp_path: Path) -> None:
    """50 channels × 7 days, like a fleet PC: checked for correctness here; the time is in the benchmark."""
    from tests.conftest import REPO

    (samples_project.root / "schedules").mkdir()
    for n in range(50):
        source = REPO / "schedules" / ("hospital.toml" if n % 2 else "procuratorate.toml")
        text = source.read_text(encoding="utf-8").replace('id = "hospital"', f'id = "h{n}"').replace(
            'id = "procuratorate"', f'id = "p{n}"')
        (samples_project.root / "schedules" / f"c{n}.toml").write_text(text, encoding="utf-8")
    result = samples_project.run("plan", "--from", "2026-11-30T00:00+08:00", "--days", "7", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len({r["channel"] for r in rows}) == 50
    assert sum(1 for r in rows if r["channel"] == "p0") == 10 + 1  # weekday 10:00 and 15:30, plus 12·4
