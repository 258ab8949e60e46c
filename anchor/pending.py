"""The as-run rows the database refused, kept on the data disk in space reserved ahead of time.

A row the database refuses (disk full, server down) is held in memory until it can be written; a crash
meanwhile would lose it, and the restart would then air that program again or log it missed although it
went out. So the held rows are also written here, in a file whose blocks were allocated when the disk had
room: overwriting them needs no new space, which is exactly what a full disk lacks. The file has two
halves written in turn, each with a generation and a checksum, so a crash mid-write leaves the other half
whole. A database has its own journal for this; a plain file is what still works when that journal cannot
grow, hence this hand-written format.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from anchor.store import Airing, RotationStep

log = logging.getLogger(__name__)

FILE_NAME = "asrun-pending.bin"
HALF = 512 * 1024  # about 700 rows: far more than a day of refused writes on one PC
_HEADER = struct.Struct(">8sQI32s")  # magic, generation, payload length, SHA-256 of the payload
_MAGIC = b"ANCHORPR"

Held = tuple[Airing, RotationStep | None]


class PendingRows:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._generation = 0
        self._fd: int | None = None

    def reserve(self) -> bool:
        """Open the file and allocate its blocks (blocking: call off the loop). False, with a warning, if the
        disk cannot give the room: held rows then live in memory only."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            log.warning("as-run log: cannot open %s (%s): rows the database refuses are held in memory only",
                        self.path, exc)
            return False
        try:
            os.posix_fallocate(fd, 0, 2 * HALF)
        except OSError as exc:
            os.close(fd)
            log.warning("as-run log: cannot reserve %d KB in %s (%s): rows the database refuses are held in "
                        "memory only", 2 * HALF // 1024, self.path, exc)
            return False
        self._fd = fd
        return True

    @property
    def reserved(self) -> bool:
        return self._fd is not None

    def load(self) -> list[Held]:
        """The rows held when the last process stopped (blocking: call off the loop)."""
        if self._fd is None:
            return []
        best: tuple[int, bytes] | None = None
        for half in (0, 1):
            block = os.pread(self._fd, HALF, half * HALF)
            if len(block) < _HEADER.size:
                continue
            magic, generation, length, checksum = _HEADER.unpack_from(block)
            payload = block[_HEADER.size:_HEADER.size + length]
            if magic != _MAGIC or len(payload) != length or hashlib.sha256(payload).digest() != checksum:
                continue  # never written, or torn by a crash: the other half holds the last whole state
            if best is None or generation > best[0]:
                best = (generation, payload)
        if best is None:
            return []
        self._generation = best[0]
        return [_decode(item) for item in json.loads(best[1])]

    def save(self, held: list[Held]) -> None:
        """Replace the held rows (blocking: call off the loop); a failure is logged, never raised."""
        if self._fd is None:
            return
        payload = json.dumps([_encode(row, step) for row, step in held], separators=(",", ":")).encode()
        if _HEADER.size + len(payload) > HALF:
            log.error("as-run log: %d held rows exceed the %d KB reserved in %s: they are held in memory only",
                      len(held), HALF // 1024, self.path)
            return
        generation = self._generation + 1
        block = _HEADER.pack(_MAGIC, generation, len(payload), hashlib.sha256(payload).digest()) + payload
        try:
            os.pwrite(self._fd, block, (generation % 2) * HALF)
            os.fdatasync(self._fd)
        except OSError as exc:
            log.error("as-run log: cannot write %s: %s", self.path, exc)
            return
        self._generation = generation

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encode(row: Airing, step: RotationStep | None) -> dict[str, object]:
    return {"row": row.model_dump(mode="json", exclude={"id"}),
            "step": None if step is None else {**asdict(step), "instant": step.instant.isoformat()}}


def _decode(item: dict[str, object]) -> Held:
    row = Airing.model_validate(item["row"])
    for name in ("planned_at", "started_at", "ended_at", "updated_at"):
        value = getattr(row, name)
        if value is not None:
            setattr(row, name, value.astimezone(UTC))
    raw = item["step"]
    step = None
    if isinstance(raw, dict):
        step = RotationStep(index=int(raw["index"]), length=int(raw["length"]),
                            instant=datetime.fromisoformat(str(raw["instant"])).astimezone(UTC))
    return row, step
