"""A real systemd 252 booted as PID 1 of a private namespace (no VM), for tests of the shipped unit.

    with Machine(root, units=root / "units", overlays=["/etc", "/var/lib"], tmpfs=["/opt"],
                 binds=[(root / "etc-anchor", "/etc/anchor")], setup=["useradd --system anchor"]) as m:
        m.boot()
        m.systemctl("start", "anchor.service")
        m.show("anchor.service", "ActiveState", "MainPID")

How (shared/notes/ops-tools.md): `unshare --pid --fork --mount --uts --ipc --cgroup --mount-proc sh boot.sh`,
where boot.sh makes `/` rprivate, mounts a tmpfs on /run, a pty over /dev/console (systemd logs only to a
terminal; a thread here reads it), a tmpfs over /usr/lib/systemd/system (and the generators: nothing of the
host's boot runs) and binds the test's own units over /etc/systemd/system, then execs systemd.

What it adds, so nothing of the host changes:
- every write to /etc, /var/lib, /var/cache … lands in an overlay whose upper layer is in the test's folder
  (`upper("/var/lib/anchor")` reads it from outside); /opt, /tmp and /var/tmp are fresh tmpfs;
- systemd gets cgroups of its own: the test makes an `anchor-boot-…` child of its cgroup in every
  hierarchy, unshare starts in it, and boot.sh mounts the cgroup file systems afresh, so the namespace's
  cgroup root is that child (systemd moves "all processes of the root cgroup" into init.scope: only its own);
- shutdown() SIGKILLs the namespace's PID 1 (the PID unshare started): the kernel ends every process in it
  and the mount namespace goes with the last one; then the cgroup children are removed. Every wait is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

SYSTEMD = Path("/lib/systemd/systemd")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = ("unshare", "nsenter", "mount", "useradd")

T = TypeVar("T")


class BootError(AssertionError):
    pass


def unavailable_reason() -> str | None:
    """Why a systemd cannot be booted in a namespace here, or None when it can (it is tried, not guessed)."""
    if sys.platform != "linux":
        return "systemd and namespaces are Linux only"
    if os.geteuid() != 0:
        return "booting systemd as PID 1 of a namespace needs root (unshare --pid --mount, mounts, cgroups)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not found (util-linux, passwd)"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} not found: apt-get install systemd"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--cgroup", "--mount-proc",
                            "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"this kernel or container refuses new namespaces: {probe.stderr.strip()}"
    return None


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1,
             details: Callable[[], str] = lambda: "") -> T:
    """probe()'s first truthy answer, polled every `interval` s; BootError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BootError(f"{what}: not within {timeout:g} s\n{details()}")
        time.sleep(interval)


# --- cgroups of the namespace's own ------------------------------------------------------------------


@dataclass
class Hierarchy:
    mountpoint: Path  # where the host has it mounted, e.g. /sys/fs/cgroup/memory
    fstype: str  # cgroup (v1) or cgroup2
    options: str  # v1 super options naming the controllers: "memory", "name=systemd"
    ours: Path  # the child the namespace lives in, on the host


def cgroup_hierarchies(label: str) -> list[Hierarchy]:
    """Every cgroup hierarchy mounted under /sys/fs/cgroup, with `label` as a child of this process's cgroup."""
    where: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        where[controllers] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        dash = fields.index("-")
        fstype, mount_root, mountpoint = fields[dash + 1], fields[3], Path(fields[4])
        if fstype not in ("cgroup", "cgroup2") or not mountpoint.is_relative_to(CGROUP_ROOT):
            continue
        options = ",".join(o for o in fields[dash + 3].split(",")
                           if o not in ("rw", "ro", "xattr") and not o.startswith("release_agent"))
        key = "" if fstype == "cgroup2" else options
        if key not in where:
            continue
        inside = os.path.relpath(where[key], mount_root)
        found.append(Hierarchy(mountpoint, fstype, options, (mountpoint / inside / label).resolve()))
    if not found:
        raise BootError("no cgroup file system is mounted under /sys/fs/cgroup")
    return found


def make_cgroups(hierarchies: list[Hierarchy]) -> None:
    for h in hierarchies:
        h.ours.mkdir()
        if h.fstype == "cgroup" and (h.ours / "cpuset.cpus").exists():  # v1 cpuset: empty until set
            for name in ("cpuset.cpus", "cpuset.mems"):
                (h.ours / name).write_text((h.ours.parent / name).read_text())


