"""`anchor run` as a real process: on time, logged once, through kills, restarts and edits."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from anchor.content import load_script
from tests.conftest import Project
from tests.daemon_harness import (
    STARTUP,
    Daemon,
    at,
    channel,
    final,
    free_port,
    rows,
    setup_site,
    slot,
    wait_rows,
)


@pytest.fixture
def site(project: Project) -> tuple[Project, int]:
    port = free_port()
    setup_site(project, port)
    return project, port


def test_airs_each_slot_on_time_logs_it_once_and_reports_it(site: tuple[Project, int], tmp_path: Path) -> None:
    project, port = site
    channel(project, slot("one", f"at = {at(STARTUP)}") + slot("two", f"at = {at(STARTUP + 8)}"))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def drain() -> None:  # as systemd does: a datagram queue holds only a few messages
        while not done.is_set():
            try:
                messages.append(notify.recv(4096).decode())
            except TimeoutError:
                pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    with Daemon(project, env) as daemon:
        found = wait_rows(project, lambda r: final(r, "one", "two"), timeout=60)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert daemon.stop() == 0
    time.sleep(0.3)
    done.set()
    reader.join(timeout=5)
    notify.close()
    for row in found:
        assert row.outcome.value == "aired", (row.slot, row.outcome, row.error)
        late = row.started_at - row.planned_at
        assert timedelta(0) <= late < timedelta(seconds=1), late  # the figures are in benchmarks/punctuality.py
        assert row.engine == "espeak" and row.audio_hash and row.script_hash
        assert row.ended_at - row.started_at > timedelta(seconds=2)
    assert len(found) == 2
    aired = sorted((project.root / "data" / "aired" / "t").rglob("*.mp4"))
    assert [p.name.split("-", 1)[1] for p in aired] == ["one.mp4", "two.mp4"]
    # Metrics: real promtool accepts the exposition; the counts match the as-run log.
    lint = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr
    assert 'anchor_airings_total{channel="t",outcome="aired"} 2.0' in metrics
    assert 'anchor_build_info{version=' in metrics and "anchor_airing_lateness_seconds_bucket" in metrics
    assert 'anchor_next_airing_timestamp_seconds{channel="t"}' in metrics
    # sd_notify: ready once planned, watchdog pings from the loop, a status line, stopping on SIGTERM.
    text = "\n".join(messages)
    assert "READY=1" in text and "WATCHDOG=1" in text and "STOPPING=1" in text
    assert any(line.startswith("STATUS=") for m in messages for line in m.splitlines())
    assert text.index("READY=1") < text.index("STOPPING=1")


def test_killed_mid_airing_then_restarted(site: tuple[Project, int]) -> None:
    project, _ = site
    channel(project, slot("long", f"at = {at(STARTUP + 5)}", "long.md") + slot("after", f"at = {at(STARTUP + 40)}"))
    aired_dir = project.root / "data" / "aired" / "t"
    with Daemon(project) as first:
        deadline = time.monotonic() + 60
        while not list(aired_dir.rglob(".*-long.mp4.*.part")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(aired_dir.rglob(".*-long.mp4.*.part")), first.log[-2000:]  # on air: named when it ends
        time.sleep(1.0)  # well inside the ~20 s program
        first.kill()  # SIGKILL: no chance to log anything
    assert [r.outcome.value for r in rows(project) if r.slot == "long"] == ["on-air"]
    with Daemon(project) as second:
        found = wait_rows(project, lambda r: final(r, "after", "long"), timeout=70)
        second.wait_log(r"cut by a crash")
        assert second.stop() == 0
    by_slot = {r.slot: r for r in found}
    assert len([r for r in found if r.slot == "long"]) == 1
    assert by_slot["long"].outcome.value == "interrupted" and by_slot["long"].started_at is not None
    assert by_slot["after"].outcome.value == "aired"
    # Never aired a second time, and nothing in the aired folder says the cut airing went out whole.
    assert list(aired_dir.rglob("*-long.mp4*")) == []
    assert [p.name.split("-", 1)[1] for p in aired_dir.rglob("*.mp4")] == ["after.mp4"]


@pytest.mark.dated
def test_restart_airs_late_within_grace_and_logs_the_rest_missed(site: tuple[Project, int]) -> None:
    project, _ = site
    channel(project, slot("future", f"at = {at(3600)}"))
    with Daemon(project) as first:
        first.wait_log(r"first start with this as-run log: nothing to catch up on")
        first.wait_log(r"on air: 1 channels")
        assert first.stop() == 0
    time.sleep(4)  # the daemon is down; two airings fall in that gap, one long before it
    channel(project,
            slot("future", f"at = {at(3600)}")
            + slot("recent", f"at = {at(-2)}", grace="5m")
            + slot("skipper", f"at = {at(-2)}", late="skip")
            + slot("before", f"at = {at(-600)}", grace="5m"))
    with Daemon(project) as daemon:
        found = wait_rows(project, lambda r: final(r, "recent", "skipper"), timeout=60)
        assert daemon.stop() == 0
    by_slot = {r.slot: r for r in found}
    assert by_slot["recent"].outcome.value == "late"
    assert by_slot["skipper"].outcome.value == "missed" and "not running" in by_slot["skipper"].error
    # Planned before the daemon last ran: that run never had it to air, so this one does not call it missed.
    assert "before" not in by_slot and len(found) == 2


@pytest.mark.dated
def test_catch_up_airs_only_the_latest_missed_airing_of_a_slot(site: tuple[Project, int]) -> None:
    """A repeating slot that missed several airings while down airs once, not a pile-up; what the log
    already has is left alone, and a slot that says late = "skip" airs none."""
    from datetime import datetime, timezone

    from anchor.config import load_settings
    from anchor.schedule.catchup import catch_up
    from anchor.schedule.channel import load_channels
    from anchor.schedule.planner import plan

    project, _ = site
    channel(project, slot("often", 'every = "10s"\nbetween = ["09:00", "09:02"]', grace="5m")
            + slot("skipper", 'every = "10s"\nbetween = ["09:00", "09:02"]', late="skip"))
    channels, _ = load_channels(load_settings(project.config))
    down_from = datetime(2026, 12, 4, 1, 0, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
    now = down_from + timedelta(seconds=35)
    while_down = plan(channels, down_from, now)
    logged = {("t", "often", down_from)}  # the first one was in the log already
    decided = catch_up(while_down, logged, now)
    assert [(p.slot, p.planned_at_utc) for p in decided.air_late] == [("often", down_from + timedelta(seconds=30))]
    missed = [(item.slot, item.planned_at_utc, why) for item, why in decided.missed]
    assert [(s, t) for s, t, _ in missed if s == "often"] == [("often", down_from + timedelta(seconds=n))
                                                              for n in (10, 20)]
    assert all("took its place" in why for s, _, why in missed if s == "often")
    assert [t for s, t, _ in missed if s == "skipper"] == [down_from + timedelta(seconds=n) for n in (0, 10, 20, 30)]
    assert "not running at its instant" in missed[-1][2]
    # Past its grace, even the latest is only logged.
    late = catch_up(while_down, logged, now + timedelta(minutes=10))
    assert late.air_late == [] and len(late.missed) == len(while_down) - 1


def test_edits_reload_and_a_bad_edit_keeps_the_last_good_schedule(site: tuple[Project, int]) -> None:
    project, _ = site
    path = channel(project, slot("kept", f"at = {at(25)}"))
    with Daemon(project) as daemon:
        # Edited while the daemon starts (after its first load, before it is on air): still a change.
        daemon.wait_log(r"status and live-room webhooks on")
        good = path.read_text(encoding="utf-8")
        path.write_text(good + '[[slot]]\nname = "broken"\ncron = "0 25 * * *"\nscript = "short.md"\n', encoding="utf-8")
        problem = daemon.wait_log(r"channel file not loaded: (\S+):(\d+): .*cron hour 25", timeout=20)
        assert problem.group(1).endswith("t.toml") and problem.group(2) == "13"
        # A good edit (and SIGHUP, as `systemctl reload` sends) adds a slot; the kept one is not doubled.
        path.write_text(good + f'[[slot]]\nname = "added"\nat = {at(10)}\nscript = "short.md"\n', encoding="utf-8")
        daemon.proc.send_signal(1)
        daemon.wait_log(r"schedule loaded: 1 channels", timeout=20)
        found = wait_rows(project, lambda r: final(r, "kept", "added"), timeout=60)
        # `anchor history` reads while the daemon writes.
        history = project.run("history", "--csv", timeout=60)
        assert history.returncode == 0 and "kept" in history.stdout and "added" in history.stdout
        assert daemon.stop() == 0
    assert sorted(r.slot for r in found) == ["added", "kept"]
    assert all(r.outcome.value == "aired" for r in found)


@pytest.fixture
def small_data_disk(site: tuple[Project, int]):  # type: ignore[no-untyped-def]
    """The site's data folder on its own 64 MB filesystem, so the test can fill it."""
    project, _ = site
    data = project.root / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(data)], capture_output=True,
                             text=True, timeout=30)
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs as root: {mounted.stderr.strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], capture_output=True, timeout=30)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_data_disk_is_logged_and_survived(site: tuple[Project, int], small_data_disk: Path) -> None:
    """A full disk: what cannot be rendered fails (logged once the disk has room); what was made ready still
    airs, and its row, refused at claim time, is written once there is room — nothing that aired is lost."""
    project, port = site
    project.script("fresh.md", "+++\ntitle = \"新内容\"\n+++\n\n磁盘满的时候，这一条没法渲染。\n")
    project.script("later.md", "+++\ntitle = \"恢复\"\n+++\n\n空间回来了，这一条照常播出。\n")
    path = channel(project, slot("before", f"at = {at(STARTUP)}"))
    with Daemon(project) as daemon:
        wait_rows(project, lambda r: final(r, "before"), timeout=60)
        filler = _fill(small_data_disk)
        path.write_text(path.read_text(encoding="utf-8") + slot("during", f"at = {at(8)}", "fresh.md")
                        + slot("ready", f"at = {at(12)}"), encoding="utf-8")
        daemon.wait_log(r"No space left on device|database or disk is full", timeout=60)
        deadline = time.monotonic() + 60
        aired = small_data_disk / "aired" / "t"
        while not list(aired.rglob("*-ready.mp4")) and time.monotonic() < deadline:  # it went out whole
            time.sleep(0.2)
        assert list(aired.rglob("*-ready.mp4")), daemon.log[-3000:]
        assert daemon.proc.poll() is None, "the daemon must keep running"
        assert all(r.slot != "ready" for r in rows(project))  # the disk refused its row so far
        filler.unlink()
        path.write_text(path.read_text(encoding="utf-8") + slot("after", f"at = {at(10)}", "later.md"),
                        encoding="utf-8")
        # Rows the full disk refused are written by the next heartbeat (every 15 s).
        found = wait_rows(project, lambda r: final(r, "before", "during", "ready", "after"), timeout=60)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert daemon.stop() == 0
    by_slot = {r.slot: r for r in found}
    assert by_slot["before"].outcome.value == "aired"  # what aired before the disk filled is kept
    assert by_slot["during"].outcome.value == "failed" and "No space left" in by_slot["during"].error
    assert by_slot["during"].started_at is None  # it never started
    assert by_slot["ready"].outcome.value in ("aired", "late") and by_slot["ready"].started_at is not None
    assert by_slot["after"].outcome.value == "aired"  # and it recovered once space returned
    # The counters agree with the as-run log: every airing that went out is counted and timed once.
    went_out = sum(1 for r in found if r.outcome.value in ("aired", "late"))
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith('anchor_airings_total{channel="t",outcome="aired"}')
                  or line.startswith('anchor_airings_total{channel="t",outcome="late"}'))
    timed = float(next(line.rsplit(" ", 1)[1] for line in metrics.splitlines()
                       if line.startswith('anchor_airing_lateness_seconds_count{channel="t"}')))
    assert counted == timed == went_out == 3, (counted, timed, went_out)
    assert "No space left on device" in daemon.log


