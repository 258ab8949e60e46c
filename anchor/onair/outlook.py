"""The approval outlook: for each planned airing on a channel that requires approval — and, given the word
lists, on every channel — whether its script's current text will air, its fallback will, or nothing will
(skipped). The daemon (the anchor_unapproved_airings gauge), `anchor plan` and `anchor check` all ask here, so
they agree with what the airing does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from anchor.content import load_script
from anchor.content.approvals import ApprovalBook, ApprovalStatus
from anchor.content.clearance import Clearance, clearance, screen_file
from anchor.content.screening import Screen
from anchor.problems import InputError
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring


@dataclass(frozen=True)
class Outlook:
    airs: str | None  # the script that will air: the slot's own, its fallback, or None (skipped)
    reason: str | None  # why not the slot's own script


class ApprovalOutlook:
    """Asked airing by airing (a plan may stream half a million); each script is read once. Blocking (it
    reads the scripts): use it in a thread. Without a screen, only channels that require approval are seen."""

    def __init__(self, channels: dict[str, Channel], book: ApprovalBook, scripts_dir: Path,
                 screen: Screen | None = None) -> None:
        self.channels = channels
        self.book = book
        self.scripts_dir = scripts_dir
        self.screen = screen
        self._statuses: dict[str, tuple[ApprovalStatus, Clearance | None] | str] = {}

    def _status(self, script: str) -> tuple[ApprovalStatus, Clearance | None] | str:
        if script not in self._statuses:
            try:
                text = load_script(self.scripts_dir / script, self.scripts_dir)
                hits = screen_file(self.screen, text.source) if self.screen is not None else None
            except InputError as exc:
                self._statuses[script] = f"it does not load: {exc.problems[0] if exc.problems else exc}"
            except OSError as exc:
                self._statuses[script] = f"it cannot be read: {exc.strerror or exc}"
            else:
                status = self.book.status(script, text.content_hash)
                self._statuses[script] = status, None if hits is None else clearance(script, hits, status)
        return self._statuses[script]

    def _refusal(self, script: str, gated: bool) -> str | None:
        """Why this script's current text will not air on such a channel; None when it will."""
        seen = self._status(script)
        if isinstance(seen, str):  # on a channel without approval, the daemon airs its last good Program
            return seen if gated else None
        status, cleared = seen
        if gated and not status.approved:
            return status.reason()
        if cleared is not None and not cleared.clear:
            return cleared.reason()
        return None

    def of(self, item: PlannedAiring) -> Outlook | None:
        """None when the channel does not require approval and nothing keeps the script off air."""
        channel = self.channels.get(item.channel)
        if channel is None or not (channel.approval_required or self.screen is not None):
            return None
        gated = channel.approval_required
        why = self._refusal(item.script, gated)
        if why is None:
            return Outlook(item.script, None) if gated else None
        if item.fallback and self._refusal(item.fallback, gated) is None:
            return Outlook(item.fallback, f"{item.script}: {why}")
        return Outlook(None, f"{item.script}: {why}")


def approval_outlook(planned: Iterable[PlannedAiring], channels: dict[str, Channel], book: ApprovalBook,
                     scripts_dir: Path, screen: Screen | None = None) -> dict[str, Outlook]:
    """PlannedAiring.key → Outlook, for the airings of channels that require approval — and, given the word
    lists, of every channel."""
    seeing = ApprovalOutlook(channels, book, scripts_dir, screen)
    return {item.key: seen for item in planned if (seen := seeing.of(item)) is not None}
