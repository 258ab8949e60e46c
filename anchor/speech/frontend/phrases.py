"""pypinyin's phrase dictionary, handed to pypinyin a few phrases at a time: those the text being read has.

pypinyin reads its 47,000 phrases with one json.loads at import: 0.4 s of `anchor say`, and ~50 MB a daemon
would hold for good. Its own switch PYPINYIN_NO_PHRASES skips that. This module then looks phrases up in
the same file, memory-mapped: its keys are sorted (checked by tests/test_frontend.py for the pinned
pypinyin), so a binary search finds the first key at or after any text. Before pypinyin reads a run of
Chinese characters, `give_phrases_in(run)` adds to its dictionary every phrase that occurs in the run, and
to its segmenter every part of the run that begins a phrase.

That reads exactly as the whole dictionary would: pypinyin's segmenter (forward maximum matching) only
ever asks about pieces of the text it cuts, whether a piece is a phrase and whether it begins one, and
those answers are the whole dictionary's. Phrases given for other texts change nothing here, being the
dictionary's own.

Import this module before anything imports pypinyin: anchor.speech.frontend does.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import threading
from functools import cache
from importlib.resources import files
from pathlib import Path

# pypinyin's documented switches, read once as it is imported: no phrases of its own, no second copy of
# its dictionaries (copies exist only so callers may change them; the lexicon never does).
os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")

from pypinyin.constants import PHRASES_DICT  # after the switches above
from pypinyin.seg import mmseg

PHRASES_FILE = "phrases_dict.json"  # beside pypinyin's own modules
LONGEST_PHRASE = 16  # characters; pypinyin 0.55's longest has 10
# A key line of the file: `"银行": [` (the readings follow, one syllable a line).
_KEY = re.compile(rb'\n"((?:[^"\\\n]|\\.)*)": \[')


class PhraseFile:
    """pypinyin's phrases_dict.json, searched in place: nothing is parsed but the entries asked for."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as opened:
            self._data = mmap.mmap(opened.fileno(), 0, access=mmap.ACCESS_READ)

    def _key_from(self, position: int) -> re.Match[bytes] | None:
        return _KEY.search(self._data, max(position - 1, 0))

    def first_key_from(self, text: str) -> tuple[str, int] | None:
        """The first key at or after `text` in sorted order (UTF-8 bytes sort as code points), and where
        its entry starts; None past the last key."""
        wanted = text.encode()
        low, high = 0, len(self._data)
        while low < high:  # the first position whose next key is ≥ wanted
            middle = (low + high) // 2
            found = self._key_from(middle)
            if found is None or found.group(1) >= wanted:
                high = middle
            else:
                low = found.start() + 2  # past this key's line start: its key is < wanted
        found = self._key_from(low)
        if found is None:
            return None
        return _unquote(found.group(1)), found.end()

    def readings(self, entry: int) -> list[list[str]]:
        """The readings of the entry whose value starts at `entry` (from first_key_from)."""
        following = _KEY.search(self._data, entry)
        end = following.start() if following is not None else self._data.rfind(b"}")
        value = self._data[entry - 1:end].rstrip().rstrip(b",")
        readings: list[list[str]] = json.loads(value)
        return readings

    def lookup(self, piece: str) -> tuple[bool, list[list[str]] | None]:
        """(whether some phrase begins with `piece`, the readings of `piece` if it is a phrase)."""
        found = self.first_key_from(piece)
        if found is None or not found[0].startswith(piece):
            return False, None
        key, entry = found
        return True, self.readings(entry) if key == piece else None


def _unquote(key: bytes) -> str:
    return str(json.loads(b'"' + key + b'"')) if b"\\" in key else key.decode()


@cache
def phrase_file() -> PhraseFile:
    return PhraseFile(Path(str(files("pypinyin") / PHRASES_FILE)))


_beginnings: set[str] = set()  # pieces already known to begin a phrase (and given to the segmenter)
_giving = threading.Lock()  # renders read in threads: one at a time grows pypinyin's dictionary


def give_phrases_in(run: str) -> None:
    """Give pypinyin every phrase in `run` (Chinese characters) and every piece of it that begins one."""
    with _giving:
        phrases: dict[str, list[list[str]]] = {}
        beginnings: list[str] = []
        for start in range(len(run)):
            for end in range(start + 1, min(len(run), start + LONGEST_PHRASE) + 1):
                piece = run[start:end]
                if piece in _beginnings:
                    continue
                begins, readings = phrase_file().lookup(piece)
                if not begins:
                    break  # nothing longer from here begins a phrase either
                beginnings.append(piece)
                if readings is not None:
                    phrases[piece] = readings
        if beginnings:
            PHRASES_DICT.update(phrases)
            mmseg.seg.train(iter(beginnings))  # pypinyin's public way to teach its segmenter (it keeps prefixes)
            _beginnings.update(beginnings)
