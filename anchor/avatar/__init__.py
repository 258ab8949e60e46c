"""The talking avatar: a folder of face frames (face.py) cut into a clip driven by the program audio (clip.py)."""

from __future__ import annotations

from anchor.avatar.clip import ClipError, ClipReport, render_talking_clip
from anchor.avatar.face import DEFAULT_AVATAR, Avatar, load_avatar

__all__ = ["Avatar", "ClipError", "ClipReport", "DEFAULT_AVATAR", "load_avatar", "render_talking_clip"]
