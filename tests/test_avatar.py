"""The talking avatar with real espeak-ng, ffmpeg and ffprobe: the clip's length and codecs, a mouth that
moves with the speech and rests in pauses, blinks, byte-identical re-renders, and bad avatar folders."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from anchor.avatar import DEFAULT_AVATAR, Avatar, ClipReport, load_avatar, render_talking_clip
from anchor.avatar.clip import CLOSED, HALF, OPEN, Placement, compose_looks, concat_list, layout, mouth_track
from anchor.avatar.face import MOUTH_FILES
from anchor.config import load_settings
from anchor.content import load_script
from anchor.problems import InputError
from anchor.program import Program, render_program
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.speech.wav import read_wav
from tests.conftest import Project, script_text, srt_cues

# Its tests share one rendered program for the module: under xdist they run on one worker, so it is made once.
pytestmark = pytest.mark.xdist_group("test_avatar")

# ~20 s of speech with a 2 s pause in the middle: long enough for several blinks.
BODY = ("各位观众朋友，大家好。今天我们来聊一聊，怎样在冬天预防流感。\n\n[pause 2s]\n\n"
        "勤洗手，常通风，按时接种流感疫苗。出现发热、咳嗽时，请戴好口罩，及时就医。谢谢收看。")
FPS = 25
WIDTH, HEIGHT = 640, 360
SEED = 7
FONT = "WenQuanYi Micro Hei"
TIMEOUT = 120
SAME = 7.0  # mean luma difference under which two crops show the same look (x264 leaves 2–5 here)


@dataclass
class Rendered:
    program: Program
    avatar: Avatar
    clip: Path
    report: ClipReport
    looks: list[Path]  # the six composed looks, for reference pictures

    @property
    def directory(self) -> Path:
        assert self.program.directory is not None
        return self.program.directory


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,codec_name,width,height,pix_fmt,duration,nb_read_frames:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def gray_frames(video: Path, box: Placement) -> np.ndarray:
    """Every frame of a video (or a one-frame look), cropped to box, as 8-bit luma: (frames, h, w)."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-i", str(video), "-vf",
                           f"crop={box.width}:{box.height}:{box.x}:{box.y}", "-f", "rawvideo", "-pix_fmt", "gray",
                           "-"], capture_output=True, timeout=TIMEOUT, check=True)
    return np.frombuffer(proc.stdout, dtype=np.uint8).reshape(-1, box.height, box.width).astype(np.int16)


