"""16-bit PCM WAV: the one reader of the Programs' audio, and the parser of the WAV espeak-ng streams."""

from __future__ import annotations

import hashlib
import struct
import wave
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads when samples are read: a cache hit only hashes and measures the file
    import numpy as np


class WavError(Exception):
    """Not a readable 16-bit PCM WAV; the message names the file."""


class WavReader:
    """A 16-bit PCM WAV file opened for reading in chunks (hour-long programs stay small in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = wave.open(str(path), "rb")
        except (wave.Error, EOFError) as exc:
            raise WavError(f"{path}: not a readable WAV file ({exc})") from exc
        except OSError as exc:
            raise WavError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if self._file.getsampwidth() != 2:
            width = self._file.getsampwidth()
            self._file.close()
            raise WavError(f"{path}: expected 16-bit PCM, found {8 * width}-bit")
        self.rate = self._file.getframerate()
        self.channels = self._file.getnchannels()
        self.samples = self._file.getnframes()

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def read(self, count: int) -> np.ndarray:
        """The next `count` samples (fewer at the end), channels averaged to mono."""
        import numpy as np

        try:
            data = np.frombuffer(self._file.readframes(count), dtype="<i2")
        except (wave.Error, EOFError, OSError) as exc:
            raise WavError(f"cannot read {self.path}: {exc}") from exc
        if self.channels > 1:
            data = data[:len(data) // self.channels * self.channels].reshape(-1, self.channels).mean(axis=1)
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """All samples as 16-bit mono (channels averaged), and the sample rate."""
    import numpy as np

    with WavReader(path) as wav:
        return wav.read(wav.samples).astype(np.int16), wav.rate


def wav_seconds(path: Path) -> float:
    """The length of a WAV file from its header, without reading the samples."""
    with WavReader(path) as wav:
        return wav.seconds


def parse_streamed_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A WAV written to a pipe, whose size fields are placeholders (espeak-ng --stdout): the fmt chunk's
    rate, and everything after the data chunk's header as samples."""
    import numpy as np

    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("no WAV data")
    rate = struct.unpack_from("<I", data, 24)[0]
    start = data.find(b"data", 12)
    if start < 0:
        raise WavError("the WAV has no data chunk")
    body = data[start + 8:]
    return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").copy(), rate


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file read in chunks; blocking: call it in a thread."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
