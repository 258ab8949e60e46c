"""How fast a running daemon hears its live rooms, what it costs, and whether a busy room delays what airs.

    .venv/bin/python benchmarks/audience.py [--ws-events 50000] [--requests 200] [--per-request 250]
                                            [--airings 40] [--rate 2000]

A real `anchor run` hears a local server speaking Bilibili's live open platform (tests/fake_bilibili.py, in
a background event loop of this process) and a generic signed webhook room ("bridge"). Secrets are in
the environment; every server is on 127.0.0.1 on a port the system picks; the site is a temp folder (kept,
with the daemon's log, when something fails).
1. Throughput: the fake pushes --ws-events comment/like/gift events (batches of --batch op-5 packets, zlib,
   protover 2) over the websocket; then --clients concurrent clients POST --requests signed generic
   requests of --per-request events each. Events/s = events / (first push → the moment the daemon's
   /metrics show them all in anchor_interactions_total, polled every 50 ms).
2. CPU seconds per 1,000 events on each route: the daemon's utime+stime (/proc/PID/stat) over that span.
3. On-air lateness (started_at − planned_at from the as-run log, file output) of --airings airings
   --spacing s apart, in one run: the first half quiet, the second half while the fake pushes --rate
   events/s steadily (every 20 ms). p50/p99 of both halves and the difference.
Targets: ≥ 5,000 events/s over the websocket; lateness p99 under the burst within 2 ms of the quiet half.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from running import start_daemon, stop_daemon  # noqa: E402

from anchor.store import AsRunLog, open_engine  # noqa: E402
from tests.fake_bilibili import FakeBilibili, frame  # noqa: E402

T = TypeVar("T")
TICKS = os.sysconf("SC_CLK_TCK")
KEY_ID, KEY_SECRET, CODE, APP_ID = "bench-key", "bench-secret", "BENCHCODE", 42
WEBHOOK_SECRET = "bench-bridge-secret"
WS_TARGET, LATENESS_TARGET_MS = 5000.0, 2.0
PACE_S = 0.02  # the burst pushes a batch every 20 ms
FINAL = ("aired", "late", "missed", "failed", "interrupted")
ENV = {"ANCHOR_BILIBILI_KEY_ID_MAIN": KEY_ID, "ANCHOR_BILIBILI_KEY_SECRET_MAIN": KEY_SECRET,
       "ANCHOR_BILIBILI_CODE_MAIN": CODE, "ANCHOR_WEBHOOK_SECRET_BRIDGE": WEBHOOK_SECRET,
       "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
os.environ.update({"NO_PROXY": ENV["NO_PROXY"], "no_proxy": ENV["no_proxy"]})


class Failed(Exception):
    """The benchmark could not finish; the message says what was waited for."""


class Background:
    """An event loop in a thread, for the fake platform and the webhook clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


# -- the site and the daemon --------------------------------------------------------------------------------

def site(root: Path, api_base: str, slots: str) -> None:
    (root / "schedules").mkdir(parents=True)
    (root / "scripts_content").mkdir()
    (root / "scripts_content" / "tick.md").write_text('+++\ntitle = "整点提示"\n+++\n\n好。\n', encoding="utf-8")
    rooms = (f'[[room]]\nplatform = "bilibili"\nname = "main"\napp_id = {APP_ID}\napi_base = "{api_base}"\n'
             'ws_heartbeat_interval = 10\n\n'  # the fake drops a socket that sends nothing for 30 s
             '[[room]]\nplatform = "webhook"\nname = "bridge"\nformat = "generic"\n')
    (root / "schedules" / "bench.toml").write_text(
        f'[channel]\nid = "bench"\ntimezone = "Asia/Shanghai"\nprerender_hours = 1\n\n{slots}{rooms}', encoding="utf-8")
    (root / "anchor.toml").write_text(
        '[paths]\ndata_dir = "data"\nscripts_dir = "scripts_content"\n[speech.chain]\nengines = ["espeak"]\n'
        '[daemon]\nmetrics_port = 0\nhttp_port = 0\nstop_timeout = 5\n', encoding="utf-8")


def at_slot(name: str, instant: datetime) -> str:
    return f'[[slot]]\nname = "{name}"\nat = {instant.strftime("%Y-%m-%dT%H:%M:%SZ")}\nscript = "tick.md"\n\n'


