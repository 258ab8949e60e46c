"""The talking clip: the avatar's mouth follows the program audio's loudness, its eyes blink now and then.

Rendering never draws a frame in Python. The six looks (three mouths × eyes open/closed) are composed
once, at the output size on the background, by one ffmpeg run; a per-frame plan (numpy, in a thread)
picks one look per video frame; the plan is run-length encoded into an ffconcat list of those six
images with exact durations; one more ffmpeg run turns the list, the subtitles and program.wav into
the mp4. The looks are stored as one-frame yuv420p Y4M files, not PNG: the concat demuxer reopens a
file at every run, and PNG decoding plus an RGB→YUV conversion per frame cost more than the encode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from anchor.avatar.face import Avatar
from anchor.speech import audio
from anchor.speech.program_files import ProgramFiles
from anchor.speech.sentences import width as text_width
from anchor.speech.subtitles import read_srt
from anchor.speech.wav import WavError, WavReader, wav_seconds

log = logging.getLogger(__name__)

CLOSED, HALF, OPEN = 0, 1, 2
# Loudness of a frame's audio relative to the speech level (a high percentile of the voiced frames).
SPEECH_LEVEL_PERCENTILE = 90
ABSOLUTE_GATE_DBFS = -50.0  # below this a frame is silence, whatever the level
CLOSED_BELOW_DB = 18.0  # quieter than level − 18 dB: consonants, gaps between syllables
OPEN_WITHIN_DB = 6.0  # within 6 dB of the level: vowels
# Blinks: people blink every 2–6 s, each blink ~150 ms; now and then two in quick succession.
BLINK_SECONDS = 0.15
BLINK_GAP_SECONDS = (2.0, 6.0)
FIRST_BLINK_SECONDS = (0.5, 2.5)
DOUBLE_BLINK_CHANCE = 0.15
DOUBLE_BLINK_GAP_SECONDS = 0.25
WORK_PREFIX = ".avatar-"
# Bump when a change here would change the pictures: cached clips then stop matching.
CLIP_VERSION = 2


def clip_seed(program_key: str) -> int:
    """Blinks fall the same way every time a Program is rendered: the clip is reproducible."""
    return int(program_key[:8], 16)
LEVEL_CHUNK_FRAMES = 250  # ten seconds at 25 fps: ~4 MB of float64 samples at 48 kHz


class ClipError(Exception):
    """The clip could not be rendered; the message says which file or step failed."""


@dataclass(frozen=True)
class ClipReport:
    path: Path
    frames: int
    fps: int
    audio_seconds: float
    mouth_open_share: float  # share of frames with the mouth half or wide open
    blinks: int
    runs: int  # entries in the concat list: how often the picture changes
    render_seconds: float

    @property
    def real_time_factor(self) -> float:
        return self.render_seconds / max(self.audio_seconds, 1e-9)


@dataclass(frozen=True)
class Placement:
    """Where the avatar lands in the frame: scaled to fit, centred, standing on the bottom edge."""

    x: int
    y: int
    width: int
    height: int


def layout(avatar: Avatar, width: int, height: int) -> Placement:
    scale = min(width / avatar.width, height / avatar.height)
    w = max(2, round(avatar.width * scale / 2) * 2)
    h = max(2, round(avatar.height * scale / 2) * 2)
    w, h = min(w, width), min(h, height)
    return Placement((width - w) // 2, height - h, w, h)  # a bust stands on the bottom edge


# -- the per-frame plan (pure numpy) --------------------------------------------------------------------


def frame_count(samples: int, rate: int, fps: int) -> int:
    """Whole frames nearest the audio's length (within half a frame)."""
    return max(1, round(samples * fps / rate))


def _frame_bounds(rate: int, fps: int, frames: int) -> np.ndarray:
    """Sample index where each video frame starts, and where the last one ends."""
    return np.round(np.arange(frames + 1) * rate / fps).astype(np.int64)


