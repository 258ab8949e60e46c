"""A channel's scene in OBS, `anchor·<channel>`: what it holds, where each part goes, and how it is built.

The scene holds only inputs named `anchor·<channel>·<role>`, bottom to top: a background colour, the idle
avatar (mouth_closed.png, or idle.mp4 looping), the program media source (the talking clip, without text),
the lower third (a band, the channel's name, the program's title) and the subtitle line. Nothing else in OBS
is touched. provision() is idempotent: it creates what is missing, fixes what differs, and sends settings
only when they changed (a media source restarts on every update).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anchor.avatar.face import Avatar

if TYPE_CHECKING:
    from anchor.outputs.obs.connection import ObsConnection
    from anchor.outputs.obs.settings import ObsOutputSettings

log = logging.getLogger(__name__)

SEP = "·"
ROLES = ("background", "idle", "program", "band", "name", "title", "subtitle")  # bottom to top
TEXT_ROLES = ("name", "title", "subtitle")
BAND_TOP = 0.66  # the lower third's band, as fractions of the canvas height: above the subtitle line
BAND_HEIGHT = 0.14
BAND_WIDTH = 0.62


def scene_name(channel_id: str) -> str:
    return f"anchor{SEP}{channel_id}"


def input_name(channel_id: str, role: str) -> str:
    return f"anchor{SEP}{channel_id}{SEP}{role}"


@dataclass
class ChannelScene:
    """One channel's scene in one OBS: its names, and the scene item ids the last provisioning found."""

    channel_id: str
    avatar: Avatar | None  # None: its frames cannot be read; the scene shows the background alone
    items: dict[str, int] = field(default_factory=dict)  # role → sceneItemId, in the current OBS

    @property
    def name(self) -> str:
        return scene_name(self.channel_id)

    def input(self, role: str) -> str:
        return input_name(self.channel_id, role)


def abgr(rgb: str, alpha: int = 0xFF) -> int:
    """0xRRGGBB → OBS's 0xAABBGGRR."""
    value = int(rgb, 16)
    r, g, b = (value >> 16) & 255, (value >> 8) & 255, value & 255
    return (alpha << 24) | (b << 16) | (g << 8) | r