class Running:
    """One `anchor run` on a site: its pid, ports, and what its /metrics and /proc say."""

    def __init__(self, root: Path, fake: FakeBilibili, background: Background) -> None:
        self.root, self.fake, self.background = root, fake, background
        self.proc = start_daemon(root, {**os.environ, **ENV})
        self.metrics_port = self.http = 0

    @property
    def log_path(self) -> Path:
        return self.root / "daemon.log"

    def ready(self, timeout: float = 60) -> None:
        note = self.root / "data" / "daemon.json"
        wait(lambda: note.exists() and json.loads(note.read_text() or "{}").get("pid") == self.proc.pid,
             timeout, "the daemon's data/daemon.json", self)
        written = json.loads(note.read_text())
        self.metrics_port, self.http = int(written["metrics_port"]), int(written["http"].rsplit(":", 1)[1])
        self.background.run(self.fake.wait_until(lambda: bool(self.fake.listening()), timeout,
                                                 "the daemon's websocket"), timeout + 5)
        wait(lambda: all(r["connected"] for r in self.status()["rooms"]) and len(self.status()["rooms"]) == 2,
             timeout, "both rooms connected in /status", self)

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/status", timeout=5) as answer:
            return dict(json.loads(answer.read()))

    def counted(self, platform: str) -> float:
        """anchor_interactions_total summed over the platform's series."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("anchor_interactions_total{") and f'platform="{platform}"' in line)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise Failed(f"the daemon exited with {self.proc.returncode}")

    def wait_counted(self, platform: str, target: float, timeout: float) -> float:
        """Poll /metrics every 50 ms until the platform's total reaches target; the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            if self.counted(platform) >= target:
                return time.monotonic()
            time.sleep(0.05)
        raise Failed(f"{platform}: the metrics showed {self.counted(platform):.0f} of {target:.0f} events "
                     f"after {timeout:g} s")

    def stop(self) -> None:
        stop_daemon(self.proc)


def wait(condition: Callable[[], bool], timeout: float, what: str, daemon: Running | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon is not None:
            daemon.alive()
        try:
            if condition():
                return
        except (OSError, ValueError, KeyError):
            pass  # not up yet
        time.sleep(0.1)
    raise Failed(f"waited {timeout:g} s for {what}")


# -- what the platform and the bridge send ------------------------------------------------------------------

def command(n: int, when: float, tag: str) -> dict[str, Any]:
    """Comment, like, gift in turn; every count 1, so anchor_interactions_total grows by one per event."""
    data: dict[str, Any] = {"open_id": f"viewer-{n % 5000}", "uname": f"观众{n}", "msg_id": f"{tag}-{n}",
                            "timestamp": int(when), "room_id": 21452505}
    if n % 3 == 0:
        return {"cmd": "LIVE_OPEN_PLATFORM_DM", "data": {**data, "msg": "请问高血压要吃药吗"}}
    if n % 3 == 1:
        return {"cmd": "LIVE_OPEN_PLATFORM_LIKE", "data": {**data, "like_count": 1}}
    return {"cmd": "LIVE_OPEN_PLATFORM_SEND_GIFT", "data": {**data, "gift_id": 1, "gift_name": "小心心", "gift_num": 1,
                                                           "price": 100, "paid": True}}


def push_message(first: int, count: int, when: float, tag: str) -> bytes:
    """One websocket message as the platform sends it: `count` op-5 packets, zlib-batched (protover 2)."""
    inner = b"".join(frame(5, json.dumps(command(n, when, tag), ensure_ascii=False).encode(), protover=0)
                     for n in range(first, first + count))
    return frame(5, zlib.compress(inner), protover=2)


async def send(fake: FakeBilibili, message: bytes) -> None:
    listening = fake.listening()
    if not listening:
        raise Failed("the daemon's websocket is gone")
    for conn in listening:
        await asyncio.wait_for(conn.ws.send_bytes(message), 10)


async def push_all(fake: FakeBilibili, messages: list[bytes]) -> tuple[float, float]:
    """Every message in order; (monotonic time of the first send, of the last)."""
    started = time.monotonic()
    for message in messages:
        await send(fake, message)
    return started, time.monotonic()


async def paced(fake: FakeBilibili, rate: float, until: float, tag: str) -> int:
    """rate events/s in a batch every PACE_S, on an absolute clock (no drift), until the monotonic `until`."""
    per_batch, sent, tick = round(rate * PACE_S), 0, 0
    started = time.monotonic()
    while time.monotonic() < until:
        await send(fake, push_message(sent, per_batch, time.time(), tag))
        sent += per_batch
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * PACE_S - time.monotonic()))
    return sent


