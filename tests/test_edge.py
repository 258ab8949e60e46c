"""The edge engine against a local server speaking edge-tts's real websocket protocol: success with
word-timed subtitles, every way the service fails (falling back to espeak), the circuit breaker, the cache."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from anchor.config import load_settings
from anchor.content import load_script
from anchor.program import Program, render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.speech.sentences import width
from tests.conftest import Project, no_traceback, script_text, srt_cues
from tests.fake_edge import FakeEdgeServer

GREETING = "各位观众，大家好。"
LONG = "今天我们向大家介绍本校新建成的图书馆和学生活动中心，欢迎大家在开放日前来参观。"  # 39 wide
THANKS = "谢谢收看！"
XIAOXIAO = "Microsoft Server Speech Text to Speech Voice (zh-CN, XiaoxiaoNeural)"
CJK = re.compile(r"[\u4e00-\u9fff]")


def ffprobe(wav: Path) -> tuple[int, float]:
    """(sample rate, duration in seconds) as ffprobe reads the file."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=sample_rate:format=duration", "-of", "json", str(wav)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    data = json.loads(out)
    return int(data["streams"][0]["sample_rate"]), float(data["format"]["duration"])


def render(project: Project, script: Path, out: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], dict]:
    result = project.run("render", str(script), "--out", str(out), timeout=timeout)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    return result, json.loads((out / "program.json").read_text(encoding="utf-8"))


def test_edge_renders_with_word_timed_subtitles(project: Project, fake_edge: FakeEdgeServer, tmp_path: Path) -> None:
    project.write_config(engines=("edge", "espeak"), edge=fake_edge)
    script = project.script("open-day.md", script_text(f"{GREETING}{LONG}\n\n{THANKS}"))
    _, program = render(project, script, tmp_path / "out")

    assert (program["engine"], program["voice"], program["fallback_reason"]) == ("edge", "zh-CN-XiaoxiaoNeural", None)
    # One request per sentence, the long one whole (edge gives word timings), default prosody, the long voice name.
    # Requests run concurrently, so they arrive in any order; the audio keeps the script's order.
    assert sorted(r["text"] for r in fake_edge.requests) == sorted([GREETING, LONG, THANKS])
    assert all((r["voice"], r["rate"], r["pitch"], r["volume"]) == (XIAOXIAO, "+0%", "+0Hz", "+0%")
               for r in fake_edge.requests)

    cues = srt_cues(tmp_path / "out" / "program.srt")
    assert program["cues"] == len(cues)
    for (s1, e1, _), (s2, _, _) in zip(cues, cues[1:]):
        assert s1 < e1 <= s2, cues
    assert all(width(text) <= 18 for _, _, text in cues), cues
    assert "".join(t for _, _, t in cues).replace("，", "") == (GREETING + LONG + THANKS).replace("，", "").replace("。", "")

    # The long sentence's lines: cut at word boundaries, each later line starting inside the sentence
    # when the server said its first word is spoken (it spreads words evenly over the CJK characters).
    inside = [c for c in cues if c[2] in LONG]
    assert len(inside) > 1, cues
    start, end = inside[0][0], inside[-1][1]
    spoken = CJK.findall(LONG)
    for line_start, _, text in inside[1:]:
        assert start < line_start < end
        before = len(CJK.findall(LONG[: LONG.index(text)]))
        first_word = before + before % 2  # the fake's words are 2-character pairs; the line may start mid-pair
        expected = start + (end - start) * first_word / len(spoken)
        assert abs(line_start - expected) < 0.25, (text, line_start, expected)

    rate, duration = ffprobe(tmp_path / "out" / "program.wav")
    assert rate == 48000
    assert abs(duration - program["duration_seconds"]) < 0.05


def test_front_matter_prosody_and_voice_reach_the_service(project: Project, fake_edge: FakeEdgeServer,
                                                          tmp_path: Path) -> None:
    project.write_config(engines=("edge", "espeak"), edge=fake_edge)
    script = project.script("yunxi.md", script_text(GREETING, voice="zh-CN-YunxiNeural", rate="+10%", pitch="-5Hz"))
    _, program = render(project, script, tmp_path / "out")
    assert (program["engine"], program["voice"]) == ("edge", "zh-CN-YunxiNeural")
    assert fake_edge.requests == [{"voice": "Microsoft Server Speech Text to Speech Voice (zh-CN, YunxiNeural)",
                                   "rate": "+10%", "pitch": "-5Hz", "volume": "+0%", "text": GREETING}]


