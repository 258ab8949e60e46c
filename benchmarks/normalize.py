"""Text front end speed: the sample scripts' sentences through normalization and pinyin.

    .venv/bin/python benchmarks/normalize.py

Prints characters per second for each stage and both together (the front end runs at render time, once per
sentence), and espeak-ng's own time on the same text given as Hanzi and given as pinyin.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from anchor.config import default_settings
from anchor.content import find_scripts, load_script
from anchor.content.spoken import Paragraph
from anchor.speech.frontend import spoken, to_pinyin
from anchor.speech.sentences import split_sentences

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts_content"
ROUNDS = 20


def sample_sentences() -> list[str]:
    """Every sentence of every sample script, cut as the renderer cuts them."""
    max_chars = default_settings().speech.max_sentence_chars
    sentences: list[str] = []
    for path in find_scripts(SCRIPTS):
        script = load_script(path, SCRIPTS)
        for block in script.blocks:
            if isinstance(block, Paragraph):
                sentences.extend(split_sentences(block.text, max_chars))
    return sentences


def chars_per_second(texts: list[str], stage: Callable[[str], str]) -> tuple[float, list[str]]:
    """Input characters per second through one stage, averaged over ROUNDS passes, and its output."""
    out: list[str] = []
    start = time.perf_counter()
    for _ in range(ROUNDS):
        out = [stage(t) for t in texts]
    seconds = time.perf_counter() - start
    return sum(map(len, texts)) * ROUNDS / seconds, out


def espeak_seconds(text: str) -> float:
    """Wall time of one espeak-ng cmn-latn-pinyin run synthesizing `text` to a WAV on stdout.

    The engine-level half of the render-time comparison with and without the front end; the whole-program
    comparison belongs in benchmarks/render.py once the espeak engine calls the front end."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return float("nan")
    start = time.perf_counter()
    subprocess.run([espeak, "-v", "cmn-latn-pinyin", "--stdout", text], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


def main() -> int:
    sentences = sample_sentences()
    spoken(sentences[0])  # load pypinyin's dictionaries and compile the rules before timing
    to_pinyin(sentences[0])
    written_chars = sum(map(len, sentences))
    said_rate, said = chars_per_second(sentences, spoken)
    pinyin_rate, pinyin = chars_per_second(said, to_pinyin)
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for sentence in sentences:
            to_pinyin(spoken(sentence))
    both_rate = written_chars * ROUNDS / (time.perf_counter() - start)
    print(f"{len(sentences)} sentences, {written_chars} characters from {SCRIPTS.relative_to(REPO)}/ "
          f"(averaged over {ROUNDS} rounds)")
    print(f"  normalization (written → said)      {said_rate:>10,.0f} characters/s")
    print(f"  pinyin (said → tone-numbered)        {pinyin_rate:>10,.0f} characters/s")
    print(f"  front end, both                      {both_rate:>10,.0f} characters/s "
          f"({1000 * written_chars / both_rate:.1f} ms for all six scripts)")
    hanzi_time = espeak_seconds("\n".join(sentences))
    pinyin_time = espeak_seconds("\n".join(pinyin))
    print(f"  espeak-ng synthesis of the same text: given Hanzi {hanzi_time:.2f} s, given pinyin {pinyin_time:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
