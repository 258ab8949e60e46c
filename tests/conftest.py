"""Shared fixtures: a throwaway project folder, the CLI as a subprocess, and the fake edge service."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.fake_edge import FakeEdgeServer
from tests.obs_fixture import ObsStudio, require_obs

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "scripts_content"
CLI_TIMEOUT = 600


@dataclass
class Project:
    """A folder with anchor.toml, scripts_content/ and data/, like an institution's installation."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "anchor.toml"

    @property
    def scripts(self) -> Path:
        return self.root / "scripts_content"

    def write_config(self, extra: str = "", engines: tuple[str, ...] = ("espeak",),
                     edge: FakeEdgeServer | None = None, timeout: float = 15.0, retries: int = 1) -> Path:
        # A generous request timeout: under several test workers on two cores the fake voice can take seconds to
        # answer, and a retry would send a sentence twice. Tests of timeouts set their own.
        engine_list = ", ".join(f'"{e}"' for e in engines)
        text = f"""
[paths]
data_dir = "data"
scripts_dir = "scripts_content"

[speech.chain]
engines = [{engine_list}]
request_timeout = {timeout}
retries = {retries}
backoff = 0.05
breaker_failures = 3
breaker_cooldown = 60
"""
        if edge is not None:
            text += f'\n[speech.engines.edge]\nendpoint = "{edge.wss_url}"\nvoice_list_endpoint = "{edge.voices_url}"\n'
        self.config.write_text(text + extra, encoding="utf-8")
        return self.config

    def script(self, name: str, text: str) -> Path:
        path = self.scripts / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, *args: str, timeout: float = CLI_TIMEOUT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`anchor --config anchor.toml ARGS…` as a user would run it, on a terminal wide enough that no
        problem folds: tests match what a problem says, and a temporary path's length (xdist's workers add a
        folder) must not move a fold into the phrase. The tests of folding set COLUMNS themselves."""
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
               "COLUMNS": "1000", "PYTHONUNBUFFERED": "1", **(env or {})}
        return subprocess.run([sys.executable, "-m", "anchor", "--config", str(self.config), *args],
                              cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)


def clock_now() -> datetime:
    """The tests' one "now": this process's clock. `make test` runs the date-sensitive tests (marked `dated`)
    a second time with the clock a year ahead (libfaketime, inherited by every program a test starts), so a
    test that reads "now" from here instead of hard-coding a date keeps passing as the calendar moves."""
    return datetime.now(timezone.utc)


@pytest.fixture
def now() -> datetime:
    return clock_now()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path / "site")
    p.scripts.mkdir(parents=True)
    p.write_config()
    return p


@pytest.fixture
def samples_project(project: Project) -> Project:
    shutil.copytree(SAMPLES, project.scripts, dirs_exist_ok=True)
    return project


@pytest.fixture
def fake_edge() -> Iterator[FakeEdgeServer]:
    with FakeEdgeServer() as server:
        yield server


def script_text(body: str, title: str = "测试", **front: str) -> str:
    keys = "".join(f'{k} = "{v}"\n' for k, v in front.items())
    return f'+++\ntitle = "{title}"\n{keys}+++\n\n{body}\n'


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


def speech_segments(wav: Path, noise_db: int = -40, min_gap: float = 0.12) -> list[tuple[float, float]]:
    """Where there is sound in a file, by ffmpeg's silencedetect: [(start, end), …]."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(wav), "-af",
                           f"silencedetect=noise={noise_db}dB:d={min_gap}", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120, check=True)
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", proc.stderr)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", proc.stderr)]
    duration = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                     "csv=p=0", str(wav)], capture_output=True, text=True, timeout=30,
                                    check=True).stdout)
    segments, cursor = [], 0.0
    for s, e in zip(starts, ends + [duration] * (len(starts) - len(ends))):
        if s > cursor:
            segments.append((cursor, s))
        cursor = e
    if cursor < duration - 0.01:
        segments.append((cursor, duration))
    return segments


def srt_cues(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue in an SRT file, times in seconds."""
    def seconds(stamp: str) -> float:
        h, m, s = stamp.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.splitlines()
        start, end = lines[1].split(" --> ")
        cues.append((seconds(start), seconds(end), "\n".join(lines[2:])))
    return cues


def ebur128(wav: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file, measured by ffmpeg's ebur128 filter."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(wav), "-af", "ebur128=peak=true",
                           "-f", "null", "-"], capture_output=True, text=True, timeout=120, check=True)
    summary = proc.stderr[proc.stderr.rfind("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return integrated, peak


def newest_postgres_bin(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The server binaries of the highest PostgreSQL major version installed (Debian keeps each in
    /usr/lib/postgresql/<major>/bin; the unversioned `postgresql` package brings the release's own)."""
    majors = [path.parent.parent for path in root.glob("*/bin/initdb") if path.parent.parent.name.isdigit()]
    newest = max(majors, key=lambda major: int(major.name), default=root / "15")
    return newest / "bin"


PG_BIN = newest_postgres_bin()


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1 and a free port; its SQLAlchemy URL."""
    import pwd
    import socket
    import tempfile

    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL server binaries are missing from {PG_BIN} (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="anchor-pg-"))
    as_postgres: list[str] = []
    if os.getuid() == 0:  # initdb refuses to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
        postgres_user = pwd.getpwnam("postgres")
        root.chmod(0o755)
        os.chown(root, postgres_user.pw_uid, postgres_user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    run = lambda *argv: subprocess.run([*as_postgres, *argv], capture_output=True, text=True, timeout=120, check=True)  # noqa: E731
    run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "anchor", "--auth=trust", "-E", "UTF8")
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://anchor@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "60",
                        "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def asrun_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an as-run log: a SQLite file, then a throwaway PostgreSQL."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres")
        return url
    return f"sqlite:///{tmp_path / 'anchor.db'}"


@pytest.fixture(scope="module")
def obs() -> Iterator[ObsStudio]:
    """One real OBS Studio under Xvfb for a module's tests, which leave it running as they found it."""
    require_obs()
    with ObsStudio() as studio:
        yield studio


@pytest.fixture
def own_obs() -> Iterator[ObsStudio]:
    """An OBS for one test that kills, freezes, restarts or stops it."""
    require_obs()
    with ObsStudio() as studio:
        yield studio