# mode → (words in fallback_reason, anchor attempts, connections the server sees).
# 403 is permanent: one anchor attempt, which the edge-tts client itself retries once (clock-skew fix).
FAILURES = {
    "forbidden": ("403", 1, 2),
    "no_audio": ("no audio", 3, 3),
    "hang": ("no answer within 2s", 3, 3),
    "busy": ("429", 3, 3),
    "refused": ("cannot connect", 3, None),
}


@pytest.mark.parametrize("mode", FAILURES)
def test_failing_service_falls_back_to_espeak(project: Project, fake_edge: FakeEdgeServer, tmp_path: Path,
                                              mode: str) -> None:
    words, attempts, connections = FAILURES[mode]
    server = fake_edge
    if mode == "refused":  # a port where nothing listens any more
        server = FakeEdgeServer().start()
        server.stop()
    else:
        server.mode = mode
    project.write_config(engines=("edge", "espeak"), edge=server, timeout=2, retries=2)
    script = project.script("notice.md", script_text(LONG))

    started = time.monotonic()
    result, program = render(project, script, tmp_path / "out", timeout=60)
    elapsed = time.monotonic() - started

    assert (program["engine"], program["voice"]) == ("espeak", "cmn-latn-pinyin")
    reason = program["fallback_reason"] or ""
    assert reason.startswith("edge: ") and words in reason, reason
    assert f"after {attempts} attempt" in reason, reason
    assert "fell back to espeak" in result.stdout
    # One line for the program, not one per request and retry; a one-shot command promises no "next try".
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and "notice.md rendered with espeak" in warnings[0], result.stderr
    assert "retrying" not in result.stderr and "next try" not in result.stdout + result.stderr
    if connections is not None:
        assert server.connections == connections
    assert elapsed < 20  # 3 × 2 s timeouts + backoff + espeak, at worst
    assert (tmp_path / "out" / "program.srt").read_text(encoding="utf-8").strip()


def test_circuit_breaker_opens_then_recovers(project: Project, fake_edge: FakeEdgeServer) -> None:
    # 3 s: the hanging service times out each time, and the recovered one answers in time on a loaded machine.
    project.write_config(engines=("edge", "espeak"), edge=fake_edge, timeout=3, retries=0)
    settings = load_settings(project.config)
    chain = EngineChain(settings)
    cache = ProgramCache(settings.cache_dir, settings.cache.max_size_mb * 1024 * 1024)
    breaker = chain.breakers["edge"]
    now = [1000.0]
    breaker.clock = lambda: now[0]  # cooldown (60 s in the test config) without waiting for it
    texts = ["第一条通知。", "第二条通知。", "第三条通知。", "第四条通知。", "第五条通知。", "第六条通知。"]
    scripts = [load_script(project.script(f"n{i}.md", script_text(t)), project.scripts) for i, t in enumerate(texts)]

    async def one(index: int) -> tuple[Program, int]:
        seen = fake_edge.connections
        program = await render_program(scripts[index], settings, chain, cache)
        return program, fake_edge.connections - seen  # what this render asked of the service

    async def scenario() -> list[tuple[Program, int]]:
        fake_edge.mode = "hang"
        runs = [await one(i) for i in range(4)]
        fake_edge.mode = "ok"
        now[0] += 30  # service back, but the cooldown is not over: still open
        runs.append(await one(4))
        now[0] += 31
        runs.append(await one(5))  # the probe
        return runs

    runs = asyncio.run(asyncio.wait_for(scenario(), 90))
    for program, new_connections in runs[:3]:  # three timeouts in a row
        assert program.engine == "espeak" and new_connections == 1
        assert "no answer within 3s" in program.fallback_reason and "circuit" not in program.fallback_reason
    for program, new_connections in runs[3:5]:  # open: edge is not even tried, no timeout waited for
        assert program.engine == "espeak" and new_connections == 0
        assert "edge skipped: circuit open after 3 failures" in program.fallback_reason
    program, new_connections = runs[5]
    assert (program.engine, program.voice, program.fallback_reason) == ("edge", "zh-CN-XiaoxiaoNeural", None)
    assert new_connections == 1 and breaker.allows() and breaker.failures == 0 and breaker.opened_at is None


