"""Interchangeable backends (TTS engines, outputs) found by name: each is one module (or sub-package) of a
package, named after the backend (edge.py is the engine "edge", obs/ the output "obs"), registering its
class with @register.

Names come from the file names, so validating a setting imports nothing; a backend's module (and its
libraries: edge-tts, numpy, the OBS client) is imported only when that backend is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import ClassVar, Generic, Protocol, TypeVar


class Backend(Protocol):
    name: ClassVar[str]


T = TypeVar("T", bound=type[Backend])


class UnknownName(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, package: str, kind: str, not_backends: tuple[str, ...] = ()) -> None:
        self.package = package
        self.kind = kind
        self.not_backends = {"base", *not_backends}  # modules of the package that are helpers, not backends
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        home = f"{self.package}.{cls.name}"
        if cls.__module__ != home and not cls.__module__.startswith(home + "."):
            raise TypeError(f"{self.kind} '{cls.name}' must live in {home}, not {cls.__module__}")
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        path = importlib.import_module(self.package).__path__
        return sorted(m.name for m in pkgutil.iter_modules(path) if m.name not in self.not_backends)

    def get(self, name: str) -> T:
        if name not in self._classes:
            if name not in self.names():
                raise UnknownName(f"unknown {self.kind} '{name}': choose from {', '.join(self.names())}")
            importlib.import_module(f"{self.package}.{name}")
        return self._classes[name]
