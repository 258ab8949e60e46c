"""lexicon.toml: an institution's own words, each with its pinyin or with what to say instead.

    [words]
    "重庆" = { pinyin = "chong2 qing4" }   # read these syllables for the word as written
    "CT" = { say = "西提" }                 # say this instead of what is written

Entries are applied before the built-in rules, longest word first. Every error is a Problem that names the
file, the line and what to write instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pypinyin.contrib.tone_convert import to_normal, to_tone3
from pypinyin.pinyin_dict import pinyin_dict

from anchor.problems import InputError, Problem
from anchor.tomlsource import TomlSource, read_text

TABLE = "words"
EXAMPLE = '"重庆" = { pinyin = "chong2 qing4" }  or  "CT" = { say = "西提" }'
_SYLLABLE = re.compile(r"^([a-zêü:]+)([1-5])$")
_HANZI = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")


@cache
def pinyin_syllables() -> frozenset[str]:
    """Every toneless syllable pypinyin knows a character for (ü written v): the set espeak's pinyin voice reads."""
    found: set[str] = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            found.add(to_normal(reading, v_to_u=False))
    return frozenset(found)


def parse_syllable(written: str) -> str | None:
    """One syllable as tone-numbered pinyin with ü as v (`lv4`), or None if it is not one.

    Accepts tone digits (yin2), tone marks (yín) and ü spelled ü, v or u:."""
    text = written.strip().lower().replace("u:", "v").replace("ü", "v")
    if not text.isascii():  # tone marks → digits; a bare ASCII syllable has no tone and stays an error
        text = to_tone3(text, neutral_tone_with_five=True, v_to_u=False)
    match = _SYLLABLE.match(text)
    if not match or match.group(1) not in pinyin_syllables():
        return None
    return text


@dataclass(frozen=True)
class LexiconEntry:
    """One word: either the syllables to read for it, or the text to say in its place."""

    word: str
    pinyin: tuple[str, ...] | None = None
    say: str | None = None
    line: int | None = None


class Lexicon:
    """Words matched leftmost-longest in a text; Latin and digit edges only match whole tokens (CT, not PCT)."""

    def __init__(self, entries: Iterable[LexiconEntry], source: Path | None = None) -> None:
        self.source = source
        self.entries: dict[str, LexiconEntry] = {e.word: e for e in entries}
        words = sorted(self.entries, key=len, reverse=True)
        self._pattern = re.compile("|".join(_guarded(w) for w in words)) if words else None

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, text: str) -> Iterator[tuple[int, int, LexiconEntry]]:
        """(start, end, entry) of each word found, left to right, never overlapping."""
        if self._pattern is None:
            return
        for match in self._pattern.finditer(text):
            yield match.start(), match.end(), self.entries[match.group(0)]

    @property
    def fingerprint(self) -> str:
        """Hash of every entry: part of a rendered program's cache key, since the lexicon shapes its speech."""
        shape = "\n".join(f"{e.word}\t{' '.join(e.pinyin or ())}\t{e.say or ''}"
                          for e in sorted(self.entries.values(), key=lambda e: e.word))
        return hashlib.sha256(shape.encode()).hexdigest()


def _guarded(word: str) -> str:
    """The word as a regex that will not match inside a longer Latin word or number."""
    def edge(ch: str) -> str:
        return "A-Za-z" if ch.isascii() and ch.isalpha() else "0-9" if ch.isascii() and ch.isdigit() else ""
    before, after = edge(word[0]), edge(word[-1])
    return ((f"(?<![{before}])" if before else "") + re.escape(word) + (f"(?![{after}])" if after else ""))


def _entry(source: TomlSource, word: str, value: Any) -> tuple[LexiconEntry | None, list[Problem]]:
    where = (TABLE, word)
    line = source.line_of(where)
    if not word.strip():
        return None, [source.problem(where, "a word is empty", f"write the word between the quotes: {EXAMPLE}")]
    if not isinstance(value, dict):
        return None, [source.problem(where, f"'{word}' needs a table with pinyin or say",
                                     f'write "{word}" = {{ pinyin = "…" }} or "{word}" = {{ say = "…" }}')]
    problems = [source.problem((*where, key), f"unknown key '{key}'", "allowed keys here: pinyin, say")
                for key in value if key not in ("pinyin", "say")]
    pinyin, say = value.get("pinyin"), value.get("say")
    if (pinyin is None) == (say is None):
        problems.append(source.problem(where, f"'{word}' needs exactly one of pinyin or say",
                                       "pinyin reads the written word with these syllables; say replaces it"))
        return None, problems
    if say is not None:
        if not isinstance(say, str) or not say.strip():
            problems.append(source.problem((*where, "say"), "say must be the text to speak",
                                           f'write say = "…" in Chinese, e.g. {EXAMPLE}'))
        return (None if problems else LexiconEntry(word, say=say.strip(), line=line)), problems
    if not isinstance(pinyin, str) or not pinyin.split():
        problems.append(source.problem((*where, "pinyin"), "pinyin must be a string of syllables",
                                       'write pinyin = "chong2 qing4"'))
        return None, problems
    syllables: list[str] = []
    for written in pinyin.split():
        parsed = parse_syllable(written)
        if parsed is None:
            toneless = written.rstrip("012345")
            hint = (f"add its tone: {toneless}1 … {toneless}4, or {toneless}5 for the neutral tone"
                    if written == toneless and parse_syllable(written + "1") else
                    "write syllables with a tone digit, such as yin2 hang2 (ü as v: lv4)")
            problems.append(source.problem((*where, "pinyin"), f"'{written}' is not a pinyin syllable", hint))
        else:
            syllables.append(parsed)
    if not problems and _HANZI.match(word) and len(syllables) != len(word):
        characters = f"{len(word)} character" + ("s" if len(word) > 1 else "")
        problems.append(source.problem((*where, "pinyin"), f"'{word}' has {characters} but {len(syllables)} syllables",
                                       "give one syllable per character"))
    return (None if problems else LexiconEntry(word, pinyin=tuple(syllables), line=line)), problems


def load_lexicon(path: Path) -> Lexicon:
    """Read lexicon.toml; raises InputError listing every problem, each with its line."""
    source = TomlSource(path, read_text(path))
    problems = [source.problem((key,), f"unknown table '{key}'", f"put every entry under [{TABLE}]: {EXAMPLE}")
                for key in source.data if key != TABLE]
    table = source.data.get(TABLE, {})
    if not isinstance(table, dict):
        raise InputError([source.problem((TABLE,), f"{TABLE} must be a table", f"write [{TABLE}] then {EXAMPLE}")])
    entries: list[LexiconEntry] = []
    for word, value in table.items():
        entry, found = _entry(source, word, value)
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise InputError(problems)
    return Lexicon(entries, source=path)
