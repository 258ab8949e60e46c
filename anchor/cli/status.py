"""`anchor status`: one screen from the running daemon — on air now and next on every channel, each live
room's and output's state — asked over its loopback HTTP port."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from anchor.cli.common import AsJson, Failed, channel_time, settings
from anchor.wording import count

ASK_TIMEOUT = 3.0


def _address(host: str, port: int, data_dir_note: str | None) -> str:
    if port:
        return f"{host}:{port}"
    if data_dir_note:
        return str(json.loads(data_dir_note)["http"])
    raise Failed("[daemon] http_port is 0 and no daemon has noted its port: is `anchor run` running?")


def _on_clocks(state: dict[str, Any], institution: tzinfo) -> dict[str, Any]:
    """The daemon's answer with each time on its channel's clock (the daemon's own on the institution's), as
    `anchor plan --json` shows them: ISO 8601 with the offset."""
    def moved(text: str, zone: tzinfo) -> str:
        return datetime.fromisoformat(text).astimezone(zone).isoformat()

    channels = []
    for channel in state["channels"]:
        zone = ZoneInfo(channel["timezone"])
        now, following = channel["on_air"], channel["next"]
        channels.append({**channel, "on_air": now and {**now, "since": moved(now["since"], zone)},
                         "next": following and {**following, "at": moved(following["at"], zone)}})
    return {**state, "now": moved(state["now"], institution), "channels": channels}


def _shown(text: str, timespec: str = "seconds") -> str:
    """A time of _on_clocks' document, shown on the clock it is already on."""
    instant = datetime.fromisoformat(text)
    return channel_time(instant, instant.tzinfo or UTC, timespec)


def _lines(address: str, state: dict[str, Any]) -> list[str]:
    lines = [f"anchor at {address}, {count(len(state['channels']), 'channel')}, {_shown(state['now'])}"]
    for channel in state["channels"]:
        lines += ["", f"{channel['id']}  {channel['name']}"]
        now = channel["on_air"]
        if now:
            lines.append(f"  ON AIR  {now['script']}  (slot {now['slot']}, since {_shown(now['since'])})")
        else:
            lines.append("  off air")
        following = channel["next"]
        if following:
            lines.append(f"  next    {following['script']}  (slot {following['slot']}, "
                         f"{_shown(following['at'], 'minutes')})")
    rooms = state["rooms"]
    lines += ["", "live rooms" if rooms else "live rooms: none configured"]
    for room in rooms:
        standing = "connected" if room["connected"] else f"DOWN (last drop: {room['last_drop'] or 'none yet'})"
        lines.append(f"  {room['channel']}/{room['room']}  {room['platform']}  {standing}")
    lines += ["", "outputs"]
    for output in state["outputs"]:
        extra = ""
        if "connected" in output:
            extra = "  connected" if output["connected"] else f"  NOT CONNECTED ({output.get('last_error')})"
        if output.get("streaming") is not None:
            extra += ("  streaming: live" if output["streaming"] else "  streaming: NOT LIVE") + (
                " (reconnecting)" if output.get("stream_reconnecting") else "")
        lines.append(f"  {output['output']}{extra}")
    return lines


def status(as_json: AsJson = False) -> None:
    """What the running daemon has on air now and next, and how its live rooms and outputs are."""
    import urllib.error
    import urllib.request

    from anchor.cli.jsonout import write_json_document
    from anchor.cli.tables import fold, terminal_width

    app_settings = settings()
    daemon = app_settings.daemon
    note = app_settings.data_dir / "daemon.json"
    address = _address(daemon.http_host, daemon.http_port, note.read_text(encoding="utf-8") if note.exists() else None)
    try:
        with urllib.request.urlopen(f"http://{address}/status", timeout=ASK_TIMEOUT) as answer:
            state = _on_clocks(json.loads(answer.read()), app_settings.daemon.zone)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Failed(f"no daemon answers at http://{address}/status ({exc}): is `anchor run` running?") from None
    if as_json:
        write_json_document(state)
        return
    width = terminal_width()  # a long line folds between words, under its own indent and then some
    sys.stdout.write("".join(f"{part}\n" for line in _lines(address, state)
                             for part in fold(line, width, " " * (len(line) - len(line.lstrip()) + 4))))
