"""systemd integration without dependencies: sd_notify and the watchdog.

The protocol (sd_notify(3)) is one datagram of newline-separated "KEY=value" fields sent to the
AF_UNIX socket named by $NOTIFY_SOCKET. Outside systemd the variable is unset and every call is a no-op,
so the daemon runs the same under a terminal, a test, or the service manager.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

__all__ = ["notify", "watchdog_interval", "watchdog_loop"]


def _address(name: str) -> str:
    # A leading "@" names a socket in Linux's abstract namespace, whose real name starts with NUL.
    return "\0" + name[1:] if name.startswith("@") else name


def notify(*fields: str) -> bool:
    """Send `fields` (e.g. "READY=1", "STATUS=…") to systemd as one datagram.

    Returns True when the datagram was sent, False when not under systemd (NOTIFY_SOCKET unset) or when
    sending failed. Never raises on socket errors: a lost notification must not take the daemon down.
    """
    name = os.environ.get("NOTIFY_SOCKET")
    if not name or not fields:
        return False
    # A newline inside a field would split it into a bogus extra field: flatten it.
    message = "\n".join(field.replace("\n", " ") for field in fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Called from the event loop: if systemd's queue is full, wait briefly, never indefinitely.
            sock.settimeout(1.0)
            sock.sendto(message, _address(name))
    except OSError as exc:
        log.debug("sd_notify to %s failed: %s", name, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """How often to ping the watchdog, in seconds: half of WatchdogSec=, or None when it is off.

    Half the timeout (as sd_watchdog_enabled(3) recommends) leaves room for one late ping.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    # WATCHDOG_PID names the process the watchdog is meant for; a child inheriting the environment
    # (or a process it exec'd) must not ping on its parent's behalf.
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            log.debug("ignoring malformed WATCHDOG_PID=%r", pid)
            return None
    try:
        value = int(usec)
    except ValueError:
        log.debug("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    if value <= 0:
        return None
    return value / 2 / 1_000_000


async def watchdog_loop(interval: float, status: Callable[[], str] | None = None) -> None:
    """Ping the watchdog every `interval` seconds until cancelled; also report `status()` when it changes.

    The pings are sent from the event loop itself on purpose: if the loop is blocked (a synchronous call
    that hangs, a deadlock), the pings stop and systemd kills and restarts the service. A thread would
    keep pinging while the daemon is stuck.
    """
    if interval <= 0:
        raise ValueError(f"watchdog interval must be positive, got {interval}")
    last_status: str | None = None
    while True:
        fields = ["WATCHDOG=1"]
        current = _current_status(status)
        if current is not None and current != last_status:
            fields.append(f"STATUS={current}")
        # Remember the status only once it got through, so a lost datagram is retried next time.
        if notify(*fields) and current is not None:
            last_status = current
        await asyncio.sleep(interval)


def _current_status(status: Callable[[], str] | None) -> str | None:
    if status is None:
        return None
    try:
        return status()
    except Exception:  # a broken status callback must not silence the watchdog
        log.exception("watchdog status callback failed")
        return None
