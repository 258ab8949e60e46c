"""How a person is told a count or a length of time: "1 airing", "2 airings", "90 s", "5 min", "2 h", "7 days".
One place for both, so every command and every message says them alike."""

from __future__ import annotations

from datetime import timedelta

# (seconds in the unit, singular, plural); a length is said in the largest unit it holds twice, or once exactly
_UNITS = ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s"))


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 airing', '0 airings', '2 entries' (give the plural when it is not the noun plus s)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _number(value: float) -> str:
    if value >= 10 or abs(value - round(value)) < 0.05:
        return str(round(value))
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}".rstrip("0")


def duration(length: float | timedelta) -> str:
    """A length of time as a person writes it: '0.35 s', '90 s', '5 min', '2.5 h', '36 h', '7 days'.
    The sign is kept: '-2 s'."""
    seconds = length.total_seconds() if isinstance(length, timedelta) else float(length)
    if seconds < 0:
        return "-" + duration(-seconds)
    for size, one, many in _UNITS:
        whole = seconds % size == 0 and seconds >= size
        if seconds >= 2 * size or whole or size == 1:
            value = seconds / size
            text = _number(value)
            return f"{text} {one if text == '1' else many}"
    raise AssertionError("unreachable: the last unit takes every length")
