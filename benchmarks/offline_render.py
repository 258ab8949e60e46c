"""Rendering on a PC that is offline: the cloud voice's name does not resolve. The first render of a script
falls back to espeak-ng (the breaker opens after that one failure); the second is the cached Program, served
before any engine is asked. Prints both times and their ratio (target, issue 17: the second ≥ 5× faster).

    .venv/bin/python benchmarks/offline_render.py [--runs 5] [--script health/hypertension.md]

1. `anchor render SCRIPT` as a user runs it (wall time of the command, a fresh data directory each run).
2. The same inside one process (render_program), without the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 5.0
# The .invalid top-level domain never resolves (RFC 6761): what a PC without internet access sees.
OFFLINE_EDGE = ('[speech.engines.edge]\nendpoint = "wss://anchor-bench.invalid/edge/v1?TrustedClientToken=x"\n'
                'voice_list_endpoint = "https://anchor-bench.invalid/voices/list?trustedclienttoken=x"\n')


def offline_site(root: Path) -> Path:
    """A copy of the bundled scripts with a config whose chain is edge (unresolvable), then espeak."""
    shutil.copytree(REPO / "scripts_content", root / "scripts_content")
    config = root / "anchor.toml"
    config.write_text('[paths]\ndata_dir = "data"\nscripts_dir = "scripts_content"\n\n'
                      '[speech.chain]\nengines = ["edge", "espeak"]\n\n' + OFFLINE_EDGE, encoding="utf-8")
    return config


def command_times(script: str, runs: int) -> tuple[list[float], list[float]]:
    firsts, seconds = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
            config = offline_site(Path(tmp))
            argv = [sys.executable, "-m", "anchor", "--config", str(config), "render", script,
                    "--out", str(Path(tmp) / "out")]
            for times in (firsts, seconds):
                started = time.perf_counter()
                done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=300, check=False)
                times.append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise SystemExit(f"anchor render failed: {done.stderr.strip()}")
    return firsts, seconds


async def pipeline_times(script_name: str, runs: int) -> tuple[list[float], list[float], str]:
    from anchor.config import load_settings
    from anchor.content import load_script
    from anchor.program import render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.chain import EngineChain

    firsts, seconds, reason = [], [], ""
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
            settings = load_settings(offline_site(Path(tmp)))
            script = load_script(settings.scripts_dir / script_name, settings.scripts_dir)
            cache = ProgramCache(settings.cache_dir, 1 << 34)
            for times in (firsts, seconds):
                chain = EngineChain(settings)  # as each `anchor render` process builds it
                started = time.perf_counter()
                program = await render_program(script, settings, chain, cache)
                await chain.settle()
                times.append(time.perf_counter() - started)
                assert program.engine == "espeak" and program.cache_hit == (times is seconds)
                reason = reason or program.fallback_reason or ""
    return firsts, seconds, reason


def report(label: str, firsts: list[float], seconds: list[float]) -> None:
    first, second = statistics.median(firsts), statistics.median(seconds)
    ratio = first / second
    print(f"{label:28} first {first:6.2f} s   second {second:6.3f} s   ratio {ratio:5.1f}× "
          f"(target ≥ {TARGET_RATIO:g}×: {'met' if ratio >= TARGET_RATIO else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh data directories, each rendered twice")
    parser.add_argument("--script", default="health/hypertension.md", help="inside scripts_content/")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the fallback's warnings are what is measured, not what is shown
    print(f"offline (the cloud voice's name does not resolve), {args.script}, median of {args.runs} runs")
    firsts, seconds, reason = asyncio.run(pipeline_times(args.script, args.runs))
    print(f"first render fell back because: {reason}")
    report("render_program, in-process", firsts, seconds)
    report("`anchor render` command", *command_times(args.script, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