def test_heartbeat_notices_a_wall_clock_step(site: tuple[Project, int], caplog: pytest.LogCaptureFixture) -> None:
    """Stepping this machine's clock in a test is not on: the heartbeat is given the step instead."""
    import asyncio
    import logging

    from anchor.config import load_settings
    from anchor.daemon import Daemon as AnchorDaemon
    from anchor.metrics import CLOCK_JUMPS
    from anchor.onair.timetable import JOB_PREFIX
    from anchor.schedule.channel import load_channels

    project, _ = site
    channel(project, slot("later", f"at = {at(3600)}"))
    settings = load_settings(project.config)

    async def scenario() -> tuple[float, float, list[str]]:
        daemon = AnchorDaemon(settings)
        channels, _ = load_channels(settings)
        await daemon._use(channels)
        before = CLOCK_JUMPS._value.get()
        daemon.clock._last = (time.time() - 120, time.monotonic() - 5)  # the wall clock moved 115 s more than time did
        await daemon._heartbeat()
        after_step = CLOCK_JUMPS._value.get() - before
        await daemon._heartbeat()  # a normal beat: no jump
        after_calm = CLOCK_JUMPS._value.get() - before
        jobs = [j.id for j in daemon.scheduler.get_jobs() if j.id.startswith(JOB_PREFIX)]
        if daemon.prepare_task:
            daemon.prepare_task.cancel()
            await asyncio.gather(daemon.prepare_task, return_exceptions=True)
        return after_step, after_calm, jobs

    with caplog.at_level(logging.WARNING, logger="anchor.daemon"):
        step, calm, jobs = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert step == 1 and calm == 1
    assert "wall clock jumped by +115" in caplog.text
    assert len(jobs) == 1  # the plan was rebuilt: the airing an hour away is scheduled


