"""Is a font installed? fontconfig substitutes a missing font silently, and Chinese then airs as empty boxes."""

from __future__ import annotations

import logging
import re

from anchor.process import ProgramMissing, ProgramTimeout, run_program

log = logging.getLogger(__name__)

FC_LIST_TIMEOUT = 30.0
_fonts_ok: set[str] = set()


class FontMissing(Exception):
    pass


def fontconfig_escape(name: str) -> str:
    """A family name as a fontconfig pattern (where '-' starts a size and ':' an element)."""
    return re.sub(r"([\\\-:,])", r"\\\1", name)


async def check_font(font: str) -> None:
    """Raises FontMissing unless fontconfig knows the family `font`; remembered once found."""
    if font in _fonts_ok:
        return
    try:
        code = (await run_program(["fc-list", "-q", fontconfig_escape(font)], timeout=FC_LIST_TIMEOUT)).returncode
    except ProgramMissing:
        log.warning("fc-list is missing (apt-get install fontconfig): cannot check the font '%s'", font)
        _fonts_ok.add(font)
        return
    except ProgramTimeout:
        raise FontMissing(f"font '{font}' could not be checked: fc-list did not answer") from None
    if code != 0:
        raise FontMissing(f"font '{font}' is not installed (for the default: apt-get install fonts-wqy-microhei; "
                          "`fc-list :lang=zh family` lists Chinese fonts)")
    _fonts_ok.add(font)


def font_installed(font: str) -> bool:
    """The blocking check, for `anchor check` and the daemon's start (in a thread). True when it cannot tell."""
    import subprocess

    try:
        return subprocess.run(["fc-list", "-q", fontconfig_escape(font)], capture_output=True,
                              timeout=FC_LIST_TIMEOUT).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return True
