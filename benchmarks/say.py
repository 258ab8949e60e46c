"""How fast `anchor say TEXT` answers (reading only: the words said and the pinyin), and what its import of
the Chinese front end costs.

    .venv/bin/python benchmarks/say.py [--runs 15] [--text 仁济医院银行部，请拨打12309。]

Prints the median wall and CPU time of `anchor say` beside `python -c pass` (hyperfine-like: one warm-up run,
then --runs runs), and, from `python -X importtime`, the cumulative import time of anchor.speech.frontend and
of the modules under it that cost most (median of 5). Target (issue 17): `anchor say` ≤ 0.4 s.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.4
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of a command. CPU (user + system) is the steadier figure on a busy machine:
    it leaves out the time the command waited for a core."""
    subprocess.run(argv, cwd=REPO, capture_output=True, check=True, timeout=120)  # warm the file cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, cwd=REPO, capture_output=True, check=True, timeout=120)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def import_times(text: str) -> dict[str, float]:
    """Cumulative seconds of each module that `anchor say` imports."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "anchor", "say", text], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=120)
    return {m.group(4): int(m.group(2)) / 1e6 for m in map(_IMPORT_LINE.match, done.stderr.splitlines()) if m}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--text", default="仁济医院银行部，请拨打12309。")
    args = parser.parse_args()
    say, say_cpu = timed([sys.executable, "-m", "anchor", "say", args.text], args.runs)
    bare, bare_cpu = timed([sys.executable, "-c", "pass"], args.runs)
    samples = [import_times(args.text) for _ in range(5)]
    watched = ["anchor.speech.frontend", "anchor.speech.frontend.phrases", "pypinyin",
               "anchor.speech.frontend.normalize", "cn2an"]
    print(f"`anchor say {args.text}`: median of {args.runs} runs")
    print(f"  python -c pass        {bare:6.3f} s wall, {bare_cpu:6.3f} s CPU")
    print(f"  anchor say            {say:6.3f} s wall, {say_cpu:6.3f} s CPU   (target ≤ {TARGET_SECONDS} s: "
          f"{say / TARGET_SECONDS:.2f}× of budget by wall time, {say_cpu / TARGET_SECONDS:.2f}× by CPU)")
    print("imports (cumulative, median of 5 runs of -X importtime):")
    for module in watched:
        seconds = [s[module] for s in samples if module in s]
        print(f"  {module:34} " + (f"{statistics.median(seconds):6.3f} s" if seconds else "  not imported"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
