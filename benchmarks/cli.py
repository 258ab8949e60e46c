"""How fast the `anchor` command answers, and what the daemon holds in memory once it has aired.

    .venv/bin/python benchmarks/cli.py [--runs 7] [--airings 10]

1. Runs the bundled channels (a copy of anchor.toml, schedules/ and scripts_content/) as `anchor run`, with
   four more copies of the demo channel so ten airings come in minutes, not twenty; samples the daemon's
   RSS and prints it after the tenth airing (steady: the median of the samples after it) and its peak.
2. Times, on the same copy (its as-run log now holds those airings), the wall time of `anchor --help`,
   `anchor check`, `anchor plan --days 1` and `anchor history` beside `python -c pass`: the median of
   --runs runs each, and the ratio to the target.
Targets (issue 7): --help ≤ 0.25 s; check, plan and history ≤ 0.6 s; steady RSS ≤ 150 MB.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from running import memory_mb, start_daemon, stop_daemon

from anchor.store import Outcome, open_store

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"--help": 0.25, "check": 0.6, "plan --days 1": 0.6, "history": 0.6}
EXTRA_DEMO_CHANNELS = 4


def bundled_copy(root: Path, metrics_port: int = 0) -> None:
    shutil.copytree(REPO / "schedules", root / "schedules")
    shutil.copytree(REPO / "scripts_content", root / "scripts_content")
    text = (REPO / "anchor.toml").read_text(encoding="utf-8")
    assert "metrics_port = 9464\n" in text and "http_port = 9465" in text, "the bundled [daemon] table changed"
    text = text.replace("metrics_port = 9464\n", f"metrics_port = {metrics_port}\n").replace("http_port = 9465",
                                                                                             "http_port = 0")
    (root / "anchor.toml").write_text(text, encoding="utf-8")
    demo = (REPO / "schedules" / "demo.toml").read_text(encoding="utf-8")
    for n in range(2, 2 + EXTRA_DEMO_CHANNELS):
        (root / "schedules" / f"demo{n}.toml").write_text(demo.replace('id = "demo"', f'id = "demo{n}"'),
                                                          encoding="utf-8")


def steady_rss(root: Path, airings: int, limit: float) -> tuple[float, float, float, list[str]]:
    """(RSS after `airings` airings, steady RSS, peak RSS, outcomes) of the daemon on `root`."""
    proc = start_daemon(root)
    log = open_store(f"sqlite:///{root / 'data' / 'anchor.db'}")
    samples: list[tuple[int, float]] = []
    deadline = time.monotonic() + limit
    done: list[str] = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(2)
            if not (root / "data" / "anchor.db").exists():
                continue
            done = [r.outcome.value for r in log.history() if r.outcome is not Outcome.ON_AIR]
            samples.append((len(done), memory_mb(proc.pid)))
            if len(done) >= airings and len([s for s in samples if s[0] >= airings]) >= 15:
                break  # ~30 s of samples after the tenth airing
        peak = memory_mb(proc.pid, "VmHWM")
    finally:
        stop_daemon(proc)
    after = [rss for count, rss in samples if count >= airings]
    if not after:
        raise SystemExit(f"only {len(done)} airings within {limit:.0f} s; see {root / 'daemon.log'}")
    return after[0], statistics.median(after), peak, done


def timed(argv: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--airings", type=int, default=10)
    parser.add_argument("--limit", type=float, default=900, help="seconds to wait for the airings")
    args = parser.parse_args()
    anchor = str(Path(sys.executable).parent / "anchor")
    with tempfile.TemporaryDirectory(prefix="anchor-cli-bench-") as tmp:
        root = Path(tmp)
        bundled_copy(root)
        first, steady, peak, outcomes = steady_rss(root, args.airings, args.limit)
        print(f"daemon, bundled channels + {EXTRA_DEMO_CHANNELS} demo copies: RSS {first:.0f} MB after "
              f"{args.airings} airings, steady {steady:.0f} MB ({steady / 150:.2f}x of the 150 MB target), "
              f"peak {peak:.0f} MB; outcomes {sorted(set(outcomes))}")
        floor = timed([sys.executable, "-c", "pass"], root, args.runs)
        print(f"command wall time, median of {args.runs} (python -c pass: {floor:.3f} s)")
        for command, target in TARGETS.items():
            took = timed([anchor, *command.split()], root, args.runs)
            print(f"  anchor {command:<15} {took:6.3f} s  target ≤ {target:.2f} s  ({took / target:.2f}x)  "
                  f"{took / floor:5.1f}x python -c pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