def _contains(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Every wanted setting already has that value (nested tables compared the same way)."""
    for key, value in wanted.items():
        have = current.get(key)
        if isinstance(value, dict):
            if not isinstance(have, dict) or not _contains(have, value):
                return False
        elif have != value:
            return False
    return True


def input_settings(scene: ChannelScene, settings: ObsOutputSettings, width: int,
                   height: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """role → (input kind, settings) for a canvas of width × height."""
    avatar = scene.avatar
    idle: tuple[str, dict[str, Any]]
    if avatar is not None and avatar.idle is not None:
        idle = ("ffmpeg_source", {"local_file": str(avatar.idle), "is_local_file": True, "looping": True,
                                  "restart_on_activate": True, "close_when_inactive": False})
    else:
        idle = ("image_source", {"file": str(avatar.mouths[0]) if avatar is not None else ""})

    def text(size: int) -> dict[str, Any]:
        return {"font": {"face": settings.font, "size": size, "style": "Regular", "flags": 0},
                "color1": 0xFFFFFFFF, "color2": 0xFFFFFFFF, "outline": True, "drop_shadow": False}

    return {
        "background": ("color_source_v3", {"color": abgr(settings.background), "width": width, "height": height}),
        "idle": idle,
        "program": ("ffmpeg_source", {"is_local_file": True, "looping": False, "restart_on_activate": False,
                                      "close_when_inactive": False, "clear_on_media_end": True}),
        "band": ("color_source_v3", {"color": abgr("0x000000", 0x8C), "width": round(width * BAND_WIDTH),
                                     "height": round(height * BAND_HEIGHT)}),
        "name": ("text_ft2_source_v2", text(settings.name_size)),
        "title": ("text_ft2_source_v2", text(settings.title_size)),
        "subtitle": ("text_ft2_source_v2", text(settings.subtitle_size)),
    }


def transforms(settings: ObsOutputSettings, width: int, height: int) -> dict[str, dict[str, Any]]:
    """role → its scene item transform on a canvas of width × height."""
    whole = {"positionX": 0.0, "positionY": 0.0, "alignment": 5, "boundsType": "OBS_BOUNDS_SCALE_INNER",
             "boundsWidth": float(width), "boundsHeight": float(height)}
    band_top, band_height = height * BAND_TOP, height * BAND_HEIGHT
    left = width * 0.03
    text_width = width * (BAND_WIDTH - 0.05)
    return {
        "background": {"positionX": 0.0, "positionY": 0.0, "alignment": 5, "boundsType": "OBS_BOUNDS_STRETCH",
                       "boundsWidth": float(width), "boundsHeight": float(height), "boundsAlignment": 0},
        # Like the clip's layout: fitted, centred, standing on the bottom edge.
        "idle": {**whole, "boundsAlignment": 8},
        "program": {**whole, "boundsAlignment": 0},
        # The lower third: a band over the presenter's shoulder, the name above the title, shrunk to fit.
        "band": {"positionX": 0.0, "positionY": band_top, "alignment": 5, "boundsType": "OBS_BOUNDS_NONE"},
        "name": {"positionX": left, "positionY": band_top + band_height * 0.08, "alignment": 5,
                 "boundsType": "OBS_BOUNDS_MAX_ONLY", "boundsWidth": text_width,
                 "boundsHeight": float(settings.name_size * 1.6), "boundsAlignment": 5},
        "title": {"positionX": left, "positionY": band_top + band_height * 0.42, "alignment": 5,
                  "boundsType": "OBS_BOUNDS_MAX_ONLY", "boundsWidth": text_width,
                  "boundsHeight": float(settings.title_size * 1.6), "boundsAlignment": 5},
        # Centred on a point; long lines are shrunk to fit 92 % of the width.
        "subtitle": {"positionX": width / 2, "positionY": height * settings.subtitle_y, "alignment": 0,
                     "boundsType": "OBS_BOUNDS_MAX_ONLY", "boundsWidth": width * 0.92,
                     "boundsHeight": float(settings.subtitle_size * 3), "boundsAlignment": 0},
    }


async def canvas_size(conn: ObsConnection) -> tuple[int, int]:
    video = await conn.call("GetVideoSettings")
    return int(video["baseWidth"]), int(video["baseHeight"])


async def provision(conn: ObsConnection, scene: ChannelScene, settings: ObsOutputSettings) -> list[tuple[str, str]]:
    """Create what is missing of the channel's scene and put our own inputs in order. Idempotent.
    Returns what was done, as (scene or input name, action) pairs."""
    call = conn.call
    done: list[tuple[str, str]] = []
    width, height = await canvas_size(conn)
    scenes = {s["sceneName"] for s in (await call("GetSceneList"))["scenes"]}
    if scene.name not in scenes:
        await call("CreateScene", sceneName=scene.name)
        done.append((scene.name, "created"))
    else:
        done.append((scene.name, "already there"))
    existing = {i["inputName"]: i["inputKind"] for i in (await call("GetInputList"))["inputs"]}
    items = {i["sourceName"]: i for i in (await call("GetSceneItemList", sceneName=scene.name))["sceneItems"]}
    wanted = input_settings(scene, settings, width, height)
    placed = transforms(settings, width, height)
    scene.items.clear()
    for role in ROLES:
        name = scene.input(role)
        kind, role_settings = wanted[role]
        replaced = False
        if name in existing and existing[name] != kind:
            replaced = True
            await call("RemoveInput", inputName=name)  # ours, by name; the wrong kind (idle.mp4 added)
            existing.pop(name)
            items.pop(name, None)
        enabled = role != "program"
        if name not in existing:
            answer = await call("CreateInput", sceneName=scene.name, inputName=name, inputKind=kind,
                                inputSettings=role_settings, sceneItemEnabled=enabled)
            item_id = int(answer["sceneItemId"])
            done.append((name, f"replaced ({kind})" if replaced else "created"))
        else:
            actions = []
            current = (await call("GetInputSettings", inputName=name))["inputSettings"]
            if not _contains(current, role_settings):  # an update restarts a media source: only when needed
                await call("SetInputSettings", inputName=name, inputSettings=role_settings, overlay=True)
                actions.append("settings updated")
            if name in items:
                item_id = int(items[name]["sceneItemId"])
            else:
                answer = await call("CreateSceneItem", sceneName=scene.name, sourceName=name,
                                    sceneItemEnabled=enabled)
                item_id = int(answer["sceneItemId"])
                actions.append("added to the scene")
            done.append((name, ", ".join(actions) or "already there"))
        scene.items[role] = item_id
        await call("SetSceneItemTransform", sceneName=scene.name, sceneItemId=item_id,
                   sceneItemTransform=placed[role])
    for index, role in enumerate(ROLES):  # bottom (0) to top; anything else someone added stays above
        await call("SetSceneItemIndex", sceneName=scene.name, sceneItemId=scene.items[role], sceneItemIndex=index)
    log.info("OBS '%s': scene %s provisioned", conn.name, scene.name)
    return done


async def set_text(conn: ObsConnection, scene: ChannelScene, role: str, text: str) -> None:
    await conn.call("SetInputSettings", inputName=scene.input(role), inputSettings={"text": text}, overlay=True)


async def show(conn: ObsConnection, scene: ChannelScene, role: str, enabled: bool) -> None:
    await conn.call("SetSceneItemEnabled", sceneName=scene.name, sceneItemId=scene.items[role],
                    sceneItemEnabled=enabled)
