"""TTS engines, one file each. A file registers its engine with @register; nothing else lists them."""

from __future__ import annotations

from anchor.registry import Registry, UnknownName
from anchor.speech.engines.base import (
    EngineError,
    EngineSettings,
    SpeechEngine,
    SpokenAudio,
    UnknownVoice,
    VoiceInfo,
    WordTiming,
)

ENGINES: Registry[type[SpeechEngine]] = Registry(__name__, "engine")
register = ENGINES.register
engine_names = ENGINES.names
engine_type = ENGINES.get
UnknownEngine = UnknownName

__all__ = [
    "EngineError",
    "EngineSettings",
    "SpeechEngine",
    "SpokenAudio",
    "UnknownEngine",
    "UnknownVoice",
    "VoiceInfo",
    "WordTiming",
    "engine_names",
    "engine_type",
    "register",
]
