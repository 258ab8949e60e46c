"""What may air on any channel, approval required or not: a text whose screening hits are each accepted.

A hit is accepted when the approval in force of exactly this text (the script's latest decision about its
content hash is an approval) accepted its word by name (`anchor approve … --accept 'WORD=why'`). Edited,
revoked, rejected or never approved: none of its hits is accepted, and a text with a hit stays off air.
The daemon (at air time), `anchor plan` and `anchor check` all ask here, so they agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from anchor.content.approvals import ApprovalStatus
from anchor.content.screening import Hit, Screen
from anchor.problems import Problem


def accepted_words(status: ApprovalStatus) -> dict[str, str]:
    """Listed word → why, as accepted by the approval in force of this very text; none unless it is approved."""
    decision = status.decision
    if not status.approved or decision is None or not decision.accepted_hits:
        return {}
    try:
        entries = json.loads(decision.accepted_hits)
    except ValueError:
        return {}
    if not isinstance(entries, list):
        return {}
    return {str(e["word"]): str(e.get("reason") or "") for e in entries if isinstance(e, dict) and "word" in e}


def screen_file(screen: Screen, path: Path) -> list[Hit]:
    """Every hit in a script as written (front matter with its title, and body). Blocking: it reads the file."""
    return screen.screen(path.read_text(encoding="utf-8-sig"))


@dataclass(frozen=True)
class Clearance:
    """A script's screening hits that no approval of its current text accepted."""

    script: str  # its name under scripts_content/
    unaccepted: tuple[Hit, ...]

    @property
    def clear(self) -> bool:
        return not self.unaccepted

    def reason(self) -> str:
        """Why it may not air, in a sentence for the as-run log and `anchor plan`."""
        words = ", ".join(f"“{h.word}” ({h.line}:{h.column})" for h in self.unaccepted)
        return (f"its text has listed claims no approval accepted: {words}; reword, or anchor approve "
                f"{self.script} --accept 'WORD=why'")


def clearance(script: str, hits: list[Hit], status: ApprovalStatus) -> Clearance:
    accepted = accepted_words(status)
    return Clearance(script, tuple(h for h in hits if h.word not in accepted))


def hit_problem(path: Path, script: str, hit: Hit, *, warning: bool = False) -> Problem:
    """One hit at file:line:column, with what to do: reword, or accept it by name with a reason."""
    return Problem(path, hit.line, f"“{hit.text}” is the listed claim “{hit.word}” ({hit.category}, "
                   f"{hit.list_file.name}:{hit.list_line}); a text with it does not air on any channel",
                   f"reword it, or anchor approve {script} --by NAME --accept '{hit.word}=<why it is right here>'",
                   warning=warning, column=hit.column)


__all__ = ["Clearance", "accepted_words", "clearance", "hit_problem", "screen_file"]
