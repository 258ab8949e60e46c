"""`anchor status`: one screen from the running daemon — on air now and next on every channel, each live
room's and output's state — asked over its loopback HTTP port."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from anchor.cli.common import Failed, channel_time, out, settings

ASK_TIMEOUT = 3.0


def _address(host: str, port: int, data_dir_note: str | None) -> str:
    if port:
        return f"{host}:{port}"
    if data_dir_note:
        return str(json.loads(data_dir_note)["http"])
    raise Failed("[daemon] http_port is 0 and no daemon has noted its port: is `anchor run` running?")


def status() -> None:
    """What the running daemon has on air now and next, and how its live rooms and outputs are."""
    import urllib.error
    import urllib.request

    app_settings = settings()
    daemon = app_settings.daemon
    note = app_settings.data_dir / "daemon.json"
    address = _address(daemon.http_host, daemon.http_port, note.read_text(encoding="utf-8") if note.exists() else None)
    try:
        with urllib.request.urlopen(f"http://{address}/status", timeout=ASK_TIMEOUT) as answer:
            state = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failed(f"no daemon answers at http://{address}/status ({exc}): is `anchor run` running?") from None
    lines = [f"anchor at {address}, {len(state['channels'])} channels, "
             f"{channel_time(datetime.fromisoformat(state['now']), None)}"]
    for channel in state["channels"]:
        zone = ZoneInfo(channel["timezone"])
        lines.append(f"\n{channel['id']}  {channel['name']}")
        now = channel["on_air"]
        if now:
            since = channel_time(datetime.fromisoformat(now["since"]), zone)
            lines.append(f"  ON AIR  {now['script']}  (slot {now['slot']}, since {since})")
        else:
            lines.append("  off air")
        following = channel["next"]
        if following:
            lines.append(f"  next    {following['script']}  (slot {following['slot']}, "
                         f"{channel_time(datetime.fromisoformat(following['at']), zone, 'minutes')})")
    rooms = state["rooms"]
    lines.append("\nlive rooms" if rooms else "\nlive rooms: none configured")
    for room in rooms:
        standing = "connected" if room["connected"] else f"DOWN (last drop: {room['last_drop'] or 'none yet'})"
        lines.append(f"  {room['channel']}/{room['room']}  {room['platform']}  {standing}")
    lines.append("\noutputs")
    for output in state["outputs"]:
        extra = ""
        if "connected" in output:
            extra = "  connected" if output["connected"] else f"  NOT CONNECTED ({output.get('last_error')})"
        if output.get("streaming") is not None:
            extra += ("  streaming: live" if output["streaming"] else "  streaming: NOT LIVE") + (
                " (reconnecting)" if output.get("stream_reconnecting") else "")
        lines.append(f"  {output['output']}{extra}")
    out().print("\n".join(lines), highlight=False)
