"""TOML parsing that keeps line numbers, so every error can name file:line.

tomllib gives no positions, so we index the source text ourselves: every table header and every
`key =` line maps its dotted path to a line number; an error's location is the longest known prefix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from anchor.problems import InputError, Problem

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_SYNTAX_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_SYNTAX_EOF = re.compile(r"\(at end of document\)")


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return tuple(p.strip("\"'") for p in parts)


class TomlSource:
    """A parsed TOML document and the line of each key in it."""

    def __init__(self, path: Path, text: str, first_line: int = 1) -> None:
        self.path = path
        self.first_line = first_line
        self.lines: dict[tuple[str | int, ...], int] = {}
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError([self._syntax_problem(exc, text)]) from None
        self._index(text)

    def _syntax_problem(self, exc: tomllib.TOMLDecodeError, text: str) -> Problem:
        msg = str(exc)
        m = _SYNTAX_POS.search(msg)
        if m:
            line = int(m.group(1))
        elif _SYNTAX_EOF.search(msg):
            line = max(1, text.count("\n") + 1)
        else:
            line = 1
        reason = _SYNTAX_POS.sub("", _SYNTAX_EOF.sub("", msg)).strip()
        src = text.splitlines()[line - 1].strip() if 0 < line <= len(text.splitlines()) else ""
        return Problem(
            self.path,
            line + self.first_line - 1,
            f"TOML syntax error: {reason}" + (f" in `{src}`" if src else ""),
            'strings need quotes (key = "value"), tables look like [name], one key per line',
        )

    def _index(self, text: str) -> None:
        table: tuple[str | int, ...] = ()
        array_counts: dict[tuple[str | int, ...], int] = {}
        in_multiline: str | None = None
        for number, raw in enumerate(text.splitlines(), start=self.first_line):
            if in_multiline:
                if raw.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER.match(raw)
            if header:
                names = _split_dotted(header.group(2))
                if header.group(1) == "[[":
                    index = array_counts.get(names, 0)
                    array_counts[names] = index + 1
                    table = (*names, index)
                else:
                    table = names
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(raw)
            if key:
                self.lines.setdefault(table + _split_dotted(key.group(1)), number)
                for quote in ('"""', "'''"):
                    if raw.count(quote) % 2 == 1:
                        in_multiline = quote

    def line_of(self, location: tuple[str | int, ...]) -> int | None:
        """Line of the deepest known key on the way to `location`."""
        for end in range(len(location), 0, -1):
            line = self.lines.get(tuple(location[:end]))
            if line is not None:
                return line
        return None

    def problem(self, location: tuple[str | int, ...], message: str, hint: str = "", warning: bool = False) -> Problem:
        key = ".".join(str(p) for p in location)
        return Problem(self.path, self.line_of(location), message, hint, key, warning)


def read_text(path: Path) -> str:
    """Read a UTF-8 file, turning the usual failures into a Problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError([Problem(path, None, "file not found", "check the path")]) from None
    except OSError as exc:
        raise InputError([Problem(path, None, f"cannot read file: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            [Problem(path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                     "save the file as UTF-8 (in most editors: Save with Encoding → UTF-8)")]
        ) from None


def _model_at(model: type, location: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the last element of `location`, if we can tell."""
    current: Any = model
    for part in location[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif isinstance(part, int):
            pass  # list index: annotation is list[X], unwrapped below
        while get_origin(current) is not None:
            args = [a for a in get_args(current) if a is not type(None)]
            current = args[-1] if args else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def validation_problems(source: TomlSource, error: Any, model: type,
                        prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """Turn a pydantic ValidationError into Problems located in the TOML source."""
    problems = []
    for item in error.errors():
        location = prefix + tuple(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            holder = _model_at(model, tuple(item["loc"]))
            allowed = ", ".join(f.alias or n for n, f in holder.model_fields.items()) if holder else ""
            problems.append(source.problem(location, f"unknown key '{location[-1]}'",
                                           f"allowed keys here: {allowed}" if allowed else "remove it"))
        elif kind == "missing":
            problems.append(source.problem(location[:-1], f"missing required key '{location[-1]}'",
                                           f"add {location[-1]} = …"))
        else:
            message = item["msg"].removeprefix("Value error, ")
            got = item.get("input")
            shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) else ""
            problems.append(source.problem(location, f"{message}{shown}"))
    return problems
