"""Text front end speed: the sample scripts' sentences through normalization and pinyin; the whole cold espeak
render of each sample script with the front end beside without it (target: ≤ 10 % added); and an offline
PC's `anchor render` of a cached Program once another process has found the cloud voice down (target:
≤ 50 ms of pipeline time).

    .venv/bin/python benchmarks/normalize.py [--rounds 3]

Prints characters per second for each stage and both together (the front end runs at render time, once per
sentence), and espeak-ng's own time on the same text given as Hanzi and given as pinyin.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


TARGET_ADDED = 0.10
TARGET_OFFLINE_HIT_SECONDS = 0.050


@contextmanager
def without_front_end() -> Iterator[None]:
    """Speech as before the front end: every engine is given the written text, and keys ignore the reading."""
    from anchor.speech.reading import Reading, SpeechText

    of, key = Reading.of, Reading.key
    Reading.of = lambda self, texts: [SpeechText.as_written(t) for t in texts]  # type: ignore[method-assign]
    Reading.key = property(lambda self: None)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        Reading.of, Reading.key = of, key  # type: ignore[method-assign]


async def cold_renders(rounds: int) -> None:
    """Each sample script rendered cold by espeak, with and without the front end, alternating; medians."""
    from anchor.config import load_settings
    from anchor.program import render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.chain import EngineChain

    settings = load_settings(REPO / "anchor.toml")
    scripts = [load_script(p, SCRIPTS) for p in find_scripts(SCRIPTS)]
    chain = EngineChain(settings, only="espeak")
    started = time.perf_counter()
    from anchor.speech.reading import Reading, lexicon_file

    Reading("zh-CN", lexicon_file(settings.lexicon)).of(["预热。"])  # pypinyin's dictionaries: once a process
    print(f"\nloading the front end (once per process, not per render): {time.perf_counter() - started:.2f} s")
    times: dict[tuple[str, bool], list[float]] = {}
    audio: dict[tuple[str, bool], float] = {}
    for _ in range(rounds):
        for script in scripts:
            for front in (True, False):
                with tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
                    cache = ProgramCache(Path(tmp), 1 << 34)
                    started = time.perf_counter()
                    if front:
                        program = await render_program(script, settings, chain, cache)
                    else:
                        with without_front_end():
                            program = await render_program(script, settings, chain, cache)
                    times.setdefault((script.name, front), []).append(time.perf_counter() - started)
                    assert not program.cache_hit
                    audio[(script.name, front)] = program.duration_seconds
    print(f"\ncold espeak render, median of {rounds} (fresh cache each time)")
    print(f"{'script':32} {'audio s without/with':>21} {'render s without':>17} {'with':>6} {'added':>7}")
    total_with = total_without = 0.0
    for script in scripts:
        with_s = statistics.median(times[(script.name, True)])
        without_s = statistics.median(times[(script.name, False)])
        total_with, total_without = total_with + with_s, total_without + without_s
        said = f"{audio[(script.name, False)]:.1f} / {audio[(script.name, True)]:.1f}"
        print(f"{script.name:32} {said:>21} {without_s:17.2f} {with_s:6.2f} {(with_s / without_s - 1) * 100:6.1f}%")
    added = total_with / total_without - 1
    print(f"{'total':32} {'':21} {total_without:17.2f} {total_with:6.2f} {added * 100:6.1f}%")
    print(f"the front end adds {added * 100:.1f} % to a cold espeak render (target ≤ {TARGET_ADDED * 100:.0f} %: "
          f"{max(added, 0) / TARGET_ADDED:.2f}× of budget)")


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # a blackholed network: the connection opens and nothing ever answers
    writer.close()


async def offline_cached_render() -> None:
    """An offline PC: another process already found edge down; `anchor render` of a cached Program."""
    from anchor.config import load_settings
    from anchor.program import render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.chain import EngineChain

    server = await asyncio.start_server(_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    script = load_script(sorted(find_scripts(SCRIPTS))[0], SCRIPTS)
    with tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
        config = Path(tmp) / "anchor.toml"
        config.write_text(f'[paths]\ndata_dir = "data"\nscripts_dir = "{SCRIPTS}"\n'
                          f'[speech.chain]\nengines = ["edge", "espeak"]\nrequest_timeout = 1\nretries = 1\n'
                          f'backoff = 0.2\n[speech.engines.edge]\nendpoint = "ws://127.0.0.1:{port}/edge"\n'
                          f'voice_list_endpoint = "http://127.0.0.1:{port}/voices"\n', encoding="utf-8")
        settings = load_settings(config)
        cache = ProgramCache(settings.cache_dir, 1 << 34)
        first = EngineChain(settings)  # the first process: three programs' worth of failures open the breaker
        for _ in range(settings.speech.chain.breaker_failures):
            await render_program(script, settings, first, cache)
        hits = []
        for _ in range(20):
            chain = EngineChain(settings)  # as each new `anchor render` process builds it
            started = time.perf_counter()
            program = await render_program(script, settings, chain, cache)
            hits.append(time.perf_counter() - started)
            assert program.cache_hit and program.engine == "espeak"
        unshared = EngineChain(settings)
        for breaker in unshared.breakers.values():
            breaker.shared = None  # what every process did before the state was shared
        started = time.perf_counter()
        await render_program(script, settings, unshared, cache)
        alone = time.perf_counter() - started
    server.close()
    worst = max(hits)
    print(f"\noffline `anchor render` of a cached Program ({script.name}), edge blackholed:")
    print(f"  breaker shared by the data directory: median {statistics.median(hits) * 1000:.1f} ms, worst "
          f"{worst * 1000:.1f} ms of pipeline time (target ≤ {TARGET_OFFLINE_HIT_SECONDS * 1000:.0f} ms: "
          f"{worst / TARGET_OFFLINE_HIT_SECONDS:.2f}× of budget)")
    print(f"  each process on its own: {alone:.2f} s (here 1 s timeout × 2 attempts; with the default 20 s × 3 "
          f"attempts it is over a minute per call)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="cold renders per script and mode")
    args = parser.parse_args()
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
    asyncio.run(cold_renders(args.rounds))
    asyncio.run(offline_cached_render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
