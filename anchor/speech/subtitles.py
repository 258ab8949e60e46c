"""Subtitles from where each sentence really is in the final audio; SRT and WebVTT written and SRT read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anchor.speech.engines import WordTiming
from anchor.speech.sentences import split_lines, width

# Chinese subtitles conventionally drop a line's trailing comma or full stop; questions keep their mark.
_DROPPED_AT_END = "，。、；,;"


@dataclass(frozen=True)
class Caption:
    """One subtitle: its text and when it shows, in seconds from the Program's start."""

    start: float
    end: float
    text: str


@dataclass
class PlacedSentence:
    """A synthesized piece of text and where it sits in the final audio (seconds)."""

    text: str
    start: float
    end: float
    words: list[WordTiming] = field(default_factory=list)  # absolute times


def _display(text: str) -> str:
    text = text.strip()
    while len(text) > 1 and text[-1] in _DROPPED_AT_END:
        text = text[:-1]
    return text


def _word_positions(text: str, words: list[WordTiming]) -> list[tuple[int, float]]:
    """(character index in `text`, start time) of each word the engine reported, found in order."""
    positions, cursor, lowered = [], 0, text.lower()
    for word in words:
        at = lowered.find(word.text.lower().strip(), cursor)
        if at >= 0:
            positions.append((at, word.start))
            cursor = at + len(word.text.strip())
    return positions


def _line_starts(sentence: PlacedSentence, lines: list[str]) -> list[float]:
    offsets, at = [], 0
    for line in lines:
        found = sentence.text.find(line, at)
        at = found if found >= 0 else at
        offsets.append(at)
        at += len(line)
    positions = _word_positions(sentence.text, sentence.words)
    total = max(width(sentence.text), 1.0)
    starts = []
    for offset in offsets:
        timed = next((t for pos, t in positions if pos >= offset), None)
        if timed is None:  # no word timing here: place by share of the text spoken so far
            timed = sentence.start + (sentence.end - sentence.start) * width(sentence.text[:offset]) / total
        starts.append(max(sentence.start, min(timed, sentence.end)))
    starts[0] = sentence.start
    return starts


def build_cues(sentences: list[PlacedSentence], max_line_chars: int) -> list[Caption]:
    cues: list[Caption] = []
    for sentence in sentences:
        lines = split_lines(sentence.text, max_line_chars) if width(sentence.text) > max_line_chars else [sentence.text]
        starts = _line_starts(sentence, lines) if len(lines) > 1 else [sentence.start]
        ends = [*starts[1:], sentence.end]
        for line, start, end in zip(lines, starts, ends, strict=False):
            if end > start:
                cues.append(Caption(round(start, 3), round(end, 3), _display(line)))
    return cues


def _stamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_srt(cues: list[Caption]) -> str:
    return "".join(f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n\n"
                   for i, c in enumerate(cues, start=1))


def to_vtt(cues: list[Caption]) -> str:
    return "WEBVTT\n\n" + "".join(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n\n" for c in cues)


def _seconds(stamp: str) -> float:
    h, m, s = stamp.strip().replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse_srt(text: str) -> list[Caption]:
    """Every caption of an SRT text; blocks that are not captions are skipped."""
    captions = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        lines = block.strip().splitlines()
        if len(lines) < 2 or "-->" not in lines[1]:
            continue
        start, end = lines[1].split("-->")
        captions.append(Caption(_seconds(start), _seconds(end), "\n".join(lines[2:])))
    return captions


def read_srt(path: Path) -> list[Caption]:
    """The captions of an SRT file; none when there is no file."""
    try:
        return parse_srt(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
