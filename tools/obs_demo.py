"""See anchor air into OBS Studio: a local OBS under Xvfb records a few airings of `anchor run`.

    make obs-demo            # or: .venv/bin/python tools/obs_demo.py [--slots 3] [--out data/obs-demo]

Starts OBS 29 under Xvfb with a throwaway config (tests/obs_fixture.py), writes a temporary anchor.toml
with [obs.demo] and a channel `output = "obs:demo"` whose `at` slots air sample scripts from
scripts_content/ back to back, the first ~20 s ahead; sets ANCHOR_OBS_PASSWORD_DEMO, starts recording,
runs `anchor run` until those slots are in the as-run log, stops recording and everything else, and copies
the recording to data/obs-demo/recording.<ext>. Bounded in time; Ctrl-C cleans up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
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
SCRIPTS = ["health/hypertension.md", "policy/telecom-fraud.md", "health/flu-vaccination.md"]
FINAL = ("aired", "late", "missed", "failed", "interrupted")
GAP = 4.0  # seconds between one program's end and the next slot


async def obs_call(obs: ObsStudio, request: str, **data: object) -> dict:
    connection = ObsConnection("demo", obs.host, obs.port, obs.password)
    await connection.start()
    try:
        await connection.wait_connected(15)
        return await connection.call(request, **data)
    finally:
        await connection.close()


async def durations(root: Path, scripts: list[str]) -> list[float]:
    """Render the programs into the demo's own cache (the daemon then finds them there) for their lengths."""
    from anchor.config import load_settings
    from anchor.content import load_script
    from anchor.program import render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.chain import EngineChain

    settings = load_settings(root / "anchor.toml")
    chain = EngineChain(settings)
    cache = ProgramCache(settings.cache_dir, settings.cache.max_size_mb * 1024 * 1024)
    found = []
    for name in scripts:
        program = await render_program(load_script(settings.scripts_dir / name, settings.scripts_dir), settings,
                                       chain, cache)
        found.append(program.duration_seconds)
    return found


def demo(slots: int, out: Path, lead: float) -> int:
    scripts = [SCRIPTS[i % len(SCRIPTS)] for i in range(slots)]
    proc: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="anchor-obs-demo-"))
    recording: Path | None = None
    try:
        with ObsStudio() as obs:
            print(f"OBS {obs.pid} under Xvfb {obs.display}, websocket port {obs.port} (up in {obs.started_in:.1f} s)")
            shutil.copytree(REPO / "scripts_content", tmp / "scripts_content")
            (tmp / "schedules").mkdir()
            (tmp / "anchor.toml").write_text(
                '[paths]\ndata_dir = "data"\nscripts_dir = "scripts_content"\nschedules_dir = "schedules"\n'
                '[speech.chain]\nengines = ["espeak"]\n[daemon]\nmetrics_port = 0\nhttp_port = 0\n'
                f'[obs.demo]\nhost = "{obs.host}"\nport = {obs.port}\n', encoding="utf-8")
            print(f"rendering {len(scripts)} programs (espeak) to know their lengths …")
            lengths = asyncio.run(durations(tmp, scripts))
            planned = []
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
            text = ('[channel]\nid = "demo"\nname = "anchor OBS demo"\ntimezone = "Asia/Shanghai"\n'
                    'output = "obs:demo"\n\n')
            for i, (script, length) in enumerate(zip(scripts, lengths)):
                planned.append(at)
                text += f'[[slot]]\nname = "demo{i}"\nat = {at.strftime("%Y-%m-%dT%H:%M:%SZ")}\nscript = "{script}"\n\n'
                print(f"  {at:%H:%M:%S} UTC  {script}  ({length:.0f} s)")
                at += timedelta(seconds=int(length + GAP + 1))
            (tmp / "schedules" / "demo.toml").write_text(text, encoding="utf-8")

            print(f"anchor run (log: {tmp / 'daemon.log'})")
            env = {**os.environ, "ANCHOR_OBS_PASSWORD_DEMO": obs.password, "NO_PROXY": "127.0.0.1,localhost"}
            with (tmp / "daemon.log").open("wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "anchor", "--config", str(tmp / "anchor.toml"), "run"],
                                        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            # Record from 2 s before the first slot: before it, OBS shows its empty start-up scene.
            while datetime.now(UTC) < planned[0] - timedelta(seconds=2) and proc.poll() is None:
                time.sleep(0.2)
            asyncio.run(obs_call(obs, "StartRecord"))
            print("recording")
            deadline = time.monotonic() + (at - datetime.now(UTC)).total_seconds() + 60
            db = tmp / "data" / "anchor.db"
            rows = []
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    print(f"anchor run exited {proc.returncode}:\n{(tmp / 'daemon.log').read_text()[-3000:]}")
                    break
                if db.exists():
                    rows = [r for r in AsRunLog(open_engine(f"sqlite:///{db}")).history() if r.outcome.value in FINAL]
                    if len(rows) >= len(scripts):
                        break
                time.sleep(1.0)
            time.sleep(1.0)  # the idle picture after the last program
            stopped = asyncio.run(obs_call(obs, "StopRecord"))
            _stop(proc)
            proc = None
            for r in sorted(rows, key=lambda r: r.planned_at):
                late = (r.started_at - r.planned_at).total_seconds() * 1000 if r.started_at else float("nan")
                print(f"  {r.slot:6} {r.outcome.value:8} {late:7.1f} ms after the instant  {r.script}"
                      + (f"  ({r.error})" if r.error else ""))
            source = Path(stopped.get("outputPath") or "")
            for _ in range(50):  # the muxer finishes the file after StopRecord answers
                if source.is_file() and source.stat().st_size > 0:
                    break
                time.sleep(0.1)
            if source.is_file():
                out.mkdir(parents=True, exist_ok=True)
                recording = out / f"recording{source.suffix}"
                size, steady = -1, time.monotonic() + 15  # the muxer writes the mkv's index and duration last
                while time.monotonic() < steady and source.stat().st_size != size:
                    size = source.stat().st_size
                    time.sleep(1.5)
                shutil.copy2(source, recording)
    except KeyboardInterrupt:
        print("interrupted: stopping anchor, OBS and Xvfb")
        return 130
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    if recording is None:
        print("no recording was written")
        return 1
    print(f"recording: {recording.resolve()}  (watch with: ffplay {recording} or mpv {recording})")
    return 0 if len(rows) >= len(scripts) else 1


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C (even when started with SIGINT ignored, e.g. in the background) and SIGTERM clean up alike.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=3)
    parser.add_argument("--lead", type=float, default=20.0, help="seconds from now to the first slot")
    parser.add_argument("--out", type=Path, default=Path("data/obs-demo"))
    args = parser.parse_args()
    return demo(args.slots, args.out, args.lead)


if __name__ == "__main__":
    sys.exit(main())
