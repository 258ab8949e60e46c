"""Draw the default avatar: a flat-style presenter bust in four PNGs, with numpy only.

    python tools/draw_default_avatar.py [--out anchor/avatar/default]

Writes mouth_closed.png, mouth_half.png, mouth_open.png (the whole bust, eyes open, on a transparent
background so the channel's background colour shows around it) and blink.png (transparent except the
closed eyelids). Shapes are signed distance fields (negative inside), painted with one pixel of
anti-aliasing; the PNG encoder is zlib + struct, so nothing beyond numpy is needed. The output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

SIZE = 480
OUT = Path(__file__).resolve().parent.parent / "anchor" / "avatar" / "default"

Y, X = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5  # pixel centres

# -- palette --------------------------------------------------------------------------------------------


def rgb(hex_colour: str) -> tuple[float, float, float]:
    value = int(hex_colour.lstrip("#"), 16)
    return ((value >> 16) & 255) / 255, ((value >> 8) & 255) / 255, (value & 255) / 255


SKIN = rgb("#f2c4a0")
SKIN_SHADE = rgb("#e2a883")
LID = rgb("#eab592")
BLUSH = rgb("#f08a7e")
HAIR = rgb("#3b2a26")
HAIR_LIGHT = rgb("#5a423a")
JACKET = rgb("#55657d")
JACKET_SHADE = rgb("#46546a")
SHIRT = rgb("#f4efe6")
INK = rgb("#2b1d1a")
WHITE = rgb("#ffffff")
IRIS = rgb("#5b3a29")
LIP = rgb("#c2575a")
MOUTH = rgb("#6e1f2a")
TONGUE = rgb("#e0737a")
TEETH = rgb("#fbf7f2")

# -- signed distance fields -----------------------------------------------------------------------------


def circle(cx: float, cy: float, r: float) -> np.ndarray:
    return np.hypot(X - cx, Y - cy) - r


def ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    # A first-order distance (value over gradient length): exact on the outline, which is all AA needs.
    px, py = (X - cx) / rx, (Y - cy) / ry
    k0 = np.hypot(px, py)
    k1 = np.hypot(px / rx, py / ry)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def box(cx: float, cy: float, hw: float, hh: float, r: float = 0.0) -> np.ndarray:
    qx, qy = np.abs(X - cx) - hw + r, np.abs(Y - cy) - hh + r
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r


def polygon(points: list[tuple[float, float]]) -> np.ndarray:
    """A convex polygon, either winding: the largest distance to its edges' half-planes."""
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
    turn = 1.0 if area > 0 else -1.0  # makes each edge normal point outwards
    d = np.full(X.shape, -np.inf)
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        nx, ny = turn * (y1 - y0), -turn * (x1 - x0)
        length = np.hypot(nx, ny)
        d = np.maximum(d, ((X - x0) * nx + (Y - y0) * ny) / length)
    return d


def stroke(points: list[tuple[float, float]], width: float) -> np.ndarray:
    """A round-capped polyline of the given width."""
    d = np.full(X.shape, np.inf)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((X - x0) * dx + (Y - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        d = np.minimum(d, np.hypot(X - x0 - t * dx, Y - y0 - t * dy))
    return d - width / 2


def curve(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float],
          steps: int = 24) -> list[tuple[float, float]]:
    """A quadratic Bézier through p0 and p2, pulled towards p1, as a polyline."""
    t = np.linspace(0, 1, steps)[:, None]
    a, b, c = (np.array(p) for p in (p0, p1, p2))
    pts = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c
    return [(float(x), float(y)) for x, y in pts]


def union(*ds: np.ndarray) -> np.ndarray:
    return np.minimum.reduce(ds)


def intersect(*ds: np.ndarray) -> np.ndarray:
    return np.maximum.reduce(ds)


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(a, -b)


def below(y: float) -> np.ndarray:
    return y - Y


def above(y: float) -> np.ndarray:
    return Y - y


# -- painting -------------------------------------------------------------------------------------------


class Canvas:
    """Premultiplied RGBA in floats; shapes are painted over with `over` compositing."""

    def __init__(self) -> None:
        self.px = np.zeros((SIZE, SIZE, 4))

    def paint(self, d: np.ndarray, colour: tuple[float, float, float], alpha: float = 1.0) -> None:
        cover = (np.clip(0.5 - d, 0.0, 1.0) * alpha)[..., None]
        self.px = np.concatenate([np.array(colour) * cover, cover], axis=2) + self.px * (1 - cover)

    def copy(self) -> "Canvas":
        other = Canvas()
        other.px = self.px.copy()
        return other

    def rgba(self) -> np.ndarray:
        alpha = self.px[..., 3:4]
        straight = np.where(alpha > 0, self.px[..., :3] / np.maximum(alpha, 1e-9), 0.0)
        out = np.concatenate([straight, alpha], axis=2)
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def write_png(path: Path, rgba: np.ndarray) -> None:
    """8-bit RGBA PNG: signature, IHDR, one IDAT (every row with filter 0), IEND."""
    height, width, _ = rgba.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgba.reshape(height, width * 4)], axis=1)
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
           + chunk(b"IEND", b""))
    path.write_bytes(png)


# -- the presenter --------------------------------------------------------------------------------------

EYES = ((204.0, 204.0), (276.0, 204.0))
EYE_RX, EYE_RY = 16.0, 11.0
MOUTH_AT = (240.0, 268.0)


