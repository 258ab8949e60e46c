"""Screening what goes on air: every hit of a listed word in a text, mapped back to where it is written.

Everything that will be heard or shown (script bodies, titles, subtitles, answers to viewers) goes through one
call, `Screen.screen(text)`, on a Screen built once from the word lists: the bundled list of health claims that
China's Advertising Law and the medical advertising rules forbid (forbidden_claims.txt beside this module,
which documents the list format and cites the articles) and the institution's own lists, screening/*.txt.

Matching survives the usual evasions because the text and the listed words are compared in one normalized
form, character by character: NFKC (full-width ＡＢＣ１２３ and Kangxi radical look-alikes become ABC123 and
ordinary characters), case folding, traditional → simplified characters (OpenCC t2s, per character), and
spaces, punctuation, symbols and invisible characters set aside (根 治, 根·治, 根-治, 根\u200b治 are 根治).
Each character folds on its own, so every normalized character comes from exactly one character of the
original, and a hit's line, column and text as written are read back through that offset map.

Only a blank line stops a match: it is a paragraph break, where speech pauses and no word runs across.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

# A C extension that ships no type stubs; the Protocol below types the part of it used here.
import ahocorasick
import opencc

from anchor.problems import InputError, Problem

BUNDLED_LIST = Path(__file__).with_name("forbidden_claims.txt")
LIST_GLOB = "*.txt"

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_CLAUSE_MARKS = frozenset("，。、；：！？,.;:!?…")
_OPENING_MARKS = frozenset("（(「『“‘\"'[【《〈")
_CLOSING_MARKS = frozenset("）)」』”’\"']】》〉")
_INLINE_MARKUP = " \t\u3000*_~`"  # emphasis around a word (**第一**，) does not hide a clause boundary
_BLOCK_MARKUP = re.compile(r"[\s#>*+\-]*(?:\d{1,3}[.)、]\s*)?")  # headings, quotes, list items at a line's start
_ANCHOR = "|｜"
_EXCEPTION = "!！"


class _Automaton(Protocol):
    def add_word(self, key: str, value: int, /) -> bool: ...
    def make_automaton(self) -> None: ...
    def iter(self, string: str, /) -> Iterator[tuple[int, int]]: ...


@dataclass(frozen=True)
class Listing:
    """One entry of a word list: a word to catch, or an exception that protects the listed words inside it."""

    word: str  # as written in the list, anchors included: "根治", "最好|", "|第一|"
    key: str  # its normalized form, which the automaton matches
    category: str
    list_file: Path
    line: int
    is_exception: bool = False
    at_clause_start: bool = False  # written with a leading |
    at_clause_end: bool = False  # written with a trailing |

    @property
    def anchored(self) -> bool:
        return self.at_clause_start or self.at_clause_end


@dataclass(frozen=True)
class Hit:
    """A listed word found in a screened text. Lines and columns are 1-based and count characters."""

    word: str  # the entry as listed
    category: str
    list_file: Path
    list_line: int
    text: str  # the span as written in the screened text: "根·治", "藥到病除"
    line: int
    column: int
    end_line: int  # of the span's last character
    end_column: int
    start: int  # 0-based character offsets into the screened text; text == screened[start:end]
    end: int

    def __str__(self) -> str:
        return (f"{self.line}:{self.column}: “{self.text}” is “{self.word}” "
                f"({self.category}, {self.list_file.name}:{self.list_line})")


@dataclass(frozen=True)
class _Key:
    """Everything listed under one normalized form: the automaton stores the key's index."""

    key: str
    words: tuple[Listing, ...]
    exceptions: tuple[Listing, ...]


def _is_set_aside(char: str) -> bool:
    """Punctuation, symbols, spaces, controls, invisible format characters and combining marks do not count."""
    category = unicodedata.category(char)
    return category[0] in "PSZC" or category in ("Mn", "Me")


class _FoldTable(dict[int, str]):
    """A str.translate table from a code point to its matching form, filled the first time a character is seen.

    translate() then runs in C for every character already met, which is nearly all of them after the first
    texts; folding per character (not per phrase) is what keeps the map back to the original exact.
    """

    def __init__(self, to_simplified: opencc.OpenCC) -> None:
        super().__init__()
        self._to_simplified = to_simplified

    def __missing__(self, code_point: int) -> str:
        pieces: list[str] = []
        for char in unicodedata.normalize("NFKC", chr(code_point)).casefold():
            if _is_set_aside(char):
                continue
            if char.isascii():
                pieces.append(char)
            else:
                simplified: str = self._to_simplified.convert(char)
                pieces.append(simplified)
        folded = "".join(pieces)
        self[code_point] = folded
        return folded


