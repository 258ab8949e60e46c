"""The live rooms: each channel's [[room]] tables as running sources. A room is started when a channel names
it, restarted when its table changes, stopped when no channel names it; its events go to the tally, its
connection to anchor_room_connected and anchor_room_reconnects_total. A room that cannot be built (a secret
not set) is reported and left out; the channel airs anyway."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from anchor.audience.interaction import Interaction, Kind
from anchor.audience.sources import SourceError, source_type
from anchor.audience.sources.base import RoomSettings, RoomSource, RoomState
from anchor.audience.tally import Tally
from anchor.audience.webhook_server import WebhookServer
from anchor.metrics import GIFT_VALUE, INTERACTIONS, ROOM_CONNECTED, ROOM_LAST_EVENT, ROOM_RECONNECTS
from anchor.registry import UnknownName
from anchor.schedule.channel import Channel

log = logging.getLogger(__name__)

REASONS = ("closed", "silent", "ended", "refused", "auth", "error")  # the words sources report drops with
COUNTED_KINDS = (Kind.COMMENT, Kind.GIFT, Kind.SUPERCHAT, Kind.GUARD, Kind.LIKE, Kind.ENTER, Kind.FOLLOW,
                 Kind.SHARE)
STOP_TIMEOUT = 5.0


def build_room(channel: Channel, table: dict[str, Any]) -> RoomSource:
    """The source a [[room]] table describes, checked; raises ValueError/SourceError/UnknownName saying why."""
    platform = str(table.get("platform", ""))
    kind = source_type(platform)
    model = kind.Settings
    values = dict(table)
    if "keep_comment_text" in model.model_fields and "keep_comment_text" not in values:
        values["keep_comment_text"] = channel.keep_comment_days > 0  # texts only for a channel keeping them
    settings: RoomSettings = model.model_validate(values)
    return kind(channel.id, settings)


class _State(RoomState):
    def __init__(self, channel: str, room: str) -> None:
        self.channel = channel
        self.room = room
        self.up = False
        self.last_reason = ""

    def connected(self, up: bool) -> None:
        self.up = up
        ROOM_CONNECTED.labels(self.channel, self.room).set(1 if up else 0)

    def reconnecting(self, reason: str) -> None:
        self.last_reason = reason
        ROOM_RECONNECTS.labels(self.channel, self.room, reason).inc()


@dataclass
class _Running:
    source: RoomSource
    state: _State
    task: asyncio.Task[None]
    signature: str  # the table as written: a change restarts the room


class Rooms:
    def __init__(self, tally: Tally, server: WebhookServer | None = None) -> None:
        self.tally = tally
        self.server = server
        self._running: dict[tuple[str, str], _Running] = {}

    async def use(self, channels: list[Channel]) -> None:
        wanted: dict[tuple[str, str], tuple[Channel, dict[str, Any]]] = {}
        for channel in channels:
            self.tally.keep_comment_days[channel.id] = channel.keep_comment_days
            for table in channel.rooms:
                room = str(table.get("name") or table.get("platform") or "room")
                wanted[(channel.id, room)] = (channel, table)
        for key in list(self._running):
            running = self._running[key]
            if key not in wanted or running.signature != json.dumps(wanted[key][1], sort_keys=True, default=str):
                await self._stop(key)
        for key, (channel, table) in wanted.items():
            if key not in self._running:
                self._start(key, channel, table)

    def _start(self, key: tuple[str, str], channel: Channel, table: dict[str, Any]) -> None:
        channel_id, room = key
        state = _State(channel_id, room)
        state.connected(False)  # known label sets start at zero
        ROOM_LAST_EVENT.labels(channel_id, room)
        for reason in REASONS:
            ROOM_RECONNECTS.labels(channel_id, room, reason)
        try:
            source = build_room(channel, table)
        except (SourceError, ValidationError, ValueError, UnknownName) as exc:
            log.error("channel %s room %s not started: %s", channel_id, room, exc)
            return
        if self.server is not None:  # rooms that are pushed to add their routes to the daemon's one server
            source.attach_http(self.server)
        for kind in COUNTED_KINDS:
            INTERACTIONS.labels(channel_id, source.name, kind.value)
        GIFT_VALUE.labels(channel_id, source.name)
        task = asyncio.create_task(self._run(source, state), name=f"room {channel_id}/{room}")
        self._running[key] = _Running(source, state, task, json.dumps(table, sort_keys=True, default=str))
        log.info("channel %s room %s (%s) started", channel_id, room, source.name)

    async def _run(self, source: RoomSource, state: _State) -> None:
        def emit(event: Interaction) -> None:
            self.tally.count(event)

        try:
            await source.run(emit, state)
        except asyncio.CancelledError:
            raise
        except Exception:  # a source must never take the daemon down; it is restarted by the next use()
            log.exception("channel %s room %s: its source stopped", state.channel, state.room)
        finally:
            state.connected(False)

    async def _stop(self, key: tuple[str, str]) -> None:
        running = self._running.pop(key)
        running.task.cancel()
        await asyncio.wait([running.task], timeout=STOP_TIMEOUT)
        log.info("channel %s room %s stopped", *key)

    async def stop(self) -> None:
        for key in list(self._running):
            await self._stop(key)

    def states(self) -> list[dict[str, object]]:
        """For `anchor status`: every room, connected or not, and its last trouble."""
        return [{"channel": channel, "room": room, "platform": running.source.name, "connected": running.state.up,
                 "last_drop": running.state.last_reason} for (channel, room), running in self._running.items()]
