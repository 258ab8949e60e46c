"""An Avatar: a folder of equal-sized PNG frames that a talking clip is cut from.

    mouth_closed.png  mouth_half.png  mouth_open.png   the face, eyes open, mouth in three positions
    blink.png                                          RGBA overlay: transparent except the closed eyelids
    idle.mp4 (optional)                                an idle loop OBS shows between programs

load_avatar() reads only the PNG headers, so checking a channel's avatar costs no decoding.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from anchor.problems import InputError, Problem

MOUTH_FILES = ("mouth_closed.png", "mouth_half.png", "mouth_open.png")  # index = mouth state 0, 1, 2
BLINK_FILE = "blink.png"
IDLE_FILE = "idle.mp4"
WHAT_EACH_IS = {
    "mouth_closed.png": "the face with eyes open and the mouth closed",
    "mouth_half.png": "the face with eyes open and the mouth half open",
    "mouth_open.png": "the face with eyes open and the mouth wide open",
    "blink.png": "an RGBA overlay, transparent except the closed eyes",
}
DEFAULT_AVATAR = Path(__file__).resolve().parent / "default"
MIN_SIDE, MAX_SIDE = 32, 4096
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALPHA_COLOUR_TYPES = (4, 6)  # grey + alpha, RGBA (palette or RGB images need a tRNS chunk)


@dataclass(frozen=True)
class Avatar:
    folder: Path
    mouths: tuple[Path, Path, Path]  # closed, half, open
    blink: Path
    idle: Path | None
    width: int
    height: int

    @cached_property
    def digest(self) -> str:
        """sha256 of the frames' bytes: part of a clip's cache key (idle.mp4 does not shape clips). Read
        once per Avatar; the first read is blocking, so load avatars in a thread (ClipCache.avatar does)."""
        h = hashlib.sha256()
        for path in (*self.mouths, self.blink):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        return h.hexdigest()


@dataclass(frozen=True)
class _PngHeader:
    width: int
    height: int
    has_alpha: bool


class _NotPng(Exception):
    pass


def _read_png_header(path: Path) -> _PngHeader:
    """Size and transparency from IHDR and the chunk list up to the first IDAT."""
    with path.open("rb") as f:
        if f.read(8) != _SIGNATURE:
            raise _NotPng("it does not start with the PNG signature")
        has_trns = False
        header: tuple[int, int, int] | None = None
        while True:
            raw = f.read(8)
            if len(raw) < 8:
                raise _NotPng("it ends before its image data")
            length, kind = struct.unpack(">I4s", raw)
            if header is None:
                if kind != b"IHDR" or length != 13:
                    raise _NotPng("its first chunk is not IHDR")
                width, height, _depth, colour_type = struct.unpack(">IIBB", f.read(10))
                header = (width, height, colour_type)
                f.seek(length - 10 + 4, 1)  # rest of IHDR and its CRC
                continue
            if kind == b"tRNS":
                has_trns = True
            if kind == b"IDAT":
                break
            f.seek(length + 4, 1)
    width, height, colour_type = header
    return _PngHeader(width, height, colour_type in _ALPHA_COLOUR_TYPES or has_trns)


def load_avatar(folder: Path) -> Avatar:
    """Check an avatar folder and describe it. Raises InputError listing every problem, each naming its file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError([Problem(folder, None, "avatar folder not found",
                                  f"make a folder with {', '.join(MOUTH_FILES)} and {BLINK_FILE} "
                                  f"(all the same size), or use the default avatar at {DEFAULT_AVATAR}")])
    problems: list[Problem] = []
    headers: dict[str, _PngHeader] = {}
    for name in (*MOUTH_FILES, BLINK_FILE):
        path = folder / name
        if not path.is_file():
            problems.append(Problem(path, None, f"missing {name}", f"supply {name}: {WHAT_EACH_IS[name]}, "
                                                                  "the same size as the other frames"))
            continue
        try:
            headers[name] = _read_png_header(path)
        except _NotPng as exc:
            problems.append(Problem(path, None, f"{name} is not a PNG image ({exc})",
                                    f"save {WHAT_EACH_IS[name]} as PNG"))
        except OSError as exc:
            problems.append(Problem(path, None, f"cannot read {name}: {exc.strerror or exc}"))

    # The size every frame must have: mouth_closed's, else the first readable frame's.
    reference = next((n for n in (*MOUTH_FILES, BLINK_FILE) if n in headers), None)
    if reference is not None:
        size = (headers[reference].width, headers[reference].height)
        for name, header in headers.items():
            if (header.width, header.height) != size:
                problems.append(Problem(folder / name, None,
                                        f"{name} is {header.width}x{header.height} but {reference} is "
                                        f"{size[0]}x{size[1]}",
                                        f"all frames must be the same size: resize {name} to {size[0]}x{size[1]}"))
        if not (MIN_SIDE <= size[0] <= MAX_SIDE and MIN_SIDE <= size[1] <= MAX_SIDE):
            problems.append(Problem(folder / reference, None, f"{reference} is {size[0]}x{size[1]}",
                                    f"use frames between {MIN_SIDE} and {MAX_SIDE} pixels a side"))
    blink = headers.get(BLINK_FILE)
    if blink is not None and not blink.has_alpha:
        problems.append(Problem(folder / BLINK_FILE, None, f"{BLINK_FILE} has no transparency: it would cover the face",
                                "save it as RGBA, transparent everywhere except the closed eyelids"))

    idle = folder / IDLE_FILE
    if idle.exists() and not (idle.is_file() and idle.stat().st_size > 0):
        problems.append(Problem(idle, None, f"{IDLE_FILE} is empty or not a file",
                                "supply an idle loop video (mp4), or remove it"))
    if problems:
        raise InputError(problems)
    header = headers[MOUTH_FILES[0]]
    return Avatar(folder=folder, mouths=(folder / MOUTH_FILES[0], folder / MOUTH_FILES[1], folder / MOUTH_FILES[2]),
                  blink=folder / BLINK_FILE, idle=idle if idle.is_file() else None,
                  width=header.width, height=header.height)