def test_a_clean_stop_mid_airing_logs_one_line_and_no_traceback(site: tuple[Project, int]) -> None:
    """SIGTERM (systemctl stop, Ctrl-C) while a program is on air: the airing is logged `interrupted`, with
    its end, in one log line; nothing else complains, and every line carries its time."""
    project, _ = site
    channel(project, slot("long", f"at = {at(STARTUP)}", "long.md"))
    with Daemon(project) as daemon:
        daemon.wait_log(r"airing 'long.md' to", timeout=60)
        time.sleep(1.0)
        assert daemon.stop() == 0
        log = daemon.log
    (row,) = rows(project)
    assert row.outcome.value == "interrupted" and row.error == "cut by shutdown"
    assert row.started_at is not None and row.ended_at is not None and row.ended_at > row.started_at
    assert "Traceback" not in log and " ERROR " not in log, log
    assert len(re.findall(r"interrupted by shutdown", log)) == 1, log
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) ")
    assert all(stamp.match(line) for line in log.splitlines() if line.strip()), log


def test_each_channel_file_stands_alone_and_keeps_its_last_good_version(site: tuple[Project, int]) -> None:
    """A broken channel file never takes the others off air: at start it stays off (it never loaded), a good
    edit to another channel still airs, and once a file has loaded, breaking it later — even across a
    restart — airs its last good version."""
    project, _ = site
    good = channel(project, slot("a1", f"at = {at(STARTUP)}") + slot("later", f"at = {at(STARTUP + 37)}"), name="a")
    broken = channel(project, slot("b1", f"at = {at(10)}"), name="b")
    broken.write_text(broken.read_text(encoding="utf-8") + "[[slot]\n", encoding="utf-8")  # a syntax error
    with Daemon(project) as daemon:
        daemon.wait_log(r"on air: 1 channels")
        assert re.search(r"channel file not loaded: \S*b\.toml:\d+: TOML syntax error", daemon.log)
        assert re.search(r"b\.toml: this file has errors and never loaded before: its channel stays off", daemon.log)
        good.write_text(good.read_text(encoding="utf-8") + slot("a2", f"at = {at(6)}"), encoding="utf-8")
        wait_rows(project, lambda r: final(r, "a1", "a2"), timeout=60)
        assert daemon.stop() == 0
    good.write_text(good.read_text(encoding="utf-8").replace('timezone = "Asia/Shanghai"', "timezone = Asia"),
                    encoding="utf-8")
    with Daemon(project) as daemon:
        daemon.wait_log(r"a\.toml: this file has errors: channel a airs its last good version")
        found = wait_rows(project, lambda r: final(r, "later"), timeout=70)
        assert daemon.stop() == 0
    # (On time is the other tests' and the benchmarks' business; here: each airs, once.)
    assert {r.slot: r.outcome.value in ("aired", "late") for r in found} == {"a1": True, "a2": True, "later": True}
    assert (project.root / "data" / "last-good" / "schedules" / "a.toml").is_file()
    assert not (project.root / "data" / "last-good" / "schedules" / "b.toml").exists()