def png_pixels(path: Path, avatar: Avatar, pix_fmt: str = "gray") -> np.ndarray:
    """A frame of the avatar decoded by ffmpeg: (h, w) for gray, (h, w, 4) for rgba."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                           pix_fmt, "-"], capture_output=True, timeout=30, check=True)
    pixels = np.frombuffer(proc.stdout, dtype=np.uint8)
    return pixels.reshape(avatar.height, avatar.width, -1).squeeze(axis=2) if pix_fmt == "gray" else \
        pixels.reshape(avatar.height, avatar.width, -1)


def region(mask: np.ndarray, avatar: Avatar, margin: int = 4) -> Placement:
    """The bounding box of mask (in the avatar's pixels), mapped into the clip's frame, on even pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    place = layout(avatar, WIDTH, HEIGHT)
    scale = place.width / avatar.width
    x0 = int((cols[0] - margin) * scale) + place.x
    y0 = int((rows[0] - margin) * scale) + place.y
    x1 = int(np.ceil((cols[-1] + 1 + margin) * scale)) + place.x
    y1 = int(np.ceil((rows[-1] + 1 + margin) * scale)) + place.y
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2
    return Placement(x0, y0, (x1 - x0 + 1) // 2 * 2, (y1 - y0 + 1) // 2 * 2)


def mouth_region(avatar: Avatar) -> Placement:
    closed = png_pixels(avatar.mouths[0], avatar)
    moved = np.zeros(closed.shape, dtype=bool)
    for other in avatar.mouths[1:]:
        moved |= png_pixels(other, avatar) != closed
    return region(moved, avatar)


def eyes_region(avatar: Avatar) -> Placement:
    return region(png_pixels(avatar.blink, avatar, "rgba")[..., 3] > 0, avatar)


def nearest(frames: np.ndarray, references: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the closest reference for each frame, and the mean absolute difference to it."""
    diffs = np.stack([np.abs(frames - ref[None]).mean(axis=(1, 2)) for ref in references], axis=1)
    return diffs.argmin(axis=1), diffs.min(axis=1)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """A ~20 s program by the real pipeline (espeak-ng), and its talking clip with the default avatar."""
    root = tmp_path_factory.mktemp("avatar")
    project = Project(root / "site")
    project.scripts.mkdir(parents=True)
    project.write_config()
    project.script("flu.md", script_text(BODY, title="冬季预防流感"))
    settings = load_settings(project.config)
    script = load_script(project.scripts / "flu.md", settings.scripts_dir)
    program = asyncio.run(asyncio.wait_for(
        render_program(script, settings, EngineChain(settings), ProgramCache(settings.cache_dir, 1 << 30)), TIMEOUT))
    assert program.directory is not None
    avatar = load_avatar(DEFAULT_AVATAR)
    clip = root / "clips" / "flu.mp4"
    report = asyncio.run(asyncio.wait_for(render_talking_clip(
        program.directory, avatar, clip, width=WIDTH, height=HEIGHT, fps=FPS, subtitles=True, font=FONT, seed=SEED),
        TIMEOUT))
    looks_dir = root / "looks"
    looks_dir.mkdir()
    looks = asyncio.run(compose_looks(avatar, WIDTH, HEIGHT, "0x1d3557", FPS, looks_dir))
    return Rendered(program, avatar, clip, report, looks)


def test_the_clip_lasts_as_long_as_the_audio_in_h264_and_aac(rendered: Rendered) -> None:
    wav = rendered.directory / "program.wav"
    samples, rate = read_wav(wav)
    audio_seconds = len(samples) / rate
    assert 17 < audio_seconds < 30, audio_seconds
    info = probe(rendered.clip)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    sound = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert [(s["codec_name"], s["width"], s["height"], s["pix_fmt"]) for s in video] == [
        ("h264", WIDTH, HEIGHT, "yuv420p")]
    assert [s["codec_name"] for s in sound] == ["aac"]
    frames = int(video[0]["nb_read_frames"])
    assert frames == rendered.report.frames == round(audio_seconds * FPS)
    for duration in (info["format"]["duration"], video[0]["duration"], sound[0]["duration"]):
        assert abs(float(duration) - audio_seconds) <= 1 / FPS, (info, audio_seconds)
    # Written atomically: the clips folder holds the clip and nothing else.
    assert [p.name for p in rendered.clip.parent.iterdir()] == ["flu.mp4"]
    assert rendered.report.real_time_factor < 1


def test_the_mouth_moves_with_speech_and_rests_in_the_pause(rendered: Rendered) -> None:
    box = mouth_region(rendered.avatar)
    frames = gray_frames(rendered.clip, box)
    references = [gray_frames(rendered.looks[m], box)[0] for m in (CLOSED, HALF, OPEN)]
    # The three looks really differ where the mouth is (mean luma difference; x264 leaves ~3 on this crop).
    assert min(np.abs(a - b).mean() for i, a in enumerate(references) for b in references[i + 1:]) > 15

    # Loudness of each video frame's audio, measured here independently of the renderer.
    samples, rate = read_wav(rendered.directory / "program.wav")
    per_frame = rate // FPS
    count = len(samples) // per_frame
    rms = np.sqrt((samples[:count * per_frame].astype(np.float64).reshape(count, per_frame) ** 2).mean(axis=1))
    cues = srt_cues(rendered.directory / "program.srt")
    gap_start, gap_end = max(((a[1], b[0]) for a, b in zip(cues, cues[1:])), key=lambda g: g[1] - g[0])
    assert gap_end - gap_start >= 1.5, cues
    pause = round((gap_start + gap_end) / 2 * FPS)
    loudest = int(np.argmax(rms))
    far = np.abs(np.arange(count) - loudest) > FPS  # another syllable, at least a second away
    second = int(np.argmax(np.where(far, rms, 0)))
    assert rms[pause] == 0 and rms[loudest] > 1000 and rms[second] > 1000

    closed, half, wide = references
    diff = lambda a, b: float(np.abs(a - b).mean())  # noqa: E731
    # In the pause the mouth is the mouth_closed look (up to compression); when loudest it is open.
    assert diff(frames[pause], closed) < SAME, diff(frames[pause], closed)
    for speaking in (loudest, second):
        assert diff(frames[speaking], closed) > 2 * SAME
        assert min(diff(frames[speaking], half), diff(frames[speaking], wide)) < SAME
    assert diff(frames[loudest], frames[pause]) > 2 * SAME
    # Over the whole clip: every frame is one of the three looks, shut through the pause, moving in speech.
    kind, error = nearest(frames, references)
    assert error.max() < SAME, error.max()
    in_pause = kind[round((gap_start + 0.2) * FPS):round((gap_end - 0.2) * FPS)]
    assert len(in_pause) > 20 and (in_pause == CLOSED).all()
    spoken = np.zeros(len(kind), dtype=bool)
    for start, end, _ in cues:
        spoken[round(start * FPS):round(end * FPS)] = True
    assert (kind[spoken] != CLOSED).mean() > 0.5
    assert {HALF, OPEN} <= set(kind[spoken].tolist())
    assert abs((kind != CLOSED).mean() - rendered.report.mouth_open_share) < 0.01
    # The picture follows the plan frame by frame: the concat timing puts each run on its own frames.
    planned = mouth_track(samples, rate, FPS, len(kind))
    assert np.array_equal(kind, planned), np.flatnonzero(kind != planned)


def test_the_eyes_blink_now_and_then(rendered: Rendered) -> None:
    box = eyes_region(rendered.avatar)
    frames = gray_frames(rendered.clip, box)
    open_eyes = gray_frames(rendered.looks[CLOSED], box)[0]  # look 0: mouth closed, eyes open
    shut_eyes = gray_frames(rendered.looks[CLOSED + 3], box)[0]
    assert np.abs(open_eyes - shut_eyes).mean() > 15
    # A blink touches the eyes and nothing else, a mouth the mouth and nothing else.
    whole = Placement(0, 0, WIDTH, HEIGHT)
    looks = [gray_frames(path, whole)[0] for path in rendered.looks]
    mouth = mouth_region(rendered.avatar)
    for a, b, inside in ((CLOSED, CLOSED + 3, box), (OPEN, OPEN + 3, box), (CLOSED, OPEN, mouth)):
        rows, cols = np.nonzero(looks[a] != looks[b])
        assert inside.y <= rows.min() and rows.max() < inside.y + inside.height, (a, b, inside)
        assert inside.x <= cols.min() and cols.max() < inside.x + inside.width, (a, b, inside)
    kind, error = nearest(frames, [open_eyes, shut_eyes])
    assert error.max() < SAME, error.max()
    shut = kind == 1
    starts = np.flatnonzero(np.diff(np.concatenate([[0], shut.astype(np.int8)])) == 1)
    lengths = np.diff(np.concatenate([[0], shut.astype(np.int8), [0]]))
    runs = np.flatnonzero(lengths == -1) - np.flatnonzero(lengths == 1)
    assert shut.sum() >= 2 and len(starts) >= 2, shut.sum()
    assert len(starts) == rendered.report.blinks
    assert set(runs.tolist()) <= {3, 4, 5}  # ~150 ms at 25 fps
    seconds = np.diff(starts) / FPS
    assert (seconds >= 0.3).all() and (seconds <= 6.5).all(), seconds  # double blinks ≥ 0.3 s apart


def test_the_same_seed_renders_the_same_bytes(rendered: Rendered, tmp_path: Path) -> None:
    again, other = tmp_path / "again.mp4", tmp_path / "other.mp4"
    for path, seed in ((again, SEED), (other, SEED + 1)):
        asyncio.run(asyncio.wait_for(render_talking_clip(
            rendered.directory, rendered.avatar, path, width=WIDTH, height=HEIGHT, fps=FPS, subtitles=True, font=FONT,
            seed=seed), TIMEOUT))
    assert again.read_bytes() == rendered.clip.read_bytes()
    assert other.read_bytes() != rendered.clip.read_bytes()  # another seed blinks at other moments


def test_another_frame_rate_and_size_without_subtitles(rendered: Rendered, tmp_path: Path) -> None:
    """30 fps does not divide a microsecond evenly: every run must still start on its own frame."""
    fps, width, height = 30, 320, 180
    clip = tmp_path / "small.mp4"
    report = asyncio.run(asyncio.wait_for(render_talking_clip(
        rendered.directory, rendered.avatar, clip, width=width, height=height, fps=fps, subtitles=False, font=FONT,
        seed=SEED), TIMEOUT))
    samples, rate = read_wav(rendered.directory / "program.wav")
    info = probe(clip)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (width, height)
    assert int(video["nb_read_frames"]) == report.frames == round(len(samples) * fps / rate)
    assert abs(float(info["format"]["duration"]) - len(samples) / rate) <= 1 / fps
    place = layout(rendered.avatar, width, height)
    assert place == Placement(70, 0, 180, 180)
    box = Placement(place.x + 60, place.y + 100, 60, 40)  # around the mouth at this size
    looks = tmp_path / "looks"
    looks.mkdir()
    paths = asyncio.run(compose_looks(rendered.avatar, width, height, "0x1d3557", fps, looks))
    kind, error = nearest(gray_frames(clip, box), [gray_frames(paths[m], box)[0] for m in (CLOSED, HALF, OPEN)])
    assert error.max() < SAME
    assert np.array_equal(kind, mouth_track(samples, rate, fps, report.frames))
    # No subtitles: the bottom of every frame is the avatar's jacket and nothing else.
    bottom = Placement(0, height - 40, width, 40)
    _, error = nearest(gray_frames(clip, bottom), [gray_frames(paths[CLOSED], bottom)[0]])
    assert error.max() < 1.5, error.max()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no work folder left


def test_subtitles_are_burned_in_while_a_cue_is_up(rendered: Rendered) -> None:
    bottom = Placement(0, HEIGHT - 70, WIDTH, 70)
    frames = gray_frames(rendered.clip, bottom)
    look = gray_frames(rendered.looks[CLOSED], bottom)[0]
    cues = srt_cues(rendered.directory / "program.srt")
    with_text = [round((start + end) / 2 * FPS) for start, end, _ in cues]
    gaps = [round((a[1] + b[0]) / 2 * FPS) for a, b in zip(cues, cues[1:]) if b[0] - a[1] > 0.3]
    assert gaps
    for frame in with_text:
        assert (frames[frame] - look > 80).sum() > 150, frame  # white glyphs over the slate jacket
    for frame in gaps:
        assert np.abs(frames[frame] - look).mean() < 1.5


def test_concat_durations_add_up_exactly_at_any_frame_rate() -> None:
    rng = np.random.default_rng(1)
    for fps in (24, 25, 30, 60):
        looks = np.repeat(rng.integers(0, 6, 5000), rng.integers(1, 9, 5000)).astype(np.int8)
        text, runs = concat_list(looks, fps)
        micros = [int(line.split()[1].replace(".", "")) for line in text.splitlines() if line.startswith("duration")]
        assert len(micros) == runs
        assert sum(micros) == round(len(looks) * 1_000_000 / fps)
        files = [line.split()[1] for line in text.splitlines() if line.startswith("file")]
        assert files[-1] == files[-2]  # the last look repeated: the demuxer drops the last duration


def test_the_mouth_does_not_flicker() -> None:
    rate, fps = 48000, 25
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1, rate * 10)
    gain = np.repeat(rng.choice([0.0, 300.0, 3000.0, 9000.0], 250), rate // fps)  # a new level every frame
    states = mouth_track((noise * gain).astype(np.int16), rate, fps, 250)
    for i in range(1, len(states) - 1):  # no frame is a lone peak or dip between its neighbours
        a, b, c = states[i - 1:i + 2]
        assert not (b > max(a, c) or b < min(a, c)), states[i - 1:i + 2]
    silent = mouth_track(np.zeros(rate * 2, np.int16), rate, fps, 50)
    assert (silent == CLOSED).all()


def _copy_default(tmp_path: Path) -> Path:
    folder = tmp_path / "my-avatar"
    shutil.copytree(DEFAULT_AVATAR, folder)
    return folder


def test_a_missing_frame_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path)
    (folder / "mouth_open.png").unlink()
    with pytest.raises(InputError) as caught:
        load_avatar(folder)
    message = str(caught.value)
    assert f"{folder / 'mouth_open.png'}: missing mouth_open.png" in message, message
    assert "supply mouth_open.png: the face with eyes open and the mouth wide open" in message

    with pytest.raises(InputError, match="avatar folder not found"):
        load_avatar(tmp_path / "nowhere")


def test_a_wrong_size_or_wrong_kind_of_frame_is_a_clear_error(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(DEFAULT_AVATAR / "mouth_half.png"), "-vf", "scale=240:240",
                    str(folder / "mouth_half.png")], check=True, timeout=30)
    with pytest.raises(InputError) as caught:
        load_avatar(folder)
    message = str(caught.value)
    assert len(caught.value.problems) == 1
    assert f"{folder / 'mouth_half.png'}: mouth_half.png is 240x240 but mouth_closed.png is 480x480" in message
    assert "resize mouth_half.png to 480x480" in message

    shutil.copy(DEFAULT_AVATAR / "mouth_half.png", folder / "mouth_half.png")
    (folder / "mouth_closed.png").write_text("not a picture")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(DEFAULT_AVATAR / "blink.png"), "-pix_fmt", "rgb24",
                    str(folder / "blink.png")], check=True, timeout=30)
    with pytest.raises(InputError) as caught:
        load_avatar(folder)
    message = str(caught.value)
    assert "mouth_closed.png is not a PNG image" in message
    assert f"{folder / 'blink.png'}: blink.png has no transparency" in message
    assert "save it as RGBA" in message


def test_the_default_avatar_ships_and_loads() -> None:
    avatar = load_avatar(DEFAULT_AVATAR)
    assert (avatar.width, avatar.height) == (480, 480)
    assert [p.name for p in avatar.mouths] == list(MOUTH_FILES) and avatar.blink.name == "blink.png"
    assert all(p.is_file() for p in (*avatar.mouths, avatar.blink))
    closed, half, wide = (png_pixels(p, avatar).astype(np.int16) for p in avatar.mouths)
    # Three clearly different mouths: each pair differs over a mouth-sized patch, and open > half.
    assert 150 < (closed != half).sum() < (closed != wide).sum() < 5000
    assert (half != wide).sum() > 300
    alpha = png_pixels(avatar.blink, avatar, "rgba")[..., 3]
    assert 0 < (alpha > 0).mean() < 0.02  # only the eyelids
    assert len(avatar.digest) == 64 and avatar.idle is None


def test_the_drawing_tool_reproduces_the_default_avatar(tmp_path: Path) -> None:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "tools" / "draw_default_avatar.py"),
                    "--out", str(tmp_path)], check=True, timeout=120, capture_output=True)
    assert time.perf_counter() - started < 60
    for name in (*MOUTH_FILES, "blink.png"):
        assert (tmp_path / name).read_bytes() == (DEFAULT_AVATAR / name).read_bytes(), name
