"""Audio with ffmpeg: decode, trim, two-pass EBU R128 normalization, and loudness measurement.

Commands are built with ffmpeg-python and run as asyncio subprocesses, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from anchor.process import ProgramMissing, ProgramTimeout, run_program

FFMPEG_TIMEOUT = 600.0
SILENCE_THRESHOLD = 10 ** (-48 / 20) * 32768  # -48 dBFS: below this an edge sample is room tone
LIMITER_MARGIN_DB = 0.5  # sample-peak limiting at 48 kHz leaves inter-sample peaks up to ~0.5 dB higher
MAX_GAIN_DB = 30.0


class AudioError(Exception):
    pass


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float
    range_lu: float


async def run_ffmpeg(argv: list[str], stdin: bytes | None = None, timeout: float = FFMPEG_TIMEOUT) -> tuple[bytes, str]:
    try:
        done = await run_program(argv, stdin, timeout)
    except ProgramMissing:
        raise AudioError(f"{argv[0]} is not installed (apt-get install ffmpeg)") from None
    except ProgramTimeout:
        raise AudioError(f"ffmpeg took longer than {timeout:g}s") from None
    text = done.stderr.decode("utf-8", errors="replace")
    if done.returncode != 0:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise AudioError(f"ffmpeg failed (exit {done.returncode}): {tail}")
    return done.stdout, text


def command(node: ffmpeg.nodes.Node, *options: str) -> list[str]:
    """argv for an ffmpeg-python graph, global options first (ffmpeg-python would append them last)."""
    argv = node.compile()
    return [argv[0], "-hide_banner", "-nostats", "-nostdin", *options, *argv[1:]]


async def decode(data: bytes, sample_rate: int) -> np.ndarray:
    """Any encoded audio (mp3 from edge) → mono 16-bit samples."""
    argv = command(ffmpeg.input("pipe:0").output("pipe:1", f="s16le", ac=1, ar=sample_rate), "-loglevel", "error")
    out, _ = await run_ffmpeg(argv, stdin=data)
    return np.frombuffer(out, dtype="<i2").copy()


def speech_bounds(samples: np.ndarray) -> tuple[int, int]:
    """First and one-past-last sample louder than room tone; (0, 0) for silence."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    if len(loud) == 0:
        return 0, 0
    return int(loud[0]), int(loud[-1]) + 1


def parse_ebur128(stderr: str) -> Loudness:
    # ebur128 also prints an empty summary when the graph starts: the real one is the last.
    at = stderr.rfind("Summary:")
    if at < 0:
        raise AudioError("ffmpeg printed no loudness summary")
    text = stderr[at:]

    def value(label: str) -> float:
        m = re.search(rf"{label}:\s+(-?(?:\d+(?:\.\d+)?|inf))", text)
        if not m:
            if label == "Peak":
                return float("nan")  # metered without true peak
            raise AudioError(f"no {label} in ffmpeg's loudness summary")
        return float(m.group(1))

    return Loudness(value("I"), value("Peak"), value("LRA"))


def _raw_input(path: Path, sample_rate: int) -> ffmpeg.nodes.FilterableStream:
    return ffmpeg.input(str(path), f="s16le", ar=sample_rate, ac=1)


async def measure(path: Path, raw_rate: int | None = None, true_peak: bool = True) -> Loudness:
    """Integrated loudness, range and (optionally: it doubles the cost) true peak, by ffmpeg's R128 meter."""
    stream = _raw_input(path, raw_rate) if raw_rate else ffmpeg.input(str(path))
    argv = command(stream.filter("ebur128", peak="true" if true_peak else "none").output("-", f="null"))
    _, err = await run_ffmpeg(argv)
    return parse_ebur128(err)


async def _apply_gain(raw: Path, raw_rate: int, out: Path, gain_db: float, true_peak: float,
                      sample_rate: int) -> Loudness:
    """Pass 2: resample, gain, look-ahead limiter below the true-peak ceiling; meter the result in the same run."""
    limit = 10 ** ((true_peak - LIMITER_MARGIN_DB) / 20)
    shaped = (_raw_input(raw, raw_rate)
              .filter("aresample", sample_rate)
              .filter("volume", f"{gain_db:.2f}dB")
              .filter("alimiter", limit=f"{limit:.4f}", attack=LIMITER_ATTACK * 1000, release=LIMITER_RELEASE * 1000,
                      level=0, latency=1)
              .filter_multi_output("asplit", 2))
    written = shaped[0].output(str(out), acodec="pcm_s16le", ar=sample_rate, f="wav")
    metered = shaped[1].filter("ebur128", peak="true").output("-", f="null")
    argv = command(ffmpeg.merge_outputs(written, metered).overwrite_output())
    _, err = await run_ffmpeg(argv)
    return parse_ebur128(err)


LIMITER_ATTACK = 0.005
LIMITER_RELEASE = 0.05


