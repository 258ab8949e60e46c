"""Soak: N short programs aired on a compressed schedule through kills, a dead OBS, a full disk and bad edits.

    .venv/bin/python benchmarks/soak.py [--airings 1000] [--seed 0] [--channels 6] [--period 8] [--keep]

A throwaway site: `--channels` channels (one airs through a real OBS 29 under Xvfb, output = "obs:studio",
the others to files), each with an `every = "<period>s"` slot inside `between` (plus `at =` slots to make
the count exact; one slot rotates, one says late = "skip"), scripts of 2–4 s spoken by espeak-ng, data/ on
its own 96 MB tmpfs. `anchor plan --json` lists the whole soak window before the daemon starts: that list is
what the as-run log is checked against. Then, from a plan seeded by --seed (benchmarks/soak_chaos.py):

- SIGKILL of the daemon's process group (as systemd's watchdog does), half of them within a few ms of an
  "airing '…'" log line, two while the data disk is full (once the as-run log has refused a write: one
  restarts into the full disk, one is freed just before); restarted after 0.5–12 s;
- SIGKILL of OBS, relaunched after 2–15 s;
- the data disk filled with a file and freed;
- a TOML syntax error in a channel file and `[pause 999s]` in a script, fixed later.

The daemon's last incarnation (the final ~42 % of the window) gets no kills: after a warm-up round of every
other kind of trouble its RSS (median) and open descriptors (minimum) are sampled for 30 s, then again for
the last 30 s of the soak after more rounds — the same load (the schedule airing on every channel, OBS up,
disk free, inputs good) at both ends, with every code path already run once before the first sample.

"Must air", from the plan: every planned instant gets exactly one row (outcome final), and it must be
aired or late unless the policy lets it go: the daemon was down (from 7 s before a kill — an airing on
air or in its 2 s lead is cut — to 3 s after the restart is ready; the catch-up logs those missed or airs
the latest of each slot late) or, on the OBS channel, OBS was down (from 7 s before its kill to 20 s after
it is back: the reconnection backs off up to 10 s). A full disk and bad edits let nothing go: what was
made ready airs, a broken file airs its last good version.

Targets: one row per planned instant and none unplanned; every must-air instant aired; each row's script
is the planned one and its text a good version; every file in data/aired/ has an aired/late row (and each
file-channel aired row its file), no part files left; no airing started twice; RSS growth <= 5 MB; no
descriptor growth; `anchor audit verify` finds the seal chain intact (every final row sealed, through every
kill and the full disk); the daemon never exits on its own and stops cleanly.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from running import memory_mb, quantiles  # noqa: E402
from soak_chaos import Step, break_channel, break_script, fill_disk, kill_on_next_airing, make_plan  # noqa: E402

from tests.obs_fixture import ObsStudio  # noqa: E402

SCRIPTS = {  # name → (title, text): espeak-ng speaks each in 2.3–3.8 s
    "n1.md": ("问候", "各位观众好。"),
    "n2.md": ("血压", "请按时测血压。"),
    "n3.md": ("防晒", "注意防晒多喝水。"),
    "n4.md": ("防骗", "谨防电信诈骗。"),
    "n5.md": ("法援", "法律援助请来电。"),
    "n6.md": ("医保", "就诊请带好医保卡。"),
    "n7.md": ("饮食", "请按时测量血压，少吃盐。"),
}
CHANNEL_NAME = "社区服务中心"  # one name on every channel: one lower third, so the file channels share clips
OBS_CHANNEL = "studio"
LEAD = 2.0  # anchor.onair.airing.LEAD
LONGEST = 4.5  # seconds: no program here is longer
CUT_BEFORE = LONGEST + LEAD + 0.5  # an instant this long before a kill may have been claimed or on air
READY_AFTER = 3.0
OBS_BACK_AFTER = 20.0
FINAL = ("aired", "late", "missed", "failed", "interrupted", "skipped")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) ", re.M)


class SoakError(Exception):
    pass


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Incarnation:
    number: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: datetime
    ready: datetime | None = None
    ended: str = ""  # how it ended: killed, exited N, stopped N


@dataclass
class Window:
    kind: str  # daemon, obs, disk, edit
    start: datetime
    end: datetime | None = None
    channel: str | None = None  # only this channel is let go (obs)
    note: str = ""


@dataclass
class Samples:
    rss: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # descriptor targets at the sample with fewest fds


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="anchor-soak-"))
        self.data = self.root / "data"
        self.config = self.root / "anchor.toml"
        self.mounted = False
        self.obs: ObsStudio | None = None
        self.incarnations: list[Incarnation] = []
        self.windows: list[Window] = []
        self.events: list[str] = []
        self.kill_delays: list[float] = []  # ms from an "airing '" line to the SIGKILL
        self.kills: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.samples: dict[str, Samples] = {"start": Samples(), "end": Samples()}
        self.broken: dict[Path, str] = {}  # file → its good text, while broken
        self.heap: list[tuple[float, int, Step]] = []
        self.seq = itertools.count(10_000_000)
        self.expect_running = False
        self.final_ready: datetime | None = None
        self.env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}

    # -- the site -------------------------------------------------------------------------------------------

    def setup(self) -> None:
        self.data.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(self.data)],
                                 capture_output=True, text=True, timeout=30)
        if mounted.returncode != 0:
            raise SoakError(f"mounting a tmpfs on {self.data} needs root: {mounted.stderr.strip()}")
        self.mounted = True
        scripts = self.root / "scripts_content"
        scripts.mkdir()
        for name, (title, text) in SCRIPTS.items():
            (scripts / name).write_text(f'+++\ntitle = "{title}"\n+++\n\n{text}\n', encoding="utf-8")
        (self.root / "obs").mkdir()
        self.obs = ObsStudio(self.root / "obs", start_timeout=40)
        self.obs.start()
        self.env["ANCHOR_OBS_PASSWORD_STUDIO"] = self.obs.password
        self.config.write_text(
            '[paths]\ndata_dir = "data"\nscripts_dir = "scripts_content"\nschedules_dir = "schedules"\n\n'
            '[speech.chain]\nengines = ["espeak"]\n\n'
            '[daemon]\nmetrics_port = 0\nhttp_port = 0\nstop_timeout = 5\n\n'
            f'[obs.studio]\nhost = "127.0.0.1"\nport = {self.obs.port}\n', encoding="utf-8")
        self._write_channels()

    def _write_channels(self) -> None:
        """Each channel's share of the N airings: an every-slot over whole minutes, the rest as at-slots."""
        n, count, period = self.args.airings, self.args.channels, self.args.period
        lead = 75  # start-up, pre-render, OBS scene provisioning before the first instant
        t0 = datetime.fromtimestamp(math.ceil((time.time() + lead) / 60) * 60, UTC)
        shares = [n // count + (1 if i < n % count else 0) for i in range(count)]
        span = max(shares) * period + 120
        zone = next(z for z in ("Asia/Shanghai", "UTC", "America/New_York", "Asia/Tokyo")
                    if (t0 - timedelta(minutes=1)).astimezone(ZoneInfo(z)).date()
                    == (t0 + timedelta(seconds=span)).astimezone(ZoneInfo(z)).date())
        self.zone, self.t0 = zone, t0
        local = t0.astimezone(ZoneInfo(zone))
        schedules = self.root / "schedules"
        schedules.mkdir()
        ids = [f"f{i}" for i in range(1, count)] + [OBS_CHANNEL]
        names = list(SCRIPTS)
        last = t0
        for i, (cid, share) in enumerate(zip(ids, shares, strict=True)):
            minutes = 0
            while (minutes + 1) * 60 // period + 1 <= share:
                minutes += 1
            text = (f'[channel]\nid = "{cid}"\nname = "{CHANNEL_NAME}"\ntimezone = "{zone}"\n'
                    + ('output = "obs:studio"\n' if cid == OBS_CHANNEL else "") + "\n")
            what = (f'rotate = {json.dumps(names)}' if i == 0 else
                    f'rotate = ["{names[2]}", "{names[5]}"]' if i == 2 else f'script = "{names[i % len(names)]}"')
            every = 0
            if minutes:
                end = local + timedelta(minutes=minutes)
                text += (f'[[slot]]\nname = "tick"\nevery = "{period}s"\nbetween = ["{local:%H:%M}", "{end:%H:%M}"]\n'
                         f'{what}\n' + ('late = "skip"\n' if i == 1 else "") + "\n")
                every = minutes * 60 // period + 1
            for k in range(share - every):
                instant = t0 + timedelta(seconds=(every + k) * period)
                text += (f'[[slot]]\nname = "extra-{k}"\nat = {instant.strftime("%Y-%m-%dT%H:%M:%SZ")}\n'
                         f'script = "{names[(i + k) % len(names)]}"\n\n')
            last = max(last, t0 + timedelta(seconds=(share - 1) * period))
            (schedules / f"{cid}.toml").write_text(text, encoding="utf-8")
        self.t_last = last
        self.window = (last - t0).total_seconds()

    def anchor(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "anchor", "--config", str(self.config), *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def fetch_plan(self) -> dict[tuple[str, str, datetime], str]:
        """`anchor plan --json` for the whole soak window, before the daemon starts: (channel, slot, UTC) → script."""
        hours = (self.window + 120) / 3600
        shown = self.anchor("plan", "--json", "--from", (self.t0 - timedelta(seconds=1)).isoformat(),
                            "--hours", f"{hours:.4f}")
        if shown.returncode != 0:
            raise SoakError(f"anchor plan failed: {shown.stderr[-2000:]}")
        return {(p["channel"], p["slot"], datetime.fromisoformat(p["planned_at_utc"])): p["script"]
                for p in json.loads(shown.stdout)}

    # -- the daemon -----------------------------------------------------------------------------------------

    @property
    def daemon(self) -> Incarnation | None:
        return self.incarnations[-1] if self.incarnations else None

    def running(self) -> bool:
        return self.daemon is not None and self.daemon.proc.poll() is None

    def start_daemon(self, why: str) -> datetime:
        """Start `anchor run` and wait (bounded) until it says "on air". One that exits first is started again
        2 s later, for up to 3 minutes, as systemd would (Restart=on-failure); meanwhile due fixes still run
        (the disk is freed, OBS comes back)."""
        give_up = time.monotonic() + 180
        while True:
            number = len(self.incarnations) + 1
            log_path = self.root / f"daemon-{number:02d}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "anchor", "--config", str(self.config), "run"],
                                        cwd=self.root, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            inc = Incarnation(number, proc, log_path, now())
            self.incarnations.append(inc)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                found = re.search(r"^(\S+ \S+) INFO anchor\.daemon: on air:", self._read(log_path), re.M)
                if found:
                    inc.ready = datetime.fromisoformat(found.group(1)).astimezone(UTC)
                    self.expect_running = True
                    self._close("daemon", inc.ready)
                    self.event(f"daemon #{number} ready ({why})")
                    return inc.ready
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            if proc.poll() is None:
                self._kill_group(proc)
                inc.ended = "killed: not ready in 90 s"
            else:
                inc.ended = f"exited {proc.returncode} before ready"
            text = self._read(log_path)
            last = [line for line in text.splitlines() if line.strip()][-2:]
            self.unexpected.append(f"#{number} {inc.ended}: {' | '.join(last)[-240:]}")
            self.event(f"daemon #{number} {inc.ended}")
            if time.monotonic() > give_up:
                raise SoakError(f"the daemon did not start for 3 minutes: {' | '.join(last)[-500:]}")
            until = time.time() + 2
            while time.time() < until:  # fixes that fall due meanwhile
                due = [h for h in self.heap if h[0] <= time.time() and h[2].kind in ("free", "fix", "obs-start")]
                for item in due:
                    self.heap.remove(item)
                    heapq.heapify(self.heap)
                    self.do(item[2])
                time.sleep(0.1)

    @staticmethod
    def _read(path: Path) -> str:
        return path.read_text(encoding="utf-8", errors="replace")

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def event(self, text: str) -> None:
        self.events.append(f"{now().isoformat(timespec='milliseconds')} T0{(now() - self.t0).total_seconds():+8.1f}s "
                           f"{text}")

    def _open(self, kind: str, at: datetime, channel: str | None = None, note: str = "") -> None:
        self.windows.append(Window(kind, at, None, channel, note))

    def _close(self, kind: str, at: datetime, note: str = "") -> None:
        for w in self.windows:
            if w.kind == kind and w.end is None and (not note or w.note == note):
                w.end = at

    def watch(self, until: float) -> None:
        """Sleep until `until` (epoch seconds), restarting a daemon that exited on its own (as systemd would)."""
        while True:
            left = until - time.time()
            if self.expect_running and self.daemon is not None and self.daemon.proc.poll() is not None:
                inc = self.daemon
                inc.ended = f"exited {inc.proc.returncode} on its own"
                tail = self._read(inc.log_path)[-600:].strip().replace("\n", " | ")
                self.unexpected.append(f"#{inc.number} {inc.ended}: …{tail[-300:]}")
                self.event(f"daemon #{inc.number} {inc.ended}")
                self.expect_running = False
                self._open("daemon", now(), note="crash")
                time.sleep(2)
                self.start_daemon("restart after it exited")
                continue
            if left <= 0:
                return
            time.sleep(min(0.2, left))

    # -- the chaos ------------------------------------------------------------------------------------------

    def push(self, at: float, step: Step) -> None:
        heapq.heappush(self.heap, (at, step.seq, step))

    def follow(self, delay: float, kind: str, **args: object) -> None:
        self.push(time.time() + delay, Step(0, next(self.seq), kind, args))

    def do(self, step: Step) -> None:
        kind, a = step.kind, step.args
        if kind == "kill":
            if "refused_since" in a:
                self.wait_refused(int(a["refused_since"]))
            self.kill(str(a["mode"]), float(a["down"]), bool(a.get("final")), a.get("after_ready") or [],
                      bool(a.get("free_first")), str(a.get("label", "")))
            if "free_after" in a:
                self.follow(float(a["free_after"]), "free")
        elif kind == "start":
            ready = self.start_daemon(str(a["why"]))
            if a.get("final"):
                self.final_ready = ready
                for s in self.plan.phase_b:
                    self.push(ready.timestamp() + s.at, s)
            for follow_kind, delay in a.get("after_ready") or []:
                self.push(ready.timestamp() + delay, Step(0, next(self.seq), follow_kind, {}))
        elif kind == "kill-full":
            self.fill(None)
            down = float(a["down"])
            # The kill waits until the as-run log has refused a write (SQLite may first fill room it has).
            if a["variant"] == "restart-full":  # the restart meets a full disk, freed 20 s later
                self.follow(0.5, "kill", mode="any", down=down, label="disk full, restart into it",
                            refused_since=self._log_size(), free_after=down + 20)
            else:  # within a blink of an airing's start; the disk is freed just before the restart
                self.follow(0.5, "kill", mode="airing", down=down, free_first=True, label="disk full, airing",
                            refused_since=self._log_size())
        elif kind == "fill":
            self.fill(float(a["hold"]))
        elif kind == "free":
            for filler in self.data.glob("filler-*"):
                filler.unlink(missing_ok=True)
            self._close("disk", now())
            self.event("disk freed")
        elif kind == "obs-kill":
            assert self.obs is not None
            if self.obs.running:
                self.obs.kill()
                self._open("obs", now(), OBS_CHANNEL)
                self.event("OBS killed")
                self.follow(float(a["down"]), "obs-start")
        elif kind == "obs-start":
            self.obs_start()
        elif kind in ("break-channel", "break-script"):
            path = (self.root / ("schedules" if kind == "break-channel" else "scripts_content") / str(a["name"]))
            if path in self.broken:
                return
            self.broken[path] = path.read_text(encoding="utf-8")
            (break_channel if kind == "break-channel" else break_script)(path)
            self._open("edit", now(), note=str(path))
            self.event(f"{kind} {path.name}")
            self.follow(float(a["hold"]), "fix", path=str(path))
        elif kind == "fix":
            path = Path(str(a["path"]))
            path.write_text(self.broken.pop(path), encoding="utf-8")
            self._close("edit", now(), note=str(path))
            self.event(f"fixed {path.name}")
        elif kind == "sample":
            self.sample(str(a["tag"]), float(a["seconds"]))
        elif kind == "stop":
            self.stop_daemon()
        else:
            raise SoakError(f"unknown step {kind}")

    def kill(self, mode: str, down: float, final: bool, after_ready: list[tuple[str, float]],
             free_first: bool = False, label: str = "") -> None:
        inc = self.daemon
        if inc is None or not self.running():
            self.event("kill skipped: the daemon is not running")
            return
        self.expect_running = False
        how = mode
        if mode == "airing":
            found = kill_on_next_airing(inc.proc.pid, inc.log_path, timeout=20)
            if found is None:
                how = "any (no airing line in 20 s)"
                os.killpg(inc.proc.pid, signal.SIGKILL)
            else:
                stamp, killed = found
                self.kill_delays.append((killed - stamp).total_seconds() * 1000)
        else:
            os.killpg(inc.proc.pid, signal.SIGKILL)
        killed_at = now()
        self._kill_group(inc.proc)
        inc.ended = f"SIGKILL ({how})"
        self.kills[f"{how}, {label}" if label else how] += 1
        self._open("daemon", killed_at)
        self.event(f"daemon #{inc.number} SIGKILL ({how}{', ' + label if label else ''}); restart in {down:.1f} s")
        if free_first:
            self.follow(max(0.0, down - 0.3), "free")
        self.follow(down, "start", why="restart after SIGKILL", final=final, after_ready=after_ready)

    def _log_size(self) -> int:
        return self.daemon.log_path.stat().st_size if self.daemon else 0

    def wait_refused(self, offset: int, timeout: float = 120) -> None:
        """Until the daemon's log says the as-run log refused a write (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            with self.daemon.log_path.open("rb") as log:
                log.seek(offset)
                if re.search(rb"as-run log: cannot (claim|record)", log.read()):
                    self.event("the as-run log refused a write")
                    return
            time.sleep(0.2)
        self.event(f"no refused write within {timeout:.0f} s of a full disk")

    def fill(self, hold: float | None) -> None:
        written = fill_disk(self.data, f"filler-{len(self.events)}")
        self._open("disk", now())
        usage = shutil.disk_usage(self.data)
        self.event(f"disk filled (+{written / 1e6:.1f} MB, {usage.free} bytes free)")
        if hold is not None:
            self.follow(hold, "free")

    def obs_start(self) -> None:
        assert self.obs is not None
        for _ in range(3):
            if self.obs.running:
                break
            try:
                self.obs.start()
                break
            except (TimeoutError, RuntimeError) as exc:
                self.event(f"OBS did not start ({str(exc)[:120]}); again")
                self.obs.kill()
                time.sleep(2)
        self._close("obs", now())
        self.event(f"OBS back (started in {self.obs.started_in or 0:.1f} s)")

    def sample(self, tag: str, seconds: float) -> None:
        inc = self.daemon
        got = self.samples[tag]
        end = time.monotonic() + seconds
        fewest = None
        while time.monotonic() < end and inc is not None and inc.proc.poll() is None:
            try:
                got.rss.append(memory_mb(inc.proc.pid))
                fds = os.listdir(f"/proc/{inc.proc.pid}/fd")
            except (OSError, LookupError):
                break
            got.fds.append(len(fds))
            if fewest is None or len(fds) < fewest:
                fewest = len(fds)
                got.kinds = Counter(_fd_kind(inc.proc.pid, fd) for fd in fds)
            time.sleep(1.0)
        self.event(f"sampled {tag}: RSS median {statistics.median(got.rss or [0]):.1f} MB, "
                   f"fds min {min(got.fds or [0])}")

    def stop_daemon(self) -> None:
        inc = self.daemon
        if inc is None or inc.proc.poll() is not None:
            return
        self.expect_running = False
        inc.proc.send_signal(signal.SIGTERM)
        try:
            rc = inc.proc.wait(timeout=30)
            inc.ended = f"stopped {rc}"
        except subprocess.TimeoutExpired:
            self._kill_group(inc.proc)
            inc.ended = "did not stop in 30 s: killed"
        self.event(f"daemon #{inc.number} {inc.ended}")

    def run(self) -> None:
        self.plan = make_plan(self.args.seed, self.window, sorted(p.name for p in (self.root / "schedules").iterdir()),
                              list(SCRIPTS))
        t0 = self.t0.timestamp()
        for step in self.plan.phase_a:
            self.push(t0 + step.at, step)
        self.push(t0 + self.plan.end_sample_at, Step(0, 30_000_000, "sample",
                                                     {"tag": "end", "seconds": self.plan.sample_seconds}))
        self.push(self.t_last.timestamp() + LONGEST + 10, Step(0, 30_000_001, "stop", {}))
        print(f"chaos (seed {self.args.seed}): {self.plan.describe()}", flush=True)
        self.start_daemon("first start")
        while self.heap:
            at, _, step = heapq.heappop(self.heap)
            self.watch(at)
            if step.kind == "stop":  # what is still broken, full or down is put right first
                for _, _, left in sorted(self.heap):
                    if left.kind in ("fix", "free", "obs-start", "start"):
                        self.do(left)
                self.heap.clear()
            self.do(step)

    # -- the checks -----------------------------------------------------------------------------------------

    def let_go(self, channel: str, instant: datetime) -> str | None:
        for w in self.windows:
            end = w.end or now()
            if w.kind == "daemon" and w.start - timedelta(seconds=CUT_BEFORE) <= instant <= end + timedelta(
                    seconds=READY_AFTER):
                return "daemon down"
            if w.kind == "obs" and channel == w.channel and w.start - timedelta(seconds=CUT_BEFORE) <= instant <= (
                    end + timedelta(seconds=OBS_BACK_AFTER)):
                return "OBS down"
        return None

    def in_window(self, kind: str, instant: datetime) -> bool:
        return any(w.kind == kind and w.start <= instant <= (w.end or now()) for w in self.windows)

    def check(self, planned: dict[tuple[str, str, datetime], str]) -> bool:
        from anchor.content import load_script
        from anchor.store import AsRunLog, open_engine

        log = AsRunLog(open_engine(f"sqlite:///{self.data / 'anchor.db'}"))
        rows = log.history(limit=10_000_000)
        by_key: dict[tuple[str, str, datetime], list] = {}
        for r in rows:
            by_key.setdefault((r.channel, r.slot, _utc(r.planned_at)), []).append(r)
        results: list[tuple[bool, str]] = []
        say = print

        outcomes = Counter(r.outcome.value for r in rows)
        went_out = [r for r in rows if r.outcome.value in ("aired", "late")]
        degraded = Counter(r.aired_as for r in went_out if r.aired_as != "clip")
        say(f"as-run log: {len(rows)} rows for {len(planned)} planned airings (N={self.args.airings}); "
            f"aired {outcomes['aired']}, late {outcomes['late']} (degraded {sum(degraded.values())}: "
            f"{dict(degraded) or '-'}), missed {outcomes['missed']}, interrupted {outcomes['interrupted']}, "
            f"failed {outcomes['failed']}, skipped {outcomes['skipped']}, on-air {outcomes['on-air']}")

        # Lateness of what went out: all of it, and the must-air part (catch-up airings are late by design).
        def lateness(rs: list) -> str:
            ms = [(_utc(r.started_at) - _utc(r.planned_at)).total_seconds() * 1000 for r in rs if r.started_at]
            if len(ms) < 2:
                return "n/a"
            p50, _, p99, top = quantiles(ms)
            return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {top:.0f} ms (n={len(ms)})"

        must = {k for k in planned if self.let_go(k[0], k[2]) is None}
        say(f"lateness of what aired: all {lateness(went_out)}")
        say(f"  must-air only: file {lateness([r for r in went_out if r.channel != OBS_CHANNEL and (r.channel, r.slot, _utc(r.planned_at)) in must])}; "  # noqa: E501
            f"OBS {lateness([r for r in went_out if r.channel == OBS_CHANNEL and (r.channel, r.slot, _utc(r.planned_at)) in must])}")  # noqa: E501

        # 1. one row per planned instant, none unplanned, none left on air.
        missing = sorted((k for k in planned if k not in by_key), key=lambda k: k[2])
        unplanned = sorted((k for k in by_key if k not in planned), key=lambda k: k[2])
        doubled = [k for k, rs in by_key.items() if len(rs) > 1]
        on_air = [r for r in rows if r.outcome.value not in FINAL]
        results.append((not (missing or unplanned or doubled or on_air),
                        f"exactly one final row per planned instant: {len(missing)} planned without a row, "
                        f"{len(unplanned)} rows not planned, {len(doubled)} doubled, {len(on_air)} left on-air"
                        + _show(" no row:", [(c, s, self._t(t), self.let_go(c, t) or "must air")
                                             for c, s, t in missing])
                        + _show(" unplanned:", [(c, s, self._t(t)) for c, s, t in unplanned])))

        aired_dir = self.data / "aired"
        files = [p for p in aired_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
        keyed_files = {_file_key(p, aired_dir): p for p in files}

        # 2. what the policy says must air, aired.
        not_aired = [(k, by_key[k][0]) for k in sorted(must, key=lambda k: k[2])
                     if k in by_key and by_key[k][0].outcome.value not in ("aired", "late")]
        let_go = Counter(self.let_go(k[0], k[2]) for k in planned if k not in must)
        let_go_outcomes = Counter(by_key[k][0].outcome.value for k in planned if k not in must and k in by_key)
        disk_must = sum(1 for k in must if self.in_window("disk", k[2]))
        edit_must = sum(1 for k in must if self.in_window("edit", k[2]))
        whole = sum(1 for k, _ in not_aired if k in keyed_files)
        results.append((not not_aired,
                        f"must air ({len(must)} instants; {disk_must} during a full disk, {edit_must} during a bad "
                        f"edit) aired or late: {len(not_aired)} not ({whole} of them went out whole: their file is "
                        f"in aired/); let go {dict(let_go)} → {dict(let_go_outcomes)}"
                        + _show(" not aired:", [(k[0], k[1], self._t(k[2]), r.outcome.value, (r.error or "")[:90])
                                                for k, r in not_aired])))

        # 3. the planned script, in a good version of its text.
        good = {name: load_script(self.root / "scripts_content" / name, self.root / "scripts_content").content_hash
                for name in SCRIPTS}
        wrong_script = [(r.channel, r.slot, self._t(_utc(r.planned_at)), r.script, planned.get(k))
                        for k, rs in by_key.items() for r in rs if k in planned and r.script != planned[k]]
        wrong_text = [(r.channel, r.slot, self._t(_utc(r.planned_at)), r.script) for r in went_out
                      if r.script_hash != good.get(r.script)]
        results.append((not (wrong_script or wrong_text),
                        f"each row names the planned script ({len(wrong_script)} do not) and aired a good text "
                        f"({len(wrong_text)} did not)" + _show(" script:", wrong_script) + _show(" text:", wrong_text)))

        # 4. the aired folder and the log agree; no part files.
        parts = [p for p in aired_dir.rglob(".*.part")]
        orphans = []
        for p in files:
            key = _file_key(p, aired_dir)
            rs = by_key.get(key) if key else None
            if not rs or rs[0].outcome.value not in ("aired", "late"):
                orphans.append((str(p.relative_to(aired_dir)), rs[0].outcome.value if rs else "no row"))
        without_file = [(r.channel, r.slot, self._t(_utc(r.planned_at))) for r in went_out
                        if r.channel != OBS_CHANNEL and (r.channel, r.slot, _utc(r.planned_at)) not in keyed_files]
        results.append((not (orphans or parts or without_file),
                        f"aired files ↔ rows: {len(files)} files; {len(orphans)} without an aired/late row, "
                        f"{len(without_file)} file-channel aired rows without a file, {len(parts)} part files left"
                        + _show(" orphan:", orphans) + _show(" no file:", without_file)
                        + _show(" part:", [str(p.relative_to(aired_dir)) for p in parts])))

        # 5. no airing started twice (the daemons' own log lines, across every incarnation).
        starts: Counter[str] = Counter()
        obs_ends: Counter[str] = Counter()
        tracebacks = 0
        errors: Counter[str] = Counter()
        for inc in self.incarnations:
            text = self._read(inc.log_path)
            starts.update(re.findall(r"INFO anchor\.outputs\.file: .*: airing '[^']*' to (\S+)", text))
            obs_ends.update(re.findall(rf"channel {OBS_CHANNEL} airing (\S+): (?:aired|late|interrupted) ", text))
            tracebacks += text.count("Traceback")
            for line in re.findall(r" ERROR (.*)", text):
                errors[re.sub(r"\d+", "#", line)[:110]] += 1
        twice = [p for p, n in starts.items() if n > 1] + [k for k, n in obs_ends.items() if n > 1]
        results.append((not twice, f"no airing started twice: {len(twice)} did"
                        + _show(" twice:", [Path(p).name for p in twice])))

        # 6. memory and descriptors of the last incarnation, like with like.
        start, end = self.samples["start"], self.samples["end"]
        if start.rss and end.rss:
            growth = statistics.median(end.rss) - statistics.median(start.rss)
            fd_growth = min(end.fds) - min(start.fds)
            say(f"daemon #{self.daemon.number if self.daemon else '?'} (last incarnation): RSS median "
                f"{statistics.median(start.rss):.1f} → {statistics.median(end.rss):.1f} MB, open fds min "
                f"{min(start.fds)} → {min(end.fds)} (max {max(start.fds)} → {max(end.fds)}); 30 s samples after a "
                f"warm-up round vs. the soak's last 30 s")
            if fd_growth:
                say(f"  fds by kind: start {dict(start.kinds)}; end {dict(end.kinds)}")
            results.append((growth <= 5.0, f"RSS growth {growth:+.1f} MB (target <= 5 MB)"))
            results.append((fd_growth <= 0, f"descriptor growth {fd_growth:+d} (target 0)"))
        else:
            results.append((False, "RSS/descriptors: no samples (the last incarnation was too short or gone)"))

        # 7. the seal chain: every final row sealed, no link broken, through every kill and the full disk.
        verified = self.anchor("audit", "verify", "--all")
        said = (verified.stdout.strip() or verified.stderr.strip() or f"no output, exit {verified.returncode}")
        results.append((verified.returncode == 0, "`anchor audit verify`: " + said.splitlines()[0][:300]))

        # 8. the daemon itself.
        stopped = self.daemon.ended if self.daemon else "never started"
        results.append((not self.unexpected and stopped == "stopped 0",
                        f"the daemon never exited on its own ({len(self.unexpected)} times) and stopped cleanly "
                        f"({stopped}); {tracebacks} tracebacks in its logs"
                        + _show(" exits:", self.unexpected)))
        if errors:
            say("ERROR lines in the daemon logs: " + "; ".join(f"{n}x {t}" for t, n in errors.most_common(5)))

        for ok, text in results:
            say(f"{'PASS' if ok else 'FAIL'}  {text}")
        return all(ok for ok, _ in results)

    def _t(self, instant: datetime) -> str:
        return f"T0{(instant - self.t0).total_seconds():+.0f}s"

    # -- clean-up -------------------------------------------------------------------------------------------

    def cleanup(self, keep: bool) -> None:
        for inc in self.incarnations:
            if inc.proc.poll() is None:
                self._kill_group(inc.proc)
        if self.obs is not None:
            try:
                self.obs.close()
            except Exception as exc:  # clean-up goes on
                print(f"closing OBS: {exc}", file=sys.stderr)
        if keep and self.mounted:
            shutil.copytree(self.data, self.root / "data.kept", ignore=shutil.ignore_patterns("filler-*"),
                            dirs_exist_ok=True)
            (self.root / "events.txt").write_text("\n".join(self.events) + "\n", encoding="utf-8")
        if self.mounted:
            done = subprocess.run(["umount", str(self.data)], capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.data)], capture_output=True, timeout=30)
            self.mounted = False
        if keep:
            print(f"kept: {self.root} (daemon-*.log, events.txt, data.kept/)")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _file_key(path: Path, aired_dir: Path) -> tuple[str, str, datetime] | None:
    """<channel>/<YYYY-MM-DD>/<HHMMSS±HHMM>-<slot>.<ext> → (channel, slot, UTC instant)."""
    parts = path.relative_to(aired_dir).parts
    found = re.match(r"^(\d{6}[+-]\d{4})-(.+)\.(mp4|wav)$", parts[-1]) if len(parts) == 3 else None
    if not found:
        return None
    local = datetime.strptime(f"{parts[1]} {found.group(1)}", "%Y-%m-%d %H%M%S%z")
    return parts[0], found.group(2), local.astimezone(UTC)


def _fd_kind(pid: int, fd: str) -> str:
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return "gone"
    if target.startswith(("socket:", "pipe:", "anon_inode:")):
        return target.split(":")[0] + (target.split(":", 1)[1] if target.startswith("anon_inode:") else "")
    return re.sub(r"-[0-9a-f]{8,}.*", "", Path(target).name)


def _show(label: str, items: list, limit: int = 4) -> str:
    if not items:
        return ""
    shown = "; ".join(str(i) for i in items[:limit])
    return f"\n      {label} {shown}" + (f" … (+{len(items) - limit})" if len(items) > limit else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airings", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, default=6, help="channels, one of them through OBS (>= 2)")
    parser.add_argument("--period", type=int, default=8, help="seconds between a channel's airings (>= 6)")
    parser.add_argument("--keep", action="store_true", help="keep the site, logs and a copy of data/")
    args = parser.parse_args()
    if args.channels < 2 or args.period < 6 or args.airings < args.channels:
        parser.error("need --channels >= 2, --period >= 6 and at least one airing per channel")

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    soak = Soak(args)
    ok = False
    try:
        soak.setup()
        planned = soak.fetch_plan()
        print(f"soak: {args.airings} airings on {args.channels} channels (1 via OBS), every {args.period} s, "
              f"{soak.zone}; window {soak.window / 60:.1f} min from {soak.t0.isoformat(timespec='seconds')}; "
              f"plan lists {len(planned)}; site {soak.root}", flush=True)
        soak.run()
        kills = ", ".join(f"{n} {k}" for k, n in soak.kills.items())
        delays = (f"; kill after the airing line: max {max(soak.kill_delays):.1f} ms, median "
                  f"{statistics.median(soak.kill_delays):.1f} ms" if soak.kill_delays else "")
        print(f"done: {len(soak.incarnations)} daemon incarnations; kills: {kills}{delays}; "
              f"OBS kills {sum(w.kind == 'obs' for w in soak.windows)}, disk fills "
              f"{sum(w.kind == 'disk' for w in soak.windows)}, bad edits {sum(w.kind == 'edit' for w in soak.windows)}")
        delay_ok = all(d <= 50 for d in soak.kill_delays)
        print(f"{'PASS' if delay_ok else 'FAIL'}  kills 'within 50 ms after an airing starts': "
              f"{sum(d <= 50 for d in soak.kill_delays)}/{len(soak.kill_delays)}")
        ok = soak.check(planned) and delay_ok
        print("machine: 2 cores shared with other work; lateness figures are noisy")
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
    except SoakError as exc:
        print(f"soak failed: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            soak.cleanup(keep=args.keep or not ok)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
