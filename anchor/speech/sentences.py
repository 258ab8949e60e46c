"""Splitting text into sentences (what one TTS request speaks) and lines (what one subtitle cue shows)."""

from __future__ import annotations

import math
import re

SENTENCE_END = "。！？!?；;…"
CLAUSE_END = "，,、：:"
CLOSERS = "”’」』）)】》\"'"
_WIDE = re.compile(r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]")


def width(text: str) -> float:
    """Display width in CJK cells: a Latin letter is half a cell, so lines of both kinds fit one frame."""
    return sum(1.0 if _WIDE.match(ch) else 0.5 for ch in text)


_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "e.g", "i.e", "prof"}


def _abbreviation(before: str) -> bool:
    word = before.rsplit(" ", 1)[-1].lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _cut_after(text: str, marks: str) -> list[str]:
    """Cut after each mark (and the closing quotes that follow it); a '.' only ends a sentence before space."""
    pieces, start, i = [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            is_end = "." in marks and (i + 1 == len(text) or text[i + 1].isspace()) and not _abbreviation(text[:i])
        else:
            is_end = ch in marks
        if is_end:
            j = i + 1
            while j < len(text) and ((text[j] in marks and text[j] != ".") or text[j] in CLOSERS):
                j += 1
            pieces.append(text[start:j])
            start = i = j
            continue
        i += 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _spoken(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


def _merge_unspoken(pieces: list[str]) -> list[str]:
    """Punctuation-only pieces (a stray '……') join their neighbour instead of becoming a silent request."""
    out: list[str] = []
    for piece in pieces:
        if out and not _spoken(piece):
            out[-1] += piece
        elif out and not _spoken(out[-1]):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def _hard_split(piece: str, max_width: float) -> list[str]:
    """Split an over-long run into near-equal parts, at spaces when it has them."""
    parts = math.ceil(width(piece) / max_width)
    if parts <= 1:
        return [piece]
    words = piece.split(" ") if " " in piece else list(piece)
    joiner = " " if " " in piece else ""
    target = width(piece) / parts
    out, current = [], ""
    for word in words:
        candidate = f"{current}{joiner}{word}" if current else word
        if current and width(candidate) > target + 0.5 and width(candidate) > 1:
            out.append(current)
            current = word
        else:
            current = candidate
    if current:
        out.append(current)
    return [o for o in (x.strip() for x in out) if o]


def split_lines(text: str, max_width: float) -> list[str]:
    """Pack clauses greedily into lines no wider than `max_width`."""
    lines: list[str] = []
    current = ""
    for clause in _merge_unspoken(_cut_after(text, CLAUSE_END + SENTENCE_END)):
        for part in _hard_split(clause, max_width) if width(clause) > max_width else [clause]:
            spaced = current and not _WIDE.match(part[0]) and not _WIDE.match(current[-1])
            joined = f"{current} {part}" if spaced else current + part
            if current and width(joined) > max_width:
                lines.append(current)
                current = part
            else:
                current = joined
    if current:
        lines.append(current)
    return lines


def split_sentences(text: str, max_width: float) -> list[str]:
    """Sentences of a paragraph; one longer than `max_width` is cut at clauses (then anywhere)."""
    out: list[str] = []
    for sentence in _merge_unspoken(_cut_after(text, SENTENCE_END + ".")):
        out.extend(split_lines(sentence, max_width) if width(sentence) > max_width else [sentence])
    return out