def _rms_db(samples: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """RMS in dBFS of samples[bounds[i]:bounds[i+1]] for each i; missing samples count as silence."""
    padded = np.zeros(bounds[-1] - bounds[0] + 1, dtype=np.float64)  # +1: reduceat needs starts inside
    count = min(len(samples), len(padded) - 1)
    padded[:count] = np.asarray(samples[:count], dtype=np.float64) / 32768.0
    energy = np.add.reduceat(padded**2, bounds[:-1] - bounds[0])
    rms = np.sqrt(energy / np.maximum(np.diff(bounds), 1))
    return 20 * np.log10(np.maximum(rms, 1e-6))  # digital silence → −120


def frame_levels_db(samples: np.ndarray, rate: int, fps: int, frames: int) -> np.ndarray:
    """RMS of each video frame's stretch of audio, in dBFS (−120 for digital silence)."""
    return _rms_db(samples, _frame_bounds(rate, fps, frames))


def wav_levels_db(path: Path, fps: int) -> tuple[np.ndarray, float]:
    """frame_levels_db of a WAV file read in chunks (memory stays small for hour-long programs), and its
    length in seconds."""
    with WavReader(path) as wav:
        frames = frame_count(wav.samples, wav.rate, fps)
        bounds = _frame_bounds(wav.rate, fps, frames)
        levels = np.empty(frames)
        for first in range(0, frames, LEVEL_CHUNK_FRAMES):
            last = min(first + LEVEL_CHUNK_FRAMES, frames)
            chunk = bounds[first:last + 1]
            levels[first:last] = _rms_db(wav.read(int(chunk[-1] - chunk[0])), chunk)
        return levels, wav.samples / wav.rate


def _median3_root(states: np.ndarray) -> np.ndarray:
    """Repeat a 3-tap median until nothing changes: no single-frame flicker (open-closed-open) survives.

    Monotonic one-frame steps (closed → half → open) are kept: they are the in-between a mouth passes.
    """
    current = states.copy()
    for _ in range(len(states)):
        if len(current) < 3:
            break
        padded = np.concatenate([current[:1], current, current[-1:]])
        smoothed = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0).astype(current.dtype)
        if np.array_equal(smoothed, current):
            break
        current = smoothed
    return current


def mouth_states(levels_db: np.ndarray) -> np.ndarray:
    """CLOSED, HALF or OPEN for every video frame, from its loudness relative to the speech level."""
    db = levels_db
    if len(db) >= 3:  # soften the envelope a little: a syllable rises and falls over several frames
        db = np.convolve(np.concatenate([db[:1], db, db[-1:]]), [0.25, 0.5, 0.25], mode="valid")
    voiced = db[db > ABSOLUTE_GATE_DBFS]
    states = np.full(len(db), CLOSED, dtype=np.int8)
    if len(voiced) == 0:
        return states
    level = float(np.percentile(voiced, SPEECH_LEVEL_PERCENTILE))
    states[db >= max(ABSOLUTE_GATE_DBFS, level - CLOSED_BELOW_DB)] = HALF
    states[db >= level - OPEN_WITHIN_DB] = OPEN
    return _median3_root(states)


def mouth_track(samples: np.ndarray, rate: int, fps: int, frames: int) -> np.ndarray:
    """mouth_states for samples in memory."""
    return mouth_states(frame_levels_db(samples, rate, fps, frames))


def blink_track(frames: int, fps: int, seed: int) -> tuple[np.ndarray, int]:
    """Which frames have the eyes closed, and how many blinks; the same seed gives the same blinks."""
    rng = np.random.default_rng(seed)
    closed = np.zeros(frames, dtype=bool)
    length = max(1, round(BLINK_SECONDS * fps))
    blinks = 0
    at = rng.uniform(*FIRST_BLINK_SECONDS)
    while True:
        starts = [at]
        if rng.random() < DOUBLE_BLINK_CHANCE:
            starts.append(at + BLINK_SECONDS + DOUBLE_BLINK_GAP_SECONDS)
        for start in starts:
            first = round(start * fps)
            if first + length > frames:
                return closed, blinks
            closed[first:first + length] = True
            blinks += 1
        at = starts[-1] + BLINK_SECONDS + rng.uniform(*BLINK_GAP_SECONDS)


@dataclass(frozen=True)
class Plan:
    looks: np.ndarray  # per frame: mouth state + 3 × eyes closed, an index into the six composed images
    blinks: int
    audio_seconds: float

    @property
    def frames(self) -> int:
        return len(self.looks)


def plan_frames(wav: Path, fps: int, seed: int) -> Plan:
    levels, seconds = wav_levels_db(wav, fps)
    eyes, blinks = blink_track(len(levels), fps, seed)
    looks = mouth_states(levels) + 3 * eyes.astype(np.int8)
    return Plan(looks.astype(np.int8), blinks, seconds)