def generic_requests(requests: int, per_request: int) -> list[tuple[bytes, dict[str, str]]]:
    kinds = ("comment", "like", "gift")
    out = []
    for r in range(requests):
        events = []
        for i in range(per_request):
            n = r * per_request + i
            event: dict[str, Any] = {"id": f"w-{n}", "kind": kinds[n % 3], "viewer": f"wx-{n % 5000}"}
            if n % 3 == 0:
                event["text"] = "请问医保怎么报销"
            elif n % 3 == 2:
                event["value_cny"] = 1.0
            events.append(event)
        body = json.dumps({"events": events}, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        out.append((body, {"X-Anchor-Timestamp": stamp, "X-Anchor-Signature": signature,
                           "Content-Type": "application/json"}))
    return out


async def post_all(url: str, requests: list[tuple[bytes, dict[str, str]]], clients: int) -> float:
    """POST every request, `clients` at a time over keep-alive connections; the monotonic time of the first."""
    import aiohttp

    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    refused: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                     connector=aiohttp.TCPConnector(limit=clients)) as http:
        async def client() -> None:
            while not queue.empty():
                body, headers = queue.get_nowait()
                async with http.post(url, data=body, headers=headers) as answer:
                    text = await answer.text()
                    if answer.status != 200:
                        refused.append(f"HTTP {answer.status}: {text[:200]}")

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
    if refused:
        raise Failed(f"{len(refused)} webhook requests refused, e.g. {refused[0]}")
    return started


# -- the measurements ---------------------------------------------------------------------------------------

def throughput(root: Path, fake: FakeBilibili, background: Background, args: argparse.Namespace) -> dict[str, float]:
    later = datetime.now(UTC) + timedelta(days=3)  # a slot far outside the pre-render horizon: nothing renders
    site(root, fake.api_base, at_slot("later", later))
    daemon = Running(root, fake, background)
    figures: dict[str, float] = {}
    try:
        daemon.ready()
        time.sleep(2)  # start-up settles
        # Websocket.
        now = time.time()
        messages = [push_message(first, min(args.batch, args.ws_events - first), now, "ws")
                    for first in range(0, args.ws_events, args.batch)]
        base = daemon.counted("bilibili")
        cpu0 = daemon.cpu()
        first, last = background.run(push_all(fake, messages), timeout=120)
        done = daemon.wait_counted("bilibili", base + args.ws_events, timeout=120)
        cpu = daemon.cpu() - cpu0
        figures["ws_rate"] = args.ws_events / (done - first)
        figures["ws_cpu"] = cpu / args.ws_events * 1000
        print(f"websocket: {args.ws_events} events in {len(messages)} zlib pushes of {args.batch}: "
              f"{done - first:.2f} s first push → all counted ({last - first:.2f} s to send)")
        print(f"  {figures['ws_rate']:9,.0f} events/s  (target ≥ {WS_TARGET:,.0f}: "
              f"{'met' if figures['ws_rate'] >= WS_TARGET else 'NOT met'});  "
              f"CPU {figures['ws_cpu'] * 1000:.1f} ms per 1,000 events")
        # Webhook.
        total = args.requests * args.per_request
        requests = generic_requests(args.requests, args.per_request)
        url = f"http://127.0.0.1:{daemon.http}/rooms/bench/bridge"
        base = daemon.counted("webhook")
        cpu0 = daemon.cpu()
        first = background.run(post_all(url, requests, args.clients), timeout=120)
        done = daemon.wait_counted("webhook", base + total, timeout=60)
        cpu = daemon.cpu() - cpu0
        figures["hook_rate"] = total / (done - first)
        figures["hook_cpu"] = cpu / total * 1000
        print(f"webhook (generic, signed): {args.requests} requests × {args.per_request} events, {args.clients} "
              f"clients: {done - first:.2f} s first request → all counted")
        print(f"  {figures['hook_rate']:9,.0f} events/s;  CPU {figures['hook_cpu'] * 1000:.1f} ms per 1,000 events")
    finally:
        daemon.stop()
    return figures


