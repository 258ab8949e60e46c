"""The one interface every live-room platform implements: run until stopped, hand each event over.

A source keeps itself connected (reconnecting with capped backoff, restarting a platform session when the
platform ends it) and reports its state through the callbacks it is given; it never raises out of run()
for a network failure. Secrets come from anchor.credentials, never from the channel file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from anchor.audience.interaction import Interaction


class RoomSettings(BaseModel):
    """A [[room]] table of a channel file; each platform adds its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str
    name: str = ""  # how metrics and logs name the room (default: the platform)


class SourceError(Exception):
    """A room that cannot be used as configured (a missing secret, a bad setting); the message says how."""


Emit = Callable[[Interaction], None]


class RoomState:
    """What a source tells about its connection; the audience stage turns it into metrics."""

    def connected(self, up: bool) -> None:
        """The room's feed is (or is no longer) live."""

    def reconnecting(self, reason: str) -> None:
        """The feed dropped for `reason` (a short fixed word: closed, silent, ended, refused, error …)."""


class RoomSource(ABC):
    name: ClassVar[str]  # the platform, as channel files write it
    Settings: ClassVar[type[RoomSettings]] = RoomSettings

    def __init__(self, channel: str, settings: RoomSettings) -> None:
        self.channel = channel
        self.settings = settings

    @property
    def room(self) -> str:
        return self.settings.name or self.name

    @abstractmethod
    async def run(self, emit: Emit, state: RoomState) -> None:
        """Receive events until cancelled, calling `emit` for each Interaction (on the event loop)."""
