"""Dead air: a program on air whose sound stays below a threshold (−50 dBFS) for longer than a bound (5 s).
Both outputs watch what really went out — OBS through its volume meters, the file output through ffmpeg's
silencedetect on the file it wrote — and report the seconds of every such stretch."""

from __future__ import annotations

import math
import re
from pathlib import Path

_SILENCE = re.compile(r"silence_(start|end): (-?[\d.]+)")


def dbfs(multiplier: float) -> float:
    """A level as OBS reports it (a multiplier, 0..1) in dBFS."""
    return 20 * math.log10(multiplier) if multiplier > 0 else -math.inf


class DeadAirMeter:
    """Fed levels as they come, it adds up the seconds of every silent stretch longer than the bound."""

    def __init__(self, threshold_dbfs: float, bound_seconds: float) -> None:
        self.threshold = threshold_dbfs
        self.bound = bound_seconds
        self.seconds = 0.0  # dead air so far
        self.stretches = 0
        self.readings = 0
        self._silent_since: float | None = None

    def start(self, at: float) -> None:
        """The program went on air at `at`: until a reading says otherwise, it is silent from there (readings
        arrive some ms late; a source that sends none at all is silent)."""
        self._silent_since = at

    def feed(self, level_dbfs: float, at: float) -> None:
        self.readings += 1
        if level_dbfs < self.threshold:
            if self._silent_since is None:
                self._silent_since = at
            return
        self._close(at)

    def finish(self, at: float) -> float:
        """The program ended at `at`: close an open stretch; returns the dead air in seconds."""
        self._close(at)
        return self.seconds

    def _close(self, at: float) -> None:
        if self._silent_since is not None and at - self._silent_since > self.bound:
            self.seconds += at - self._silent_since
            self.stretches += 1
        self._silent_since = None


async def dead_air_in(path: Path, threshold_dbfs: float, bound_seconds: float, length: float) -> float:
    """Seconds of dead air in a file's sound (stretches below the threshold longer than the bound), by
    ffmpeg's silencedetect. `length` closes a stretch still open at the end."""
    import ffmpeg  # the audio tools (numpy among them) load with the first airing, not with `anchor check`

    from anchor.speech import audio

    node = ffmpeg.input(str(path)).audio.filter("silencedetect", noise=f"{threshold_dbfs}dB",
                                                d=bound_seconds).output("-", f="null")
    _, err = await audio.run_ffmpeg(audio.command(node), timeout=60 + length)
    meter = DeadAirMeter(threshold_dbfs, bound_seconds)
    for kind, value in _SILENCE.findall(err):
        at = float(value)
        meter.feed(-math.inf if kind == "start" else 0.0, at)
    return meter.finish(length)
