"""The `anchor` command: one module per command group; main() is the one place errors become exit codes.

`anchor --help` imports every command module, so each imports what only its command needs (asyncio, the store,
the daemon, urllib) inside the command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from anchor.cli import approvals, audit, check, common, history, obs, plan, render, report, run, say, status
from anchor.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, BadInput, Failed, Options

# add_completion: typer's --install-completion and --show-completion (bash, zsh, fish, PowerShell).
app = typer.Typer(no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="A digital-human anchor for institutional live streams.")


def _version(asked: bool) -> None:
    """--version: the installed package's own version, before any settings are read."""
    if asked:
        from importlib.metadata import version

        print(f"anchor {version('anchor')}")
        raise typer.Exit()


@app.callback()
def options(
    config: Annotated[Path, typer.Option("--config", "-c", help="The settings file.")] = common.DEFAULT_CONFIG,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print anchor's version and exit.")] = False,
) -> None:
    Options.config = config
    Options.verbose = verbose
    common.setup_logging(verbose)
    from anchor.cli.identity import become_data_owner

    become_data_owner(config)  # root: run as data_dir's owner, before any command opens a file there


app.command()(render.render)
app.command()(render.voices)
app.command()(say.say)
app.command()(check.check)
app.command()(plan.plan)
app.command()(history.history)
app.command()(run.run)
app.command()(status.status)
app.command()(report.report)
app.command()(approvals.approve)
app.command()(approvals.revoke)
app.command()(approvals.reject)
app.command()(approvals.approvals)
app.add_typer(obs.obs_app, name="obs")
app.add_typer(audit.audit_app, name="audit")


def main() -> None:
    code: object = 0
    try:
        _command()
    except SystemExit as exc:
        code = exc.code
    if Options.lasting:  # the daemon: it stops the interpreter's usual way
        raise SystemExit(code)
    _leave(code)


def _leave(code: object) -> NoReturn:
    """End a one-shot command without the interpreter's teardown of every module it loaded: that costs a
    third of `anchor history`'s time on a slow PC. Its output is flushed and its logging shut down first;
    nothing else it holds needs an orderly exit (its pools and temporary folders close in `with` blocks)."""
    if code is not None and not isinstance(code, int):  # sys.exit("why"): shown, exit status 1
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the reader of a pipe left (`anchor history | head`), or it is closed
            pass
    logging.shutdown()
    os._exit(status)


def _command() -> None:
    from anchor.problems import InputError

    try:
        app(standalone_mode=True)
    except InputError as exc:
        common.report(exc.problems)
        sys.exit(EXIT_BAD_INPUT)
    except BadInput as exc:
        common.err().print(f"[red]error[/]: {common.escape(str(exc))}", highlight=False)
        sys.exit(EXIT_BAD_INPUT)
    except Failed as exc:
        common.err().print(f"[red]error[/]: {common.escape(str(exc))}", highlight=False)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        common.err().print("interrupted")
        sys.exit(130)
    except Exception as exc:
        from anchor.logview import StoreError

        if isinstance(exc, StoreError):
            common.err().print(f"[red]error[/]: {common.escape(str(exc))}", highlight=False)
            sys.exit(EXIT_FAILED)
        raise
