"""Pieces every video renderer shares: burned-in subtitle styling, the font check, durable writes."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

from anchor.speech.sentences import width as text_width

log = logging.getLogger(__name__)

# ffmpeg turns SRT into ASS with PlayResY 288: FontSize and MarginV are in those units, scaled to the frame.
ASS_PLAY_RES_Y = 288
# A CJK character's advance per ASS FontSize unit (measured for WenQuanYi Micro Hei; CJK fonts are alike).
ASS_EM_PER_SIZE = 0.85

_fonts_ok: set[str] = set()


class FontMissing(Exception):
    pass


def fontconfig_escape(name: str) -> str:
    """A family name as a fontconfig pattern (where '-' starts a size and ':' an element)."""
    return re.sub(r"([\\\-:,])", r"\\\1", name)


def srt_lines(path: Path) -> list[str]:
    """The text lines of an SRT file (no counters, no timings)."""
    lines = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        rows = block.strip().splitlines()
        if len(rows) >= 3 and "-->" in rows[1]:
            lines.extend(r for r in rows[2:] if r.strip())
    return lines


def subtitle_style(srt: Path, width: int, height: int, font: str) -> str | None:
    """ASS overrides for burning `srt` in: the font, a size for the frame, a bottom margin; None if empty.

    Characters are ~6% of the frame height, smaller if the widest line would not fit 90% of the width
    (a portrait frame); the ASS units are converted back from pixels.
    """
    lines = srt_lines(srt) if srt.is_file() else []
    if not lines:
        return None
    widest = max(text_width(t) for t in lines)
    char_px = min(0.06 * height, 0.9 * width / max(widest, 1.0))
    size = max(4.0, char_px / ASS_EM_PER_SIZE / (height / ASS_PLAY_RES_Y))
    margin = round(0.06 * ASS_PLAY_RES_Y)
    return (f"FontName={font},FontSize={size:.1f},MarginV={margin},PrimaryColour=&H00FFFFFF,"
            "OutlineColour=&H80000000,BorderStyle=1,Outline=1.2,Shadow=0")


async def check_font(font: str) -> None:
    """fontconfig substitutes a missing font silently, and Chinese then airs as empty boxes."""
    if font in _fonts_ok:
        return
    try:
        proc = await asyncio.create_subprocess_exec(
            "fc-list", "-q", fontconfig_escape(font),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    except FileNotFoundError:
        log.warning("fc-list is missing (apt-get install fontconfig): cannot check the font '%s'", font)
        _fonts_ok.add(font)
        return
    try:
        code = await asyncio.wait_for(proc.wait(), 30)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if code != 0:
        raise FontMissing(f"font '{font}' is not installed (for the default: apt-get install fonts-wqy-microhei; "
                          "`fc-list :lang=zh family` lists Chinese fonts)")
    _fonts_ok.add(font)


def touch(path: Path) -> None:
    """Mark a cached file as just used, so retention sweeps keep it."""
    try:
        os.utime(path)
    except OSError:
        pass


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
