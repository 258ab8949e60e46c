"""The systemd unit (checked by the real systemd-analyze) and sd_notify/watchdog (over a real socket)."""

from __future__ import annotations

import asyncio
import ctypes.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor import systemd
from tests.conftest import REPO, Project, no_traceback, script_text

UNIT = REPO / "systemd" / "anchor.service"
INSTALLED_BINARY = "/opt/anchor/.venv/bin/anchor"
MAX_EXPOSURE = 2.0
RECV_TIMEOUT = 2.0


# --- the unit file, through the real systemd-analyze -------------------------------------------------


def _analyze() -> str:
    tool = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not Path(tool).exists():
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    return tool


def _anchor_binary() -> Path:
    beside = Path(sys.executable).parent / "anchor"
    found = beside if beside.exists() else Path(shutil.which("anchor") or beside)
    assert found.exists(), "the `anchor` console script is not installed in this environment"
    return found


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit as shipped, with only ExecStart's binary pointed at this environment's `anchor`
    (verify insists that it exists)."""
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(f"ExecStart={INSTALLED_BINARY} ") == 1, "ExecStart must name the installed binary"
    copy = tmp_path / "anchor.service"
    copy.write_text(text.replace(f"ExecStart={INSTALLED_BINARY} ", f"ExecStart={_anchor_binary()} "),
                    encoding="utf-8")
    return copy


def _run_analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    return subprocess.run([_analyze(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_unit_verifies_without_a_single_warning(unit: Path) -> None:
    # Unknown keys and bad values are only warnings (rc 0): an empty stderr is the real check.
    result = _run_analyze("verify", str(unit), cwd=unit.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_unit_hardening_exposure_is_low(unit: Path) -> None:
    result = _run_analyze("security", "--offline=yes", str(unit), cwd=unit.parent)
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_declares_what_the_daemon_relies_on() -> None:
    settings = _unit_settings()
    assert settings["Type"] == ["notify"] and settings["NotifyAccess"] == ["main"]
    assert settings["WatchdogSec"] == ["30"]
    assert settings["ExecStart"] == [f"{INSTALLED_BINARY} --config /etc/anchor/anchor.toml run"]
    # One folder load: every secret optional (a site without OBS has no obs-password), none named one by one.
    assert settings["LoadCredential"] == ["anchor:/etc/anchor/credentials"]
    assert "IPAddressDeny" not in settings  # edge-tts and OBS need the network


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# The unit's SystemCallFilter=, SystemCallErrorNumber= and MemoryDenyWriteExecute= rebuilt with libseccomp
# the way systemd applies them, then `anchor` exec'd inside: numpy (OpenBLAS), espeak-ng and ffmpeg run
# under the same rules as on the broadcast PC.
_SANDBOX = r"""
import ctypes, ctypes.util, errno, json, os, sys

spec = json.loads(os.environ.pop("ANCHOR_TEST_SECCOMP"))
lib = ctypes.CDLL(ctypes.util.find_library("seccomp"), use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]

class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                       ctypes.POINTER(Cmp)]
ALLOW, KILL_PROCESS, MASKED_EQ = 0x7FFF0000, 0x80000000, 7
EPERM = 0x00050000 | errno.EPERM

def rule(ctx, action, name, *cmps):
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr < 0:
        return  # not on this architecture
    array = (Cmp * max(len(cmps), 1))(*cmps)
    assert lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array) == 0, name