def test_fallback_program_is_served_while_edge_replaces_it_behind(project: Project, fake_edge: FakeEdgeServer,
                                                                   tmp_path: Path) -> None:
    project.write_config(engines=("edge", "espeak"), edge=fake_edge)
    script = project.script("cached.md", script_text(f"{GREETING}{THANKS}"))

    fake_edge.mode = "forbidden"
    _, down = render(project, script, tmp_path / "1")
    assert down["engine"] == "espeak" and not down["cache_hit"]

    fake_edge.mode = "ok"  # the service is back: the cached fallback airs, edge renders behind it
    _, served = render(project, script, tmp_path / "2")
    assert (served["engine"], served["cache_hit"], served["key"]) == ("espeak", True, down["key"])
    assert "edge: no Program of its voice yet; it is tried in the background" in served["fallback_reason"]
    assert sorted(r["text"] for r in fake_edge.requests) == sorted([GREETING, THANKS])

    seen = fake_edge.connections
    _, back = render(project, script, tmp_path / "3")
    assert (back["engine"], back["cache_hit"], back["fallback_reason"]) == ("edge", True, None)
    assert fake_edge.connections == seen  # nothing synthesized: the background render was kept
    assert (tmp_path / "3" / "program.wav").read_bytes() != (tmp_path / "1" / "program.wav").read_bytes()


def test_a_cache_hit_never_waits_for_the_preferred_engine(project: Project, fake_edge: FakeEdgeServer) -> None:
    """The espeak Program cached while edge was down is returned before edge is asked again; edge is retried
    in the background (here it hangs: three 2 s timeouts), and its failure does not touch the hit."""
    project.write_config(engines=("edge", "espeak"), edge=fake_edge, timeout=2, retries=2)
    settings = load_settings(project.config)
    chain = EngineChain(settings)
    cache = ProgramCache(settings.cache_dir, 1 << 30)
    script = load_script(project.script("s.md", script_text(GREETING)), project.scripts)

    async def scenario() -> tuple[Program, Program, int, bool]:
        fake_edge.mode = "forbidden"  # one failure: the breaker stays closed
        first = await render_program(script, settings, chain, cache)
        fake_edge.mode = "hang"
        seen = fake_edge.connections
        second = await render_program(script, settings, chain, cache)
        asked_before_the_hit = fake_edge.connections - seen
        pending = chain.retrying == 1
        await chain.settle()
        return first, second, asked_before_the_hit, pending

    first, second, asked_before_the_hit, pending = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert first.engine == "espeak" and not first.cache_hit
    assert (second.engine, second.cache_hit, second.key) == ("espeak", True, first.key)
    assert asked_before_the_hit == 0 and pending  # the hit came back first; edge was still being tried
    assert fake_edge.connections == 2 + 3  # 403 (the client retries it once), then three timeouts behind the hit
    assert chain.breakers["edge"].failures == 2 and not chain.breakers["edge"].is_open()


def test_an_endpoint_that_does_not_resolve_opens_the_breaker_at_once(project: Project, tmp_path: Path) -> None:
    """Offline (the cloud voice's name does not resolve): one attempt, not retries, opens the breaker for every
    anchor process; the next render of the same script is the cached Program, with no engine asked at all."""
    project.write_config(
        '\n[speech.engines.edge]\nendpoint = "wss://anchor-test.invalid/edge/v1?TrustedClientToken=x"\n'
        'voice_list_endpoint = "https://anchor-test.invalid/voices/list?trustedclienttoken=x"\n',
        engines=("edge", "espeak"), timeout=3, retries=2)
    script = project.script("offline.md", script_text(f"{GREETING}{THANKS}"))
    breakers = project.root / "data" / "breakers.json"

    first, program = render(project, script, tmp_path / "1")
    assert program["engine"] == "espeak" and not program["cache_hit"]
    reason = program["fallback_reason"]
    assert reason.startswith("edge: the service's name does not resolve") and "(after 1 attempt)" in reason, reason
    assert "retrying" not in first.stderr
    opened = json.loads(breakers.read_text(encoding="utf-8"))["edge"]
    assert opened["failures"] == 1 and opened["opened_at"] is not None, opened  # open after one failure

    again, cached = render(project, script, tmp_path / "2")
    assert (cached["engine"], cached["cache_hit"], cached["key"]) == ("espeak", True, program["key"])
    assert cached["fallback_reason"].startswith("edge skipped: circuit open after 1 failure (the service's name")
    assert json.loads(breakers.read_text(encoding="utf-8"))["edge"] == opened  # edge was not asked again
    assert " WARNING " not in again.stderr, again.stderr


def test_voices_lists_edge_voices_or_says_unreachable(project: Project, fake_edge: FakeEdgeServer) -> None:
    project.write_config(engines=("edge", "espeak"), edge=fake_edge)
    listed = project.run("voices", "--engine", "edge", timeout=60)
    no_traceback(listed)
    assert listed.returncode == 0, listed.stderr
    assert "zh-CN-XiaoxiaoNeural" in listed.stdout and "en-US-GuyNeural" in listed.stdout

    fake_edge.stop()
    down = project.run("voices", "--engine", "edge", timeout=60)
    no_traceback(down)
    assert down.returncode == 1
    assert "voice list cannot be reached" in " ".join(down.stderr.split())
    assert "zh-CN-XiaoxiaoNeural" not in down.stdout


