"""Content-addressed Program cache: atomic entries, bounded size, least-recently-used eviction.

An entry is a directory `<root>/<key[:2]>/<key>/`. It is built in `<root>/.staging/` and renamed into
place in one step, so a crash mid-render leaves only staging debris (swept on open), never a half entry.
Use time is the entry directory's mtime, touched on every hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anchor.speech.program_files import META_NAME

log = logging.getLogger(__name__)

STAGING = ".staging"
STALE_STAGING_SECONDS = 6 * 3600
COMPLETE_MARK = META_NAME  # written last inside staging: an entry without it is not an entry


def cache_key(shape: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(shape, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ProgramCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / STAGING).mkdir(exist_ok=True)
        self._sweep_staging()

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> Path | None:
        entry = self._entry(key)
        if not (entry / COMPLETE_MARK).is_file():
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)
        return entry

    @contextlib.contextmanager
    def staging(self, key: str) -> Iterator[Path]:
        """A private directory to build an entry in; removed unless committed."""
        path = Path(tempfile.mkdtemp(prefix=f"{key[:16]}.", dir=self.root / STAGING))
        (path / ".pid").write_text(str(os.getpid()))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def commit(self, key: str, staged: Path) -> Path:
        """Move a finished staging directory into place and evict what no longer fits. Blocking (it
        scans the cache): call it in a thread."""
        entry = self._entry(key)
        entry.parent.mkdir(exist_ok=True)
        try:
            (staged / ".pid").unlink(missing_ok=True)
            os.rename(staged, entry)
        except OSError:
            if not (entry / COMPLETE_MARK).is_file():
                raise
            # Another renderer committed the same key first: theirs is identical by construction.
        self.evict()
        return entry

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, size in bytes, path) of every entry."""
        found = []
        for shard in self.root.iterdir():
            if shard.name == STAGING or not shard.is_dir():
                continue
            for entry in shard.iterdir():
                with contextlib.suppress(OSError):
                    size = sum(f.stat().st_size for f in entry.iterdir())
                    found.append((entry.stat().st_mtime, size, entry))
        return found

    def evict(self, keep: Path | None = None) -> list[Path]:
        entries = sorted(self.entries())
        total = sum(size for _, size, _ in entries)
        removed = []
        for _, size, entry in entries:
            if total <= self.max_bytes:
                break
            if entry == keep:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
            removed.append(entry)
            log.info("cache: evicted %s (%d bytes) to stay under %d bytes", entry.name, size, self.max_bytes)
        return removed

    def _sweep_staging(self) -> None:
        """Remove what a killed render left behind; a live render touches its staging dir as it works."""
        now = time.time()
        for debris in (self.root / STAGING).iterdir():
            with contextlib.suppress(OSError):
                owner_alive = _pid_alive(debris)
                if not owner_alive or now - debris.stat().st_mtime > STALE_STAGING_SECONDS:
                    shutil.rmtree(debris, ignore_errors=True)


def _pid_alive(staging: Path) -> bool:
    marker = staging / ".pid"
    try:
        pid = int(marker.read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
