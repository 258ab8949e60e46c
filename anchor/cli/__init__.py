"""The `anchor` command: one module per command group; main() is the one place errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from anchor.cli import approvals, audit, check, common, history, obs, plan, render, report, run, say, status
from anchor.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, BadInput, Failed, Options

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="A digital-human anchor for institutional live streams.")


@app.callback()
def options(
    config: Annotated[Path, typer.Option("--config", "-c", help="The settings file.")] = common.DEFAULT_CONFIG,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
) -> None:
    Options.config = config
    Options.verbose = verbose
    common.setup_logging(verbose)


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
        from anchor.store import StoreError

        if isinstance(exc, StoreError):
            common.err().print(f"[red]error[/]: {common.escape(str(exc))}", highlight=False)
            sys.exit(EXIT_FAILED)
        raise