def test_a_bad_edit_to_a_rendered_script_airs_its_last_good_version(site: tuple[Project, int]) -> None:
    """[pause 999s] saved half a minute before air: the program already made airs, with a warning that names
    the file and line; the row says which text aired (its content hash)."""
    project, _ = site
    channel(project, slot("soon", f"at = {at(25)}"))
    with Daemon(project) as daemon:
        daemon.wait_log(r"rendered clip .* for 'short\.md'", timeout=60)  # made ready ahead
        script = project.scripts / "short.md"
        good_hash = load_script(script, project.scripts).content_hash
        script.write_text(script.read_text(encoding="utf-8") + "\n[pause 999s]\n", encoding="utf-8")
        warned = daemon.wait_log(r"WARNING \S+: (\S+short\.md):(\d+): .*its last good version .* airs until it is "
                                 r"fixed", timeout=30)
        (row,) = wait_rows(project, lambda r: final(r, "soon"), timeout=60)
        assert daemon.stop() == 0
    assert row.outcome.value in ("aired", "late") and row.error is None, (row.outcome, row.error)
    bad_line = script.read_text(encoding="utf-8").splitlines().index("[pause 999s]") + 1
    assert int(warned.group(2)) == bad_line
    assert row.script_hash == good_hash and row.audio_hash  # the text that aired, not the broken one