def remove_cgroups(hierarchies: list[Hierarchy], timeout: float = 10) -> list[str]:
    """rmdir every cgroup made in the namespace, deepest first; the ones left (still busy) are returned."""
    deadline = time.monotonic() + timeout
    problems: list[str] = []
    for h in hierarchies:
        while True:
            busy = []
            for folder, _, _ in os.walk(h.ours, topdown=False):
                try:
                    os.rmdir(folder)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    busy.append(f"{folder}: {exc.strerror}")
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        problems += busy
    return problems


def _cgroup_mounts(hierarchies: list[Hierarchy]) -> list[str]:
    """boot.sh lines: each hierarchy mounted afresh, rooted at the namespace's cgroup."""
    if any(h.mountpoint == CGROUP_ROOT for h in hierarchies):  # unified only
        return [f"mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 {CGROUP_ROOT}"]
    lines = [f"mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs {CGROUP_ROOT}"]
    for h in hierarchies:
        target = shlex.quote(str(h.mountpoint))
        lines.append(f"mkdir -p {target}")
        if h.fstype == "cgroup2":
            lines.append(f"mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 {target}")
        else:
            lines.append(f"mount -t cgroup -o nosuid,nodev,noexec,{h.options} cgroup {target}")
    return lines


# --- the console ---------------------------------------------------------------------------------------


class Console:
    """A pty bound over /dev/console in the namespace; a thread keeps reading it (a full pty would block PID 1)."""

    def __init__(self, copy_to: Path) -> None:
        self.master, self.slave = os.openpty()
        self.name = os.ttyname(self.slave)
        self._copy = copy_to.open("ab")
        self._chunks: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="systemd-console", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)
            self._copy.write(data)
            self._copy.flush()

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace").replace("\r\n", "\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._copy.close()


# --- the machine ----------------------------------------------------------------------------------------


