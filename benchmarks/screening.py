"""Screening speed: building the Screen from the word lists, and screening the sample scripts once it is built.

    .venv/bin/python benchmarks/screening.py

Prints the time to read the bundled list and build the Aho-Corasick automaton (and the same for a synthetic
list of 20,000 entries, for an institution with a long list of its own), then characters per second over the
sample scripts: the first pass (each new character folded once) and steady state, for the texts as they are
(nearly no hits, the common case) and for the same texts seeded with a listed word in every paragraph.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from anchor.content.screening import BUNDLED_LIST, Screen, read_list

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC_WORDS = 20_000
STEADY_SECONDS = 2.0
# GB2312's first level, the 3,755 common characters: what real word lists are written in. It matters for speed:
# pyahocorasick finds a node's child by a linear scan, so the number of distinct first characters counts.
COMMON_CHARACTERS = [bytes([high, low]).decode("gb2312") for high in range(0xB0, 0xD8) for low in range(0xA1, 0xFF)
                     if high < 0xD7 or low <= 0xF9]


def _build_seconds(lists_dir: Path | None, bundled: bool = True) -> tuple[float, Screen]:
    start = time.perf_counter()
    screen = Screen.from_lists(lists_dir, bundled=bundled)
    return time.perf_counter() - start, screen


def _throughput(screen: Screen, texts: list[str]) -> tuple[float, int]:
    """Characters per second over `texts`, repeated for STEADY_SECONDS; and the hits in one pass."""
    characters = sum(len(t) for t in texts)
    hits = sum(len(screen.screen(t)) for t in texts)
    rounds = 0
    start = time.perf_counter()
    while time.perf_counter() - start < STEADY_SECONDS:
        for text in texts:
            screen.screen(text)
        rounds += 1
    return rounds * characters / (time.perf_counter() - start), hits


def main() -> int:
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "scripts_content").rglob("*.md"))]
    characters = sum(len(t) for t in texts)

    # The first Screen also loads OpenCC's dictionaries: that is part of the first build in a process.
    first_build, _ = _build_seconds(None)
    build, screen = _build_seconds(None)
    words = screen.word_count
    start = time.perf_counter()
    first_pass = sum(len(screen.screen(t)) for t in texts)
    first_pass_seconds = time.perf_counter() - start

    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="anchor-screening-") as tmp:
        lists = Path(tmp)
        entries = {"".join(rng.choice(COMMON_CHARACTERS) for _ in range(rng.randint(2, 6)))
                   for _ in range(SYNTHETIC_WORDS)}
        (lists / "synthetic.txt").write_text("\n".join(sorted(entries)) + "\n", encoding="utf-8")
        big_build, big_screen = _build_seconds(lists)
        big_words = big_screen.word_count
        first_characters = len({entry[0] for entry in entries})

    clean_rate, clean_hits = _throughput(screen, texts)
    listed = [entry.word for entry in read_list(BUNDLED_LIST) if not entry.is_exception and not entry.anchored]
    seeded = ["\n\n".join(f"{p}{rng.choice(listed)}。" for p in t.split("\n\n")) for t in texts]
    seeded_rate, seeded_hits = _throughput(screen, seeded)
    big_rate, big_hits = _throughput(big_screen, texts)

    print(f"build: bundled list, {words} words → {build * 1000:.1f} ms "
          f"(first in the process, with OpenCC's dictionaries: {first_build * 1000:.1f} ms)")
    print(f"build: bundled + synthetic list, {big_words} words ({first_characters} distinct first characters) "
          f"→ {big_build * 1000:.0f} ms")
    print(f"sample scripts: {len(texts)} files, {characters} characters, {first_pass} hit(s); "
          f"first pass {first_pass_seconds * 1000:.2f} ms")
    print(f"screen, as written ({clean_hits} hit(s)):      {clean_rate / 1e6:.2f} M characters/s")
    print(f"screen, a listed word per paragraph ({seeded_hits} hits): {seeded_rate / 1e6:.2f} M characters/s")
    print(f"screen with the {big_words}-word list, as written ({big_hits} hit(s)): {big_rate / 1e6:.2f} M characters/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
