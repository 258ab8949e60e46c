"""A real OBS Studio (29, Debian) under Xvfb for tests: throwaway HOME, fresh config each launch.

    with ObsStudio() as obs:          # Xvfb + OBS, websocket on obs.port with obs.password
        ...
        obs.kill(); obs.start()       # SIGKILL, relaunch (same port and password unless changed)
        obs.freeze(); obs.thaw()      # SIGSTOP / SIGCONT

Facts used here are in /work/shared/notes/obs-headless.md. obs-websocket 5.1 listens on all interfaces
and has no bind setting, so a password is always set (random unless given).

OBS and Xvfb missing is a failure with a clear message, not a skip: these tests are about the real
program. ANCHOR_SKIP_OBS_TESTS=1 turns that into a skip that says so.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pytest

SKIP_ENV = "ANCHOR_SKIP_OBS_TESTS"
PROFILE = "anchor-test"
COLLECTION = "anchor-test"
SCENE = "Main"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_obs() -> None:
    """Fail (or skip with ANCHOR_SKIP_OBS_TESTS=1) when the obs or Xvfb programs are missing."""
    missing = [name for name in ("obs", "Xvfb") if shutil.which(name) is None]
    if not missing:
        return
    message = (f"{' and '.join(missing)} not found on PATH: these tests run the real OBS Studio under Xvfb "
               f"(apt-get install -y obs-studio xvfb)")
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{message}; skipped because {SKIP_ENV}=1")
    pytest.fail(message, pytrace=False)


def _signal_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)  # OBS runs in its own session: reach its helpers too (obs-ffmpeg-mux …)
    except ProcessLookupError:
        pass


def _end(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM (+SIGCONT, in case it is frozen), wait `grace`, then SIGKILL; bounded."""
    if proc is None:
        return
    if proc.poll() is None and grace > 0:
        _signal_group(proc, signal.SIGTERM)
        _signal_group(proc, signal.SIGCONT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL for 10 s
        pass
    try:  # leftovers of the group (children) after the leader is gone
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _all_threads_stopped(pid: int) -> bool:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return True  # gone
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue  # a thread that just ended
        state = stat[stat.rindex(")") + 2]
        if state not in "TtZX":
            return False
    return True


class ObsStudio:
    """Xvfb plus one OBS process; OBS can be stopped, killed, frozen and relaunched, Xvfb stays."""

    def __init__(self, root: Path | None = None, *, password: str | None = None, port: int | None = None,
                 start_timeout: float = 30.0, width: int = 640, height: int = 360, fps: int = 30) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="anchor-obs-")) if root is None else Path(root)
        self.home = self.root / "home"
        self.runtime_dir = self.root / "run"
        self.recordings_dir = self.root / "recordings"
        self.log_path = self.root / "obs.log"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.password = password if password is not None else secrets.token_urlsafe(18)
        self.start_timeout = start_timeout
        self.width, self.height, self.fps = width, height, fps
        self.display: str | None = None
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.launches = 0
        self.started_in: float | None = None  # seconds from launch to the websocket port accepting

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> ObsStudio:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running else None

    def start(self) -> None:
        """Launch OBS (and Xvfb if needed) and wait until its websocket port accepts; bounded."""
        require_obs()
        if self.running:
            raise RuntimeError("OBS is already running; stop() or kill() it first")
        deadline = time.monotonic() + self.start_timeout
        self._start_xvfb(deadline)
        self._write_config()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("WAYLAND_", "XDG_", "QT_", "DBUS_SESSION"))}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"),
                   XDG_RUNTIME_DIR=str(self.runtime_dir), DISPLAY=self.display or "",
                   QT_QPA_PLATFORM="xcb", LANG=env.get("LANG", "C.UTF-8"))
        log = self.log_path.open("ab")
        log.write(f"\n=== launch {self.launches + 1} ===\n".encode())
        log.flush()
        launched = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                ["obs", "--multi", "--disable-missing-files-check", "--profile", PROFILE,
                 "--collection", COLLECTION, "--scene", SCENE],
                cwd=self.home, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        self.launches += 1
        try:
            self._wait_port(deadline)
        except BaseException:
            _end(self.proc, grace=0)
            raise
        self.started_in = time.monotonic() - launched

    def stop(self, grace: float = 5.0) -> None:
        """End OBS: SIGTERM, then SIGKILL after `grace` seconds. Xvfb stays for a relaunch."""
        _end(self.proc, grace)

    def kill(self) -> None:
        """SIGKILL OBS (and its helpers) and reap it."""
        _end(self.proc, grace=0)

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets (the kernel still accepts connections) but answers nothing.

        Returns once every thread of OBS is really stopped: the signal is delivered asynchronously, and a
        thread running on another CPU could still answer a request sent right after kill()."""
        _signal_group(self.proc, signal.SIGSTOP)
        if self.proc is None:
            return
        deadline = time.monotonic() + 5
        while not _all_threads_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"OBS (pid {self.proc.pid}) did not stop within 5 s of SIGSTOP")
            time.sleep(0.002)

    def thaw(self) -> None:
        _signal_group(self.proc, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop OBS and Xvfb; remove the throwaway folder if this object made it."""
        try:
            _end(self.proc, grace=3.0)
        finally:
            _end(self.xvfb, grace=2.0)
            self.xvfb = None
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-chars:]

    # -- internals ---------------------------------------------------------------------------------

    def _start_xvfb(self, deadline: float) -> None:
        if self.xvfb is not None and self.xvfb.poll() is None:
            return
        read_fd, write_fd = os.pipe()
        try:
            self.xvfb = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp",
                 "-noreset"],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=(self.root / "xvfb.log").open("ab"), start_new_session=True)
            os.close(write_fd)
            write_fd = -1
            number = b""
            while not number.endswith(b"\n"):
                left = deadline - time.monotonic()
                ready, _, _ = select.select([read_fd], [], [], max(0.0, left))
                if not ready:
                    raise TimeoutError("Xvfb did not report its display number in time")
                chunk = os.read(read_fd, 64)
                if not chunk:
                    raise RuntimeError(f"Xvfb exited ({self.xvfb.poll()}) before reporting a display; "
                                       f"see {self.root / 'xvfb.log'}")
                number += chunk
            self.display = f":{int(number.strip())}"
        except BaseException:
            _end(self.xvfb, grace=0)
            self.xvfb = None
            raise
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)

    def _wait_port(self, deadline: float) -> None:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.proc.returncode} before opening port {self.port}:\n"
                                   f"{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"OBS did not open its websocket port {self.port} within "
                                   f"{self.start_timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _write_config(self) -> None:
        """global.ini, a profile and a scene collection, written fresh: OBS rewrites them while it runs."""
        config = self.home / ".config" / "obs-studio"
        profile = config / "basic" / "profiles" / PROFILE
        scenes = config / "basic" / "scenes"
        for folder in (profile, scenes, self.recordings_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        (config / "global.ini").write_text(
            "[General]\n"
            "FirstRun=true\n"
            "EnableAutoUpdates=false\n"
            "[BasicWindow]\n"
            "PreviewEnabled=false\n"
            "[OBSWebSocket]\n"
            "ServerEnabled=true\n"
            f"ServerPort={self.port}\n"
            "AuthRequired=true\n"
            f"ServerPassword={self.password}\n"
            "FirstLoad=false\n"
            "AlertsEnabled=false\n", encoding="utf-8")
        (profile / "basic.ini").write_text(
            "[General]\n"
            f"Name={PROFILE}\n"
            "[Video]\n"
            f"BaseCX={self.width}\nBaseCY={self.height}\nOutputCX={self.width}\nOutputCY={self.height}\n"
            f"FPSType=0\nFPSCommon={self.fps}\n"
            "[Audio]\n"
            "SampleRate=48000\nChannelSetup=Stereo\n"
            "[Output]\n"
            "Mode=Simple\n"
            "[SimpleOutput]\n"
            f"FilePath={self.recordings_dir}\n"
            "RecFormat=mkv\nRecQuality=Stream\nStreamEncoder=x264\nVBitrate=800\nABitrate=128\n",
            encoding="utf-8")
        scene = {"id": "scene", "versioned_id": "scene", "name": SCENE, "enabled": True, "flags": 0,
                 "mixers": 0, "volume": 1.0, "muted": False, "settings": {"custom_size": False, "id_counter": 0,
                                                                          "items": []},
                 "private_settings": {}, "hotkeys": {}, "filters": []}
        collection = {"name": COLLECTION, "current_scene": SCENE, "current_program_scene": SCENE,
                      "scene_order": [{"name": SCENE}], "sources": [scene], "groups": [],
                      "transitions": [], "current_transition": "Cut", "transition_duration": 0,
                      "quick_transitions": [], "saved_projectors": [], "preview_locked": False,
                      "scaling_enabled": False, "modules": {}}
        (scenes / f"{COLLECTION}.json").write_text(json.dumps(collection, indent=1), encoding="utf-8")
