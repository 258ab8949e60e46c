"""Edits to the inputs: a fingerprint (path, mtime, size) of every channel file and script, compared now
and then. A scan of the folders is blocking: changed() runs it in a thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folders: list[tuple[Path, str]]) -> Fingerprint:
    found = []
    for folder, pattern in folders:
        for path in folder.glob(pattern):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


class InputWatch:
    def __init__(self, folders: list[tuple[Path, str]], baseline: Fingerprint) -> None:
        self.folders = folders
        self._last = baseline

    @classmethod
    async def start(cls, folders: list[tuple[Path, str]]) -> InputWatch:
        return cls(folders, await asyncio.to_thread(fingerprint, folders))

    async def changed(self) -> bool:
        now = await asyncio.to_thread(fingerprint, self.folders)
        if now == self._last:
            return False
        self._last = now
        return True
