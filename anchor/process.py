"""Running a program (ffmpeg, espeak-ng, fc-list) from the event loop: as an asyncio subprocess, bounded in
time, and never left behind: a timeout or a cancelled caller kills it and waits for it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class ProgramMissing(Exception):
    """The program is not installed; the message names it."""


class ProgramTimeout(Exception):
    """The program ran longer than allowed and was killed."""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_program(argv: list[str], stdin: bytes | None = None, timeout: float = 600.0) -> Finished:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise ProgramMissing(f"{argv[0]} is not installed") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException as exc:  # timed out or cancelled: do not leave it running, nor its pipes open
        if proc.returncode is None:
            proc.kill()
        await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            raise ProgramTimeout(f"{argv[0]} took longer than {timeout:g}s") from None
        raise
    assert proc.returncode is not None
    return Finished(proc.returncode, out, err)
