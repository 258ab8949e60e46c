"""Where a Program airs. Every output implements this one interface; channels name theirs in TOML."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:  # the clip maker (and asyncio) loads with the first airing, not with every settings check
    from anchor.avatar.clips import ClipPicture, ClipRequest, LowerThird
    from anchor.config import OutputRef
    from anchor.config import Settings as AppSettings
    from anchor.program import Program


class OutputSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Dead air: sound below this level for longer than this many seconds, while a program is on air.
    dead_air_dbfs: float = Field(-50.0, ge=-90, le=-10)
    dead_air_seconds: float = Field(5.0, ge=0.5, le=120)


_HEX_COLOUR = re.compile(r"^(?:0x|#)([0-9a-fA-F]{6})$")


class ClipOutputSettings(OutputSettings):
    """The picture of an output that airs the talking-avatar clip: frame, rate, font, background."""

    width: int = 640
    height: int = 360
    fps: int = 25
    font: str = "WenQuanYi Micro Hei"  # a fontconfig family name; Debian: fonts-wqy-microhei
    background: str = "0x1d3557"

    @field_validator("width", "height")
    @classmethod
    def _frame_size(cls, value: int) -> int:
        if not 160 <= value <= 3840:
            raise ValueError("a frame side must be between 160 and 3840 pixels")
        if value % 2:
            raise ValueError(f"must be even: H.264 in yuv420p needs even sizes (try {value - 1} or {value + 1})")
        return value

    @field_validator("fps")
    @classmethod
    def _frame_rate(cls, value: int) -> int:
        if not 1 <= value <= 60:
            raise ValueError("fps must be between 1 and 60")
        return value

    @field_validator("font")
    @classmethod
    def _font_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("font must name a font family, e.g. \"WenQuanYi Micro Hei\"")
        if any(ch in value for ch in ",=") or any(ord(ch) < 32 for ch in value):
            raise ValueError("font must be one family name, without ',' or '='")
        return value

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        match = _HEX_COLOUR.match(value.strip())
        if not match:
            raise ValueError("background must be a colour written 0xRRGGBB or #RRGGBB, e.g. 0x1d3557")
        return "0x" + match.group(1).lower()

    def picture(self, *, subtitles: bool, lower_third: LowerThird | None) -> ClipPicture:
        from anchor.avatar.clips import ClipPicture

        return ClipPicture(self.width, self.height, self.fps, self.background, subtitles, self.font, lower_third)


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

    @property
    def label(self) -> str:
        """How log lines name this airing: channel and slot."""
        return f"channel {self.channel_id} slot {self.slot}"

    @property
    def clip_request(self) -> ClipRequest:
        from anchor.avatar.clips import ClipRequest

        return ClipRequest(self.program.key, self.program.files, self.program.script)

    @property
    def lower_third(self) -> LowerThird:
        from anchor.avatar.clips import LowerThird

        return LowerThird(self.channel_name, self.program.title)


class Rung(str, Enum):
    """How an airing went out: a failing part steps it down one rung, never off the air."""

    CLIP = "clip"  # the talking avatar, its lower third and subtitles
    STILL = "still"  # the program audio over a still picture
    AUDIO = "audio"  # the program audio alone


@dataclass(frozen=True)
class Degradation:
    reason: str  # a fixed word, for metrics: font, ffmpeg, avatar, render, disk, late
    detail: str  # what exactly, for the log and the as-run row


@dataclass
class AiredResult:
    started_at: datetime  # when the output really started the program (aware, UTC)
    ended_at: datetime
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"file": "/…/0900-morning.mp4"}
    rung: Rung = Rung.CLIP
    degraded: Degradation | None = None  # why it went out below the top rung
    dead_air_seconds: float = 0.0  # silent stretches longer than the bound, measured on what went out


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
    def settings_from(cls, app: AppSettings) -> OutputSettings:
        """This output's [outputs.NAME] table, validated by its own model."""
        return cls.Settings.model_validate(app.outputs.get(cls.name, {}))

    @classmethod
    def create(cls, app: AppSettings, ref: OutputRef) -> Output:
        """The output for a channel's `output = "kind:target"`; kinds needing more than their table override."""
        return cls(cls.settings_from(app), app.data_dir)

    @abstractmethod
    async def prepare(self, cue: Cue) -> None:
        """Everything that can be done before the instant (rendering a clip, loading media). Idempotent."""

    # Seconds between asking the output to start and it really starting; the Station starts this early.
    preroll: float = 0.0

    async def cue_up(self, cue: Cue) -> None:
        """In the last seconds before the instant: everything but the start itself (load, title, scene)."""

    @abstractmethod
    async def air(self, cue: Cue) -> AiredResult:
        """Start at once and return when the program has finished; occupies the channel meanwhile.

        Raises OutputError on failure; asyncio.CancelledError means the airing was cut (shutdown)."""

    async def close(self) -> None:
        """Release connections and processes."""

    def health(self) -> dict[str, object]:
        """What `anchor status` shows of this output (OBS: connected, its last error…); nothing by default."""
        return {}
