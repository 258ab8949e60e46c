"""Problems in user input, each pointing at a file and line with what to write instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    message: str
    hint: str = ""
    key: str = ""
    warning: bool = False
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        if self.line and self.column:
            where += f":{self.column}"
        key = f" [{self.key}]" if self.key else ""
        hint = f" — {self.hint}" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"

    def as_record(self) -> dict[str, str | int | None]:
        """The problem as plain fields, for machines (`anchor check --json`)."""
        return {"file": str(self.file), "line": self.line, "column": self.column,
                "severity": "warning" if self.warning else "error", "key": self.key or None,
                "message": self.message, "hint": self.hint or None}


@dataclass
class InputError(Exception):
    """Raised with every problem found in one pass, so users fix them all at once."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
