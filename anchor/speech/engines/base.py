"""The one interface every TTS engine implements.

An engine's module is imported to validate its [speech.engines.NAME] table (`anchor check`, every command),
so it must stay light at import: its service library, numpy and the audio tools load when it speaks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # the script reader's regexes load with the first script, not with every settings check
    import numpy as np

    from anchor.config import Settings as AppSettings
    from anchor.content import Prosody
    from anchor.speech.reading import SpeechText


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class WordTiming:
    text: str
    start: float  # seconds from the start of the sentence's audio
    end: float


@dataclass
class SpokenAudio:
    """One synthesized sentence: mono 16-bit samples and, where the engine gives them, word timings."""

    samples: np.ndarray
    sample_rate: int
    words: list[WordTiming] = field(default_factory=list)



@dataclass(frozen=True)
class VoiceInfo:
    name: str
    language: str
    gender: str = ""
    description: str = ""
    other_languages: tuple[str, ...] = ()  # more tags it speaks (espeak's cmn voice also says zh, zh-cmn)

    def matches_language(self, wanted: str) -> bool:
        """Whether the voice speaks `wanted`, given as a tag or its start: zh, zh-CN, cmn, en."""
        wanted = wanted.lower()
        for tag in (self.language, *self.other_languages):
            tag = tag.lower()
            if tag.startswith(wanted) or wanted.startswith(tag + "-"):
                return True
        return False


class EngineError(Exception):
    """A failed request. `transient` errors are worth retrying; others skip straight to the next engine.
    `unreachable`: the service cannot be reached from this PC at all (its name does not resolve), so every
    request would fail alike: the engine's breaker opens at once instead of after several programs."""

    def __init__(self, reason: str, transient: bool = True, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient and not unreachable
        self.unreachable = unreachable


class UnknownVoice(Exception):
    pass


class SpeechEngine(ABC):
    name: ClassVar[str]
    # With word timings, long sentences are synthesized whole and subtitle lines are cut at words;
    # without, each subtitle line is synthesized on its own so its timing is exact.
    word_timing: ClassVar[bool] = False
    max_concurrency: ClassVar[int] = 2
    Settings: ClassVar[type[EngineSettings]] = EngineSettings

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    @classmethod
    def settings_from(cls, app: AppSettings) -> EngineSettings:
        """This engine's [speech.engines.NAME] table, validated by its own model."""
        return cls.Settings.model_validate(app.speech.engines.get(cls.name, {}))

    @classmethod
    def create(cls, app: AppSettings) -> SpeechEngine:
        return cls(cls.settings_from(app))

    @abstractmethod
    async def resolve_voice(self, language: str, requested: str | None) -> str:
        """The voice to use: `requested` if this engine has it, else the default for `language`.

        Raises UnknownVoice when `requested` is not this engine's, or no voice speaks `language`."""

    @abstractmethod
    async def synthesize(self, text: str, voice: str, prosody: Prosody) -> SpokenAudio:
        """Speak one sentence. Raises EngineError."""

    @abstractmethod
    async def list_voices(self) -> list[VoiceInfo]:
        """Every voice; raises EngineError when the list cannot be had."""

    def reads(self, text: SpeechText, voice: str) -> str:
        """What this engine is given to say with `voice`: by default the text in words (numbers, units and
        codes spelled out), which a neural voice reads as written."""
        return text.said

    def owns_voice_name(self, voice: str) -> bool:
        """Whether a voice name looks like this engine's (no I/O): picks the engine a script's voice is for."""
        return False


def language_lookup(table: dict[str, str], language: str) -> str | None:
    """Exact tag first, then the primary subtag: zh-CN → zh."""
    lowered = {k.lower(): v for k, v in table.items()}
    return lowered.get(language.lower()) or lowered.get(language.split("-")[0].lower())
