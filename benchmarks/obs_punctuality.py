"""How close to the instant a program starts in real OBS Studio, through the whole daemon.

    .venv/bin/python benchmarks/obs_punctuality.py [--airings 50] [--spacing 3] [--clip-seconds 100]

1. Starts OBS 29 under Xvfb (tests/obs_fixture.py), runs `anchor run` with one channel
   `output = "obs:bench"` and N `at` slots `spacing` seconds apart airing one short espeak program
   ("大家好。", ~1-2 s), password via ANCHOR_OBS_PASSWORD_BENCH. Lateness = the as-run log's started_at
   (which the OBS output takes from MediaInputPlaybackStarted) − planned_at. Printed beside the round trip of a bare
   request (GetVersion) to the same OBS, measured right after the airings.
2. Renders a ~100 s sample program (espeak) and times its talking clip at 640x360, 25 fps
   (anchor.avatar.clip.render_talking_clip, no subtitles: what the OBS output airs).
Targets: lateness p50 ≤ 10 ms, p99 ≤ 30 ms; clip real-time factor ≤ 0.2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from anchor.outputs.obs.connection import ObsConnection  # noqa: E402
from anchor.store import AsRunLog, open_engine  # noqa: E402
from tests.obs_fixture import ObsStudio  # noqa: E402

UTC = timezone.utc
P50_TARGET, P99_TARGET, RTF_TARGET = 10.0, 30.0, 0.2
FINAL = ("aired", "late", "missed", "failed", "interrupted")


def quantiles(values: list[float]) -> tuple[float, float, float, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return q[49], q[94], q[98], ordered[-1]


def line(label: str, values: list[float]) -> str:
    p50, p95, p99, top = quantiles(values)
    return (f"  {label:44} p50 {p50:7.2f}  p95 {p95:7.2f}  p99 {p99:7.2f}  max {top:7.2f}  "
            f"(ms, n={len(values)})")


def site(root: Path, obs: ObsStudio, slots: str) -> None:
    (root / "schedules").mkdir(parents=True)
    shutil.copytree(REPO / "scripts_content", root / "scripts_content")
    (root / "scripts_content" / "hello.md").write_text('+++\ntitle = "提示"\n+++\n\n大家好。\n',
                                                        encoding="utf-8")
    (root / "schedules" / "bench.toml").write_text(
        f'[channel]\nid = "bench"\ntimezone = "Asia/Shanghai"\noutput = "obs:bench"\n\n{slots}', encoding="utf-8")
    (root / "anchor.toml").write_text(
        '[paths]\ndata_dir = "data"\nscripts_dir = "scripts_content"\n'
        '[speech.chain]\nengines = ["espeak"]\n[daemon]\nmetrics_port = 0\nhttp_port = 0\n'
        f'[obs.bench]\nhost = "{obs.host}"\nport = {obs.port}\n', encoding="utf-8")


async def round_trip(obs: ObsStudio, requests: int) -> list[float]:
    connection = ObsConnection("bench", obs.host, obs.port, obs.password)
    await connection.start()
    try:
        await connection.wait_connected(15)
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            await connection.call("GetVersion")
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        await connection.close()


def punctuality(airings: int, spacing: float, lead: float) -> tuple[list[float], list[float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="anchor-obs-punctuality-") as tmp, ObsStudio() as obs:
        root = Path(tmp)
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)  # time to render + provision
        instants = [first + timedelta(seconds=spacing * i) for i in range(airings)]
        slots = "".join(f'[[slot]]\nname = "s{i:03d}"\nat = {t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]}Z\n'
                        f'script = "hello.md"\n\n' for i, t in enumerate(instants))
        site(root, obs, slots)
        env = {**os.environ, "ANCHOR_OBS_PASSWORD_BENCH": obs.password, "NO_PROXY": "127.0.0.1,localhost"}
        log_file = (root / "daemon.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "anchor", "--config", str(root / "anchor.toml"), "run"],
                                cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        rows = []
        try:
            deadline = time.monotonic() + lead + spacing * airings + 60
            db = root / "data" / "anchor.db"
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    tail = (root / "daemon.log").read_text(errors="replace")[-3000:]
                    raise SystemExit(f"anchor run exited {proc.returncode}:\n{tail}")
                if db.exists():
                    rows = [r for r in AsRunLog(open_engine(f"sqlite:///{db}")).history() if r.outcome.value in FINAL]
                    if len(rows) >= airings:
                        break
                time.sleep(1.0)
            rtt = asyncio.run(round_trip(obs, 200))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log_file.close()
        outcomes: dict[str, float] = {}
        for r in rows:
            outcomes[r.outcome.value] = outcomes.get(r.outcome.value, 0) + 1
        late = [(r.started_at - r.planned_at).total_seconds() * 1000 for r in rows if r.started_at]
        ordered = sorted(rows, key=lambda r: r.planned_at)
        # An airing whose predecessor still held the channel at its instant waited for it: not OBS's lateness.
        queued = sum(1 for a, b in zip(ordered, ordered[1:]) if a.ended_at and a.ended_at > b.planned_at)
        if queued:
            outcomes["queued behind the previous airing"] = queued
        lengths = [(r.ended_at - r.started_at).total_seconds() for r in rows if r.started_at and r.ended_at]
        if lengths:
            outcomes["airing length s (max)"] = round(max(lengths), 2)
        if len(late) < airings:
            print((root / "daemon.log").read_text(errors="replace")[-3000:])
    return late, rtt, outcomes


async def clip_factor(seconds: float) -> tuple[float, float, float]:
    from anchor.avatar import DEFAULT_AVATAR, load_avatar, render_talking_clip
    from anchor.config import load_settings
    from anchor.content import find_scripts, load_script
    from anchor.program import render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.chain import EngineChain

    with tempfile.TemporaryDirectory(prefix="anchor-obs-clip-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "scripts_content", root / "scripts_content")
        (root / "anchor.toml").write_text('[paths]\ndata_dir = "data"\nscripts_dir = "scripts_content"\n'
                                          '[speech.chain]\nengines = ["espeak"]\n', encoding="utf-8")
        settings = load_settings(root / "anchor.toml")
        chain = EngineChain(settings, only="espeak")
        cache = ProgramCache(root / "cache", 1 << 34)
        bodies = []
        for path in find_scripts(settings.scripts_dir):
            text = path.read_text(encoding="utf-8")
            bodies.append(text.split("+++", 2)[2].strip() if text.startswith("+++") else text.strip())
        body = "\n\n".join(bodies)
        program = None
        for repeat in range(1, 8):  # grow the sample until its audio reaches `seconds`
            sample = root / "scripts_content" / f"sample{repeat}.md"
            sample.write_text('+++\ntitle = "样本"\n+++\n\n' + "\n\n".join([body] * repeat) + "\n", encoding="utf-8")
            program = await render_program(load_script(sample, settings.scripts_dir), settings, chain, cache)
            if program.duration_seconds >= seconds * 0.9:
                break
        assert program is not None and program.directory is not None
        # Trim to about `seconds`: cut the body by the measured rate, once.
        if program.duration_seconds > seconds * 1.3:
            text = "\n\n".join([body] * repeat)
            keep = int(len(text) * seconds / program.duration_seconds)
            cut = text.rfind("。", 0, keep) + 1 or keep
            sample = root / "scripts_content" / "sample-cut.md"
            sample.write_text('+++\ntitle = "样本"\n+++\n\n' + text[:cut] + "\n", encoding="utf-8")
            program = await render_program(load_script(sample, settings.scripts_dir), settings, chain, cache)
        report = await render_talking_clip(program.directory, load_avatar(DEFAULT_AVATAR), root / "clip.mp4",
                                           width=640, height=360, fps=25, subtitles=False,
                                           font="WenQuanYi Micro Hei", seed=0)
        return report.audio_seconds, report.render_seconds, report.real_time_factor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airings", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=3.0)
    parser.add_argument("--lead", type=float, default=25.0, help="seconds from start to the first slot")
    parser.add_argument("--clip-seconds", type=float, default=100.0)
    args = parser.parse_args()

    late, rtt, outcomes = punctuality(args.airings, args.spacing, args.lead)
    print(f"OBS punctuality: `anchor run`, {args.airings} airings {args.spacing:g} s apart into real OBS 29 "
          f"(Xvfb); {os.cpu_count()} CPUs; outcomes {outcomes}")
    if late:
        print(line("lateness instant → MediaInputPlaybackStarted", late))
        # The Station sends RESTART early by OBS's measured start-up time (pre-roll), so a start can be early.
        early = [x for x in late if x < -5]
        print(f"  earliest start {min(late):+.2f} ms; {len(early)} of {len(late)} more than 5 ms early; "
              f"|lateness| p99 {quantiles([abs(x) for x in late])[2]:.2f} ms")
    print(line("bare request round trip (GetVersion)", rtt))
    if late:
        p50, _, p99, _ = quantiles(late)
        rtt50 = quantiles(rtt)[0]
        print(f"  p50 {p50:.2f} ms against the {P50_TARGET:g} ms target ({p50 / P50_TARGET:.2f}x of budget); "
              f"p99 {p99:.2f} ms against {P99_TARGET:g} ms ({p99 / P99_TARGET:.2f}x); "
              f"p50 lateness / p50 round trip {p50 / rtt50:.1f}x")
    audio, spent, rtf = asyncio.run(clip_factor(args.clip_seconds))
    print(f"talking clip 640x360 @ 25 fps, no subtitles: {audio:.1f} s of audio in {spent:.2f} s; real-time factor "
          f"{rtf:.3f} against {RTF_TARGET} ({rtf / RTF_TARGET:.2f}x of budget)")
    return 0 if len(late) >= args.airings else 1


if __name__ == "__main__":
    sys.exit(main())
