"""Secrets (OBS passwords, platform keys, signing keys): from the environment or a credentials file, never TOML.

A secret named `obs-password` for the thing `studio` is looked up as, in order:
  1. the environment variable ANCHOR_OBS_PASSWORD_STUDIO;
  2. $CREDENTIALS_DIRECTORY/obs-password-studio (systemd LoadCredential=);
  3. $CREDENTIALS_DIRECTORY/obs-password (one secret shared by every such thing).
Each file is also found with the prefix `anchor_`: the shipped unit loads the folder /etc/anchor/credentials
whole (`LoadCredential=anchor:/etc/anchor/credentials`), and systemd names each file of a folder
`<id>_<file>`, so a site puts there only the secrets it uses.
Empty values count as absent; a file's trailing newline is dropped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SAFE_FILE_PART = re.compile(r"[A-Za-z0-9._-]+")
# The id of the unit's folder load (systemd/anchor.service): its files arrive as anchor_<file>.
FOLDER_CREDENTIAL_PREFIX = "anchor_"


class CredentialError(Exception):
    """A credentials file exists but cannot be read; the message names it."""


def env_name(secret: str, owner: str) -> str:
    """ANCHOR_<SECRET>_<OWNER>: upper case, every character other than A-Z and 0-9 becomes _."""
    return "ANCHOR_" + re.sub(r"[^A-Za-z0-9]", "_", f"{secret}_{owner}").upper()


def credential_file_name(secret: str, owner: str) -> str:
    return f"{secret}-{owner}"


def find_secret(secret: str, owner: str) -> str | None:
    """The secret `secret` of `owner` (see the module's order), or None when nothing is configured."""
    value = os.environ.get(env_name(secret, owner))
    if value:
        return value
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    files = [secret]
    if _SAFE_FILE_PART.fullmatch(owner) and owner not in (".", ".."):  # a name never becomes a path
        files.insert(0, credential_file_name(secret, owner))
    for file_name in (name for plain in files for name in (plain, FOLDER_CREDENTIAL_PREFIX + plain)):
        path = Path(directory) / file_name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CredentialError(f"cannot read the {secret} for '{owner}' from {path}: {reason}") from None
        value = text.rstrip("\r\n")
        if value:
            return value
    return None