def test_world_writable_inputs_are_warned_about_and_refused_as_a_service(site: tuple[Project, int]) -> None:
    project, _ = site
    channel(project, slot("x", f"at = {at(3600)}"))
    project.scripts.chmod(0o777)
    checked = project.run("check")
    assert checked.returncode == 0 and "every user of this PC may change the files here" in checked.stderr
    assert "chmod o-w" in checked.stderr
    with Daemon(project, env={"INVOCATION_ID": "0123456789abcdef"}) as service:  # as systemd starts it
        assert service.proc.wait(timeout=60) == 2
        assert re.search(r"error: \S*scripts_content: \S+ every user of this PC may change", service.log), service.log
    with Daemon(project) as at_a_terminal:
        at_a_terminal.wait_log(r"WARNING .*scripts_content: \S+ every user of this PC may change")
        at_a_terminal.wait_log(r"on air: 1 channels")
        assert at_a_terminal.stop() == 0


def test_killed_just_after_an_airing_starts_it_is_never_aired_twice(site: tuple[Project, int]) -> None:
    """SIGKILL within a blink of the start (the start time may not be written yet): after the restart the
    airing is `interrupted` with an end, not aired again; no part file is left in the aired folder."""
    project, _ = site
    channel(project, slot("cut", f"at = {at(STARTUP + 5)}", "long.md") + slot("after", f"at = {at(STARTUP + 35)}"))
    aired = project.root / "data" / "aired" / "t"
    with Daemon(project) as first:
        first.wait_log(r"airing 'long\.md' to", timeout=60)
        first.kill()
    assert list(aired.rglob(".*.part"))  # the crash left its part file
    with Daemon(project) as second:
        found = wait_rows(project, lambda r: final(r, "cut", "after"), timeout=70)
        second.wait_log(r"cut by a crash")
        assert second.stop() == 0
    cut = [r for r in found if r.slot == "cut"]
    assert len(cut) == 1 and cut[0].outcome.value == "interrupted" and cut[0].ended_at is not None, cut
    assert list(aired.rglob("*cut*")) == [] and list(aired.rglob(".*.part")) == []
    assert [p.name.split("-", 1)[1] for p in aired.rglob("*.mp4")] == ["after.mp4"]


