"""The soak's chaos: a seeded plan of what goes wrong and when, and the small hands that do it.

The plan is pure (seed + window → steps), so a run can be repeated exactly with the same --seed.

Steps of phase A are at offsets (seconds) from the first planned instant T0; the steps of phase B (the
daemon's last incarnation) are at offsets from the moment that incarnation is ready, because only then is
it known. Kinds:

    kill        SIGKILL the daemon's process group (as systemd's watchdog does: KillMode=control-group);
                mode "airing": within a few ms of the next "airing '…'" log line, mode "any": at once;
                then restart it after `down` seconds (`final`: the restart that begins the last incarnation)
    fill        fill the data disk (a tmpfs) with a file; `free` after `hold` seconds
    kill-full   fill the disk; once the as-run log has refused a write, SIGKILL the daemon and restart it after
                `down`: variant "restart-full" frees the disk 20 s after the restart begins, "restart-free"
                kills within a blink of an airing's start and frees the disk just before the restart
    obs-kill    SIGKILL OBS; start it again after `down` seconds
    break-channel / break-script   a syntax error in a channel file / `[pause 999s]` in a script; fixed after
                `hold` seconds
    sample      RSS and descriptors of the daemon every second for `seconds` (no chaos meanwhile)
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(order=True)
class Step:
    at: float  # seconds: from T0 (phase A) or from the last incarnation's ready (phase B)
    seq: int
    kind: str = field(compare=False)
    args: dict[str, object] = field(compare=False, default_factory=dict)


@dataclass
class ChaosPlan:
    phase_a: list[Step]
    phase_b: list[Step]  # offsets from the last incarnation's ready
    end_sample_at: float  # from T0: the calm window at the end where RSS/fds are sampled again
    sample_seconds: float

    def describe(self) -> str:
        counts: dict[str, int] = {}
        for step in self.phase_a + self.phase_b:
            name = step.kind + (f"({step.args['mode']})" if step.kind == "kill" else "")
            counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def _spread(rng: random.Random, count: int, start: float, end: float, gap: float) -> list[float]:
    """`count` instants in [start, end], one in each equal part, at least `gap` from the part's edges."""
    if count <= 0 or end - start < gap * 2:
        return []
    part = (end - start) / count
    out = []
    for i in range(count):
        lo, hi = start + i * part + min(gap, part / 3), start + (i + 1) * part - min(gap, part / 3)
        out.append(rng.uniform(lo, hi))
    return out


