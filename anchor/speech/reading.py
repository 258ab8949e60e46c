"""What an engine is given to say for a piece of written text.

Mandarin goes through the Chinese front end (anchor.speech.frontend): numbers, units and codes said in
words, and tone-numbered pinyin for espeak-ng's pinyin voice, with the institution's lexicon.toml applied
first. Other languages are said as written. Subtitles always show the written text.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from anchor.problems import InputError

if TYPE_CHECKING:
    from anchor.speech.frontend.lexicon import Lexicon

log = logging.getLogger(__name__)

# Bump when a change to the front end's rules changes what is said: Programs rendered before re-render.
FRONT_END_VERSION = 1
_CANTONESE_REGIONS = {"hk", "mo"}


@dataclass(frozen=True)
class SpeechText:
    written: str  # as the script has it: what subtitles show
    said: str  # in words: numbers, units and codes spelled out
    pinyin: str  # tone-numbered syllables and pause marks, for espeak-ng -v cmn-latn-pinyin

    @classmethod
    def as_written(cls, text: str) -> SpeechText:
        return cls(text, text, text)


def speaks_mandarin(language: str) -> bool:
    """zh, zh-CN, zh-TW, cmn…: the front end's rules are Mandarin's (zh-HK and yue are Cantonese)."""
    parts = language.lower().replace("_", "-").split("-")
    return parts[0] == "cmn" or (parts[0] == "zh" and not _CANTONESE_REGIONS & set(parts[1:]))


class LexiconFile:
    """lexicon.toml as this process last read it. Its digest keys rendered Programs without parsing it (a
    cached Program must come back in milliseconds; parsing loads pypinyin's dictionaries). When the file has
    errors, speech keeps the readings of its last good version and the errors are logged once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stat: tuple[int, int] | None = None
        self._digest = ""
        self._parsed_digest: str | None = None
        self._lexicon: Lexicon | None = None

    def digest(self) -> str:
        """sha256 of the file as it is now; "" when there is none."""
        try:
            info = self.path.stat()
        except OSError:
            self._stat, self._digest = None, ""
            return ""
        if (info.st_mtime_ns, info.st_size) != self._stat:
            try:
                self._digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
            except OSError:
                return self._digest
            self._stat = (info.st_mtime_ns, info.st_size)
        return self._digest

    def lexicon(self) -> Lexicon | None:
        """The entries to apply: the file's, or its last good version's while it has errors. Blocking."""
        digest = self.digest()
        if digest == self._parsed_digest:
            return self._lexicon
        self._parsed_digest = digest
        if not digest:
            self._lexicon = None
            return None
        from anchor.speech.frontend.lexicon import load_lexicon

        try:
            self._lexicon = load_lexicon(self.path)
        except InputError as exc:
            kept = "its last good version" if self._lexicon is not None else "no lexicon"
            log.warning("%s has errors; speech uses %s until they are fixed (`anchor check` lists them): %s",
                        self.path, kept, "; ".join(str(p) for p in exc.problems))
        return self._lexicon


@cache
def lexicon_file(path: Path) -> LexiconFile:
    """One LexiconFile per path for the process: the daemon and every render share what was read."""
    return LexiconFile(path)


class Reading:
    """The front end for a language: `key` says what shapes speech (for the Program cache), `of` reads a text."""

    def __init__(self, language: str, lexicon: LexiconFile) -> None:
        self.mandarin = speaks_mandarin(language)
        self.lexicon = lexicon

    @property
    def key(self) -> str | None:
        return f"{FRONT_END_VERSION}:{self.lexicon.digest()}" if self.mandarin else None

    def of(self, texts: list[str]) -> list[SpeechText]:
        """Every text as it is to be said. Blocking (the first call loads pypinyin): run it in a thread."""
        if not self.mandarin:
            return [SpeechText.as_written(t) for t in texts]
        from anchor.speech.frontend import front_end

        lexicon = self.lexicon.lexicon()
        return [front_end(t, lexicon) for t in texts]
