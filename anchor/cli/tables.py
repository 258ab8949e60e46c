"""Tables for the terminal, written line by line: `anchor plan` may list half a million airings, which a
rich Table (it measures and renders every cell as an object) takes minutes and gigabytes to print. Columns
are sized to their widest cell in terminal cells (a Chinese character takes two) and, when the table would
not fit the terminal, the foldable columns give way: their text continues on the next line, folded between
words (or between Chinese characters), never inside a word. A column is never narrower than its longest
word, so a script path or a voice name is always whole; when the terminal cannot hold the table even so,
each row is written as a record instead, one `header: value` line per column. A word wider than the terminal
itself is never cut: it overflows its line."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.cells import cell_len

GAP = "  "
RECORD_INDENT = "  "
FOLD_FLOOR = 12  # the narrowest a folding column gets before the table becomes records (unless it says)
# A piece of text that is never broken: a number with its unit ("5 min", "-16.0 LUFS"), a run of spaces, one wide
# (CJK) character — text in those scripts may fold between any two characters — or a run of anything else, a word.
_UNITS = "ms|s|min|h|days?|LUFS|dBTP|dB"
_WIDE = (r"\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
         r"\U00020000-\U0003fffd")
_PIECE = re.compile(rf"(?<!\S)[-+]?\d+(?:\.\d+)? (?:{_UNITS})\b[^\s{_WIDE}]*|\s+|[{_WIDE}]|[^\s{_WIDE}]+")


@dataclass(frozen=True)
class Column:
    header: str
    fold: bool = True  # may wrap onto more lines, between words, when the terminal is narrow
    widest: int = 0  # the widest cell, when known ahead (then rows are streamed, never held)
    floor: int = FOLD_FLOOR  # folded narrower than this, a sentence reads worse than a record


def terminal_width() -> int:
    """The terminal's columns; COLUMNS when set (also when piped), else 80 when there is no terminal."""
    return shutil.get_terminal_size((80, 24)).columns


def longest_word(text: str) -> int:
    """The cells of the longest piece of text that must stay on one line."""
    return max((cell_len(p) for p in _PIECE.findall(text) if p.strip()), default=0)


def fold(text: str, width: int, indent: str = "") -> list[str]:
    """Text folded into lines of at most `width` cells, between words; continuation lines start with `indent`.
    A word longer than a whole line stays whole where it falls, overflowing: a path cut in two cannot be copied."""
    if cell_len(text) <= width:
        return [text]
    indent = indent if cell_len(indent) < width // 2 else ""
    lines: list[str] = []
    line, space = "", ""
    for piece in _PIECE.findall(text):
        if not piece.strip():
            if line.strip():
                space = piece  # between words: kept unless the line breaks there
            else:
                line += piece  # leading the text: its indent, kept
            continue
        fits_a_line = cell_len(indent + piece) <= width  # else it overflows where it is: a new line won't help
        if line.strip() and cell_len(line + space + piece) > width and fits_a_line:
            lines.append(line)
            line = indent
        else:
            line += space
        line += piece
        space = ""
    if line.strip():
        lines.append(line)
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], limit: int) -> list[int] | None:
    """Each column's width, the foldable ones narrowed (widest first) to fit `limit`; None when even each
    column at its longest word cannot fit."""
    widths = [max([cell_len(c.header), c.widest, *(cell_len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    # A streamed column (widest known, rows unseen) may hold one long word: it keeps its width.
    least = [w if c.widest or not c.fold else
             max([cell_len(c.header), min(w, c.floor), *(longest_word(row[i]) for row in rows)])
             for i, (c, w) in enumerate(zip(columns, widths, strict=True))]
    room = limit - len(GAP) * (len(widths) - 1)
    if sum(least) > room:
        return None
    while sum(widths) > room:
        widest = max((i for i in range(len(widths)) if widths[i] > least[i]), key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _table_lines(columns: Sequence[Column], widths: list[int], rows: Iterable[Sequence[str]],
                 limit: int) -> Iterator[str]:
    yield GAP.join(_pad(c.header, w) for c, w in zip(columns, widths, strict=True)).rstrip()
    yield GAP.join("─" * w for w in widths)
    for row in rows:
        if len(row) != len(columns):
            yield from _heading(row[0], limit)
            continue
        cells = [fold(text, w) for text, w in zip(row, widths, strict=True)]
        for n in range(max(len(c) for c in cells)):
            yield GAP.join(_pad(c[n] if n < len(c) else "", w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _record_lines(columns: Sequence[Column], rows: Iterable[Sequence[str]], limit: int) -> Iterator[str]:
    """Each row as a record: its first cell on a line of its own, then `header: value` for each other cell."""
    label = max(cell_len(c.header) for c in columns[1:]) + 2 if len(columns) > 1 else 0
    for row in rows:
        if len(row) != len(columns):
            yield from _heading(row[0], limit)
            continue
        yield from fold(row[0], limit, RECORD_INDENT)
        for column, text in zip(columns[1:], row[1:], strict=True):
            if text:
                yield from fold(RECORD_INDENT + _pad(column.header + ":", label) + text, limit,
                                RECORD_INDENT + " " * label)


def _heading(text: str, limit: int) -> list[str]:
    """A line across the table (a day's heading, a note under a row): continuation lines keep its indent."""
    indent = text[:len(text) - len(text.lstrip())]
    return fold(text, limit, indent + "  ")


def write_table(columns: Sequence[Column], rows: Iterable[Sequence[str]], *, title: str = "",
                caption: str | Callable[[], str] = "", out: TextIO | None = None, width: int | None = None) -> None:
    """Rows are sequences of plain strings; a row of one string is a heading line across the table. The
    caption may be a function, called after the last row (to count what was streamed)."""
    out = out or sys.stdout
    limit = width or terminal_width()
    known = all(c.widest for c in columns)
    table = rows if known else list(rows)
    widths = _widths(columns, [] if known else [r for r in table if len(r) == len(columns)], limit)
    lines: list[str] = []
    if title:
        lines += fold(title, limit)
    body = _record_lines(columns, table, limit) if widths is None else _table_lines(columns, widths, table, limit)
    for line in body:
        lines.append(line)
        if len(lines) > 4096:
            out.write("\n".join(lines) + "\n")
            lines = []
    text = caption() if callable(caption) else caption
    if text:
        lines += fold(text, limit)
    out.write("\n".join(lines) + "\n")
