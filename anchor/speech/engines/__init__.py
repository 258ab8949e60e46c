"""TTS engines, one file each. A file registers its engine with @register; nothing else lists them."""

from __future__ import annotations

import importlib
import pkgutil

from anchor.speech.engines.base import (
    EngineError,
    EngineSettings,
    SpeechEngine,
    SpokenAudio,
    UnknownVoice,
    VoiceInfo,
    WordTiming,
)

_REGISTRY: dict[str, type[SpeechEngine]] = {}
_loaded = False


def register(cls: type[SpeechEngine]) -> type[SpeechEngine]:
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            if module.name != "base":
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


class UnknownEngine(Exception):
    pass


def engine_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def engine_type(name: str) -> type[SpeechEngine]:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEngine(f"unknown engine '{name}': choose from {', '.join(sorted(_REGISTRY))}") from None


__all__ = [
    "EngineError", "EngineSettings", "SpeechEngine", "SpokenAudio", "UnknownVoice", "UnknownEngine",
    "VoiceInfo", "WordTiming", "register", "engine_names", "engine_type",
]