@cache
def _fold_table() -> _FoldTable:
    # One table for the process: OpenCC's dictionaries load once, and every Screen shares the folded characters.
    return _FoldTable(opencc.OpenCC("t2s"))


def fold(text: str) -> str:
    """The normalized form that matching compares: what a listed word and a screened text are reduced to."""
    return text.translate(_fold_table())


def normalize(text: str) -> tuple[str, list[int]]:
    """The normalized form and, for each of its characters, the offset of the original character it came from."""
    table = _fold_table()
    origins: list[int] = []
    for offset, char in enumerate(text):
        piece = table[ord(char)]
        if len(piece) == 1:
            origins.append(offset)
        elif piece:  # NFKC expands a few characters (½ → 12, ß → ss): each piece points at its source
            origins.extend([offset] * len(piece))
    return text.translate(table), origins


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _starts_clause(text: str, offset: int) -> bool:
    """Does a clause start at `offset`: at a line's start (after Markdown markers) or after ，。( and the like?"""
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset].rstrip(_INLINE_MARKUP)
    return _BLOCK_MARKUP.fullmatch(before) is not None or before[-1] in _CLAUSE_MARKS or before[-1] in _OPENING_MARKS


def _ends_clause(text: str, offset: int) -> bool:
    """Does a clause end at `offset` (exclusive): at a line's end or before ，。) and the like?"""
    line_end = text.find("\n", offset)
    after = text[offset : len(text) if line_end < 0 else line_end].lstrip(_INLINE_MARKUP + "\r")
    return not after or after[0] in _CLAUSE_MARKS or after[0] in _CLOSING_MARKS


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for blank_line in _PARAGRAPH_BREAK.finditer(text):
        yield start, blank_line.start()
        start = blank_line.end()
    yield start, len(text)


