"""Live-room platforms, one file each behind base.RoomSource; a file registers its source with @register."""

from __future__ import annotations

from anchor.audience.sources.base import RoomSettings, RoomSource, SourceError
from anchor.registry import Registry

SOURCES: Registry[type[RoomSource]] = Registry(__name__, "live-room platform")
register = SOURCES.register
source_type = SOURCES.get

__all__ = ["SOURCES", "RoomSettings", "RoomSource", "SourceError", "register", "source_type"]
