"""What may air: a script's current text is approved when its latest decision is an approval of exactly that
text (its content hash). Edited since, revoked, rejected or never approved: it is not. A pure reading of the
append-only approval records, so the daemon, `anchor plan`, `anchor check` and `anchor approvals` agree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from anchor.logview import ApprovalAction


class ApprovalRecord(Protocol):
    """An approval record as stored (anchor.store.Approval), or as anchor.logview reads it."""

    id: int | None
    script: str
    content_hash: str
    action: ApprovalAction
    by: str
    role: str
    note: str | None
    accepted_hits: str | None  # JSON: the screening hits accepted, each with its word and why
    at: datetime


class Standing(str, Enum):
    APPROVED = "approved"
    PENDING = "pending"  # never approved, or edited since its approval
    REVOKED = "revoked"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApprovalStatus:
    script: str
    standing: Standing
    decision: ApprovalRecord | None  # the record that decided it (the approval aired under, the revocation…)

    @property
    def approved(self) -> bool:
        return self.standing is Standing.APPROVED

    def reason(self) -> str:
        """Why it may not air, in a sentence for the as-run log."""
        if self.standing is Standing.REVOKED and self.decision is not None:
            return f"its approval was revoked by {self.decision.by}: {self.decision.note or 'no reason given'}"
        if self.standing is Standing.REJECTED and self.decision is not None:
            return f"its text was rejected by {self.decision.by}: {self.decision.note or 'no reason given'}"
        if self.decision is not None:
            return "its text was edited since it was approved (anchor approve it again)"
        return "its text was never approved (anchor approve)"


class ApprovalBook:
    """Every approval record, by script: the standing of any script's text."""

    def __init__(self, records: Iterable[ApprovalRecord]) -> None:
        self._by_script: dict[str, list[ApprovalRecord]] = {}
        for record in records:
            self._by_script.setdefault(record.script, []).append(record)

    def status(self, script: str, content_hash: str) -> ApprovalStatus:
        records = self._by_script.get(script, [])
        for record in reversed(records):  # the latest decision about this very text wins
            if record.content_hash != content_hash:
                continue
            standing = {ApprovalAction.APPROVED: Standing.APPROVED, ApprovalAction.REVOKED: Standing.REVOKED,
                        ApprovalAction.REJECTED: Standing.REJECTED}[record.action]
            return ApprovalStatus(script, standing, record)
        earlier = next((r for r in reversed(records) if r.action is ApprovalAction.APPROVED), None)
        return ApprovalStatus(script, Standing.PENDING, earlier)