def _read_list_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError([Problem(path, None, f"cannot read the word list: {exc.strerror or exc}",
                                  "check that it is a readable file")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError([Problem(path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                                  "save the word list as UTF-8")]) from None


def read_list(path: Path) -> list[Listing]:
    """Read one word list (format: see forbidden_claims.txt); raises InputError naming file and line."""
    text = _read_list_text(path)
    category = path.stem
    listings: list[Listing] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry.startswith("[") and entry.endswith("]"):
            category = entry[1:-1].strip()
            if not category:
                problems.append(Problem(path, number, "a category needs a name", "write it as [name]"))
            continue
        is_exception = entry[0] in _EXCEPTION
        body = entry[1:].strip() if is_exception else entry
        core = body.strip(_ANCHOR).strip()
        key = fold(core)
        if not key:
            problems.append(Problem(
                path, number, f"“{entry}” has nothing to match once spaces, punctuation and symbols are set aside",
                "write the word itself: inserted spaces and punctuation are ignored when matching anyway"))
            continue
        listings.append(Listing(
            word=body, key=key, category=category, list_file=path, line=number, is_exception=is_exception,
            at_clause_start=body[0] in _ANCHOR, at_clause_end=body[-1] in _ANCHOR))
    if problems:
        raise InputError(problems)
    return listings


def list_files(lists_dir: Path | None) -> list[Path]:
    """An institution's word lists: lists_dir/*.txt, in name order; none when the folder does not exist."""
    if lists_dir is None or not lists_dir.is_dir():
        return []
    return sorted(lists_dir.glob(LIST_GLOB))


def _protects_a_word(exception: Listing, word_keys: set[str]) -> bool:
    """Is some listed word inside the exception (shorter than it, unless the exception is anchored)?"""
    key = exception.key
    longest = len(key) if exception.anchored else len(key) - 1
    return any(key[i : i + size] in word_keys
               for size in range(1, longest + 1) for i in range(len(key) - size + 1))


class Screen:
    """The automaton over every listed word, built once; `screen()` is the one check before anything airs."""

    def __init__(self, listings: Iterable[Listing]) -> None:
        by_key: dict[str, tuple[list[Listing], list[Listing]]] = {}
        seen: set[tuple[str, Path, str, bool, bool, bool]] = set()
        kept: list[Listing] = []
        for listing in listings:
            identity = (listing.key, listing.list_file, listing.category, listing.is_exception,
                        listing.at_clause_start, listing.at_clause_end)
            if identity in seen:  # the same word twice in one list and category is one reason, not two
                continue
            seen.add(identity)
            kept.append(listing)
            words, exceptions = by_key.setdefault(listing.key, ([], []))
            (exceptions if listing.is_exception else words).append(listing)
        word_keys = {key for key, (words, _) in by_key.items() if words}
        problems = [
            Problem(listing.list_file, listing.line, f"the exception “!{listing.word}” protects no listed word",
                    "an exception is a longer phrase around a listed word (!第一次 around 第一), or one "
                    "anchored with | (!|第一|); to stop screening a word, remove it from its list")
            for listing in kept if listing.is_exception and not _protects_a_word(listing, word_keys)
        ]
        if problems:
            raise InputError(problems)
        self.listings: tuple[Listing, ...] = tuple(kept)
        self._keys: list[_Key] = [_Key(key, tuple(words), tuple(exceptions))
                                  for key, (words, exceptions) in by_key.items()]
        self._automaton: _Automaton | None = None
        if self._keys:
            automaton: _Automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for index, entry in enumerate(self._keys):
                automaton.add_word(entry.key, index)
            automaton.make_automaton()
            self._automaton = automaton

    @classmethod
    def from_lists(cls, lists_dir: Path | None = None, *, bundled: bool = True) -> Screen:
        """The bundled list (unless bundled=False) and lists_dir/*.txt; every list's problems at once."""
        listings: list[Listing] = []
        problems: list[Problem] = []
        for path in ([BUNDLED_LIST] if bundled else []) + list_files(lists_dir):
            try:
                listings.extend(read_list(path))
            except InputError as exc:
                problems.extend(exc.problems)
        if problems:
            raise InputError(problems)
        return cls(listings)

    @property
    def word_count(self) -> int:
        return sum(not listing.is_exception for listing in self.listings)

    def screen(self, text: str, *, first_line: int = 1) -> list[Hit]:
        """Every listed word in `text`, in order. `first_line` numbers its first line (a script body's line)."""
        if self._automaton is None:
            return []
        table = _fold_table()
        spans: list[tuple[int, int, Listing]] = []
        for start, end in _paragraphs(text):
            paragraph = text[start:end]
            matches = list(self._automaton.iter(paragraph.translate(table)))
            # Most texts hit nothing: the offset map is only worth building for a paragraph with a listed word.
            if any(self._keys[index].words for _, index in matches):
                spans.extend(self._hits_in_paragraph(text, start, paragraph, matches))
        if not spans:
            return []
        line_starts = [0, *(m.end() for m in re.finditer("\n", text))]

        def position(offset: int) -> tuple[int, int]:
            index = bisect.bisect_right(line_starts, offset) - 1
            return first_line + index, offset - line_starts[index] + 1

        hits: list[Hit] = []
        for start, end, listing in sorted(spans, key=lambda span: (span[0], -span[1])):
            line, column = position(start)
            end_line, end_column = position(end - 1)
            hits.append(Hit(word=listing.word, category=listing.category, list_file=listing.list_file,
                            list_line=listing.line, text=text[start:end], line=line, column=column,
                            end_line=end_line, end_column=end_column, start=start, end=end))
        return hits

    def _hits_in_paragraph(self, text: str, paragraph_start: int, paragraph: str,
                           matches: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, Listing]]:
        """(start, end, listing) in `text` for each match that is a hit: exceptions and anchors applied."""
        table = _fold_table()
        _, origins = normalize(paragraph)

        def original(first: int, last: int) -> tuple[int, int]:
            """The original span of normalized characters first..last (inclusive)."""
            return paragraph_start + origins[first], paragraph_start + origins[last] + 1

        def stands(listing: Listing, start: int, end: int) -> bool:
            if listing.at_clause_start and not _starts_clause(text, start):
                return False
            if listing.at_clause_end and not _ends_clause(text, end):
                return False
            # Latin letters and digits have word boundaries: NO.1 is not inside "piano1", nor 100%有效 in 2100%有效.
            if _is_word_char(listing.key[0]) and start > 0:
                before = table[ord(text[start - 1])]
                if before and _is_word_char(before[-1]):
                    return False
            if _is_word_char(listing.key[-1]) and end < len(text):
                after = table[ord(text[end])]
                if after and _is_word_char(after[0]):
                    return False
            return True

        protected: list[tuple[int, int, bool]] = []  # normalized spans of exceptions that apply here
        for last, index in matches:
            entry = self._keys[index]
            first = last - len(entry.key) + 1
            start, end = original(first, last)
            for exception in entry.exceptions:
                if stands(exception, start, end):
                    protected.append((first, last, exception.anchored))
        for last, index in matches:
            entry = self._keys[index]
            first = last - len(entry.key) + 1
            if any(p_first <= first and last <= p_last and (anchored or p_last - p_first > last - first)
                   for p_first, p_last, anchored in protected):
                continue
            start, end = original(first, last)
            for listing in entry.words:
                if stands(listing, start, end):
                    yield start, end, listing


__all__ = ["BUNDLED_LIST", "Hit", "Listing", "Screen", "fold", "list_files", "normalize", "read_list"]
