"""Planning speed: 50 channels (the shipped hospital and procuratorate channels, copied) × 7 days.

    .venv/bin/python benchmarks/plan.py

Prints the in-process planning time (target ≤ 1 s, issue 3) and the whole `anchor plan --json` command.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from anchor.config import load_settings
from anchor.schedule.channel import load_channels
from anchor.schedule.planner import plan

REPO = Path(__file__).resolve().parent.parent
CHANNELS = 50
DAYS = 7


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="anchor-plan-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "scripts_content", root / "scripts_content")
        (root / "schedules").mkdir()
        (root / "anchor.toml").write_text("", encoding="utf-8")
        for n in range(CHANNELS):
            source = REPO / "schedules" / ("hospital.toml" if n % 2 else "procuratorate.toml")
            text = source.read_text(encoding="utf-8")
            text = text.replace('id = "hospital"', f'id = "h{n}"').replace('id = "procuratorate"', f'id = "p{n}"')
            (root / "schedules" / f"c{n:02d}.toml").write_text(text, encoding="utf-8")
        settings = load_settings(root / "anchor.toml")
        start = time.perf_counter()
        channels, _ = load_channels(settings)
        loaded = time.perf_counter() - start
        begin = datetime.now(timezone.utc)
        start = time.perf_counter()
        airings = plan(channels, begin, begin + timedelta(days=DAYS))
        planned = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "anchor", "--config", str(root / "anchor.toml"), "plan", "--days",
                        str(DAYS), "--json"], check=True, capture_output=True, timeout=120)
        command = time.perf_counter() - start
    print(f"{CHANNELS} channels × {DAYS} days = {len(airings)} airings")
    print(f"  load channel files {loaded * 1000:.0f} ms; plan {planned * 1000:.0f} ms; "
          f"together {(loaded + planned):.3f} s (target ≤ 1 s: {(loaded + planned):.2f}x of budget)")
    print(f"  `anchor plan --days {DAYS} --json` end to end, Python start-up included: {command:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