def percentiles(values: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99, max (with n airings a half, p99 is close to its worst airing)."""
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return q[49], q[94], q[98], ordered[-1]


def lateness(root: Path, fake: FakeBilibili, background: Background, args: argparse.Namespace) -> float:
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=args.lead)  # time to pre-render
    instants = [first + timedelta(seconds=args.spacing * i) for i in range(args.airings)]
    half = args.airings // 2
    site(root, fake.api_base, "".join(at_slot(f"s{i:03d}", t) for i, t in enumerate(instants)))
    daemon = Running(root, fake, background)
    try:
        daemon.ready()
        # The burst: from halfway between the last quiet airing and the first loud one, to 2 s past the last.
        wall_to_mono = time.monotonic() - time.time()
        begin = instants[half].timestamp() - args.spacing / 2 + wall_to_mono
        end = instants[-1].timestamp() + 2 + wall_to_mono
        if begin < time.monotonic():
            raise Failed("the daemon started too late for the quiet half: raise --lead")
        time.sleep(begin - time.monotonic())
        base = daemon.counted("bilibili")
        cpu0, t0 = daemon.cpu(), time.monotonic()
        sent = background.run(paced(fake, args.rate, end, "burst"), timeout=end - time.monotonic() + 30)
        elapsed = time.monotonic() - t0
        daemon.wait_counted("bilibili", base + sent, timeout=30)
        cpu = daemon.cpu() - cpu0
        log = AsRunLog(open_engine(f"sqlite:///{root / 'data' / 'anchor.db'}"))
        rows: list[Any] = []

        def all_final() -> bool:
            nonlocal rows
            rows = [r for r in log.history() if r.outcome.value in FINAL]
            return bool(len(rows) >= args.airings)

        wait(all_final, 30, f"{args.airings} final rows in the as-run log", daemon)
    finally:
        daemon.stop()
    by_slot = {r.slot: r for r in rows}
    late = [(by_slot[f"s{i:03d}"].started_at - by_slot[f"s{i:03d}"].planned_at).total_seconds() * 1000
            for i in range(args.airings) if by_slot[f"s{i:03d}"].started_at]
    if len(late) < args.airings:
        raise Failed(f"only {len(late)} of {args.airings} airings started: "
                     f"{sorted({r.outcome.value for r in rows})}")
    quiet, loud = percentiles(late[:half]), percentiles(late[half:])
    outcomes = sorted({r.outcome.value for r in rows})
    print(f"on-air lateness, {args.airings} airings {args.spacing:g} s apart (file output), outcomes {outcomes}; "
          f"burst {sent / elapsed:,.0f} events/s sent and all counted "
          f"(daemon CPU {100 * cpu / elapsed:.0f} % of a core)")
    for label, (p50, p95, p99, top), n in (("quiet", quiet, half), (f"burst {args.rate:g}/s", loud, len(late) - half)):
        print(f"  {label:12} p50 {p50:6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f}  max {top:6.2f}  (ms, n={n})")
    diff = loud[2] - quiet[2]
    print(f"  p99 difference {diff:+.2f} ms  (target ≤ {LATENESS_TARGET_MS:g} ms: "
          f"{'met' if diff <= LATENESS_TARGET_MS else 'NOT met'});  p50 difference {loud[0] - quiet[0]:+.2f} ms")
    return diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ws-events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100, help="events per websocket push")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--per-request", type=int, default=250)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--airings", type=int, default=40)
    parser.add_argument("--spacing", type=float, default=4.0)
    parser.add_argument("--lead", type=float, default=20.0, help="seconds before the first airing")
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s during the burst")
    args = parser.parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"load average before: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)")
    tmp = Path(tempfile.mkdtemp(prefix="anchor-audience-"))
    background = Background()
    current = tmp
    ok = False
    try:
        for name, phase in (("throughput", throughput), ("lateness", lateness)):
            current = tmp / name
            fake = FakeBilibili(key_id=KEY_ID, key_secret=KEY_SECRET, code=CODE, app_id=APP_ID)  # a fresh platform
            background.run(fake.start())
            try:
                phase(current, fake, background, args)
            finally:
                try:
                    background.run(fake.stop(), timeout=15)
                except Exception as exc:  # stopping: report, go on closing
                    print(f"stopping the fake platform: {exc!r}", file=sys.stderr)
        ok = True
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    except (Failed, AssertionError, TimeoutError, OSError) as exc:
        print(f"FAILED: {exc!r}\n  the daemon's log: {current / 'daemon.log'}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"interrupted; the daemon's log: {current / 'daemon.log'}", file=sys.stderr)
    finally:
        background.close()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
