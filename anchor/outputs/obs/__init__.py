"""The OBS Studio output, one file per job: client.py (the blocking obs-websocket client), connection.py (one
supervised connection), scene.py (a channel's scene), playback.py (its program media source), stats.py
(health metrics), status.py (what `anchor obs status` reports), settings.py ([outputs.obs]) and output.py (the
Output itself)."""

from anchor.outputs.obs.output import ObsOutput
from anchor.outputs.obs.settings import ObsOutputSettings

__all__ = ["ObsOutput", "ObsOutputSettings"]
