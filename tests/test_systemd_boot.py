"""The shipped unit under a real systemd 252, booted as PID 1 of a private namespace (no VM).

One boot for the module (tests/systemd_boot.py says how, and how nothing of the host changes): the unit is
systemd/anchor.service as shipped plus the drop-in below, so a change to the shipped hardening is tested
here as it is. The site the service airs lives where the README installs it: /etc/anchor (a folder of the
test's, bound there), /var/lib/anchor and /var/cache/anchor (the State/CacheDirectory, in an overlay), and
/opt/anchor/.venv (a venv made as the README makes it, with this checkout's packages). The user `anchor` is
made by `useradd --system` inside the namespace, in the overlay over /etc: the host's /etc/passwd stays as is.

In order: Type=notify is "activating" until READY (with STATUS=), the hardened service airs a slot (as-run
row `aired`, full talking clip, an mp4), LoadCredential= hands it the OBS password (checked by a stand-in
OBS websocket that verifies obs-websocket v5 authentication), the watchdog restarts a SIGSTOPped daemon, and
a stop is clean, as is the end of the namespace.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, script_text
from tests.daemon_harness import SHORT, at, free_port, slot
from tests.systemd_boot import (
    DEPENDENCIES,
    FakeObsWebsocket,
    Machine,
    dependencies,
    read_rows,
    thread_states,
    unavailable_reason,
    unit_settings,
    venv_for_unit,
    wait_for,
)

# Its tests share one booted systemd for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_systemd_boot")

UNIT = REPO / "systemd" / "anchor.service"
SERVICE = "anchor.service"
WATCHDOG_SEC = 3
AIR_IN = 15  # seconds from writing the site to the file channel's slot: boot, READY and the render fit
STATE = "/var/lib/anchor"
CREDENTIAL_ID = "anchor"  # LoadCredential=anchor:/etc/anchor/credentials
LOG_INSIDE = "/run/anchor-test"  # the daemon's output (no journald in this boot), a folder of the test's

# Only what a test must change. ExecStart stays as shipped: the namespace has /opt/anchor/.venv and
# /etc/anchor/anchor.toml where the README puts them.
DROP_IN = f"""\
# tests/test_systemd_boot.py: the shipped anchor.service plus only this.
[Service]
# A frozen daemon is killed after {WATCHDOG_SEC} s, not 30 s (RestartSec= stays as shipped).
WatchdogSec={WATCHDOG_SEC}
# This minimal boot runs no journald: the daemon's output goes to a file the test reads.
StandardOutput=append:{LOG_INSIDE}/anchor.log
StandardError=inherit
"""

# The test's own boot target and the units every service depends on by default.
UNITS = {
    "anchor-test.target": "[Unit]\nDescription=anchor boot test\nRequires=basic.target\nAfter=basic.target\n",
    "basic.target": "[Unit]\nDescription=Basic System\nRequires=sysinit.target\nAfter=sysinit.target\n",
    "sysinit.target": "[Unit]\nDescription=System Initialization\nDefaultDependencies=no\n",
    "shutdown.target": "[Unit]\nDescription=System Shutdown\nDefaultDependencies=no\n",
    "system.slice": "[Unit]\nDescription=System Slice\nDefaultDependencies=no\n",
}
# Host paths that a leak out of the namespace would create or change.
HOST_WATCH = ("/etc/anchor", "/var/lib/anchor", "/var/cache/anchor", "/opt/anchor")
HOST_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/var/log/lastlog", "/var/log/faillog")


@dataclass
class Booted:
    machine: Machine
    obs: FakeObsWebsocket
    root: Path
    site: Path
    password: str
    metrics_port: int
    air_at: float  # time.time() of the file channel's slot
    start_trace: list[dict[str, str]] = field(default_factory=list)
    ready: dict[str, str] = field(default_factory=dict)
    ready_at: float = 0.0  # time.time() when the unit was seen active
    aired: dict[str, Any] | None = None  # the slot's as-run row, once seen
    host_files: dict[str, bytes] = field(default_factory=dict)
    host_paths: dict[str, bool] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def log(self) -> str:
        path = self.root / "logs" / "anchor.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def state(self, relative: str = "") -> Path:
        return self.machine.upper(f"{STATE}/{relative}".rstrip("/"))

    def rows(self, strict: bool = False) -> list[dict[str, Any]]:
        return read_rows(self.state("anchor.db"), self.root / "scratch", strict)

    def show(self, *properties: str) -> dict[str, str]:
        return self.machine.show(SERVICE, *properties)

    def main_host_pid(self) -> int:
        pid = int(self.show("MainPID")["MainPID"])
        assert pid, self.diagnostics()
        host = self.machine.host_pid(pid)
        assert host, f"MainPID {pid} not found from the host"
        return host

    def require_started(self) -> None:
        """The unit reached READY at the start (else each test fails at once, not after waiting for nothing)."""
        assert self.ready.get("ActiveState") == "active", f"not active: {self.start_trace}\n{self.diagnostics()}"

    def diagnostics(self) -> str:
        status = self.machine.systemctl("status", SERVICE).stdout if self.machine.pid1 else ""
        return f"{status}\n--- daemon log ---\n{self.log[-4000:]}\n{self.machine.diagnostics()}"


def _shipped_unit() -> tuple[str, dict[str, list[str]]]:
    text = UNIT.read_text(encoding="utf-8")
    return text, unit_settings(text)


def _write_site(site: Path, settings: dict[str, list[str]], password: str, metrics_port: int, obs_port: int,
                air_at: str) -> None:
    """/etc/anchor as the README sets it up: anchor.toml, schedules, scripts (a+rX), credentials (root only)."""
    (site / "schedules").mkdir(parents=True)
    (site / "scripts_content").mkdir()
    (site / "anchor.toml").write_text(f"""\
