"""Tables for the terminal, written line by line: `anchor plan` may list half a million airings, which a
rich Table (it measures and renders every cell as an object) takes minutes and gigabytes to print. Columns
are sized to their widest cell in terminal cells (a Chinese character takes two) and, when the table would
not fit the terminal, the foldable columns give way and their text continues on the next line."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.cells import cell_len, chop_cells

GAP = "  "


@dataclass(frozen=True)
class Column:
    header: str
    fold: bool = True  # may wrap onto more lines when the terminal is narrow
    widest: int = 0  # the widest cell, when known ahead (then rows are streamed, never held)


def _fold(text: str, width: int) -> list[str]:
    return chop_cells(text, width) if cell_len(text) > width else [text]


def _pad(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], limit: int) -> list[int]:
    widths = [max([cell_len(c.header), c.widest, *(cell_len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    while sum(widths) + len(GAP) * (len(widths) - 1) > limit:
        foldable = [i for i, c in enumerate(columns) if c.fold and widths[i] > max(8, cell_len(c.header))]
        if not foldable:
            break
        widest = max(foldable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def write_table(columns: Sequence[Column], rows: Iterable[Sequence[str]], *, title: str = "",
                caption: str | Callable[[], str] = "", out: TextIO | None = None, width: int | None = None) -> None:
    """Rows are sequences of plain strings; a row of one string is a heading line across the table. The
    caption may be a function, called after the last row (to count what was streamed)."""
    out = out or sys.stdout
    limit = width or shutil.get_terminal_size((100, 24)).columns
    known = all(c.widest for c in columns)
    table = rows if known else list(rows)
    widths = _widths(columns, [] if known else [r for r in table if len(r) == len(columns)], limit)
    lines: list[str] = []
    if title:
        lines += _fold(title, limit)
    lines.append(GAP.join(_pad(c.header, w) for c, w in zip(columns, widths, strict=True)).rstrip())
    lines.append(GAP.join("─" * w for w in widths))
    for row in table:
        if len(row) != len(columns):
            lines += _fold(row[0], limit)
            continue
        cells = [_fold(text, w) for text, w in zip(row, widths, strict=True)]
        for n in range(max(len(c) for c in cells)):
            lines.append(GAP.join(_pad(c[n] if n < len(c) else "", w) for c, w in zip(cells, widths, strict=True))
                         .rstrip())
        if len(lines) > 4096:
            out.write("\n".join(lines) + "\n")
            lines = []
    text = caption() if callable(caption) else caption
    if text:
        lines += _fold(text, limit)
    out.write("\n".join(lines) + "\n")
