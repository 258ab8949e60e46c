"""How close to the minute anchor airs, and what it costs when idle.

    .venv/bin/python benchmarks/punctuality.py [--airings 60] [--idle-seconds 60]

1. Runs `anchor run` (file output) on N airings two seconds apart, and in this process a bare
   APScheduler AsyncIOScheduler job firing at the same instants. Prints lateness (planned instant →
   the output's start, from the as-run log) p50/p95/p99/max for both, and the ratio.
2. Runs the daemon idle with 50 channels loaded and prints its RSS and CPU.
Targets (issue 3): p99 lateness ≤ 20 ms; idle CPU ≤ 1 % of a core; RSS ≤ 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from running import memory_mb, quantiles, start_daemon, stop_daemon

from anchor.store import AsRunLog, open_engine

REPO = Path(__file__).resolve().parent.parent
UTC = timezone.utc
TICKS = os.sysconf("SC_CLK_TCK")


def site(root: Path, schedules: dict[str, str], extra: str = "") -> None:
    (root / "schedules").mkdir(parents=True)
    shutil.copytree(REPO / "scripts_content", root / "scripts_content")
    (root / "scripts_content" / "tick.md").write_text('+++\ntitle = "整点提示"\n+++\n\n好。\n', encoding="utf-8")
    for name, text in schedules.items():
        (root / "schedules" / f"{name}.toml").write_text(text, encoding="utf-8")
    (root / "anchor.toml").write_text(f'[speech.chain]\nengines = ["espeak"]\n[daemon]\nmetrics_port = 0\nhttp_port = 0\n{extra}',
                                      encoding="utf-8")


def percentiles(values: list[float]) -> str:
    p50, p95, p99, top = quantiles(values)
    return f"p50 {p50:7.2f}  p95 {p95:7.2f}  p99 {p99:7.2f}  max {top:7.2f}  (ms, n={len(values)})"


async def bare_scheduler(instants: list[datetime]) -> list[float]:
    """The same instants on a bare APScheduler job: the floor anchor's lateness stands beside."""
    late: list[float] = []
    scheduler = AsyncIOScheduler(timezone=UTC)

    async def fire(planned: datetime) -> None:
        late.append((datetime.now(UTC) - planned).total_seconds() * 1000)

    for instant in instants:
        scheduler.add_job(fire, DateTrigger(instant), args=[instant], misfire_grace_time=None)
    scheduler.start()
    while len(late) < len(instants) and datetime.now(UTC) < instants[-1] + timedelta(seconds=30):
        await asyncio.sleep(0.5)
    scheduler.shutdown(wait=False)
    return late


def punctuality(airings: int) -> float:
    with tempfile.TemporaryDirectory(prefix="anchor-punctuality-") as tmp:
        root = Path(tmp)
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)  # time to pre-render
        instants = [first + timedelta(seconds=2 * i) for i in range(airings)]
        slots = "".join(f'[[slot]]\nname = "s{i:03d}"\nat = {t.strftime("%Y-%m-%dT%H:%M:%SZ")}\nscript = "tick.md"\n\n'
                        for i, t in enumerate(instants))
        site(root, {"bench": f'[channel]\nid = "bench"\ntimezone = "Asia/Shanghai"\n\n{slots}'})
        proc = start_daemon(root)
        try:
            bare = asyncio.run(bare_scheduler(instants))
            deadline = time.monotonic() + 30
            log = AsRunLog(open_engine(f"sqlite:///{root / 'data' / 'anchor.db'}"))
            while time.monotonic() < deadline:
                rows = [r for r in log.history() if r.outcome.value in ("aired", "late", "missed", "failed")]
                if len(rows) >= airings:
                    break
                time.sleep(0.5)
        finally:
            stop_daemon(proc)
        outcomes = {r.outcome.value for r in rows}
        anchor_late = [(r.started_at - r.planned_at).total_seconds() * 1000 for r in rows if r.started_at]
    print(f"punctuality: {airings} airings 2 s apart, file output; outcomes {sorted(outcomes)}")
    print(f"  anchor (instant → output start)  {percentiles(anchor_late)}")
    print(f"  bare APScheduler job             {percentiles(bare)}")
    p99 = statistics.quantiles(sorted(anchor_late), n=100, method="inclusive")[98]
    bare_p99 = statistics.quantiles(sorted(bare), n=100, method="inclusive")[98]
    print(f"  p99 ratio anchor / bare: {p99 / bare_p99:.1f}x;  p99 {p99:.2f} ms against the 20 ms target "
          f"({p99 / 20:.2f}x of budget)")
    return p99


def idle(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="anchor-idle-") as tmp:
        root = Path(tmp)
        # Slots at an hour outside the pre-render horizon: this measures the daemon at rest, not rendering.
        hour = (datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).hour + 6) % 24
        schedules = {}
        for n in range(50):
            schedules[f"c{n:02d}"] = (f'[channel]\nid = "c{n:02d}"\ntimezone = "Asia/Shanghai"\nprerender_hours = 1\n\n'
                                      f'[[slot]]\ncron = "0 {hour} * * *"\nrotate = ["health/hypertension.md", '
                                      f'"policy/legal-aid.md"]\n\n[[slot]]\ncron = "30 {hour} * * 1-5"\n'
                                      f'script = "health/diabetes-diet.md"\n')
        site(root, schedules)
        proc = start_daemon(root)
        try:
            time.sleep(10)  # start-up
            stat = Path(f"/proc/{proc.pid}/stat")

            def cpu() -> float:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / TICKS

            before, t0 = cpu(), time.monotonic()
            time.sleep(seconds)
            used, elapsed = cpu() - before, time.monotonic() - t0
            rss = memory_mb(proc.pid)
        finally:
            stop_daemon(proc)
    print(f"idle, 50 channels: CPU {100 * used / elapsed:.2f} % of a core over {elapsed:.0f} s "
          f"(target ≤ 1 %); RSS {rss:.0f} MB (target ≤ 150 MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airings", type=int, default=60)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    punctuality(args.airings)
    idle(args.idle_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
