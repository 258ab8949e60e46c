"""Where a Program airs. Every output implements this one interface; channels name theirs in TOML."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from anchor.program import Program


class OutputSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Cue:
    """What to put on air: one Program for one planned airing of one channel."""

    channel_id: str
    channel_name: str
    slot: str
    planned_at: datetime  # timezone-aware
    program: Program
    avatar: Path | None = None  # the channel's avatar folder; None = the default avatar


@dataclass
class AiredResult:
    started_at: datetime  # when the output really started the program (aware, UTC)
    ended_at: datetime
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"file": "/…/0900-morning.mp4"}


class OutputError(Exception):
    """The output could not air; the message goes into the Airing row's error."""


class Output(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[OutputSettings]] = OutputSettings

    def __init__(self, settings: OutputSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir

    @abstractmethod
    async def prepare(self, cue: Cue) -> None:
        """Everything that can be done before the instant (rendering a clip, loading media). Idempotent."""

    @abstractmethod
    async def air(self, cue: Cue) -> AiredResult:
        """Start at once and return when the program has finished; occupies the channel meanwhile.

        Raises OutputError on failure; asyncio.CancelledError means the airing was cut (shutdown)."""

    async def close(self) -> None:
        """Release connections and processes."""
