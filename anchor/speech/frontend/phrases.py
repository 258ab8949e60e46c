"""pypinyin's phrase dictionary, loaded so that a daemon airing for months holds it in ~20 MB, not ~45.

pypinyin reads its 47,000 phrases with one json.loads: about 600,000 small lists and strings (the same
few hundred syllables again and again) that stay in the daemon for good, and whose parse leaves the heap
too fragmented to give memory back. Its own switch PYPINYIN_NO_PHRASES skips that; this module then reads
the same file entry by entry, every reading shared (pypinyin deep-copies an entry before using it, so
sharing is safe), and hands it over with pypinyin's own load_phrases_dict, which also trains its
segmenter. Measured: RSS +53 MB as pypinyin loads itself, +32 MB this way (pypinyin 0.55.0, pinned).

Import this module before anything imports pypinyin: anchor.speech.frontend does.
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.resources import files

# pypinyin's documented switches, read once as it is imported: no phrases of its own, no second copy of
# its dictionaries (copies exist only so callers may change them; the lexicon never does).
os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")

import pypinyin  # after the switches above

PHRASES_FILE = "phrases_dict.json"  # beside pypinyin's own modules
_ENTRY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*\[((?:\s*\[[^\]]*\]\s*,?)*)\s*\]')
_READING = re.compile(r"\[([^\]]*)\]")
_SYLLABLE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _text(quoted: str) -> str:
    return json.loads(f'"{quoted}"') if "\\" in quoted else quoted


def load_phrases() -> int:
    """Load pypinyin's phrases compactly, unless it already has them; returns how many it has."""
    known = pypinyin.constants.PHRASES_DICT
    if known:
        return len(known)
    shared: dict[tuple[str, ...], list[str]] = {}
    compact: dict[str, list[list[str]]] = {}
    text = (files("pypinyin") / PHRASES_FILE).read_text(encoding="utf-8")
    for entry in _ENTRY.finditer(text):
        readings = []
        for reading in _READING.finditer(entry.group(2)):
            syllables = tuple(sys.intern(_text(s)) for s in _SYLLABLE.findall(reading.group(1)))
            readings.append(shared.setdefault(syllables, list(syllables)))
        compact[_text(entry.group(1))] = readings
    pypinyin.load_phrases_dict(compact)
    return len(known)


PHRASE_COUNT = load_phrases()
