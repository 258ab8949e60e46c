"""The one interface every live-room platform implements: run until stopped, hand each event over.

A source keeps itself connected (reconnecting with capped backoff, restarting a platform session when the
platform ends it) and reports its state through the callbacks it is given; it never raises out of run()
for a network failure. Secrets come from anchor.credentials, never from the channel file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from anchor.audience.interaction import Interaction
from anchor.credentials import CredentialError, env_name, find_secret

if TYPE_CHECKING:
    from anchor.audience.webhook_server import WebhookServer

log = logging.getLogger(__name__)
SECRET_VIEWER_SALT = "viewer-salt"


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
        self.where = f"channel {channel} room {self.room}"
        salt = self.optional_secret(SECRET_VIEWER_SALT)
        if salt is None:
            log.info("%s: no %s configured (%s): viewer hashes hold until the daemon restarts", self.where,
                     SECRET_VIEWER_SALT, env_name(SECRET_VIEWER_SALT, self.room))
        self._salt = (salt or secrets.token_hex(32)).encode()

    @property
    def room(self) -> str:
        return self.settings.name or self.name

    def optional_secret(self, secret: str) -> str | None:
        """This room's `secret` from the environment or the credentials directory (anchor.credentials)."""
        try:
            return find_secret(secret, self.room)
        except CredentialError as exc:
            raise SourceError(f"{self.where}: {exc}") from None

    def required_secret(self, secret: str, what: str) -> str:
        """This room's `secret`, or SourceError saying where to put it."""
        value = self.optional_secret(secret)
        if value is None:
            raise SourceError(f"{self.where}: {what} is not set: set the environment variable "
                              f"{env_name(secret, self.room)} or the credential file {secret}-{self.room} "
                              f"(or {secret}) in $CREDENTIALS_DIRECTORY")
        return value

    def attach_http(self, server: WebhookServer) -> None:
        """The daemon's HTTP server, for a platform that pushes its events (webhook); others ignore it."""

    def viewer_hash(self, viewer_id: str) -> str:
        """The salted hash that stands for a viewer; the platform's id itself is never kept (PIPL)."""
        return hmac.new(self._salt, viewer_id.encode(), hashlib.sha256).hexdigest()[:32]

    @abstractmethod
    async def run(self, emit: Emit, state: RoomState) -> None:
        """Receive events until cancelled, calling `emit` for each Interaction (on the event loop)."""
