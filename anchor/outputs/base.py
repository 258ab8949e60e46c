"""Where a Program airs. Every output implements this one interface; channels name theirs in TOML."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from anchor.program import Program

if TYPE_CHECKING:
    from anchor.config import Settings


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
    deadline: datetime | None = None  # the latest start the slot's grace allows; an output may wait until then


@dataclass
class AiredResult:
    started_at: datetime  # when the output really started the program (aware, UTC)
    ended_at: datetime
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"file": "/…/0900-morning.mp4"}


class OutputError(Exception):
    """The output could not air; the message goes into the Airing row's error (outcome `failed`)."""


class OutputUnavailable(OutputError):
    """The output could not be reached before the cue's deadline: nothing started (outcome `missed`)."""


class AiringInterrupted(OutputError):
    """The program started but the output lost it midway, e.g. OBS crashed (outcome `interrupted`)."""


class Output(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[OutputSettings]] = OutputSettings

    def __init__(self, settings: OutputSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir

    @classmethod
    def create(cls, app: "Settings", target: str) -> "Output":
        """The output for a channel's `output = "kind:target"`; kinds needing more than their table override."""
        return cls(app.output_settings(cls.name), app.data_dir)

    @abstractmethod
    async def prepare(self, cue: Cue) -> None:
        """Everything that can be done before the instant (rendering a clip, loading media). Idempotent."""

    @abstractmethod
    async def air(self, cue: Cue) -> AiredResult:
        """Start at once and return when the program has finished; occupies the channel meanwhile.

        Raises OutputError on failure; asyncio.CancelledError means the airing was cut (shutdown)."""

    async def close(self) -> None:
        """Release connections and processes."""
