"""The talking avatar: a folder of face frames (face.py) cut into a clip driven by the program audio (clip.py),
kept in the one clip cache every output shares (clips.py)."""

from __future__ import annotations

from typing import Any

from anchor.avatar.face import DEFAULT_AVATAR, Avatar, load_avatar

_FROM_CLIP = ("ClipError", "ClipReport", "render_talking_clip")


def __getattr__(name: str) -> Any:
    # The renderer (numpy, ffmpeg) loads on first use: checking a channel's avatar needs only face.py.
    if name in _FROM_CLIP:
        from anchor.avatar import clip

        return getattr(clip, name)
    raise AttributeError(name)


__all__ = ["Avatar", "DEFAULT_AVATAR", "load_avatar", *_FROM_CLIP]