def look_name(look: int) -> str:
    return f"look{look}.y4m"


def concat_list(looks: np.ndarray, fps: int) -> tuple[str, int]:
    """An ffconcat script showing looks[i] during frame i; returns it and the number of runs.

    Durations are whole frames, written as differences of rounded absolute microsecond times so they
    add up exactly (the demuxer sums them in µs); each Y4M look has a 1/fps time base, so every run
    starts on its frame. The demuxer ignores the last entry's duration, hence the last look is listed
    once more and the encode trims to the exact frame count.
    """
    change = np.flatnonzero(np.diff(looks)) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [len(looks)]]).astype(np.int64)
    lines = ["ffconcat version 1.0"]
    for start, end in zip(starts, ends, strict=False):
        micros = round(int(end) * 1_000_000 / fps) - round(int(start) * 1_000_000 / fps)
        lines += [f"file {look_name(int(looks[start]))}", f"duration {micros // 1_000_000}.{micros % 1_000_000:06d}"]
    lines += [f"file {look_name(int(looks[-1]))}"]
    return "\n".join(lines) + "\n", len(starts)


# ffmpeg turns SRT into ASS with PlayResY 288: FontSize and MarginV are in those units, scaled to the frame.
ASS_PLAY_RES_Y = 288
# A CJK character's advance per ASS FontSize unit (measured for WenQuanYi Micro Hei; CJK fonts are alike).
ASS_EM_PER_SIZE = 0.85


def subtitle_style(srt: Path, width: int, height: int, font: str) -> str | None:
    """ASS overrides for burning `srt` in: the font, a size for the frame, a bottom margin; None if empty.

    Characters are ~6% of the frame height, smaller if the widest line would not fit 90% of the width
    (a portrait frame); the ASS units are converted back from pixels.
    """
    lines = [line for caption in read_srt(srt) for line in caption.text.splitlines() if line.strip()]
    if not lines:
        return None
    widest = max(text_width(t) for t in lines)
    char_px = min(0.06 * height, 0.9 * width / max(widest, 1.0))
    size = max(4.0, char_px / ASS_EM_PER_SIZE / (height / ASS_PLAY_RES_Y))
    margin = round(0.06 * ASS_PLAY_RES_Y)
    return (f"FontName={font},FontSize={size:.1f},MarginV={margin},PrimaryColour=&H00FFFFFF,"
            "OutlineColour=&H80000000,BorderStyle=1,Outline=1.2,Shadow=0")


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- ffmpeg ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """Where the lower third's band and its two lines go, in pixels, for a frame size and its texts."""

    x: int
    y: int
    width: int
    height: int
    name_size: int
    title_size: int

    @classmethod
    def layout(cls, width: int, height: int, name: str, title: str) -> Band:
        # Left-aligned over the presenter's shoulder, above the subtitles, as news lower thirds sit.
        inner = 0.62 * width
        title_size = max(8, round(min(0.05 * height, inner / max(text_width(title), 1.0))))
        name_size = max(8, round(min(0.034 * height, inner / max(text_width(name), 1.0))))
        band_h = round(title_size * 1.35 + name_size * 1.5)
        band_w = round(min(0.8 * width, max(text_width(title) * title_size, text_width(name) * name_size)
                           + 0.08 * width))
        return cls(x=0, y=round(0.80 * height) - band_h, width=band_w, height=band_h, name_size=name_size,
                   title_size=title_size)


