"""The approval outlook: for each planned airing on a channel that requires approval, whether its script's
current text will air, its fallback will, or nothing will (skipped). The daemon (the anchor_unapproved_airings
gauge), `anchor plan` and `anchor check` all ask here, so they agree with what the airing does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from anchor.content import load_script
from anchor.content.approvals import ApprovalBook, ApprovalStatus
from anchor.problems import InputError
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring


@dataclass(frozen=True)
class Outlook:
    airs: str | None  # the script that will air: the slot's own, its fallback, or None (skipped)
    reason: str | None  # why not the slot's own script


class ApprovalOutlook:
    """Asked airing by airing (a plan may stream half a million); each script is read once. Blocking (it
    reads the scripts): use it in a thread."""

    def __init__(self, channels: dict[str, Channel], book: ApprovalBook, scripts_dir: Path) -> None:
        self.channels = channels
        self.book = book
        self.scripts_dir = scripts_dir
        self._statuses: dict[str, ApprovalStatus | str] = {}

    def _status(self, script: str) -> ApprovalStatus | str:
        if script not in self._statuses:
            try:
                text = load_script(self.scripts_dir / script, self.scripts_dir)
            except InputError as exc:
                self._statuses[script] = f"it does not load: {exc.problems[0] if exc.problems else exc}"
            else:
                self._statuses[script] = self.book.status(script, text.content_hash)
        return self._statuses[script]

    def of(self, item: PlannedAiring) -> Outlook | None:
        """None when the channel does not require approval."""
        channel = self.channels.get(item.channel)
        if channel is None or not channel.approval_required:
            return None
        own = self._status(item.script)
        if isinstance(own, ApprovalStatus) and own.approved:
            return Outlook(item.script, None)
        why = own if isinstance(own, str) else own.reason()
        if item.fallback:
            spare = self._status(item.fallback)
            if isinstance(spare, ApprovalStatus) and spare.approved:
                return Outlook(item.fallback, f"{item.script}: {why}")
        return Outlook(None, f"{item.script}: {why}")


def approval_outlook(planned: Iterable[PlannedAiring], channels: dict[str, Channel], book: ApprovalBook,
                     scripts_dir: Path) -> dict[str, Outlook]:
    """PlannedAiring.key → Outlook, for the airings of channels that require approval."""
    seeing = ApprovalOutlook(channels, book, scripts_dir)
    return {item.key: seen for item in planned if (seen := seeing.of(item)) is not None}