@dataclass
class Machine:
    """systemd as PID 1 of a private pid/mount/uts/ipc/cgroup namespace, with the units in `units`."""

    root: Path  # the test's folder: boot.sh, overlay layers, console log
    units: Path  # bound over /etc/systemd/system
    target: str = "anchor-test.target"
    overlays: list[str] = field(default_factory=lambda: ["/etc", "/var/lib", "/var/cache"])
    tmpfs: list[str] = field(default_factory=list)  # empty and writable in the namespace (e.g. /opt)
    binds: list[tuple[Path, str]] = field(default_factory=list)  # (host folder, path in the namespace)
    setup: list[str] = field(default_factory=list)  # shell lines run in the namespace before systemd starts
    label: str = field(default_factory=lambda: f"anchor-boot-{uuid.uuid4().hex[:8]}")
    unshare: subprocess.Popen[bytes] | None = None
    pid1: int | None = None  # PID 1 of the namespace, as the host sees it
    console: Console | None = None
    hierarchies: list[Hierarchy] = field(default_factory=list)
    namespaces: dict[str, str] = field(default_factory=dict)  # "pid"/"mnt" → the namespace's id, e.g. pid:[4026…]
    _done: bool = False

    # -- the file system inside -------------------------------------------------------------------------

    def upper(self, path: str) -> Path:
        """Where `path` (written in the namespace under an overlaid folder) is, seen from the host."""
        for layer in sorted(self.overlays, key=len, reverse=True):
            if path == layer or path.startswith(layer.rstrip("/") + "/"):
                return self._layer(layer) / "upper" / os.path.relpath(path, layer)
        raise ValueError(f"{path} is not under an overlay ({self.overlays})")

    def _layer(self, folder: str) -> Path:
        return self.root / "overlay" / folder.strip("/").replace("/", "-")

    def _writable_in_namespace(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in [*self.overlays, *self.tmpfs, "/run"])

    def _boot_script(self) -> str:
        assert self.console is not None
        q = shlex.quote
        lines = ["set -eu", "mount --make-rprivate /", *_cgroup_mounts(self.hierarchies),
                 "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run",
                 f"mount --bind {q(self.console.name)} /dev/console"]
        for folder in self.overlays:
            layer = self._layer(folder)
            (layer / "upper").mkdir(parents=True)
            (layer / "work").mkdir()
            lines.append(f"mount -t overlay overlay -o lowerdir={q(folder)},upperdir={q(str(layer / 'upper'))},"
                         f"workdir={q(str(layer / 'work'))} {q(folder)}")
        for folder in [*self.tmpfs, "/usr/lib/systemd/system", "/usr/lib/systemd/system-generators"]:
            lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {q(folder)}")
        lines.append(f"mount --bind {q(str(self.units))} /etc/systemd/system")
        for source, target in self.binds:
            if not Path(target).exists():
                # Never a mount point made on the host: only inside an overlay or tmpfs of the namespace.
                assert self._writable_in_namespace(target), f"{target} would be created on the host"
                lines.append(f"mkdir -p {q(target)}")
            lines.append(f"mount --bind {q(str(source))} {q(target)}")
        lines += self.setup
        lines += ["mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp",  # PrivateTmp= folders vanish with us
                  "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp",
                  "mount --make-rshared /",
                  f"exec env -i container=anchor-test PATH={PATH} LANG=C.UTF-8 {SYSTEMD} --system "
                  f"--unit={q(self.target)} --log-target=console --log-level=info --show-status=no"]
        return "\n".join(lines) + "\n"

    # -- life -------------------------------------------------------------------------------------------

    def boot(self, timeout: float = 30) -> None:
        """Start systemd and wait until its boot is over (is-system-running: running or degraded)."""
        self.hierarchies = cgroup_hierarchies(self.label)
        make_cgroups(self.hierarchies)
        self.console = Console(self.root / "console.log")
        script = self.root / "boot.sh"
        script.write_text(self._boot_script(), encoding="utf-8")
        # A shell joins the namespace's cgroups, then becomes unshare: the new cgroup namespace is rooted there.
        joins = "; ".join(f"echo $$ > {shlex.quote(str(h.ours / 'cgroup.procs'))}" for h in self.hierarchies)
        launcher = (f"{joins}; exec unshare --pid --fork --mount --uts --ipc --cgroup --mount-proc "
                    f"sh {shlex.quote(str(script))}")
        log = (self.root / "unshare.log").open("wb")
        self.unshare = subprocess.Popen(["sh", "-c", launcher], stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children")

        def pid1() -> int | None:
            if self.unshare is not None and self.unshare.poll() is not None:
                raise BootError(f"unshare exited ({self.unshare.returncode}): {self.diagnostics()}")
            try:
                found = children.read_text().split()
                return int(found[0]) if found and os.readlink(f"/proc/{found[0]}/exe") == str(
                    SYSTEMD.resolve()) else None
            except (FileNotFoundError, ProcessLookupError):
                return None

        self.pid1 = wait_for(pid1, timeout, "systemd did not become PID 1 of the namespace",
                             details=self.diagnostics)
        self.namespaces = {ns: os.readlink(f"/proc/{self.pid1}/ns/{ns}") for ns in ("pid", "mnt")}

        def booted() -> bool:
            state = self.systemctl("is-system-running", timeout=10).stdout.strip()
            if state in ("offline", "unknown") and self.unshare is not None and self.unshare.poll() is not None:
                raise BootError(f"systemd exited: {self.diagnostics()}")
            return state in ("running", "degraded")

        wait_for(booted, timeout, "systemd's boot did not finish", interval=0.2, details=self.diagnostics)

    def nsenter(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run argv in the namespace's mount and pid namespaces (its /run, /proc, /etc)."""
        assert self.pid1 is not None, "not booted"
        env = {"PATH": PATH, "LC_ALL": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "COLUMNS": "200"}
        return subprocess.run(["nsenter", "-t", str(self.pid1), "-m", "-p", "--", *argv], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def systemctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.nsenter("systemctl", "--no-pager", *args, timeout=timeout)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        result = self.systemctl("show", unit, *(f"--property={p}" for p in properties))
        if result.returncode != 0:
            raise BootError(f"systemctl show {unit}: {result.stderr}")
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def host_pid(self, pid: int) -> int | None:
        """The host's PID of the namespace's process `pid`, or None when there is none."""
        assert self.pid1 is not None
        ours = os.readlink(f"/proc/{self.pid1}/ns/pid")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns" / "pid") != ours:
                    continue
                ns = re.search(r"^NSpid:\s+(.*)$", (entry / "status").read_text(), re.M)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if ns and int(ns.group(1).split()[-1]) == pid:
                return int(entry.name)
        return None

    def left_in_namespaces(self) -> list[str]:
        """Host processes still in the namespace's pid or mount namespace (a mount namespace, and every mount
        in it, ends with its last process)."""
        left = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            for ns, ident in self.namespaces.items():
                try:
                    if os.readlink(entry / "ns" / ns) == ident:
                        left.append(f"{entry.name} ({ns})")
                except (FileNotFoundError, ProcessLookupError, PermissionError):
                    continue
        return left

    def processes(self) -> list[int]:
        """Host PIDs of every process still in the namespace's cgroups."""
        pids: set[int] = set()
        for h in self.hierarchies:
            for procs in h.ours.rglob("cgroup.procs") if h.ours.exists() else []:
                try:
                    pids |= {int(p) for p in procs.read_text().split()}
                except OSError:
                    continue
        return sorted(pids)

    def diagnostics(self) -> str:
        out = []
        log = self.root / "unshare.log"
        if log.exists():
            out.append(f"unshare: {log.read_text(errors='replace')[-2000:]}")
        if self.console is not None:
            out.append(f"systemd console:\n{self.console.text[-4000:]}")
        return "\n".join(out)

    def shutdown(self, timeout: float = 20) -> list[str]:
        """SIGKILL the namespace's PID 1 and clean up; the problems found (processes, cgroups left) are returned."""
        if self._done:
            return []
        self._done = True
        problems: list[str] = []
        if self.pid1 is not None:
            try:
                os.kill(self.pid1, signal.SIGKILL)  # from the parent namespace: always delivered
            except ProcessLookupError:
                pass
        if self.unshare is not None:
            if self.pid1 is None and self.unshare.poll() is None:
                os.killpg(self.unshare.pid, signal.SIGKILL)  # never got as far as systemd
            try:
                self.unshare.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"unshare (pid {self.unshare.pid}) still running {timeout:g} s after SIGKILL")
                os.killpg(self.unshare.pid, signal.SIGKILL)
                self.unshare.wait(timeout=10)
        try:
            wait_for(lambda: not self.processes(), 10, "processes left in the namespace's cgroups")
        except BootError:
            left = self.processes()
            problems.append(f"processes left: {left}")
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        problems += remove_cgroups(self.hierarchies)
        problems += [f"still in the namespace: {p}" for p in self.left_in_namespaces()]
        if self.console is not None:
            self.console.close()
        return problems

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# --- a Python venv for a unit, the way the README installs one -------------------------------------------


DEPENDENCIES = "deps"  # in the service's venv: where the test's own site-packages are bound


def venv_for_unit(folder: Path, installed_at: str, console_script: str = "anchor") -> Path:
    """In `folder`, a venv like `python3 -m venv` makes on a broadcast PC (on Debian's own interpreter), for
    the namespace to see at `installed_at`: a copy of this checkout's `anchor` package, and this test's
    site-packages (the dependencies) read from `installed_at/deps`, which the caller binds to
    `dependencies()`. Returns folder.

    This test's venv cannot be used as is: its interpreter may live under /root (pyenv), which is 0700 and
    which ProtectHome=yes hides anyway; and the checkout may be anywhere, /tmp included (PrivateTmp=yes
    hides that), so the code under test is copied in and nothing points back at the checkout."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system_python = Path(f"/usr/bin/python{version}")
    if not system_python.exists():
        raise BootError(f"{system_python} is missing: the service's venv needs the system's Python {version} "
                        f"(apt-get install python{version}-venv)")
    (folder / "bin").mkdir(parents=True)
    (folder / DEPENDENCIES).mkdir()
    site_packages = folder / "lib" / f"python{version}" / "site-packages"
    site_packages.mkdir(parents=True)
    (folder / "bin" / "python3").symlink_to(system_python)
    (folder / "bin" / "python").symlink_to("python3")
    shutil.copytree(Path(__file__).resolve().parent.parent / "anchor", site_packages / "anchor")
    # A plain path line: the dependencies' own .pth files (the editable install's finder, which would send
    # `import anchor` back to the checkout) are not run, so the copy above is what imports.
    (site_packages / "dependencies.pth").write_text(f"{installed_at}/{DEPENDENCIES}\n", encoding="utf-8")
    full = subprocess.run([str(system_python), "--version"], capture_output=True, text=True, timeout=30)
    (folder / "pyvenv.cfg").write_text(f"home = {system_python.parent}\ninclude-system-site-packages = false\n"
                                       f"version = {full.stdout.split()[-1]}\n", encoding="utf-8")
    ours = Path(sys.executable).parent / console_script
    body = ours.read_text(encoding="utf-8").split("\n", 1)[1]  # without the shebang naming this venv
    script = folder / "bin" / console_script
    script.write_text(f"#!{installed_at}/bin/python3\n{body}", encoding="utf-8")
    script.chmod(0o755)
    return folder


def dependencies() -> Path:
    """This test's site-packages, to bind at the service venv's `deps` (see venv_for_unit)."""
    return Path(sysconfig.get_paths()["purelib"])


# --- a stand-in for OBS's websocket: just enough obs-websocket v5 to check a password --------------------


def obs_auth(password: str, salt: str, challenge: str) -> str:
    """obs-websocket v5: base64(sha256(base64(sha256(password + salt)) + challenge))."""
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest()).decode()
    return base64.b64encode(hashlib.sha256((secret + challenge).encode()).digest()).decode()


@dataclass
class Attempt:
    authentication: str | None
    accepted: bool
    requests: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)


class FakeObsWebsocket:
    """A loopback server speaking obs-websocket v5 like OBS with authentication on: Hello (salt, challenge) →
    Identify checked against `password` (close 4009 when wrong, Identified when right; Reidentify answered
    likewise), then GetVersion answered and every other request refused (code 204): a client can connect and
    stay connected, but provision nothing.
    Each connection is one Attempt in `attempts`."""

    def __init__(self, password: str, host: str = "127.0.0.1") -> None:
        self.password = password
        self.host = host
        self.port = 0
        self.attempts: list[Attempt] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-obs", daemon=True)
        self._loop: Any = None
        self._runner: Any = None

    def __enter__(self) -> FakeObsWebsocket:
        self._thread.start()
        if not self._ready.wait(10):
            raise BootError("the fake OBS websocket did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.accepted]

    def _serve(self) -> None:
        import asyncio

        from aiohttp import WSMsgType, web

        async def handle(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(protocols=("obswebsocket.json",), heartbeat=None)
            await ws.prepare(request)
            salt, challenge = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            await ws.send_json({"op": 0, "d": {"obsWebSocketVersion": "5.1.0", "rpcVersion": 1,
                                               "authentication": {"challenge": challenge, "salt": salt}}})
            attempt = Attempt(None, False)
            self.attempts.append(attempt)
            try:
                identify = json.loads((await ws.receive(timeout=10)).data)
            except (TimeoutError, TypeError, ValueError):
                await ws.close(code=4002, message=b"no Identify")
                return ws
            attempt.authentication = (identify.get("d") or {}).get("authentication")
            if identify.get("op") != 1 or attempt.authentication != obs_auth(self.password, salt, challenge):
                await ws.close(code=4009, message=b"Authentication failed.")
                return ws
            attempt.accepted = True
            await ws.send_json({"op": 2, "d": {"negotiatedRpcVersion": 1}})
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                if data.get("op") == 3:  # Reidentify (new event subscriptions): Identified again
                    await ws.send_json({"op": 2, "d": {"negotiatedRpcVersion": 1}})
                    continue
                if data.get("op") != 6:
                    continue
                d = data["d"]
                attempt.requests.append(d.get("requestType", ""))
                answer: dict[str, Any] = {"requestType": d.get("requestType"), "requestId": d.get("requestId")}
                if d.get("requestType") == "GetVersion":
                    answer["requestStatus"] = {"result": True, "code": 100}
                    answer["responseData"] = {"obsVersion": "30.0.0-fake", "obsWebSocketVersion": "5.1.0",
                                              "rpcVersion": 1, "availableRequests": ["GetVersion"]}
                else:
                    answer["requestStatus"] = {"result": False, "code": 204,
                                               "comment": "a test's stand-in for OBS: only GetVersion"}
                await ws.send_json({"op": 7, "d": answer})
            return ws

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/", handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(start())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()


def thread_states(host_pid: int) -> list[str]:
    """The state letter (R, S, T, …) of every thread of a process."""
    states = []
    for task in Path(f"/proc/{host_pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue
        states.append(stat[stat.rindex(")") + 2])
    return states


def read_rows(database: Path, scratch: Path, strict: bool = False) -> list[dict[str, Any]]:
    """The as-run log's rows, read from a copy (the live file belongs to the daemon and its user: a reader
    as root must not create its -shm or -wal). A copy caught mid-write reads as no rows, unless `strict`."""
    import sqlite3

    if not database.exists():
        return []
    scratch.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        source = Path(f"{database}{suffix}")
        target = scratch / f"copy.db{suffix}"
        target.unlink(missing_ok=True)
        if source.exists():
            shutil.copyfile(source, target)
    try:
        with sqlite3.connect(scratch / "copy.db") as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM airing ORDER BY id")]
    except sqlite3.DatabaseError:
        if strict:
            raise
        return []  # caught mid-write (or no table yet): the caller polls again
    finally:
        for leftover in scratch.glob("copy.db*"):
            leftover.unlink(missing_ok=True)


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings

