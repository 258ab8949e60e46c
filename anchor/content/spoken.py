"""Markdown body → what is spoken: paragraphs (headings included) and explicit pauses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from anchor.problems import Problem


@dataclass(frozen=True)
class Paragraph:
    text: str
    line: int
    heading: bool = False


@dataclass(frozen=True)
class Pause:
    seconds: float
    line: int


Block = Paragraph | Pause

_PAUSE = re.compile(r"^\[pause\s+(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>s|ms)\]$", re.IGNORECASE)
_PAUSE_LIKE = re.compile(r"^\[pause\b.*\]$", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,3}[.)])\s+")
_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")
_FENCE = re.compile(r"^(```|~~~)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<(?:https?://|mailto:)[^>]+>")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~|`+)")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
_CJK_GAP = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")
_SENTENCE_END = "。！？!?；;…"
MAX_PAUSE_SECONDS = 30.0


def _inline(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub("", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _CJK_GAP.sub("", text.replace("\\", ""))  # a space between Chinese characters is markup debris
    return re.sub(r"\s{2,}", " ", text).strip()


def _join(lines: list[str]) -> str:
    """Join wrapped lines: no space between CJK characters, one space between Western words."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif _CJK.match(out[-1]) or _CJK.match(line[0]):
            out += line
        else:
            out += " " + line
    return out


def _end_item(text: str) -> str:
    """A list item is its own sentence even when the writer left off the full stop."""
    if text and text[-1] not in _SENTENCE_END + "，,、：:":
        return text + ("。" if _CJK.search(text) else ".")
    if text and text[-1] in "，,、：:":
        return text[:-1] + ("。" if _CJK.search(text) else ".")
    return text


def _strip_comments(body: str) -> str:
    """Remove <!-- … --> but keep its newlines, so line numbers stay true."""
    return re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), body, flags=re.DOTALL)


def spoken_blocks(body: str, first_line: int, path: Path) -> tuple[list[Block], list[Problem]]:
    """Parse the body; `first_line` is the file line of the body's first line."""
    blocks: list[Block] = []
    problems: list[Problem] = []
    lines: list[str] = []
    start = first_line
    in_fence = False

    def flush() -> None:
        nonlocal lines
        text = _join(lines)
        if text:
            blocks.append(Paragraph(text, start))
        lines = []

    for number, raw in enumerate(_strip_comments(body).splitlines(), start=first_line):
        stripped = raw.strip()
        if _FENCE.match(stripped):
            in_fence = not in_fence  # code is never spoken
            flush()
            continue
        if in_fence:
            continue
        if not stripped or _RULE.match(stripped):
            flush()
            continue
        if stripped.startswith("|"):  # table row: speak the cells as one line
            stripped = "，".join(c.strip() for c in stripped.strip("|").split("|") if c.strip(" -:"))
        pause = _PAUSE.match(stripped)
        if pause:
            flush()
            seconds = float(pause["num"]) / (1000 if pause["unit"].lower() == "ms" else 1)
            if seconds > MAX_PAUSE_SECONDS:
                problems.append(Problem(path, number, f"pause of {seconds:g}s is too long",
                                        f"write at most [pause {MAX_PAUSE_SECONDS:g}s]"))
            else:
                blocks.append(Pause(seconds, number))
            continue
        if _PAUSE_LIKE.match(stripped):
            problems.append(Problem(path, number, f"cannot read pause '{stripped}'",
                                    "write it as [pause 1.5s] or [pause 500ms]"))
            flush()
            continue
        heading = _HEADING.match(stripped)
        if heading:
            flush()
            text = _inline(heading.group(1))
            if text:
                blocks.append(Paragraph(text, number, heading=True))
            continue
        stripped = stripped.lstrip(">").strip()
        item = _LIST_ITEM.match(stripped)
        if item:
            if not lines:
                start = number
            lines.append(_end_item(_inline(stripped[item.end():])))
            continue
        text = _inline(stripped)
        if text:
            if not lines:
                start = number
            lines.append(text)
    flush()
    return blocks, problems
