"""Runs `anchor run` as a real process for tests, and reads what it logged and wrote."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta, timezone
from pathlib import Path

from anchor.store import Airing, AsRunLog, Outcome, open_engine
from tests.conftest import Project, clock_now, script_text

UTC = timezone.utc
FINAL = {o.value for o in Outcome} - {Outcome.ON_AIR.value}
SHORT = "各位观众，大家好。这是一条测试通知。"
LONG = "。".join(["各位观众朋友，请注意按时测量血压，少吃盐，多运动"] * 5) + "。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Seconds a daemon may take from its start to a first slot it can air on time, its first render included: under
# `make test` three workers share two cores, and a daemon then starts in several seconds instead of one.
STARTUP = 20


def at(seconds: float) -> str:
    """A TOML date-time `seconds` from now, whole seconds, UTC."""
    return (clock_now() + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def setup_site(project: Project, metrics_port: int, database_url: str = "") -> None:
    (project.root / "schedules").mkdir(exist_ok=True)
    project.script("short.md", script_text(SHORT, title="短通知"))
    project.script("long.md", script_text(LONG, title="长通知"))
    extra = f'[daemon]\nmetrics_port = {metrics_port}\nhttp_port = 0\nstop_timeout = 5\n'
    if database_url:
        extra += f'database_url = "{database_url}"\n'
    project.write_config(extra=extra)


def channel(project: Project, slots: str, name: str = "t") -> Path:
    path = project.root / "schedules" / f"{name}.toml"
    path.write_text(f'[channel]\nid = "{name}"\nname = "测试频道"\ntimezone = "Asia/Shanghai"\n\n{slots}', encoding="utf-8")
    return path


def slot(name: str, when: str, script: str = "short.md", **extra: str) -> str:
    lines = ['[[slot]]', f'name = "{name}"', when, f'script = "{script}"']
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    return "\n".join(lines) + "\n\n"


class Daemon:
    def __init__(self, project: Project, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.log_path = project.root / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        environment = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "anchor", "--config", str(project.config), "run"],
                                     cwd=project.root, env=environment, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log)
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.proc.returncode}):\n{self.log[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the log within {timeout}s:\n{self.log[-3000:]}")

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def rows(project: Project, database_url: str = "") -> list[Airing]:
    url = database_url or f"sqlite:///{project.root / 'data' / 'anchor.db'}"
    if not database_url and not (project.root / "data" / "anchor.db").exists():
        return []
    return AsRunLog(open_engine(url)).history()


def wait_rows(project: Project, done: callable, timeout: float = 90, database_url: str = "") -> list[Airing]:
    deadline = time.monotonic() + timeout
    found: list[Airing] = []
    while time.monotonic() < deadline:
        found = rows(project, database_url)
        if done(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"as-run log never reached the expected state: {[(r.slot, r.outcome) for r in found]}")


def final(found: list[Airing], *slots: str) -> bool:
    by_slot = {r.slot: r for r in found}
    return all(s in by_slot and by_slot[s].outcome.value in FINAL for s in slots)
