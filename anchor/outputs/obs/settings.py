"""[outputs.obs]: the clip OBS airs and its live text sources. Light to import: checking the table must not
load the websocket client."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from anchor.credentials import env_name
from anchor.outputs.base import ClipOutputSettings

PASSWORD = "obs-password"  # the secret's name: ANCHOR_OBS_PASSWORD_<NAME> or the credential obs-password-<name>


class ObsOutputSettings(ClipOutputSettings):
    """[outputs.obs]: the clip's picture (width, height, fps, font, background) plus the live text sources."""

    subtitle_size: int = Field(28, ge=8, le=400)
    subtitle_y: float = Field(0.9, ge=0.0, le=1.0)  # centre of the subtitle line, as a fraction of the height
    title_size: int = Field(26, ge=8, le=400)
    name_size: int = Field(18, ge=8, le=400)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("the OBS password never goes in anchor.toml: set ANCHOR_OBS_PASSWORD_<NAME> (e.g. "
                             f"{env_name(PASSWORD, 'studio')}) or a credentials file obs-password-<name> "
                             "(systemd LoadCredential=)")
        return data