def bust(c: Canvas) -> None:
    """Everything but the eyes and mouth."""
    # Hair behind the head: a rounded bob down to the jaw.
    back_hair = union(ellipse(240, 180, 114, 122), box(240, 258, 110, 52, 46))
    c.paint(back_hair, HAIR)
    # Neck, with the jaw's shadow on it.
    neck = box(240, 316, 33, 56, 14)
    c.paint(neck, SKIN)
    c.paint(intersect(neck, ellipse(240, 286, 46, 28)), SKIN_SHADE)
    # Shoulders: a slate jacket over a cream blouse with a V neckline (white subtitles stay readable on it).
    shoulders = ellipse(240, 512, 232, 168)
    c.paint(shoulders, JACKET)
    c.paint(intersect(shoulders, polygon([(198, 340), (282, 340), (240, 438)])), SHIRT)
    c.paint(intersect(neck, polygon([(207, 336), (273, 336), (240, 390)])), SKIN)
    # Lapels: the jacket folds back along the neckline.
    for side in (-1, 1):
        c.paint(intersect(shoulders, polygon([(240 - side * 47, 342), (240 - side * 33, 338), (240, 456),
                                              (240 - side * 4, 480)])), JACKET_SHADE)
        c.paint(stroke([(240 + side * 98, 430), (240 + side * 92, 480)], 3), JACKET_SHADE)
    # Face.
    head = union(ellipse(240, 194, 84, 102), ellipse(240, 228, 68, 70))
    c.paint(head, SKIN)
    for side in (-1, 1):  # ears peek out of the bob
        c.paint(ellipse(240 + side * 82, 212, 11, 18), SKIN_SHADE)
    # Fringe: a cap of hair with a face-shaped window cut off-centre, for a side parting.
    cap = ellipse(240, 172, 102, 100)
    fringe = subtract(cap, union(ellipse(258, 250, 88, 114), ellipse(222, 262, 84, 112)))
    fringe = intersect(fringe, above(250))
    c.paint(fringe, HAIR)
    # Two soft highlights, kept inside the fringe.
    c.paint(intersect(stroke(curve((206, 86), (232, 104), (248, 132)), 4), fringe + 4), HAIR_LIGHT, 0.9)
    c.paint(intersect(stroke(curve((176, 104), (188, 124), (186, 150)), 4), fringe + 4), HAIR_LIGHT, 0.6)
    # Eyebrows, nose, cheeks.
    for (ex, ey), side in zip(EYES, (-1, 1)):
        c.paint(stroke(curve((ex - 18 * side, ey - 20), (ex - 2 * side, ey - 30), (ex + 17 * side, ey - 24)), 5.5),
                HAIR)
        c.paint(circle(ex + side * 6, ey + 36, 15), BLUSH, 0.22)
    c.paint(stroke(curve((236, 222), (244, 238), (235, 244)), 3.5), SKIN_SHADE)


def eyes_open(c: Canvas) -> None:
    for ex, ey in EYES:
        white = ellipse(ex, ey, EYE_RX, EYE_RY)
        c.paint(white, WHITE)
        c.paint(intersect(white, circle(ex, ey + 1, 9.5)), IRIS)
        c.paint(intersect(white, circle(ex, ey + 1, 4.8)), INK)
        c.paint(circle(ex + 3.5, ey - 3, 2.6), WHITE)
        # The upper lash line.
        lashes = curve((ex - EYE_RX - 1, ey + 1), (ex, ey - 2 * EYE_RY - 2), (ex + EYE_RX + 1, ey + 1))
        c.paint(stroke(lashes, 3.2), INK)


def blink(c: Canvas) -> None:
    """Closed lids: skin over the whole eye (and its open lash line), a downward-curved lash line."""
    for ex, ey in EYES:
        c.paint(ellipse(ex, ey - 1, EYE_RX + 4, EYE_RY + 5), LID)
        c.paint(stroke(curve((ex - EYE_RX - 1, ey + 1), (ex, ey + 9), (ex + EYE_RX + 1, ey + 1)), 3.2), INK)


def mouth_closed(c: Canvas) -> None:
    mx, my = MOUTH_AT
    c.paint(stroke(curve((mx - 23, my - 4), (mx, my + 10), (mx + 23, my - 4)), 4.0), LIP)


def _open_mouth(c: Canvas, rx: float, ry: float, teeth: float, tongue: bool) -> None:
    mx, my = MOUTH_AT
    # A "D": a shallow smile curve on top, a round bottom that drops further the wider it opens.
    top_edge = my - 6 + 5 * (1 - ((X - mx) / rx) ** 2)
    lips = intersect(ellipse(mx, my - 4, rx, 2 * ry), top_edge - 2 - Y)
    c.paint(lips, LIP)
    cavity = lips + 2.5  # the lips are a 2.5 px rim around it
    c.paint(cavity, MOUTH)
    c.paint(intersect(cavity, Y - (top_edge + teeth)), TEETH)
    if tongue:
        c.paint(intersect(cavity, ellipse(mx, my - 4 + 2 * ry, rx * 0.62, ry * 0.8)), TONGUE)


def mouth_half(c: Canvas) -> None:
    _open_mouth(c, rx=23, ry=7, teeth=5, tongue=False)


def mouth_open(c: Canvas) -> None:
    _open_mouth(c, rx=25, ry=13, teeth=6, tongue=True)


def draw(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    face = Canvas()
    bust(face)
    eyes_open(face)
    written = []
    mouths: dict[str, Callable[[Canvas], None]] = {
        "mouth_closed.png": mouth_closed, "mouth_half.png": mouth_half, "mouth_open.png": mouth_open}
    for name, mouth in mouths.items():
        frame = face.copy()
        mouth(frame)
        write_png(out / name, frame.rgba())
        written.append(out / name)
    lids = Canvas()
    blink(lids)
    write_png(out / "blink.png", lids.rgba())
    written.append(out / "blink.png")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for path in draw(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