assert ctypes.CDLL(None).prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS, as NoNewPrivileges=yes
if spec["mdwe"]:  # systemd's own rules: no W+X mapping, no making memory executable later
    PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000
    mdwe = lib.seccomp_init(ALLOW)
    rule(mdwe, EPERM, "mmap", Cmp(2, MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC))
    rule(mdwe, EPERM, "mprotect", Cmp(2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
    rule(mdwe, EPERM, "pkey_mprotect", Cmp(2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
    rule(mdwe, EPERM, "shmat", Cmp(2, MASKED_EQ, SHM_EXEC, SHM_EXEC))
    assert lib.seccomp_load(mdwe) == 0
# Last, as loading a filter (seccomp()) is itself outside the allow list.
refused = EPERM if spec["errno"] == "EPERM" else KILL_PROCESS
ctx = lib.seccomp_init(refused)
for name in spec["allowed"]:
    rule(ctx, ALLOW, name)
assert lib.seccomp_load(ctx) == 0
# Show that the rules bite before trusting a pass.
if refused == EPERM:
    try:
        os.nice(1)  # @resources
    except PermissionError:
        pass
    else:
        sys.exit("sandbox: nice() was allowed")
if spec["mdwe"]:
    import mmap
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit("sandbox: a writable and executable mapping was allowed")
os.execv(sys.argv[1], sys.argv[1:])
"""


def _syscall_group(name: str) -> set[str]:
    if not name.startswith("@"):
        return {name}
    out = _run_analyze("syscall-filter", name, cwd=REPO)
    assert out.returncode == 0, out.stderr
    names: set[str] = set()
    for line in out.stdout.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            names |= _syscall_group(line)
    return names


def _seccomp_spec() -> dict[str, object]:
    """The unit's system call rules: the first allow list, minus every `~` list after it."""
    settings = _unit_settings()
    allowed: set[str] = set()
    for value in settings.get("SystemCallFilter", []):
        deny = value.startswith("~")
        names = set().union(*(_syscall_group(n) for n in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    assert allowed, "the unit has no SystemCallFilter= allow list"
    return {"allowed": sorted(allowed), "errno": (settings.get("SystemCallErrorNumber") or [""])[-1],
            "mdwe": (settings.get("MemoryDenyWriteExecute") or ["no"])[-1] == "yes"}


def test_rendering_works_under_the_units_syscall_filter(project: Project) -> None:
    if not ctypes.util.find_library("seccomp"):
        pytest.fail("libseccomp is missing (it comes with the Debian package systemd)")
    project.script("short.md", script_text("各位观众，欢迎收看健康讲座。", title="短"))
    env = {**os.environ, "ANCHOR_TEST_SECCOMP": json.dumps(_seccomp_spec()), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-c", _SANDBOX, str(_anchor_binary()), "--config", str(project.config),
         "render", "short.md"],
        cwd=project.root, env=env, capture_output=True, text=True, timeout=300)
    # -SIGSYS (rc -31) here means a library needs a call the filter refuses with a kill.
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    no_traceback(result)
    assert list((project.root / "data" / "renders").rglob("*.wav")), result.stdout


# --- sd_notify over a real datagram socket -----------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sdn-", dir="/tmp") as name:
        yield Path(name)


@pytest.fixture
def listener(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """What systemd listens on: an AF_UNIX datagram socket named by NOTIFY_SOCKET."""
    path = short_dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(RECV_TIMEOUT)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def _drain(sock: socket.socket, quiet: float = 0.2) -> list[str]:
    """Every datagram already queued, stopping once none arrives within `quiet` seconds."""
    sock.settimeout(quiet)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except TimeoutError:
        return messages


def test_notify_sends_one_datagram(listener: socket.socket) -> None:
    assert systemd.notify("READY=1", "STATUS=x") is True
    assert listener.recv(4096) == b"READY=1\nSTATUS=x"
    assert _drain(listener) == []


def test_notify_to_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"anchor-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(RECV_TIMEOUT)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("READY=1", "STATUS=next airing 09:00 健康讲座") is True
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=next airing 09:00 健康讲座"


def test_notify_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_notify_to_a_missing_socket_returns_false(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "gone"))
    assert systemd.notify("WATCHDOG=1") is False  # no exception: a lost ping must not kill the daemon


def test_a_newline_cannot_forge_a_field(listener: socket.socket) -> None:
    systemd.notify("STATUS=bad\nREADY=1")
    assert listener.recv(4096) == b"STATUS=bad READY=1"


# --- the watchdog ------------------------------------------------------------------------------------


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 1.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 1.0


def test_watchdog_meant_for_another_process_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))
    assert systemd.watchdog_interval() is None


def test_no_watchdog_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.watchdog_interval() is None


async def _run_for(seconds: float, coro: Coroutine[Any, Any, None]) -> None:
    try:
        await asyncio.wait_for(coro, timeout=seconds)
    except TimeoutError:
        pass  # the loop runs until cancelled: being cut off is the expected end


def test_watchdog_loop_pings_at_the_interval(listener: socket.socket) -> None:
    asyncio.run(_run_for(0.35, systemd.watchdog_loop(0.1)))
    messages = _drain(listener)
    assert all(m == "WATCHDOG=1" for m in messages), messages
    assert 2 <= len(messages) <= 5, messages


def test_watchdog_loop_reports_status_only_when_it_changes(listener: socket.socket) -> None:
    statuses = iter(["idle", "idle", "next airing 09:00 健康讲座"])
    last = ["idle"]

    def status() -> str:
        last[0] = next(statuses, last[0])
        return last[0]

    asyncio.run(_run_for(0.45, systemd.watchdog_loop(0.1, status)))
    messages = _drain(listener)
    assert len(messages) >= 3, messages
    assert messages[0] == "WATCHDOG=1\nSTATUS=idle"
    assert messages[1] == "WATCHDOG=1"
    assert messages[2] == "WATCHDOG=1\nSTATUS=next airing 09:00 健康讲座"
    assert all(m == "WATCHDOG=1" for m in messages[3:]), messages


def test_a_blocked_event_loop_stops_the_pings(listener: socket.socket) -> None:
    """The point of pinging from the loop: while it is stuck, systemd hears nothing."""
    arrivals: list[float] = []

    def receive() -> None:
        listener.settimeout(1.0)
        try:
            while True:
                listener.recv(4096)
                arrivals.append(time.monotonic())
        except (TimeoutError, OSError):
            return

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()

    async def main() -> None:
        pinger = asyncio.create_task(systemd.watchdog_loop(0.05))
        await asyncio.sleep(0.12)
        time.sleep(0.4)  # a synchronous call that hangs the loop
        await asyncio.sleep(0.12)
        pinger.cancel()

    asyncio.run(main())
    receiver.join(timeout=5)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(arrivals) >= 4, arrivals
    assert max(gaps) >= 0.35, gaps
