"""Render every sample script cold, then warm; print audio seconds, render seconds, real-time factor
(render ÷ audio) and cache-hit time per script, against the targets in issue 2.

    .venv/bin/python benchmarks/render.py [--engine espeak] [--config anchor.toml]

Edge's service is unreachable from the build machines, so the default engine here is espeak-ng.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from anchor.config import load_settings
from anchor.content import find_scripts, load_script
from anchor.program import render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain

TARGET_COLD_RTF = 0.05
TARGET_HIT_SECONDS = 0.050
WARM_REPEATS = 20


async def bench(config: Path, engine: str) -> int:
    settings = load_settings(config)
    scripts = [load_script(p, settings.scripts_dir) for p in find_scripts(settings.scripts_dir)]
    chain = EngineChain(settings, only=engine)
    with tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
        cache = ProgramCache(Path(tmp), 1 << 34)
        rows = []
        for script in scripts:
            started = time.perf_counter()
            program = await render_program(script, settings, chain, cache)
            cold = time.perf_counter() - started
            assert not program.cache_hit
            hits = []
            for _ in range(WARM_REPEATS):
                started = time.perf_counter()
                warm = await render_program(script, settings, chain, cache)
                hits.append(time.perf_counter() - started)
                assert warm.cache_hit
            rows.append((script.name, program.duration_seconds, cold, cold / program.duration_seconds,
                         statistics.median(hits), max(hits)))
    print(f"engine: {engine}   cold = fresh cache; hit = median (max) of {WARM_REPEATS} cache lookups")
    print(f"{'script':32} {'audio s':>8} {'render s':>9} {'RTF':>7} {'hit ms':>8} {'max ms':>8}")
    for name, audio_s, cold, rtf, hit, worst in rows:
        print(f"{name:32} {audio_s:8.1f} {cold:9.2f} {rtf:7.4f} {hit * 1000:8.2f} {worst * 1000:8.2f}")
    total_audio = sum(r[1] for r in rows)
    total_render = sum(r[2] for r in rows)
    rtf = total_render / total_audio
    worst_hit = max(r[5] for r in rows)
    print(f"{'total':32} {total_audio:8.1f} {total_render:9.2f} {rtf:7.4f}")
    print(f"cold real-time factor {rtf:.4f} (target ≤ {TARGET_COLD_RTF}: {rtf / TARGET_COLD_RTF:.2f}× of budget)")
    print(f"slowest cache hit {worst_hit * 1000:.2f} ms (target ≤ {TARGET_HIT_SECONDS * 1000:.0f} ms: "
          f"{worst_hit / TARGET_HIT_SECONDS:.2f}× of budget)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("anchor.toml"))
    parser.add_argument("--engine", default="espeak")
    args = parser.parse_args()
    return asyncio.run(bench(args.config, args.engine))


if __name__ == "__main__":
    sys.exit(main())
