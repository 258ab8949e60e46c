"""The files a rendered Program is made of, named once: every reader and writer goes through ProgramFiles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WAV_NAME = "program.wav"  # 16-bit PCM, normalized to EBU R128
SRT_NAME = "program.srt"
VTT_NAME = "program.vtt"
META_NAME = "program.json"  # written last: a directory without it is not a finished Program
NAMES = (WAV_NAME, SRT_NAME, VTT_NAME, META_NAME)


@dataclass(frozen=True)
class ProgramFiles:
    directory: Path

    @property
    def wav(self) -> Path:
        return self.directory / WAV_NAME

    @property
    def srt(self) -> Path:
        return self.directory / SRT_NAME

    @property
    def vtt(self) -> Path:
        return self.directory / VTT_NAME

    @property
    def meta(self) -> Path:
        return self.directory / META_NAME

    def complete(self) -> bool:
        return self.meta.is_file()