[paths]
data_dir = "{STATE}"
cache_dir = "/var/cache/anchor"
scripts_dir = "scripts_content"
schedules_dir = "schedules"

[speech.chain]
engines = ["espeak"]
request_timeout = 10.0
retries = 1
backoff = 0.05
breaker_failures = 3
breaker_cooldown = 60

[daemon]
metrics_port = {metrics_port}
http_port = 0
stop_timeout = 5

[obs.studio]
host = "127.0.0.1"
port = {obs_port}
request_timeout = 2.0
""", encoding="utf-8")
    (site / "scripts_content" / "short.md").write_text(script_text(SHORT, title="短通知"), encoding="utf-8")
    head = '[channel]\nid = "{id}"\nname = "测试频道"\ntimezone = "Asia/Shanghai"\noutput = "{output}"\n\n'
    (site / "schedules" / "t.toml").write_text(
        head.format(id="t", output="file") + slot("one", f"at = {air_at}"), encoding="utf-8")
    # Within the pre-render horizon, so the daemon connects to OBS to prepare it; never aired by the test.
    (site / "schedules" / "studio.toml").write_text(
        head.format(id="studio", output="obs:studio") + slot("later", f"at = {at(3 * 3600)}"), encoding="utf-8")
    for entry in [site, *site.rglob("*")]:
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    # The unit loads the credentials folder whole; this site uses OBS and no other secret.
    assert settings["LoadCredential"] == [f"{CREDENTIAL_ID}:/etc/anchor/credentials"], settings["LoadCredential"]
    (site / "credentials").mkdir(mode=0o700)
    (site / "credentials").chmod(0o700)
    (site / "credentials" / "obs-password").write_text(password + "\n", encoding="utf-8")
    (site / "credentials" / "obs-password").chmod(0o600)


def _record_start(booted: Booted, timeout: float = 90) -> None:
    """Start the unit without waiting and watch it: activating (the daemon runs, not READY) → active."""
    started = time.monotonic()
    result = booted.machine.systemctl("start", "--no-block", SERVICE)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = booted.show("ActiveState", "SubState", "MainPID", "StatusText", "Result")
        if not booted.start_trace or booted.start_trace[-1] != now:
            booted.start_trace.append(now)
        booted.ready_at = time.time()
        began = any(t["ActiveState"] == "activating" for t in booted.start_trace)
        if now["ActiveState"] in ("active", "failed") or now["SubState"] == "auto-restart" or (
                now["ActiveState"] == "inactive" and began):
            break  # READY, or the daemon ended before it (then every test fails at once, with why)
        time.sleep(0.05)
    booted.timings["start → active"] = time.monotonic() - started
    booted.ready = booted.show("ActiveState", "SubState", "MainPID", "StatusText", "NRestarts",
                               "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"cannot boot systemd in a namespace here: {reason}")
    text, settings = _shipped_unit()
    binary, config = settings["ExecStart"][0].split()[0], settings["ExecStart"][0].split()[2]
    venv = Path(binary).parent.parent
    assert re.fullmatch(r"/opt/[^/]+/\.venv/bin/anchor", binary), f"ExecStart names {binary}: update this test"
    assert config == "/etc/anchor/anchor.toml", f"ExecStart's config is {config}: update this test"

    root = tmp_path_factory.mktemp("boot")
    site, logs, units = root / "etc-anchor", root / "logs", root / "units"
    logs.mkdir()
    (units / f"{SERVICE}.d").mkdir(parents=True)
    for name, unit in UNITS.items():
        (units / name).write_text(unit, encoding="utf-8")
    (units / SERVICE).write_text(text, encoding="utf-8")
    (units / f"{SERVICE}.d" / "test.conf").write_text(DROP_IN, encoding="utf-8")
    venv_for_unit(root / "venv", installed_at=str(venv))

    password = secrets.token_urlsafe(18)
    host_files = {p: Path(p).read_bytes() for p in HOST_FILES if Path(p).exists()}
    host_paths = {p: Path(p).exists() for p in HOST_WATCH}
    host_paths |= {str(p): True for p in Path("/tmp").glob("systemd-private-*")}
    with FakeObsWebsocket(password) as obs:
        air_at = time.time() + AIR_IN
        metrics_port = free_port()
        _write_site(site, settings, password, metrics_port, obs.port, at(AIR_IN))
        machine = Machine(
            root, units,
            overlays=["/etc", "/var/lib", "/var/cache"],
            tmpfs=["/" + venv.parts[1]],
            binds=[(site, "/etc/anchor"), (root / "venv", str(venv)), (dependencies(), f"{venv}/{DEPENDENCIES}"),
                   (logs, LOG_INSIDE)],
            setup=["getent passwd anchor >/dev/null || useradd --system --no-log-init --user-group "
                   "--home-dir /var/lib/anchor --shell /usr/sbin/nologin anchor"])
        b = Booted(machine, obs, root, site, password, metrics_port, air_at, host_files=host_files,
                   host_paths=host_paths)
        try:
            began = time.monotonic()
            machine.boot()
            b.timings["boot"] = time.monotonic() - began
            _record_start(b)
            yield b
        finally:
            problems = machine.shutdown()
            timings = {k: round(v, 2) for k, v in b.timings.items()}
            print(f"\nsystemd boot timings (s): {json.dumps(timings, ensure_ascii=False)}")
            assert not problems, problems


# --- 1. Type=notify -----------------------------------------------------------------------------------


def test_the_unit_is_active_only_once_the_daemon_says_ready(booted: Booted) -> None:
    trace, ready = booted.start_trace, booted.ready
    assert ready["ActiveState"] == "active" and ready["SubState"] == "running", booted.diagnostics()
    # The process ran for a while with systemd still waiting for READY=1 …
    before = [t for t in trace if t["ActiveState"] == "activating"]
    assert before and all(t["SubState"] == "start" for t in before), trace
    assert any(t["MainPID"] != "0" for t in before), f"never saw the daemon running before READY: {trace}"
    assert all(t["StatusText"] == "" for t in before), trace
    # … and the datagram that carried READY=1 carried the STATUS= the unit shows.
    assert re.fullmatch(r"next: t short\.md at \d{4}-\d\d-\d\d \d\d:\d\d[+-]\d\d:\d\d", ready["StatusText"]), ready
    assert int(ready["ActiveEnterTimestampMonotonic"]) > int(ready["ExecMainStartTimestampMonotonic"])
    booted.timings["exec → READY"] = (int(ready["ActiveEnterTimestampMonotonic"])
                                      - int(ready["ExecMainStartTimestampMonotonic"])) / 1e6
    assert booted.machine.systemctl("is-active", SERVICE).stdout.strip() == "active"
    status = booted.machine.systemctl("status", SERVICE).stdout
    assert "Active: active (running)" in status and f'Status: "{ready["StatusText"]}"' in status, status
    assert "on air: 2 channels" in booted.log, booted.diagnostics()


# --- 2. the hardened service airs -----------------------------------------------------------------------


def test_the_hardened_service_airs_a_slot(booted: Booted) -> None:
    booted.require_started()
    # The unit systemd loaded is the shipped file, byte for byte, plus the test's drop-in and nothing else.
    loaded = booted.show("FragmentPath", "DropInPaths", "User", "ProtectSystem", "ProtectHome", "PrivateUsers",
                         "MemoryDenyWriteExecute", "RestrictNamespaces", "WatchdogUSec", "RestartUSec")
    assert (booted.machine.units / SERVICE).read_bytes() == UNIT.read_bytes()
    assert loaded["FragmentPath"] == f"/etc/systemd/system/{SERVICE}", loaded
    assert loaded["DropInPaths"] == f"/etc/systemd/system/{SERVICE}.d/test.conf", loaded
    assert loaded["User"] == "anchor" and loaded["ProtectSystem"] == "strict" and loaded["ProtectHome"] == "yes"
    assert loaded["PrivateUsers"] == loaded["MemoryDenyWriteExecute"] == loaded["RestrictNamespaces"] == "yes"
    assert loaded["WatchdogUSec"] == f"{WATCHDOG_SEC}s", loaded
    host = booted.main_host_pid()
    status = Path(f"/proc/{host}/status").read_text()
    passwd = booted.machine.upper("/etc/passwd").read_text()
    uid = re.search(r"^anchor:[^:]*:(\d+):", passwd, re.M)
    assert uid, "useradd did not make the user anchor in the namespace"
    # The sandbox really is on for the process that airs (and so for its ffmpeg and espeak-ng children).
    assert re.search(rf"^Uid:\s+{uid.group(1)}\s", status, re.M), status
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status  # SystemCallFilter=, MemoryDenyWriteExecute=
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M) and re.search(r"^CapEff:\s+0+$", status, re.M), status

    def aired() -> list[dict[str, Any]] | None:
        rows = [r for r in booted.rows() if r["slot"] == "one" and r["outcome"].lower() != "on_air"]
        return rows or None

    rows = wait_for(aired, booted.air_at - time.time() + 60, "the slot's as-run row", interval=0.5,
                    details=booted.diagnostics)
    booted.timings["slot → logged"] = time.time() - booted.air_at
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["outcome"].lower() == "aired", (row, booted.diagnostics())
    booted.aired = row
    assert row["engine"] == "espeak" and row["aired_as"] == "clip" and not row["degraded"] and not row["error"], row
    aired_files = sorted(booted.state("aired/t").rglob("*-one.mp4"))
    assert len(aired_files) == 1, (list(booted.state().rglob("*")), booted.diagnostics())
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of",
                            "json", str(aired_files[0])], capture_output=True, text=True, timeout=30, check=True)
    info = json.loads(probe.stdout)
    assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}, info
    assert float(info["format"]["duration"]) > 1.0, info
    assert aired_files[0].stat().st_uid == int(uid.group(1))  # written by the service's user, in its StateDirectory
    assert "Traceback" not in booted.log, booted.log[-4000:]


# --- 3. LoadCredential= ------------------------------------------------------------------------------------


def test_load_credential_hands_the_daemon_the_obs_password(booted: Booted) -> None:
    booted.require_started()
    obs = booted.obs
    first = wait_for(obs.accepted, 60, "an OBS connection authenticated with the credential's password",
                     interval=0.2, details=lambda: f"attempts: {obs.attempts}\n{booted.diagnostics()}")[0]
    booted.timings["READY → OBS authenticated"] = first.at - booted.ready_at
    assert all(a.accepted for a in obs.attempts), obs.attempts  # never a wrong or missing password
    wait_for(lambda: f"OBS 'studio' connected at 127.0.0.1:{obs.port}" in booted.log, 10,
             "the daemon's own word that OBS is connected", details=booted.diagnostics)

    def connected_metric() -> bool:
        text = urllib.request.urlopen(f"http://127.0.0.1:{booted.metrics_port}/metrics", timeout=5).read().decode()
        return 'anchor_obs_connected{obs="studio"} 1.0' in text

    wait_for(connected_metric, 10, "anchor_obs_connected 1")
    # The password came from LoadCredential= and nowhere else: not the environment, not the TOML; the source
    # stays root-only, the service (user anchor) reads its own copy in $CREDENTIALS_DIRECTORY.
    environ = Path(f"/proc/{booted.main_host_pid()}/environ").read_bytes().decode().split("\0")
    assert "CREDENTIALS_DIRECTORY=/run/credentials/anchor.service" in environ, environ
    assert not any(v.startswith("ANCHOR_OBS_PASSWORD") or booted.password in v for v in environ)
    assert booted.password not in (booted.site / "anchor.toml").read_text()
    source = booted.site / "credentials" / "obs-password"
    assert source.stat().st_mode & 0o777 == 0o600 and source.stat().st_uid == 0
    # systemd names a folder's files <id>_<file>; the folder holds nothing else, and nothing else arrives.
    inside = booted.machine.nsenter("cat", f"/run/credentials/anchor.service/{CREDENTIAL_ID}_obs-password")
    listed = booted.machine.nsenter("ls", "-A", "/run/credentials/anchor.service")
    assert listed.stdout.split() == [f"{CREDENTIAL_ID}_obs-password"], listed
    assert inside.stdout.strip() == booted.password, inside.stderr


# --- 4. the watchdog -----------------------------------------------------------------------------------------


def test_the_watchdog_restarts_a_frozen_daemon(booted: Booted) -> None:
    booted.require_started()
    before = booted.show("MainPID", "NRestarts", "ActiveState")
    assert before["ActiveState"] == "active", booted.diagnostics()
    host = booted.main_host_pid()
    os.kill(host, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        _frozen_daemon_is_restarted(booted, before, host, frozen)
    finally:  # failed: thaw it, so the next test finds a daemon and not this test's freeze
        if Path(f"/proc/{host}").exists():
            os.kill(host, signal.SIGCONT)


def _frozen_daemon_is_restarted(booted: Booted, before: dict[str, str], host: int, frozen: float) -> None:
    wait_for(lambda: set(thread_states(host)) == {"T"}, 5, "every thread of the daemon stopped",
             interval=0.02, details=lambda: str(thread_states(host)))

    seen: list[dict[str, str]] = []
    left_running: float | None = None

    def restarted() -> bool:
        nonlocal left_running
        now = booted.show("ActiveState", "SubState", "Result", "MainPID", "NRestarts", "StatusText")
        if not seen or seen[-1] != now:
            seen.append(now)
        if left_running is None and now["SubState"] != "running":
            left_running = time.monotonic()
        return (now["ActiveState"] == "active" and now["MainPID"] not in ("0", before["MainPID"])
                and int(now["NRestarts"]) == int(before["NRestarts"]) + 1)

    restart_sec = float(_shipped_unit()[1]["RestartSec"][-1].removesuffix("s"))
    wait_for(restarted, WATCHDOG_SEC + restart_sec + 60, "a new, READY daemon", interval=0.1,
             details=lambda: f"{seen}\n{booted.diagnostics()}")
    booted.timings["SIGSTOP → killed"] = (left_running or frozen) - frozen
    booted.timings["SIGSTOP → READY again"] = time.monotonic() - frozen
    # Killed by the watchdog, not earlier and not for another reason; restarted after RestartSec=.
    assert 0.5 < booted.timings["SIGSTOP → killed"] <= WATCHDOG_SEC + 1.5, (booted.timings, seen)
    assert any(s["SubState"] == "auto-restart" and s["Result"] == "watchdog" for s in seen), seen
    assert booted.timings["SIGSTOP → READY again"] >= restart_sec, seen
    assert "anchor.service: Watchdog timeout" in booted.machine.console.text, booted.machine.console.text[-3000:]
    assert not Path(f"/proc/{host}").exists() or "zombie" in Path(f"/proc/{host}/status").read_text()
    assert re.fullmatch(r"next: .+", seen[-1]["StatusText"]), seen[-1]
    assert booted.machine.systemctl("is-active", SERVICE).stdout.strip() == "active"


# --- 5. a clean end ---------------------------------------------------------------------------------------


def test_stop_is_clean_and_the_namespace_leaves_nothing(booted: Booted) -> None:
    stopped = time.monotonic()
    result = booted.machine.systemctl("stop", SERVICE, timeout=60)
    assert result.returncode == 0, result.stderr
    booted.timings["stop"] = time.monotonic() - stopped
    after = booted.show("ActiveState", "Result", "ExecMainStatus")
    assert after == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}, after
    assert "stopping" in booted.log
    if booted.aired is not None:  # the slot aired once, and the watchdog's restart did not air it again
        rows = booted.rows(strict=True)
        assert [(r["id"], r["outcome"].lower()) for r in rows if r["slot"] == "one"] == [
            (booted.aired["id"], "aired")], rows

    problems = booted.machine.shutdown()
    assert problems == [], problems
    assert booted.machine.unshare is not None and booted.machine.unshare.poll() is not None
    # No process is left in the pid or mount namespace, so the mount namespace and its mounts are gone too;
    # the cgroups systemd made were removed (shutdown() reports what it could not remove).
    assert booted.machine.left_in_namespaces() == []
    assert all(not h.ours.exists() for h in booted.machine.hierarchies)
    assert str(booted.root) not in Path("/proc/self/mountinfo").read_text()
    for path, existed in booted.host_paths.items():
        assert Path(path).exists() == existed, f"{path} {'vanished from' if existed else 'appeared on'} the host"
    assert not [p for p in Path("/tmp").glob("systemd-private-*") if str(p) not in booted.host_paths]
    for path, content in booted.host_files.items():
        assert Path(path).read_bytes() == content, f"the host's {path} changed"