def _with_lower_third(look: ffmpeg.nodes.FilterableStream, band: Band, name_file: Path, title_file: Path,
                      font: str) -> ffmpeg.nodes.FilterableStream:
    margin = round(0.03 * band.height + band.height * 0.08)
    left = band.x + round(band.name_size * 0.9)
    # The texts come from files: no escaping of what an institution writes into filter syntax.
    return (look
            .drawbox(band.x, band.y, band.width, band.height, color="black@0.55", thickness="fill")
            .drawbox(band.x, band.y, max(2, band.name_size // 4), band.height, color="0xe63946", thickness="fill")
            .drawtext(textfile=str(name_file), font=font, fontsize=band.name_size, fontcolor="0xf1faee",
                      x=left, y=band.y + margin, expansion="none")
            .drawtext(textfile=str(title_file), font=font, fontsize=band.title_size, fontcolor="white",
                      x=left, y=band.y + margin + round(band.name_size * 1.3), expansion="none"))


async def compose_looks(avatar: Avatar, width: int, height: int, background: str, fps: int, work: Path,
                        lower_third: tuple[str, str] | None = None, font: str = "WenQuanYi Micro Hei") -> list[Path]:
    """The six looks as one-frame yuv420p Y4M files at width×height on the background, with a 1/fps time
    base; index = mouth + 3 × eyes closed. A lower third (name, title) is drawn into every look: it never
    changes during a clip, so it costs nothing per frame."""
    place = layout(avatar, width, height)
    backdrop = ffmpeg.input(f"color=c={background}:s={width}x{height}:r={fps}:d=1", f="lavfi").split()
    lids = ffmpeg.input(str(avatar.blink.resolve())).split()
    band: Band | None = None
    if lower_third is not None:
        name, title = (" ".join(text.split()) for text in lower_third)
        band = Band.layout(width, height, name, title)
        (work / "name.txt").write_text(name, encoding="utf-8")
        (work / "title.txt").write_text(title, encoding="utf-8")
    outputs, paths = [], []
    for mouth, frame in enumerate(avatar.mouths):
        face = ffmpeg.input(str(frame.resolve())).split()
        # Blink over the face at the frames' own size, then scale: both share one resampling. Overlay in
        # RGB (its default, yuv420, would subsample the whole face and the blink would touch every pixel).
        for eyes, look in ((0, face[0]), (1, face[1].overlay(lids[mouth], format="rgb"))):
            scaled = look.filter("scale", place.width, place.height, flags="lanczos")
            # Convert to yuv420p once here instead of once per video frame.
            composed = backdrop[mouth * 2 + eyes].overlay(scaled, x=place.x, y=place.y, format="rgb")
            if band is not None:
                composed = _with_lower_third(composed, band, work / "name.txt", work / "title.txt", font)
            path = work / look_name(mouth + 3 * eyes)
            outputs.append(composed.output(str(path), f="yuv4mpegpipe", vframes=1, pix_fmt="yuv420p", r=fps))
            paths.append(path)
    await audio.run_ffmpeg(audio.command(ffmpeg.merge_outputs(*outputs).overwrite_output(), "-loglevel", "error"),
                           timeout=60)
    return sorted(paths, key=lambda p: int(p.stem.removeprefix("look")))  # index order


def _encode_command(listing: Path, wav: Path, srt: Path | None, style: str | None, frames: int, fps: int,
                    out: Path) -> list[str]:
    # fps duplicates frames to fill each run; trim stops at the exact count. (Not `-frames:v`: in ffmpeg
    # 5.1 that also ends the audio early, by ~0.7 s here.)
    video = ffmpeg.input(str(listing), f="concat").video.filter("fps", fps=fps).trim(end_frame=frames)
    if srt is not None and style is not None:
        video = video.filter("subtitles", filename=str(srt.resolve()), force_style=style)
    node = ffmpeg.output(
        video, ffmpeg.input(str(wav)).audio, str(out), f="mp4",
        vcodec="libx264", preset="veryfast", pix_fmt="yuv420p", r=fps,
        acodec="aac", audio_bitrate="128k",
        aac_coder="fast",  # twoloop (the default) costs ~3x for no audible gain on speech
        movflags="+faststart",
    )
    return audio.command(node, "-loglevel", "error", "-y")


async def render_talking_clip(program_dir: Path, avatar: Avatar, out: Path, *, width: int = 640, height: int = 360,
                              fps: int = 25, background: str = "0x1d3557", subtitles: bool = True,
                              font: str = "WenQuanYi Micro Hei", seed: int = 0,
                              lower_third: tuple[str, str] | None = None) -> ClipReport:
    """Render program_dir's program.wav (and program.srt, burned in when `subtitles`) as a talking clip,
    with a lower third (name, title) when given.

    The mp4 (H.264 + AAC, faststart) lasts as long as the audio, to within one frame, and appears at `out`
    complete or not at all. The same inputs and seed give the same bytes. Raises ClipError.
    """
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"frame size {width}x{height}: both sides must be even and at least 16 (H.264 in yuv420p)")
    if not 1 <= fps <= 120:
        raise ValueError(f"fps {fps} is outside 1–120")
    started = time.perf_counter()
    files = ProgramFiles(program_dir)
    wav, srt = files.wav, files.srt
    if not wav.is_file():
        raise ClipError(f"no program audio at {wav}")
    try:
        plan = await asyncio.to_thread(plan_frames, wav, fps, seed)
    except WavError as exc:
        raise ClipError(str(exc)) from exc
    listing_text, runs = await asyncio.to_thread(concat_list, plan.looks, fps)
    style = None
    if subtitles and srt.is_file():
        style = await asyncio.to_thread(subtitle_style, srt, width, height, font)
    elif subtitles:
        log.warning("no subtitles at %s: the talking clip goes without", srt)
    work = _work_dir(out)
    try:
        await compose_looks(avatar, width, height, background, fps, work, lower_third, font)
        listing = work / "looks.ffconcat"
        listing.write_text(listing_text, encoding="utf-8")
        partial = work / "clip.mp4"
        argv = _encode_command(listing, wav, srt if style else None, style, plan.frames, fps, partial)
        await audio.run_ffmpeg(argv, timeout=120 + 3 * plan.audio_seconds)
        await asyncio.to_thread(fsync, partial)
        os.replace(partial, out)  # atomic: the clip is either complete or absent
    except audio.AudioError as exc:
        raise ClipError(f"could not render the talking clip for {program_dir}: {exc}") from exc
    except OSError as exc:
        raise ClipError(f"could not write the talking clip {out}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = ClipReport(
        path=out, frames=plan.frames, fps=fps, audio_seconds=plan.audio_seconds,
        mouth_open_share=float(np.mean(plan.looks % 3 != CLOSED)), blinks=plan.blinks, runs=runs,
        render_seconds=time.perf_counter() - started)
    log.info("talking clip %s: %d frames, %d runs, mouth open %.0f%%, %d blinks, %.1f s for %.1f s of audio "
             "(%.3fx real time)", out.name, report.frames, report.runs, 100 * report.mouth_open_share,
             report.blinks, report.render_seconds, report.audio_seconds, report.real_time_factor)
    return report


STILL_FPS = 5  # a still picture needs few frames; players hold each


async def render_still_clip(program_dir: Path, avatar: Avatar | None, out: Path, *, width: int = 640,
                            height: int = 360, background: str = "0x1d3557") -> float:
    """The program audio over one still picture: the avatar with its mouth closed on the background, or the
    background alone when there is no avatar to show. The step down when the talking clip cannot be made:
    it needs ffmpeg, but no font, no frame plan and only one picture. Returns the seconds it took; raises
    ClipError. The mp4 appears at `out` complete or not at all."""
    started = time.perf_counter()
    files = ProgramFiles(program_dir)
    if not files.wav.is_file():
        raise ClipError(f"no program audio at {files.wav}")
    try:
        seconds = await asyncio.to_thread(wav_seconds, files.wav)
    except WavError as exc:
        raise ClipError(str(exc)) from exc
    picture = ffmpeg.input(f"color=c={background}:s={width}x{height}:r={STILL_FPS}", f="lavfi")
    if avatar is not None:
        place = layout(avatar, width, height)
        face = ffmpeg.input(str(avatar.mouths[0].resolve())).filter("scale", place.width, place.height,
                                                                    flags="lanczos")
        picture = picture.overlay(face, x=place.x, y=place.y, format="rgb")
    work = _work_dir(out)
    try:
        partial = work / "still.mp4"
        video = picture.trim(end=seconds).setpts("PTS-STARTPTS")
        node = ffmpeg.output(video, ffmpeg.input(str(files.wav)).audio, str(partial), f="mp4", vcodec="libx264",
                             preset="veryfast", tune="stillimage", pix_fmt="yuv420p", r=STILL_FPS, acodec="aac",
                             audio_bitrate="128k", aac_coder="fast", movflags="+faststart")
        await audio.run_ffmpeg(audio.command(node, "-loglevel", "error", "-y"), timeout=60 + seconds)
        await asyncio.to_thread(fsync, partial)
        os.replace(partial, out)
    except audio.AudioError as exc:
        raise ClipError(f"could not render the still picture for {program_dir}: {exc}") from exc
    except OSError as exc:
        raise ClipError(f"could not write {out}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return time.perf_counter() - started


def _work_dir(out: Path) -> Path:
    """A fresh folder beside `out` for the render's parts (the same disk: the result is moved in place)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{out.stem[:16]}.", dir=out.parent))
    except OSError as exc:
        raise ClipError(f"cannot write in {out.parent}: {exc.strerror or exc}") from exc
