"""What `anchor obs status` reports about one OBS and the channels' scenes in it. Changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anchor.outputs.obs.connection import ObsConnection
from anchor.outputs.obs.errors import ObsRequestError
from anchor.outputs.obs.scene import input_name, scene_name


@dataclass(frozen=True)
class ChannelSceneStatus:
    channel: str
    scene: str
    exists: bool
    on_program: bool
    media: str | None  # the program source's state, e.g. "stopped", "playing"


@dataclass(frozen=True)
class ObsStatus:
    obs_version: str | None
    websocket_version: str | None
    program_scene: str | None
    channels: list[ChannelSceneStatus]
    stats: dict[str, Any]  # GetStats
    stream: dict[str, Any]  # GetStreamStatus
    record: dict[str, Any]  # GetRecordStatus


async def obs_status(conn: ObsConnection, channel_ids: list[str]) -> ObsStatus:
    """Ask a connected OBS about itself and about these channels' scenes."""
    call = conn.call
    program = (await call("GetCurrentProgramScene")).get("currentProgramSceneName")
    scenes = {s["sceneName"] for s in (await call("GetSceneList"))["scenes"]}
    channels = []
    for channel_id in channel_ids:
        scene = scene_name(channel_id)
        media: str | None = None
        if scene in scenes:
            try:
                answer = await call("GetMediaInputStatus", inputName=input_name(channel_id, "program"))
                media = str(answer.get("mediaState") or "unknown").removeprefix("OBS_MEDIA_STATE_").lower()
            except ObsRequestError as exc:
                media = f"unavailable ({exc.comment or exc.code})"
        channels.append(ChannelSceneStatus(channel_id, scene, scene in scenes, program == scene, media))
    return ObsStatus(conn.obs_version, conn.websocket_version, program, channels, await call("GetStats"),
                     await call("GetStreamStatus"), await call("GetRecordStatus"))