def test_a_restart_into_a_full_disk_airs_and_settles_the_crash_later(site: tuple[Project, int],
                                                                      small_data_disk: Path) -> None:
    """Killed mid-airing, restarted while the data disk is full: the daemon stays up (no restart loop with
    nothing on air) and marks the cut airing interrupted once the disk has room again."""
    project, _ = site
    channel(project, slot("cut", f"at = {at(STARTUP + 5)}", "long.md"))
    with Daemon(project) as first:
        first.wait_log(r"airing 'long\.md' to", timeout=60)
        first.kill()
    filler = _fill(small_data_disk)
    with Daemon(project) as second:
        second.wait_log(r"settled once the database takes writes again", timeout=60)
        time.sleep(3)
        assert second.proc.poll() is None, second.log[-3000:]
        assert [r.outcome.value for r in rows(project) if r.slot == "cut"] == ["on-air"]
        filler.unlink()
        found = wait_rows(project, lambda r: final(r, "cut"), timeout=60)  # the next heartbeat settles it
        second.wait_log(r"cut by a crash")
        assert second.stop() == 0
    cut = [r for r in found if r.slot == "cut"]
    assert len(cut) == 1 and cut[0].outcome.value == "interrupted" and cut[0].ended_at is not None, cut


def test_rows_a_full_disk_refused_survive_a_crash(site: tuple[Project, int], small_data_disk: Path) -> None:
    """While the disk is full, an airing goes out with its row held; the daemon is then killed before the
    database takes the row. The restart writes it as aired from the space reserved on the data disk — not
    missed, not aired a second time by the catch-up."""
    project, _ = site
    path = channel(project, slot("before", f"at = {at(STARTUP)}"))
    with Daemon(project) as first:
        wait_rows(project, lambda r: final(r, "before"), timeout=60)
        filler = _fill(small_data_disk)
        path.write_text(path.read_text(encoding="utf-8") + slot("held", f"at = {at(6)}"), encoding="utf-8")
        first.wait_log(r"airing t/held/\S+: aired short\.md", timeout=60)
        first.kill()
    assert all(r.slot != "held" for r in rows(project))  # the database never took it
    filler.unlink()
    with Daemon(project) as second:
        found = wait_rows(project, lambda r: final(r, "held"), timeout=60)
        second.wait_log(r"took over 1 rows")
        time.sleep(2)  # a catch-up would start within this
        assert second.stop() == 0
    held = [r for r in found if r.slot == "held"]
    assert len(held) == 1 and held[0].outcome.value == "aired" and held[0].started_at is not None, held
    aired = small_data_disk / "aired" / "t"
    assert len(list(aired.rglob("*-held.mp4"))) == 1
    assert "airing 'short.md'" not in second.log  # not aired again


def test_held_rows_keep_their_last_whole_state_when_a_write_is_torn(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from anchor.pending import HALF, PendingRows
    from anchor.store import Airing, Outcome, RotationStep

    planned = datetime(2026, 12, 4, 2, tzinfo=UTC)
    first = Airing(channel="c", slot="s", planned_at=planned, outcome=Outcome.ON_AIR, script="a.md")
    step = RotationStep(index=1, length=3, instant=planned)
    held = PendingRows(tmp_path)
    assert held.reserve()
    held.save([(first, step)])
    second = Airing(channel="c", slot="s", planned_at=planned, outcome=Outcome.AIRED, script="a.md",
                    started_at=planned, ended_at=planned + timedelta(seconds=3))
    held.save([(second, step)])
    held.close()
    again = PendingRows(tmp_path)
    assert again.reserve()
    ((row, got_step),) = again.load()
    assert (row.outcome, row.planned_at, row.ended_at, got_step) == (Outcome.AIRED, planned, second.ended_at, step)
    again.close()
    with (tmp_path / "asrun-pending.bin").open("r+b") as raw:  # the newest half torn by a crash mid-write
        raw.seek(0)  # generation 2 went to half 0
        raw.write(b"\xff" * 100)
    torn = PendingRows(tmp_path)
    assert torn.reserve() and [r.outcome for r, _ in torn.load()] == [Outcome.ON_AIR]
    assert (tmp_path / "asrun-pending.bin").stat().st_size == 2 * HALF
    torn.close()
