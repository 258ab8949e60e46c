"""What the benchmarks share: starting and stopping `anchor run` on a folder, and reading a process's memory."""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
from pathlib import Path


def start_daemon(root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`anchor run` on root/anchor.toml, its log in root/daemon.log."""
    return subprocess.Popen([sys.executable, "-m", "anchor", "--config", str(root / "anchor.toml"), "run"], cwd=root,
                            env=env, stdout=subprocess.DEVNULL, stderr=open(root / "daemon.log", "wb"))


def stop_daemon(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (resident now) or VmHWM (its peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def quantiles(values: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99 and max."""
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return q[49], q[94], q[98], ordered[-1]