def test_cached_edge_program_is_served_while_the_breaker_is_open(project: Project, fake_edge: FakeEdgeServer) -> None:
    """An institution's good voice stays on air from the cache even when the service is down."""
    # The service refuses (403) rather than hangs, so the timeout only has to let the first render through on a
    # loaded test machine.
    project.write_config(engines=("edge", "espeak"), edge=fake_edge, timeout=10, retries=0)
    settings = load_settings(project.config)
    chain = EngineChain(settings)
    cache = ProgramCache(settings.cache_dir, 1 << 30)
    kept = load_script(project.script("kept.md", script_text("今天的节目到此结束。")), project.scripts)
    others = [load_script(project.script(f"o{i}.md", script_text(f"第{i}条。")), project.scripts) for i in range(3)]

    async def scenario() -> Program:
        first = await render_program(kept, settings, chain, cache)
        assert first.engine == "edge"
        fake_edge.mode = "forbidden"
        for script in others:  # three failures open the breaker
            assert (await render_program(script, settings, chain, cache)).engine == "espeak"
        assert not chain.breakers["edge"].allows()
        return await render_program(kept, settings, chain, cache)

    again = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert again.cache_hit and again.engine == "edge" and again.fallback_reason is None


def test_a_cache_hit_does_not_repeat_an_old_fallback_reason(project: Project, fake_edge: FakeEdgeServer,
                                                            tmp_path: Path) -> None:
    project.write_config(engines=("edge", "espeak"), edge=fake_edge)
    script = project.script("s.md", script_text("请大家有序排队。"))
    fake_edge.mode = "forbidden"
    _, fell_back = render(project, script, tmp_path / "a")
    assert fell_back["engine"] == "espeak" and "403" in fell_back["fallback_reason"]
    # The user picks espeak: the cached Program is served, and nothing "fell back".
    result = project.run("render", str(script), "--engine", "espeak", "--out", str(tmp_path / "c"))
    chosen = json.loads((tmp_path / "c" / "program.json").read_text())
    assert chosen["cache_hit"] and chosen["fallback_reason"] is None
    assert "fell back" not in result.stdout


def test_half_open_breaker_lets_one_probe_through_at_a_time() -> None:
    from anchor.speech.chain import CircuitBreaker

    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0])
    breaker.record_failure("x")
    assert breaker.allows()  # one failure is not enough
    breaker.record_failure("x")
    assert not breaker.allows()
    now[0] = 11
    assert breaker.allows() and not breaker.allows()  # one probe, the second caller waits
    breaker.record_failure("still down")
    assert not breaker.allows()  # a failed probe re-opens for a whole cooldown
    now[0] = 22
    assert breaker.allows()
    breaker.release_probe()  # a cancelled probe gives the slot back
    assert breaker.allows()
    breaker.record_success()
    assert breaker.allows() and breaker.allows() and breaker.failures == 0


def test_every_anchor_process_shares_the_breaker(project: Project, fake_edge: FakeEdgeServer, tmp_path: Path) -> None:
    """On an offline PC a one-shot `anchor render` does not wait out the cloud voice's timeouts again: the
    breaker a first process opened is open for the next one, which is served from the cache at once."""
    project.write_config(engines=("edge", "espeak"), edge=fake_edge, timeout=1, retries=0)
    for index in range(3):
        project.script(f"n{index}.md", script_text(f"第{index + 1}条通知。"))
    fake_edge.mode = "hang"
    first = project.run("render", "--all", "--out", str(tmp_path / "all"), timeout=120)
    no_traceback(first)
    assert first.returncode == 0, first.stderr
    assert fake_edge.connections == 3  # three timeouts in a row open the breaker
    shared = json.loads((project.root / "data" / "breakers.json").read_text(encoding="utf-8"))
    assert shared["edge"]["opened_at"] is not None and "no answer within 1s" in shared["edge"]["last_error"]

    seen = fake_edge.connections
    again, program = render(project, project.scripts / "n0.md", tmp_path / "again")
    assert fake_edge.connections == seen  # not asked: another process already found it down
    assert program["cache_hit"] and program["engine"] == "espeak"
    assert "edge skipped: circuit open after 3 failures" in program["fallback_reason"]

    fresh = project.script("fresh.md", script_text("新的一条通知。"))
    result, program = render(project, fresh, tmp_path / "fresh")
    assert fake_edge.connections == seen and program["engine"] == "espeak" and not program["cache_hit"]
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and "fresh.md rendered with espeak" in warnings[0], result.stderr