def make_plan(seed: int, window: float, channel_files: list[str], scripts: list[str]) -> ChaosPlan:
    """window: seconds from T0 to the last planned instant. Phase A (daemon kills) takes the first ~58 %;
    the last incarnation starts with a final kill at 58 % and runs to the end with everything but kills."""
    rng = random.Random(seed)
    seq = iter(range(1_000_000))
    a_end = window * 0.58
    phase_a: list[Step] = []

    # Daemon kills: one in each part of phase A; half (at least) within a blink of an airing's start.
    kills = max(2, round(a_end / 110))
    times = _spread(rng, kills, 20, a_end - 40, 15)
    # Two of them happen while the disk is full: one restarts into the full disk (freed 20 s later), one
    # is killed within a blink of an airing's start and restarts just after the disk is freed.
    combos = dict(zip(rng.sample(range(len(times)), min(2, len(times))), ("restart-full", "restart-free"),
                      strict=False))
    modes = ["airing"] * ((len(times) + 1) // 2) + ["any"] * (len(times) // 2)
    rng.shuffle(modes)
    for i, t in enumerate(times):
        down = round(rng.choice([0.5, 1, 2, 3, 5, 8, 12]) * rng.uniform(0.8, 1.2), 1)
        if i in combos:
            down = down if combos[i] == "restart-full" else round(rng.uniform(0.5, 1.0), 1)
            phase_a.append(Step(t - 6, next(seq), "kill-full", {"down": down, "variant": combos[i]}))
        else:
            phase_a.append(Step(t, next(seq), "kill", {"mode": modes[i], "down": down}))

    # OBS killed and relaunched; the disk filled and freed; bad edits to channel files and scripts.
    for t in _spread(rng, max(1, round(a_end / 320)), 30, a_end - 30, 20):
        phase_a.append(Step(t, next(seq), "obs-kill", {"down": round(rng.uniform(2, 15), 1)}))
    for t in _spread(rng, max(1, round(a_end / 500)), 40, a_end - 60, 30):
        phase_a.append(Step(t, next(seq), "fill", {"hold": round(rng.uniform(10, 40), 1)}))
    for kind, names in (("break-channel", channel_files), ("break-script", scripts)):
        for t in _spread(rng, max(1, round(a_end / 320)), 25, a_end - 70, 30):
            phase_a.append(Step(t, next(seq), kind, {"name": rng.choice(names),
                                                     "hold": round(rng.uniform(15, 60), 1)}))
    phase_a.append(Step(a_end, next(seq), "kill", {"mode": "airing", "down": 2.0, "final": True}))

    # Phase B, from the last incarnation's ready: a warm-up round of each kind of trouble (so every code
    # path has run once before the first sample), the first sample, more rounds, a calm end.
    sample = 30.0
    phase_b: list[Step] = []

    def round_at(start: float) -> None:
        phase_b.append(Step(start, next(seq), "obs-kill", {"down": round(rng.uniform(3, 10), 1)}))
        phase_b.append(Step(start + 25, next(seq), "fill", {"hold": round(rng.uniform(10, 20), 1)}))
        phase_b.append(Step(start + 50, next(seq), "break-channel", {"name": rng.choice(channel_files),
                                                                     "hold": round(rng.uniform(10, 20), 1)}))
        phase_b.append(Step(start + 75, next(seq), "break-script", {"name": rng.choice(scripts),
                                                                    "hold": round(rng.uniform(10, 20), 1)}))

    b_len = window - a_end - 20  # the final restart and its start-up
    round_at(15)
    phase_b.append(Step(135, next(seq), "sample", {"tag": "start", "seconds": sample}))
    start = 135 + sample + 10
    end_sample_at = window - sample - 10
    while start + 100 + 40 <= b_len - sample - 10:  # each round is over ~100 s after it starts
        round_at(start)
        start += 110
    return ChaosPlan(phase_a, phase_b, end_sample_at, sample)


# -- hands ----------------------------------------------------------------------------------------------

AIRING_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) INFO anchor\.outputs\.file: "
                         r".*: airing '", re.M)


def kill_on_next_airing(pid: int, log_path: Path, timeout: float) -> tuple[datetime, datetime] | None:
    """Wait (bounded) for the next "airing '…'" line in the daemon's log and SIGKILL its process group at
    once. Returns (the line's time stamp, when the kill went out), or None if no airing started in time."""
    import signal

    with log_path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        pending = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = log.read()
            if chunk:
                pending += chunk
                lines, _, pending = pending.rpartition(b"\n")
                found = AIRING_LINE.search(lines.decode("utf-8", "replace"))
                if found:
                    os.killpg(pid, signal.SIGKILL)
                    killed = datetime.now().astimezone()
                    return datetime.fromisoformat(found.group(1)), killed
            else:
                time.sleep(0.001)
    return None


def fill_disk(folder: Path, name: str) -> int:
    """Write zeros to folder/name until the filesystem refuses; returns the bytes written."""
    written = 0
    with (folder / name).open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            chunk = b"\0" * size
            try:
                while True:
                    n = out.write(chunk)
                    if not n:
                        break
                    written += n
            except OSError:
                pass
    return written


def break_channel(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n[[slot]\n", encoding="utf-8")  # a TOML syntax error


def break_script(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n[pause 999s]\n", encoding="utf-8")
