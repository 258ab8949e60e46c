"""Evidence: the exact audio that aired, kept by its SHA-256 under data_dir/evidence/<audio_hash>.wav.

A rendered Program's program.wav lives in the cache, which evicts it; what aired must outlive that for as
long as an auditor may ask ([audit] evidence_days). keep() hard-links it (no copy, no space: the cache
writes new files and never rewrites one, so the link's bytes never change), or copies it where a link is
impossible, and checks the kept bytes against the hash the as-run row names. The file's mtime is when an
airing last used it: keep() touches it, sweep() removes what no airing used within evidence_days.

Both are blocking file work: the daemon runs them in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from anchor.audit import AuditError

FOLDER = "evidence"
SUFFIX = ".wav"
_HASH = re.compile(r"[0-9a-f]{64}")
_PARTIAL = ".partial"
_NO_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP)
STALE_PARTIAL = timedelta(hours=1)  # a partial copy older than this was left by a crash


def evidence_dir(data_dir: Path) -> Path:
    return data_dir / FOLDER


def evidence_name(audio_hash: str) -> str:
    """The evidence file of an airing, relative to data_dir (what exports name): evidence/<hash>.wav."""
    return f"{FOLDER}/{_checked(audio_hash)}{SUFFIX}"


def _checked(audio_hash: str) -> str:
    if not _HASH.fullmatch(audio_hash):  # a name from the database never becomes a path
        raise AuditError(f"'{audio_hash}' is not an audio hash (64 lower-case hex digits)")
    return audio_hash


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


@dataclass(frozen=True)
class Swept:
    removed: int
    removed_bytes: int
    kept: int


class Evidence:
    """The evidence folder of one installation (Settings.data_dir)."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = evidence_dir(data_dir)

    def path(self, audio_hash: str) -> Path:
        return self.directory / f"{_checked(audio_hash)}{SUFFIX}"

    def keep(self, audio: Path, audio_hash: str) -> Path:
        """Keep `audio` (the Program's program.wav that aired) as the evidence of `audio_hash`; returns its path.
        Idempotent: evidence already kept is only touched (an airing used it now). Raises AuditError when the
        audio is missing or its bytes are not `audio_hash` (then nothing is kept)."""
        dest = self.path(audio_hash)
        try:
            os.utime(dest)
            return dest
        except FileNotFoundError:
            pass
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f".{audio_hash}.{uuid.uuid4().hex[:8]}{_PARTIAL}"
        try:
            try:
                os.link(audio, partial)
            except FileNotFoundError:
                raise AuditError(f"cannot keep the evidence of audio {audio_hash}: {audio} is gone") from None
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    raise
                shutil.copyfile(audio, partial)
            found = _sha256(partial)
            if found != audio_hash:
                raise AuditError(f"cannot keep {audio} as the evidence of audio {audio_hash}: its bytes hash to "
                                 f"{found}; it is not the audio that aired")
            os.utime(partial)  # when an airing used it (a link shares the Program's mtime otherwise)
            os.replace(partial, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return dest

    def sweep(self, now: datetime, evidence_days: int) -> Swept:
        """Remove the evidence no airing used within `evidence_days` of `now` (and partial copies a crash left)."""
        cutoff = (now - timedelta(days=evidence_days)).timestamp()
        stale = (now - STALE_PARTIAL).timestamp()
        removed = removed_bytes = kept = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return Swept(0, 0, 0)
        for entry in entries:
            name = entry.name
            is_evidence = name.endswith(SUFFIX) and _HASH.fullmatch(name.removesuffix(SUFFIX)) is not None
            is_partial = name.startswith(".") and name.endswith(_PARTIAL)
            if not (is_evidence or is_partial):
                continue  # not ours: left alone
            try:
                stat = entry.stat(follow_symlinks=False)
                if stat.st_mtime >= (cutoff if is_evidence else stale):
                    kept += is_evidence
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
            removed_bytes += stat.st_size
        return Swept(removed, removed_bytes, kept)
