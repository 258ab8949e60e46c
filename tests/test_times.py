"""One clock: how a person writes a time on the command line (today, yesterday, 7d, 12h, a date, a date-time —
read on the channel's clock with --channel, else the institution's `[daemon] timezone`, never this machine's) and
how every time is shown back (that clock, with its UTC offset)."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from anchor.clock import read_time, shown_time
from anchor.store import Airing, Outcome, open_store
from tests.conftest import Project, clock_now, no_traceback, script_text
from tests.daemon_harness import Daemon, free_port

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the institution's default clock
NEW_YORK = ZoneInfo("America/New_York")  # a channel on another clock, so the tests see which one is used
MACHINE = {"TZ": "UTC"}  # this machine's clock, which no time a person writes or reads is on

# Dated: "today", "yesterday" and the next airing are read from the clock; `make test` runs these again with the
# clock a year ahead.
pytestmark = pytest.mark.dated


# -- reading: the one function every option goes through -------------------------------------------------


@pytest.mark.parametrize("zone", [SHANGHAI, NEW_YORK])
def test_each_written_form_is_read_on_the_given_clock(zone: ZoneInfo) -> None:
    now = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)  # 11:30 in Shanghai on the 8th, 22:30 in New York on the 7th
    local_today = now.astimezone(zone).date()
    midnight = datetime.combine(local_today, time(0), tzinfo=zone)
    assert read_time("today", zone, now) == midnight
    assert read_time("Yesterday", zone, now) == midnight - timedelta(days=1)
    assert read_time("tomorrow", zone, now) == midnight + timedelta(days=1)
    assert read_time("7d", zone, now) == now - timedelta(days=7)
    assert read_time("12h", zone, now) == now - timedelta(hours=12)
    assert read_time("2026-12-08", zone, now) == datetime(2026, 12, 8, tzinfo=zone)
    assert read_time("2026-12-08T09:00", zone, now) == datetime(2026, 12, 8, 9, tzinfo=zone)
    assert read_time("2026-12-08 09:00", zone, now) == datetime(2026, 12, 8, 9, tzinfo=zone)
    assert read_time("09:00", zone, now) == datetime.combine(local_today, time(9), tzinfo=zone)
    # An offset written wins over the clock.
    assert read_time("2026-12-08T09:00+08:00", zone, now) == datetime(2026, 12, 8, 1, tzinfo=UTC)
    assert read_time("2026-12-08T09:00Z", zone, now) == datetime(2026, 12, 8, 9, tzinfo=UTC)
    # The two clocks disagree about "today" at this instant: the zone given decides.
    assert read_time("today", SHANGHAI, now) != read_time("today", NEW_YORK, now)


def test_a_time_that_is_none_of_the_forms_names_them() -> None:
    with pytest.raises(ValueError, match=r"'last week' is not a time: write today, yesterday, 7d, 12h"):
        read_time("last week", SHANGHAI, clock_now())


def test_a_time_is_shown_on_one_clock_with_its_offset() -> None:
    instant = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    assert shown_time(instant, SHANGHAI, "minutes") == "2026-12-04 10:00+08:00"
    assert shown_time(instant, NEW_YORK, "minutes") == "2026-12-03 21:00-05:00"
    assert shown_time(instant.replace(tzinfo=None), SHANGHAI) == "2026-12-04 10:00:00+08:00"  # stored naive = UTC
    assert shown_time(instant, SHANGHAI, "minutes", with_date=False) == "10:00+08:00"


# -- the commands --------------------------------------------------------------------------------------------


def _site(project: Project, daemon: str = "") -> Project:
    project.script("short.md", script_text("各位观众，大家好。", title="短通知"))
    (project.root / "schedules").mkdir(exist_ok=True)
    for channel, zone in (("ny", "America/New_York"), ("sh", "Asia/Shanghai")):
        (project.root / "schedules" / f"{channel}.toml").write_text(
            f'[channel]\nid = "{channel}"\nname = "{channel}"\ntimezone = "{zone}"\n\n'
            '[[slot]]\nname = "morning"\ncron = "0 9 * * *"\nscript = "short.md"\n', encoding="utf-8")
    project.write_config(extra=daemon)
    return project


def _log(project: Project, rows: dict[str, tuple[str, datetime]]) -> None:
    """As-run rows: slot name → (channel, planned instant)."""
    log = open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}")
    for slot_name, (channel, at) in rows.items():
        log.claim(Airing(channel=channel, slot=slot_name, planned_at=at, started_at=at, ended_at=at,
                         outcome=Outcome.AIRED, script="short.md"))


def _history_slots(project: Project, *args: str) -> set[str]:
    result = project.run("history", "--csv", *args, env=MACHINE)
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    return {row["slot"] for row in csv.DictReader(io.StringIO(result.stdout))}


def _around(boundaries: dict[str, datetime], channel: str = "ny", margin: timedelta = timedelta(minutes=5)
            ) -> dict[str, tuple[str, datetime]]:
    """Two rows per boundary: `NAME-before` just before it, `NAME-after` just after."""
    return {f"{name}-{side}": (channel, at + sign * margin) for name, at in boundaries.items()
            for side, sign in (("before", -1), ("after", 1))}


def _from(rows: dict[str, tuple[str, datetime]], at: datetime) -> set[str]:
    return {name for name, (_, planned) in rows.items() if planned >= at}


def test_history_since_a_date_lists_the_airings_of_that_date_on_the_channel_clock(project: Project) -> None:
    """The bug: `history --since 2026-12-08` listed none of the airings the table shows dated 2026-12-08
    (early-morning airings in Shanghai are still the 7th in UTC, the machine's clock)."""
    _site(project)
    rows = {"early": ("sh", datetime(2026, 12, 8, 0, 30, tzinfo=SHANGHAI)),
            "ten": ("sh", datetime(2026, 12, 8, 7, 0, tzinfo=SHANGHAI)),
            "day-before": ("sh", datetime(2026, 12, 7, 23, 30, tzinfo=SHANGHAI))}
    _log(project, rows)
    table = project.run("history", env=MACHINE)
    assert table.stdout.count("2026-12-08 ") == 2, table.stdout
    assert _history_slots(project, "--since", "2026-12-08") == {"early", "ten"}
    assert _history_slots(project, "--channel", "sh", "--since", "2026-12-08") == {"early", "ten"}


@pytest.mark.parametrize("form", ["today", "yesterday", "date", "datetime"])
def test_since_reads_a_bare_day_or_time_on_the_channel_clock_else_the_institutions(project: Project,
                                                                                   form: str) -> None:
    _site(project)
    now = clock_now()

    def boundary(zone: ZoneInfo) -> datetime:
        today = now.astimezone(zone).date()
        return {"today": datetime.combine(today, time(0), tzinfo=zone),
                "yesterday": datetime.combine(today - timedelta(days=1), time(0), tzinfo=zone),
                "date": datetime(2026, 3, 1, tzinfo=zone),
                "datetime": datetime(2026, 3, 1, 9, 30, tzinfo=zone)}[form]

    written = {"today": "today", "yesterday": "yesterday", "date": "2026-03-01", "datetime": "2026-03-01T09:30"}[form]
    channel_start, institution_start = boundary(NEW_YORK), boundary(SHANGHAI)
    assert channel_start != institution_start
    rows = _around({"channel": channel_start, "institution": institution_start})
    _log(project, rows)
    assert _history_slots(project, "--channel", "ny", "--since", written) == _from(rows, channel_start)
    assert _history_slots(project, "--since", written) == _from(rows, institution_start)
    # The institution's clock is [daemon] timezone: set to New York, a bare time is New York's.
    project.write_config(extra='[daemon]\ntimezone = "America/New_York"\n')
    assert _history_slots(project, "--since", written) == _from(rows, channel_start)


@pytest.mark.parametrize(("written", "span"), [("7d", timedelta(days=7)), ("12h", timedelta(hours=12))])
def test_since_a_span_counts_back_from_now(project: Project, written: str, span: timedelta) -> None:
    _site(project)
    rows = _around({"span": clock_now() - span})
    _log(project, rows)
    assert _history_slots(project, "--since", written) == {"span-after"}
    assert _history_slots(project, "--channel", "ny", "--since", written) == {"span-after"}


def test_report_plan_and_audit_export_read_times_the_same_way(project: Project) -> None:
    _site(project)
    now = clock_now()
    rows = _around({"today": datetime.combine(now.astimezone(SHANGHAI).date(), time(0), tzinfo=SHANGHAI)}, "sh")
    _log(project, rows)
    ranked = project.run("report", "--since", "today", "--csv", env=MACHINE)
    assert ranked.returncode == 0, ranked.stderr
    assert next(csv.DictReader(io.StringIO(ranked.stdout)))["airings"] == "1"
    # plan --from a bare date-time starts on the channel's clock: from 10:00 in New York, the next 09:00 there.
    args = ("plan", "--channel", "ny", "--from", "2026-03-01T10:00", "--hours", "24")
    planned = project.run(*args, "--json", env=MACHINE)
    assert planned.returncode == 0, planned.stderr
    assert [p["planned_at"] for p in json.loads(planned.stdout)] == ["2026-03-02T09:00:00-05:00"]
    shown = project.run(*args, env=MACHINE)
    assert "from 2026-03-01 10:00-05:00" in shown.stdout, shown.stdout
    # audit export --from/--to: the same reading (a bare date is the institution's midnight), before the key.
    bad = project.run("audit", "export", "--from", "today", "--to", "yesterday", "--out",
                      str(project.root / "export"), env=MACHINE)
    assert bad.returncode == 2 and "--from today is not before --to yesterday" in bad.stderr, bad.stderr


def test_a_time_an_option_cannot_read_is_one_line_naming_the_forms(project: Project) -> None:
    _site(project)
    for args in (("history", "--since", "last week"), ("plan", "--from", "soon"),
                 ("audit", "export", "--from", "2026-13-01", "--to", "today", "--out", "x")):
        result = project.run(*args, env=MACHINE)
        no_traceback(result)
        assert result.returncode == 2, (args, result.stderr)
        assert "is not a time: write today, yesterday, 7d, 12h, 2026-12-04" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unknown_institution_timezone_is_an_error_at_its_line(project: Project) -> None:
    _site(project, daemon='[daemon]\nmetrics_port = 0\ntimezone = "Asia/Beijing"\n')
    line = project.config.read_text(encoding="utf-8").splitlines().index('timezone = "Asia/Beijing"') + 1
    result = project.run("check", env=MACHINE)
    no_traceback(result)
    assert result.returncode == 2, result.stderr
    assert re.search(rf"anchor\.toml:{line}\b.*unknown timezone 'Asia/Beijing'.*Asia/Shanghai", result.stderr), \
        result.stderr
    assert project.run("history", "--since", "today", env=MACHINE).returncode == 2


def test_approvals_are_shown_on_the_institutions_clock(project: Project) -> None:
    _site(project, daemon='[daemon]\ntimezone = "America/New_York"\n\n[approvers.zhang]\nrole = "主任医师"\n')
    approved = project.run("approve", "short.md", "--by", "zhang", env=MACHINE)
    assert approved.returncode == 0, approved.stderr
    listed = project.run("approvals", env=MACHINE)
    assert listed.returncode == 0, listed.stderr
    offset = shown_time(clock_now(), NEW_YORK)[-6:]
    assert re.search(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d{re.escape(offset)}", listed.stdout), listed.stdout


# -- the daemon: status and log lines -------------------------------------------------------------------------


def _status(project: Project) -> dict[str, object]:
    note = json.loads((project.root / "data" / "daemon.json").read_text(encoding="utf-8"))
    with urllib.request.urlopen(f"http://{note['http']}/status", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def _one_off_channel(project: Project, channel_id: str, zone: str, slot: str, ahead: timedelta,
                     extra: str = "") -> datetime:
    """A channel whose one slot airs short.md `ahead` from now (whole minutes); that instant."""
    project.script("short.md", script_text("各位观众，大家好。", title="短通知"))
    (project.root / "schedules").mkdir()
    airs = (clock_now() + ahead).replace(second=0, microsecond=0)
    (project.root / "schedules" / f"{channel_id}.toml").write_text(
        f'[channel]\nid = "{channel_id}"\nname = "{channel_id}"\ntimezone = "{zone}"\n{extra}\n'
        f'[[slot]]\nname = "{slot}"\nat = {airs.strftime("%Y-%m-%dT%H:%M:%SZ")}\nscript = "short.md"\n',
        encoding="utf-8")
    return airs


def test_status_shows_the_next_airing_beyond_the_prerender_horizon(project: Project) -> None:
    """A channel whose next airing is three hours away, with a one-hour pre-render horizon: `anchor status`
    shows it as next (the daemon plans beyond the horizon for it), on the channel's clock; the header and the
    daemon's log lines are on the institution's clock."""
    airs = _one_off_channel(project, "sh", "Asia/Shanghai", "later", timedelta(hours=3), "prerender_hours = 1\n")
    project.write_config(extra=f'[daemon]\nmetrics_port = {free_port()}\nhttp_port = 0\nstop_timeout = 5\n'
                               'timezone = "America/New_York"\n')
    with Daemon(project, MACHINE) as daemon:
        daemon.wait_log(r"on air: 1 channels")
        state = _status(project)
        channels = state["channels"]
        assert isinstance(channels, list)
        assert channels[0]["next"] == {"script": "short.md", "slot": "later",
                                       "at": airs.astimezone(SHANGHAI).isoformat()}, channels
        shown = project.run("status", env=MACHINE)
        assert shown.returncode == 0, shown.stderr
        assert f"next    short.md  (slot later, {shown_time(airs, SHANGHAI, 'minutes')})" in shown.stdout, \
            shown.stdout
        institution_offset = shown_time(clock_now(), NEW_YORK)[-6:]
        assert re.search(rf"channels?, \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d{re.escape(institution_offset)}",
                         shown.stdout), shown.stdout
        first_line = daemon.log.splitlines()[0]
        assert re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}{re.escape(institution_offset)} ", first_line), \
            first_line
        assert daemon.stop() == 0


def test_the_daemon_log_names_the_next_airing_on_its_channel_clock(project: Project) -> None:
    airs = _one_off_channel(project, "ny", "America/New_York", "soon", timedelta(minutes=30))
    project.write_config(extra=f'[daemon]\nmetrics_port = {free_port()}\nhttp_port = 0\nstop_timeout = 5\n')
    with Daemon(project, MACHINE) as daemon:
        daemon.wait_log(re.escape(f"next: ny short.md at {shown_time(airs, NEW_YORK, 'minutes')}"))
        assert daemon.stop() == 0
