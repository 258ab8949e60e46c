"""Who listens on a TCP port, so a daemon whose port is taken can say by whom. Linux's /proc, best effort:
another user's process hides its sockets from us, and then only the user is known, or nothing."""

from __future__ import annotations

import errno
import os
import pwd
import socket
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp
_SHOWN_COMMAND = 80  # characters of the holder's command line shown


def probe(host: str, port: int) -> OSError | None:
    """The error binding host:port gives now (None: it is free), binding as the daemon's servers do
    (SO_REUSEADDR, so a connection of a stopped daemon lingering in TIME_WAIT is no obstacle)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE


def listener(port: int, proc: Path = Path("/proc")) -> str:
    """Who listens on `port`: "pid 1234 (python3 -m anchor run)", "a program of user postgres", or
    "another program" when this machine does not tell us."""
    found = _listening_socket(port, proc)
    if found is None:
        return "another program"
    inode, uid = found
    pid = _owner(inode, proc)
    if pid is not None:
        return f"pid {pid} ({_command(pid, proc)})"
    try:
        return f"a program of user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"a program of user id {uid}"


def _listening_socket(port: int, proc: Path) -> tuple[str, int] | None:
    """(socket inode, owner's uid) of the socket listening on `port`, IPv4 or IPv6."""
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                return fields[9], int(fields[7])
    return None


def _owner(inode: str, proc: Path) -> int | None:
    """The process holding the socket `inode` open, among those whose descriptors we may read."""
    target = f"socket:[{inode}]"
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:  # another user's process, or it has just ended
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == target:
                    return int(entry.name)
            except OSError:
                continue
    return None


def _command(pid: int, proc: Path) -> str:
    try:
        words = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        command = " ".join(" ".join(w.decode(errors="replace").split()) for w in words if w)  # one line
        if not command:
            command = (proc / str(pid) / "comm").read_text(errors="replace").strip()
    except OSError:
        return "command unknown"
    return command if len(command) <= _SHOWN_COMMAND else command[: _SHOWN_COMMAND - 1] + "…"
