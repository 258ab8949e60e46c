"""The lineup: which version of each channel file airs. Each file stands alone: a file with errors keeps
airing its last good version (or its channel stays off if it never had one), reported with file:line, while
every other channel starts and reloads normally. The last good version of each file is kept under
data_dir/last-good/schedules/, so a restart (a reboot, a watchdog) airs it too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from anchor.clock import shown_time
from anchor.config import Settings
from anchor.preflight import channel_problems, checked_channel_files
from anchor.problems import InputError, Problem
from anchor.schedule.channel import Channel, load_channel

log = logging.getLogger(__name__)

KEPT_FOLDER = Path("last-good") / "schedules"


@dataclass(frozen=True)
class Lineup:
    channels: list[Channel]
    problems: list[Problem]  # errors of files whose channel airs its last good version (or none), and warnings
    stand_ins: dict[str, Path]  # channel id → the kept copy airing in place of its broken file


class LineupKeeper:
    """Loads the lineup and keeps every file's last good version. Blocking (disk, fc-list): use a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kept = settings.data_dir / KEPT_FOLDER

    def load(self) -> Lineup:
        files = checked_channel_files(self.settings)
        channels: list[Channel] = []
        problems: list[Problem] = []
        stand_ins: dict[str, Path] = {}
        taken = {f.channel.id for f in files if f.channel is not None}
        for found in files:
            problems += found.problems
            if found.channel is not None:
                channels.append(found.channel)
                self._keep(found.path)
                continue
            stand_in = self._recall(found.path, taken)
            if stand_in is None:
                problems.append(Problem(found.path, None, "this file has errors and never loaded before: its channel "
                                        "stays off until it is fixed", "fix the errors above", warning=True))
                continue
            when = shown_time(datetime.fromtimestamp(os.stat(stand_in.source).st_mtime, UTC), stand_in.zone)
            problems.append(Problem(found.path, None, f"this file has errors: channel {stand_in.id} airs its last good "
                                    f"version (from {when}) until it is fixed",
                                    "fix the errors above", warning=True))
            channels.append(stand_in)
            stand_ins[stand_in.id] = stand_in.source
            taken.add(stand_in.id)
        return Lineup(channels, problems, stand_ins)

    def _kept_copy(self, path: Path) -> Path:
        return self.kept / path.name

    def _keep(self, path: Path) -> None:
        """Save the file as its channel's last good version (only when it changed)."""
        copy = self._kept_copy(path)
        try:
            text = path.read_bytes()
            if copy.is_file() and copy.read_bytes() == text:
                return
            copy.parent.mkdir(parents=True, exist_ok=True)
            partial = copy.with_name(f".{copy.name}.part")
            partial.write_bytes(text)
            os.replace(partial, copy)
        except OSError as exc:  # a full disk must not stop a good file from airing
            log.warning("cannot keep the last good version of %s: %s", path, exc.strerror or exc)

    def _recall(self, path: Path, taken: set[str]) -> Channel | None:
        copy = self._kept_copy(path)
        if not copy.is_file():
            return None
        try:
            channel, _ = load_channel(copy, self.settings)
        except InputError as exc:  # e.g. a script it names was deleted since
            log.warning("the last good version of %s no longer loads either: %s", path,
                        "; ".join(str(p) for p in exc.problems))
            return None
        if channel.id in taken or any(not p.warning for p in channel_problems(self.settings, channel)):
            return None
        return channel
