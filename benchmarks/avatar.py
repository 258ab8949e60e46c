"""Talking-clip speed: every sample script rendered by the real pipeline (espeak-ng), then its talking clip
with the default avatar at 640x360, 25 fps, subtitles burned in. Prints audio seconds, render seconds and
the real-time factor (render ÷ audio; target ≤ 0.2, issue 4) per script and in total.

    .venv/bin/python benchmarks/avatar.py [--engine espeak] [--config anchor.toml] [--keep DIR]

Only the clip is timed; the speech render before it is benchmarks/render.py's business.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from anchor.avatar import DEFAULT_AVATAR, load_avatar, render_talking_clip
from anchor.config import load_settings
from anchor.content import find_scripts, load_script
from anchor.program import render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain

TARGET_RTF = 0.2
WIDTH, HEIGHT, FPS = 640, 360, 25


async def bench(config: Path, engine: str, keep: Path | None) -> int:
    settings = load_settings(config)
    scripts = [load_script(p, settings.scripts_dir) for p in find_scripts(settings.scripts_dir)]
    chain = EngineChain(settings, only=engine)
    avatar = load_avatar(DEFAULT_AVATAR)
    rows = []
    with tempfile.TemporaryDirectory(prefix="anchor-avatar-bench-") as tmp:
        cache = ProgramCache(Path(tmp) / "cache", 1 << 34)
        clips = keep or Path(tmp) / "clips"
        for script in scripts:
            program = await render_program(script, settings, chain, cache)
            assert program.directory is not None
            out = clips / f"{script.name.replace('/', '-').removesuffix('.md')}.mp4"
            report = await render_talking_clip(program.directory, avatar, out, width=WIDTH, height=HEIGHT, fps=FPS,
                                               subtitles=True, font="WenQuanYi Micro Hei", seed=0)
            rows.append((script.name, report))
    print(f"talking clips: default avatar, {WIDTH}x{HEIGHT} @ {FPS} fps, subtitles, libx264 veryfast + AAC; "
          f"{os.cpu_count()} CPUs")
    print(f"{'script':32} {'audio s':>8} {'render s':>9} {'RTF':>7} {'runs':>6} {'open %':>7} {'blinks':>7}")
    for name, r in rows:
        print(f"{name:32} {r.audio_seconds:8.1f} {r.render_seconds:9.2f} {r.real_time_factor:7.3f} {r.runs:6d} "
              f"{100 * r.mouth_open_share:7.0f} {r.blinks:7d}")
    audio = sum(r.audio_seconds for _, r in rows)
    spent = sum(r.render_seconds for _, r in rows)
    rtf = spent / audio
    print(f"{'total':32} {audio:8.1f} {spent:9.2f} {rtf:7.3f}")
    print(f"real-time factor {rtf:.3f} (target ≤ {TARGET_RTF}: {rtf / TARGET_RTF:.2f}× of budget)")
    if keep:
        print(f"clips kept in {keep}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("anchor.toml"))
    parser.add_argument("--engine", default="espeak")
    parser.add_argument("--keep", type=Path, help="write the clips here instead of a temporary folder")
    args = parser.parse_args()
    return asyncio.run(bench(args.config, args.engine, args.keep))


if __name__ == "__main__":
    sys.exit(main())
