"""Interchangeable backends (TTS engines, outputs) found by name: each file in a package registers its class."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class UnknownName(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, package: str, kind: str) -> None:
        self.package = package
        self.kind = kind
        self._classes: dict[str, T] = {}
        self._loaded = False

    def register(self, cls: T) -> T:
        self._classes[cls.name] = cls
        return cls

    def _load_all(self) -> None:
        # Importing every module of the package runs its @register: a new backend is just a new file.
        if not self._loaded:
            path = importlib.import_module(self.package).__path__
            for module in pkgutil.iter_modules(path):
                if module.name != "base":
                    importlib.import_module(f"{self.package}.{module.name}")
            self._loaded = True

    def names(self) -> list[str]:
        self._load_all()
        return sorted(self._classes)

    def get(self, name: str) -> T:
        self._load_all()
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} '{name}': choose from {', '.join(self.names())}") from None