@dataclass
class BlockLevels:
    """Peak and energy of each 5 ms block of a raw file: all the limiter model needs, read once.

    Both scale with gain (peak linearly, energy squared), so trying several gains costs no re-read.
    """

    peaks: np.ndarray
    energy: np.ndarray

    @classmethod
    def of_raw(cls, raw: Path, rate: int) -> BlockLevels:
        block = max(1, round(rate * LIMITER_ATTACK))
        samples = np.memmap(raw, dtype="<i2", mode="r")
        count = len(samples) // block
        peaks, energy = np.empty(count, np.float32), np.empty(count, np.float64)
        step = block * 2_000  # ten seconds a chunk: a few MB of temporaries, whatever the program's length
        for first in range(0, count * block, step):
            chunk = np.asarray(samples[first : min(first + step, count * block)], dtype=np.float32) / 32768
            blocks = chunk.reshape(-1, block)
            at = first // block
            peaks[at : at + len(blocks)] = np.abs(blocks).max(axis=1)
            energy[at : at + len(blocks)] = (blocks.astype(np.float64) ** 2).sum(axis=1)
        return cls(peaks, energy)

    def limiter_loss_db(self, gain_db: float, ceiling_db: float) -> float:
        """Loudness the peak limiter will take away (≤ 0 dB) at this gain, modelling its hold as the release.

        Predicting it lets pass 2 land on target in one go instead of paying for a corrective pass.
        """
        if len(self.peaks) == 0 or self.energy.sum() == 0:
            return 0.0
        peaks = self.peaks * 10 ** (gain_db / 20)
        held = peaks.copy()
        for k in range(1, min(len(peaks), round(LIMITER_RELEASE / LIMITER_ATTACK) + 1)):
            held[k:] = np.maximum(held[k:], peaks[:-k])
        held[:-1] = np.maximum(held[:-1], peaks[1:])  # the limiter looks ahead by its attack time
        reduction = np.minimum(1.0, 10 ** (ceiling_db / 20) / np.maximum(held, 1e-9))
        return float(10 * np.log10((self.energy * reduction**2).sum() / self.energy.sum()))


# What `anchor say --out FILE` writes for each file extension: (ffmpeg muxer, codec options).
EXPORT_FORMATS: dict[str, tuple[str, dict[str, str | int]]] = {
    ".wav": ("wav", {"acodec": "pcm_s16le"}),
    ".mp3": ("mp3", {"acodec": "libmp3lame", "audio_bitrate": "128k"}),
    ".ogg": ("ogg", {"acodec": "libvorbis", "aq": 5}),
    ".opus": ("ogg", {"acodec": "libopus", "audio_bitrate": "64k", "ar": 48000}),  # opus takes 48 kHz, not 44.1
    ".m4a": ("ipod", {"acodec": "aac", "audio_bitrate": "128k"}),
    ".aac": ("adts", {"acodec": "aac", "audio_bitrate": "128k"}),
    ".flac": ("flac", {"acodec": "flac"}),
}


async def export(wav: Path, target: Path) -> None:
    """Encode `wav` into `target` in the format its extension names (one of EXPORT_FORMATS). Written beside
    it first and renamed, so a failed encode leaves no half file under the name asked for."""
    muxer, options = EXPORT_FORMATS[target.suffix.lower()]
    staged = target.with_name(f".{target.name}.part")
    argv = command(ffmpeg.input(str(wav)).output(str(staged), f=muxer, **options).overwrite_output(),
                   "-loglevel", "error")
    try:
        await run_ffmpeg(argv)
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)


async def normalize(raw: Path, raw_rate: int, out: Path, target_lufs: float, true_peak: float,
                    sample_rate: int) -> Loudness:
    """Two-pass EBU R128: measure, then apply the gain that reaches the target under a true-peak limiter.

    ffmpeg's loudnorm does the same in ~3x the time (it resamples to 192 kHz) and cannot keep linear
    mode for speech this peaky, so we meter with ebur128 and limit with alimiter ourselves. The gain
    includes the loudness the limiter is predicted to take; if the result still misses by more than half
    a LU, one corrective pass adds the difference.
    """
    first = await measure(raw, raw_rate, true_peak=False)  # the limiter in pass 2 takes care of peaks
    if first.integrated_lufs == float("-inf") or first.integrated_lufs < -70:
        raise AudioError("the audio is silent: nothing to normalize")
    wanted = target_lufs - first.integrated_lufs

    def settle() -> float:  # numpy over the whole file: in a thread, off the loop
        levels = BlockLevels.of_raw(raw, raw_rate)
        gain = wanted
        for _ in range(3):  # more gain means more limiting: settle the fixed point
            gain = wanted - levels.limiter_loss_db(gain, true_peak - LIMITER_MARGIN_DB)
        return max(-MAX_GAIN_DB, min(MAX_GAIN_DB, gain))

    gain = await asyncio.to_thread(settle)
    result = await _apply_gain(raw, raw_rate, out, gain, true_peak, sample_rate)
    if abs(target_lufs - result.integrated_lufs) > 0.5:
        gain = max(-MAX_GAIN_DB, min(MAX_GAIN_DB, gain + target_lufs - result.integrated_lufs))
        result = await _apply_gain(raw, raw_rate, out, gain, true_peak, sample_rate)
    return result
