"""`anchor obs status` and `anchor obs setup`: check and set up the OBS Studio connections ([obs.NAME])."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from anchor.cli.common import BadInput, Failed, Options, channels, err, escape, out, settings

if TYPE_CHECKING:
    from anchor.config import Settings
    from anchor.outputs.obs import ObsOutput
    from anchor.outputs.obs.status import ObsStatus
    from anchor.schedule.channel import Channel

T = TypeVar("T")

obs_app = typer.Typer(no_args_is_help=True,
                      help="Check and set up the OBS Studio connections (obs.NAME tables in anchor.toml).")

CONNECT_WAIT = 5.0  # seconds to wait for each OBS to connect (and authenticate)
COMMAND_LIMIT = 30.0  # the whole command, whatever OBS does


def _targets(app_settings: Settings, channel: str | None) -> dict[str, list[Channel]]:
    """OBS connection name → the channels airing through it; every [obs.*] when no --channel."""
    found = channels(app_settings) if app_settings.schedules_dir.is_dir() else []
    if channel is not None:
        chosen = [c for c in found if c.id == channel]
        if not chosen:
            raise BadInput(f"no channel with id '{channel}'")
        if chosen[0].output.kind != "obs":
            raise BadInput(f"channel '{channel}' airs through '{chosen[0].output}', not OBS")
        return {chosen[0].output.target: chosen}
    targets: dict[str, list[Channel]] = {name: [] for name in app_settings.obs}
    for c in found:
        if c.output.kind == "obs":
            targets.setdefault(c.output.target, []).append(c)
    return targets


def _each_obs(app_settings: Settings, targets: dict[str, list[Channel]],
              work: Callable[[ObsOutput, list[Channel]], Awaitable[T]]) -> dict[str, T | Exception]:
    """`await work(output, channels)` for every OBS at once, bounded; name → its result or its error."""
    import asyncio

    from anchor.config import OutputRef
    from anchor.outputs import OutputError
    from anchor.outputs.obs import ObsOutput

    if not Options.verbose:  # one-shot: our own line says why; the supervisor's retry warnings are noise here
        logging.getLogger("anchor.outputs.obs").setLevel(logging.CRITICAL)

    async def one(name: str, chosen: list[Channel]) -> T | Exception:
        try:
            output = ObsOutput.create(app_settings, OutputRef("obs", name), connect_timeout=min(3.0, CONNECT_WAIT),
                                      backoff_initial=0.3, backoff_max=1.0)
        except OutputError as exc:
            return exc
        try:
            return await work(output, chosen)
        except OutputError as exc:  # ObsError, ObsUnavailable included
            return exc
        finally:
            await output.close()

    async def every() -> dict[str, T | Exception]:
        names = list(targets)
        try:
            async with asyncio.timeout(COMMAND_LIMIT):
                results = await asyncio.gather(*(one(n, targets[n]) for n in names))
        except TimeoutError:
            return {n: TimeoutError(f"OBS '{n}': no result within {COMMAND_LIMIT:g} s") for n in names}
        return dict(zip(names, results, strict=False))

    return asyncio.run(every())


def _where(app_settings: Settings, name: str) -> str:
    obs = app_settings.obs.get(name)
    return f"{obs.host}:{obs.port}" if obs else "?"


def _yes(value: object) -> str:
    return "yes" if value else "no"


@obs_app.command("status")
def obs_status(
    channel: Annotated[str | None, typer.Option(help="Only the OBS this channel airs through.")] = None,
) -> None:
    """Connection, versions, each channel's scene and media, stream/record state and stats of every OBS."""
    from rich.table import Table

    from anchor.outputs.obs.status import obs_status as ask

    app_settings = settings()
    targets = _targets(app_settings, channel)
    if not targets:
        out().print(escape('no OBS connections: add an [obs.NAME] table to anchor.toml and output = "obs:NAME" '
                           "to a channel"))
        return

    async def work(output: ObsOutput, chosen: list[Channel]) -> ObsStatus:
        await output.start()
        await output.conn.wait_first_attempt(CONNECT_WAIT)
        found = await ask(output.conn, [c.id for c in chosen])
        await output.stats.poll()
        return found

    failed = []
    for name, result in _each_obs(app_settings, targets, work).items():
        if isinstance(result, Exception):
            failed.append(name)
            err().print(f"[red]error[/]: cannot reach OBS '{escape(name)}': {escape(str(result))}")
            continue
        table = Table(title=f"OBS '{name}' at {_where(app_settings, name)}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        table.add_row("connection", "[green]connected[/]")
        table.add_row("OBS version", escape(str(result.obs_version)))
        table.add_row("obs-websocket version", escape(str(result.websocket_version)))
        table.add_row("program scene", escape(str(result.program_scene)))
        for c in result.channels:
            if not c.exists:
                scene = f"{escape(c.scene)} [yellow]missing[/] (anchor obs setup creates it)"
            else:
                scene = f"{escape(c.scene)}, on program: {_yes(c.on_program)}, media: {escape(str(c.media))}"
            table.add_row(f"channel {escape(c.channel)}", scene)
        stream, record, stats = result.stream, result.record, result.stats
        stream_text = "active" if stream.get("outputActive") else "inactive"
        if stream.get("outputReconnecting"):
            stream_text += ", reconnecting"
        if stream.get("outputActive"):
            stream_text += f", {stream.get('outputTimecode', '')}, {stream.get('outputBytes', 0)} bytes sent"
        table.add_row("stream", stream_text)
        record_text = "active" if record.get("outputActive") else "inactive"
        if record.get("outputPaused"):
            record_text += ", paused"
        if record.get("outputActive"):
            record_text += f", {record.get('outputTimecode', '')}"
        table.add_row("record", record_text)
        table.add_row("fps", f"{float(stats.get('activeFps') or 0):.1f}")
        table.add_row("skipped frames",
                      f"render {stats.get('renderSkippedFrames', 0)}/{stats.get('renderTotalFrames', 0)}, "
                      f"output {stats.get('outputSkippedFrames', 0)}/{stats.get('outputTotalFrames', 0)}")
        out().print(table)
    if failed:
        raise Failed(f"{len(failed)} OBS not reachable: {', '.join(failed)}")


@obs_app.command("setup")
def obs_setup(
    channel: Annotated[str | None, typer.Option(help="Only this channel's scene.")] = None,
) -> None:
    """Provision each channel's scene in its OBS now; say what was created and what was already there."""
    from rich.table import Table

    app_settings = settings()
    targets = {name: chosen for name, chosen in _targets(app_settings, channel).items() if chosen}
    if not targets:
        out().print('no channel airs through OBS: nothing to set up (a channel needs output = "obs:NAME")')
        return

    async def work(output: ObsOutput, chosen: list[Channel]) -> list[tuple[str, list[tuple[str, str]]]]:
        return [(c.id, await output.setup(c.id, c.avatar, CONNECT_WAIT)) for c in chosen]

    failed = []
    for name, result in _each_obs(app_settings, targets, work).items():
        if isinstance(result, Exception):
            failed.append(name)
            err().print(f"[red]error[/]: OBS '{escape(name)}' not set up: {escape(str(result))}")
            continue
        table = Table(title=f"OBS '{name}' at {_where(app_settings, name)}: setup")
        for column in ("channel", "scene / input", "result"):
            table.add_column(column)
        for channel_id, done in result:
            for what, action in done:
                shown = f"[green]{escape(action)}[/]" if action == "created" else escape(action)
                table.add_row(escape(channel_id), escape(what), shown)
        out().print(table)
    if failed:
        raise Failed(f"{len(failed)} OBS not set up: {', '.join(failed)}")
