"""One event from a live room, in one model whatever the platform: what happened, how much, when.

Viewers appear only as salted hashes (China's Personal Information Protection Law: keep no more than
the purpose needs); names never reach this model, and a comment's text only when its channel asks to
keep texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Kind(str, Enum):
    COMMENT = "comment"
    GIFT = "gift"
    SUPERCHAT = "superchat"
    GUARD = "guard"
    LIKE = "like"
    ENTER = "enter"
    FOLLOW = "follow"
    SHARE = "share"
    VIEWERS = "viewers"  # a count of viewers now, not an event of one viewer
    LIVE_START = "live_start"
    LIVE_END = "live_end"


@dataclass(frozen=True)
class Interaction:
    channel: str
    room: str  # the [[room]] it came through (its name in the channel file)
    platform: str  # bilibili, douyin, webhook …
    kind: Kind
    at: datetime  # aware UTC: when the platform says it happened
    count: int = 1  # likes in one event, gifts of one kind, viewers now
    value_cny: float = 0.0  # what gifts, super chats and guards cost, in yuan
    viewer: str | None = None  # salted hash of the platform's viewer id, never the id itself
    event_id: str | None = None  # the platform's id for the event, to drop repeats
    text: str | None = None  # comment text, kept only when the channel asks for it
