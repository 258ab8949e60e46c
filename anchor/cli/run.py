"""`anchor run`: the daemon, in the foreground (systemd runs it so)."""

from __future__ import annotations

from anchor.cli.common import Options, settings


def run() -> None:
    """Run the daemon: air every channel's slots on the minute until stopped (SIGTERM); SIGHUP reloads."""
    from anchor.daemon import run_daemon

    Options.lasting = True
    raise SystemExit(run_daemon(settings()))
