"""The `anchor` command."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from anchor.config import DEFAULT_CONFIG, Settings, default_settings, load_settings
from anchor.content import Script, find_scripts, load_script
from anchor.problems import InputError, Problem

if TYPE_CHECKING:  # the render stack (numpy, ffmpeg, edge-tts) loads only in the commands that render
    from anchor.program import Program
    from anchor.speech.chain import EngineChain

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="A digital-human anchor for institutional live streams.")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # one problem, one line: easy to grep and to read in logs

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class State:
    config: Path = DEFAULT_CONFIG
    verbose: bool = False


def _settings() -> Settings:
    try:
        settings = load_settings(State.config)
    except InputError as exc:
        _report(exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    logging.getLogger().setLevel(settings.log.level)
    return settings


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        style = "yellow" if problem.warning else "red"
        err.print(f"[{style}]{'warning' if problem.warning else 'error'}[/]: {escape(str(problem))}", highlight=False)


@app.callback()
def options(
    config: Annotated[Path, typer.Option("--config", "-c", help="The settings file.")] = DEFAULT_CONFIG,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
) -> None:
    State.config = config
    State.verbose = verbose
    if err.is_terminal:
        handler: logging.Handler = RichHandler(console=err, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # journald and log files: one plain line per record, they add their own timestamps
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every job run at INFO


def _chain(settings: Settings, engine: str | None) -> EngineChain:
    from anchor.speech.chain import EngineChain
    from anchor.speech.engines import UnknownEngine

    try:
        return EngineChain(settings, only=engine)
    except UnknownEngine as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _resolve_script_path(settings: Settings, given: Path) -> Path:
    if given.exists():
        return given
    inside = settings.scripts_dir / given
    return inside if inside.exists() else given


def _load(settings: Settings, path: Path) -> Script:
    try:
        return load_script(path, settings.scripts_dir)
    except InputError as exc:
        _report(exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _publish(program: Program, directory: Path) -> None:
    """Copy a cached Program's files to where the user asked; program.json also says whether it was a hit."""
    from anchor.program import FILES

    directory.mkdir(parents=True, exist_ok=True)
    assert program.directory is not None
    for name in FILES[:-1]:
        shutil.copyfile(program.directory / name, directory / name)
    (directory / "program.json").write_text(program.to_json(), encoding="utf-8")


def _summary(rows: list[tuple[Program, Path]]) -> Table:
    table = Table(title="Rendered programs", show_lines=False)
    for column in ("script", "duration", "engine / voice", "loudness", "cache", "output"):
        table.add_column(column)
    for program, directory in rows:
        table.add_row(
            program.script, f"{program.duration_seconds:.1f} s", f"{program.engine} / {program.voice}",
            f"{program.loudness.integrated_lufs:.1f} LUFS, {program.loudness.true_peak_dbtp:.1f} dBTP",
            "hit" if program.cache_hit else f"rendered in {program.render_seconds:.1f} s", str(directory),
        )
    return table


@app.command()
def render(
    script: Annotated[Optional[Path], typer.Argument(help="A script file, or its path inside scripts_content/.")] = None,
    all_scripts: Annotated[bool, typer.Option("--all", help="Render every script.")] = False,
    engine: Annotated[Optional[str], typer.Option(help="Use only this engine (no fallback).")] = None,
    voice: Annotated[Optional[str], typer.Option(help="Voice for the engine that has it.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Where to write program.wav/.srt/.vtt/.json.")] = None,
) -> None:
    """Render scripts into Programs: normalized speech audio plus subtitles."""
    from anchor.program import RenderError, render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.engines import UnknownVoice

    settings = _settings()
    if all_scripts == (script is not None):
        err.print("[red]error[/]: give one SCRIPT or --all")
        raise typer.Exit(EXIT_BAD_INPUT)
    if script is not None:
        targets = [_load(settings, _resolve_script_path(settings, script))]
    else:
        paths, problems, targets = find_scripts(settings.scripts_dir), [], []
        for path in paths:
            try:
                targets.append(load_script(path, settings.scripts_dir))
            except InputError as exc:
                problems.extend(exc.problems)
        if problems:
            _report(problems)
            raise typer.Exit(EXIT_BAD_INPUT)
    base = out_dir or settings.data_dir / "renders"
    chain = _chain(settings, engine)
    cache = ProgramCache(settings.cache_dir, settings.cache.max_size_mb * 1024 * 1024)
    rows: list[tuple[Program, Path]] = []
    failures: list[str] = []

    async def run_all(progress: Progress | None) -> None:
        task = progress.add_task("rendering", total=len(targets)) if progress else None
        for target in targets:
            if progress is not None and task is not None:
                progress.update(task, description=target.name)
            try:
                program = await render_program(target, settings, chain, cache, voice=voice)
            except RenderError as exc:
                failures.append(f"{target.name}: every engine failed: {exc}")
            else:
                directory = (base / Path(target.name).with_suffix("")) if script is None else base
                _publish(program, directory)
                rows.append((program, directory))
            if progress is not None and task is not None:
                progress.advance(task)

    try:
        if all_scripts:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, transient=True) as progress:
                asyncio.run(run_all(progress))
        else:
            asyncio.run(run_all(None))
    except UnknownVoice as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if rows:
        out.print(_summary(rows))
        for program, _ in rows:
            if program.fallback_reason:
                out.print(f"[yellow]{escape(program.script)}[/]: fell back to {program.engine} because "
                          f"{escape(program.fallback_reason)}")
        out.print(f"Files are in {base.resolve()}")
    for failure in failures:
        err.print(f"[red]error[/]: {escape(failure)}")
    if failures:
        raise typer.Exit(EXIT_FAILED)


async def _voice_problems(settings: Settings, scripts: list[Script]) -> list[Problem]:
    """A script's voice must belong to an engine in the chain, and that engine must have it."""
    from anchor.speech.chain import EngineChain
    from anchor.speech.engines import EngineError, UnknownEngine, UnknownVoice

    problems: list[Problem] = []
    try:
        chain = EngineChain(settings)
    except UnknownEngine:
        return problems  # already reported against anchor.toml
    for script in scripts:
        if not script.voice:
            continue
        owners = [e for e in chain.engines if e.owns_voice_name(script.voice)]
        if not owners:
            problems.append(Problem(script.source, _front_matter_line(script.source, "voice"),
                                    f"no engine in the chain has a voice named '{script.voice}'",
                                    "`anchor voices` lists them; e.g. voice = \"zh-CN-XiaoxiaoNeural\"", "voice"))
            continue
        try:
            await owners[0].resolve_voice(script.language, script.voice)
        except UnknownVoice as exc:
            problems.append(Problem(script.source, _front_matter_line(script.source, "voice"), str(exc), key="voice"))
        except EngineError:
            pass  # cannot ask the engine now; not the script's fault
    return problems


def _front_matter_line(path: Path, key: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if line.split("=")[0].strip() == key:
            return number
    return None


@app.command()
def check() -> None:
    """Validate anchor.toml and every script; list every problem with file:line. Exit 2 if any."""
    problems: list[Problem] = []
    try:
        settings = load_settings(State.config)
    except InputError as exc:
        problems.extend(exc.problems)
        settings = default_settings(State.config.resolve().parent)
    scripts: list[Script] = []
    paths = find_scripts(settings.scripts_dir)
    if not settings.scripts_dir.is_dir():
        problems.append(Problem(State.config, None, f"scripts folder {settings.scripts_dir} does not exist",
                                "create it or set paths.scripts_dir", "paths.scripts_dir"))
    for path in paths:
        try:
            scripts.append(load_script(path, settings.scripts_dir))
        except InputError as exc:
            problems.extend(exc.problems)
    problems.extend(asyncio.run(_voice_problems(settings, scripts)))
    channel_count = 0
    if settings.schedules_dir.is_dir():
        from anchor.schedule.channel import load_channels

        try:
            channels, warnings = load_channels(settings)
            channel_count = len(channels)
            problems.extend(warnings)
        except InputError as exc:
            problems.extend(exc.problems)
    _report(problems)
    errors = [p for p in problems if not p.warning]
    if errors:
        err.print(f"{len(errors)} problem{'s' * (len(errors) != 1)} found")
        raise typer.Exit(EXIT_BAD_INPUT)
    out.print(f"ok: {State.config}, {channel_count} channel{'s' * (channel_count != 1)} and "
              f"{len(scripts)} script{'s' * (len(scripts) != 1)} are valid")


@app.command()
def voices(
    engine: Annotated[Optional[str], typer.Option(help="Only this engine.")] = None,
    language: Annotated[Optional[str], typer.Option(help="Only voices whose language starts with this, e.g. zh.")] = None,
) -> None:
    """List the voices each engine offers."""
    from anchor.speech.engines import EngineError, UnknownEngine, engine_type

    settings = _settings()
    names = [engine] if engine else settings.speech.chain.engines
    unreachable = False
    for name in names:
        try:
            instance = engine_type(name)(settings.engine_settings(name))
        except UnknownEngine as exc:
            err.print(f"[red]error[/]: {escape(str(exc))}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        try:
            found = asyncio.run(instance.list_voices())
        except EngineError as exc:
            err.print(f"[yellow]{name}[/]: the voice list cannot be reached ({escape(exc.reason)}); "
                      f"voices already set in anchor.toml keep working when the service is back")
            unreachable = True
            continue
        if language:
            found = [v for v in found if v.language.lower().startswith(language.lower())]
        table = Table(title=f"{name} voices ({len(found)})")
        for column in ("voice", "language", "gender", "description"):
            table.add_column(column)
        for v in found:
            table.add_row(v.name, v.language, v.gender, v.description)
        out.print(table)
    if unreachable:
        raise typer.Exit(EXIT_FAILED)


def _channels(settings: Settings):  # type: ignore[no-untyped-def]
    from anchor.schedule.channel import load_channels

    try:
        channels, warnings = load_channels(settings)
    except InputError as exc:
        _report(exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _report(warnings)
    return channels


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error[/]: {option} {escape(text)} is not an ISO date-time; write e.g. 2026-12-04T09:00+08:00")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    return value if value.tzinfo else value.astimezone()  # a bare time means this machine's clock


@app.command()
def plan(
    channel: Annotated[Optional[str], typer.Option(help="Only this channel id.")] = None,
    start: Annotated[Optional[str], typer.Option("--from", help="ISO date-time to start from (default now).")] = None,
    hours: Annotated[Optional[float], typer.Option(help="How many hours ahead (default 24).")] = None,
    days: Annotated[Optional[float], typer.Option(help="How many days ahead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON objects instead of a table.")] = False,
) -> None:
    """List planned airings, rotations resolved."""
    from anchor.schedule.planner import plan as make_plan
    from anchor.store import AsRunLog, database_url, open_engine

    settings = _settings()
    channels = [c for c in _channels(settings) if channel is None or c.id == channel]
    if channel is not None and not channels:
        err.print(f"[red]error[/]: no channel with id '{escape(channel)}'")
        raise typer.Exit(EXIT_BAD_INPUT)
    now = datetime.now(timezone.utc)
    begin = _instant(start, "--from") or now
    span = timedelta(days=days) if days is not None else timedelta(hours=hours if hours is not None else 24)
    rotation = AsRunLog(open_engine(database_url(settings.daemon.database_url, settings.data_dir))).rotation()
    if begin > now:  # rotations advance through the airings between now and --from
        for item in make_plan(channels, now, begin, rotation):
            if item.rotation_index is not None:
                length = len(next(s for c in channels if c.id == item.channel for s in c.slots if s.id == item.slot).scripts)
                rotation[(item.channel, item.slot)] = (item.rotation_index + 1) % length
    planned = make_plan(channels, begin, begin + span, rotation)
    if as_json:
        rows = [{"channel": p.channel, "slot": p.slot, "script": p.script, "planned_at": p.planned_at.isoformat(),
                 "planned_at_utc": p.planned_at_utc.isoformat(), "priority": p.priority} for p in planned]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table(title=f"{len(planned)} planned airings from {begin.isoformat(timespec='minutes')} for {span}")
    for column in ("when (channel time)", "channel", "slot", "script"):
        table.add_column(column)
    for p in planned:
        table.add_row(p.planned_at.isoformat(timespec="minutes"), p.channel, p.slot, p.script)
    out.print(table)


@app.command()
def history(
    channel: Annotated[Optional[str], typer.Option(help="Only this channel id.")] = None,
    since: Annotated[Optional[str], typer.Option(help="ISO date-time: airings planned from then on.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV for a spreadsheet.")] = False,
) -> None:
    """Print the as-run log: what aired, when, and how."""
    from anchor.store import AsRunLog, database_url, open_engine

    settings = _settings()
    rows = AsRunLog(open_engine(database_url(settings.daemon.database_url, settings.data_dir))).history(
        channel, _instant(since, "--since"))
    fields = ("channel", "slot", "planned_at", "started_at", "ended_at", "outcome", "script", "script_hash", "engine",
              "voice", "audio_hash", "error")

    def cell(row, name: str) -> str:  # type: ignore[no-untyped-def]
        value = getattr(row, name)
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
        return "" if value is None else str(getattr(value, "value", value))

    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(fields)
        for row in rows:
            writer.writerow([cell(row, f) for f in fields])
        return
    table = Table(title=f"as-run log: {len(rows)} airings")
    for column in ("planned (UTC)", "channel", "slot", "script", "outcome", "started", "engine", "error"):
        table.add_column(column)
    for row in rows:
        table.add_row(cell(row, "planned_at"), row.channel, row.slot, row.script, cell(row, "outcome"),
                      cell(row, "started_at"), cell(row, "engine"), cell(row, "error"))
    out.print(table)


@app.command()
def run() -> None:
    """Run the daemon: air every channel's slots on the minute until stopped (SIGTERM); SIGHUP reloads."""
    from anchor.daemon import run_daemon

    settings = _settings()
    try:
        code = run_daemon(settings)
    except InputError as exc:
        _report(exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(code)


obs_app = typer.Typer(no_args_is_help=True, help="Check and set up the OBS Studio connections (obs.NAME tables in anchor.toml).")
app.add_typer(obs_app, name="obs")

OBS_CONNECT_WAIT = 5.0  # seconds to wait for each OBS to connect (and authenticate)
OBS_COMMAND_LIMIT = 30.0  # the whole command, whatever OBS does


def _obs_targets(settings: Settings, channel: str | None) -> dict[str, list]:  # type: ignore[type-arg]
    """OBS connection name → the channels airing through it; every [obs.*] when no --channel."""
    channels = _channels(settings) if settings.schedules_dir.is_dir() else []
    if channel is not None:
        chosen = [c for c in channels if c.id == channel]
        if not chosen:
            err.print(f"[red]error[/]: no channel with id '{escape(channel)}'")
            raise typer.Exit(EXIT_BAD_INPUT)
        if not chosen[0].output.startswith("obs:"):
            err.print(f"[red]error[/]: channel '{escape(channel)}' airs through '{escape(chosen[0].output)}', "
                      f"not OBS")
            raise typer.Exit(EXIT_BAD_INPUT)
        targets: dict[str, list] = {chosen[0].output.partition(":")[2]: chosen}  # type: ignore[type-arg]
        return targets
    targets = {name: [] for name in settings.obs}
    for c in channels:
        kind, _, target = c.output.partition(":")
        if kind == "obs":
            targets.setdefault(target, []).append(c)
    return targets


def _obs_run(settings: Settings, targets: dict[str, list], work) -> dict[str, object]:  # type: ignore[no-untyped-def,type-arg]
    """Run `await work(output, channels)` for every OBS at once, bounded; name → result or the error text."""
    from anchor.outputs.base import OutputError
    from anchor.outputs.obs import ObsOutput

    if not State.verbose:  # one-shot: our own line says why; the supervisor's retry warnings are noise here
        logging.getLogger("anchor.outputs.obs_connection").setLevel(logging.CRITICAL)
        logging.getLogger("anchor.outputs.obs").setLevel(logging.WARNING)

    async def one(name: str, channels: list) -> object:  # type: ignore[type-arg]
        try:
            output = ObsOutput.create(settings, name, connect_timeout=min(3.0, OBS_CONNECT_WAIT),
                                      backoff_initial=0.3, backoff_max=1.0)
        except OutputError as exc:
            return exc
        try:
            return await work(output, channels)
        except OutputError as exc:  # ObsError, ObsUnavailable included
            return exc
        finally:
            await output.close()

    async def every() -> dict[str, object]:
        names = list(targets)
        try:
            async with asyncio.timeout(OBS_COMMAND_LIMIT):
                results = await asyncio.gather(*(one(n, targets[n]) for n in names))
        except TimeoutError:
            return {n: TimeoutError(f"OBS '{n}': no result within {OBS_COMMAND_LIMIT:g} s") for n in names}
        return dict(zip(names, results))

    return asyncio.run(every())


def _yes(value: object) -> str:
    return "yes" if value else "no"


@obs_app.command("status")
def obs_status(
    channel: Annotated[Optional[str], typer.Option(help="Only the OBS this channel airs through.")] = None,
) -> None:
    """Connection, versions, each channel's scene and media, stream/record state and stats of every OBS."""
    settings = _settings()
    targets = _obs_targets(settings, channel)
    if not targets:
        out.print(escape("no OBS connections: add an [obs.NAME] table to anchor.toml and output = \"obs:NAME\" to a channel"))
        return

    async def work(output, channels):  # type: ignore[no-untyped-def]
        return await output.status([c.id for c in channels], OBS_CONNECT_WAIT)

    results = _obs_run(settings, targets, work)
    failed = False
    for name, result in results.items():
        obs = settings.obs.get(name)
        where = f"{obs.host}:{obs.port}" if obs else "?"
        if isinstance(result, BaseException):
            failed = True
            err.print(f"[red]error[/]: cannot reach OBS '{escape(name)}': {escape(str(result))}")
            continue
        assert isinstance(result, dict)
        table = Table(title=f"OBS '{name}' at {where}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        table.add_row("connection", "[green]connected[/]")
        table.add_row("OBS version", escape(str(result["obs_version"])))
        table.add_row("obs-websocket version", escape(str(result["websocket_version"])))
        table.add_row("program scene", escape(str(result["program_scene"])))
        for c in result["channels"]:
            if not c["exists"]:
                scene = f"{escape(c['scene'])} [yellow]missing[/] (anchor obs setup creates it)"
            else:
                scene = f"{escape(c['scene'])}, on program: {_yes(c['on_program'])}, media: {escape(str(c['media']))}"
            table.add_row(f"channel {escape(c['channel'])}", scene)
        stream, record, stats = result["stream"], result["record"], result["stats"]
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
        table.add_row("skipped frames", f"render {stats.get('renderSkippedFrames', 0)}/{stats.get('renderTotalFrames', 0)}, "
                                        f"output {stats.get('outputSkippedFrames', 0)}/{stats.get('outputTotalFrames', 0)}")
        out.print(table)
    if failed:
        raise typer.Exit(EXIT_FAILED)


@obs_app.command("setup")
def obs_setup(
    channel: Annotated[Optional[str], typer.Option(help="Only this channel's scene.")] = None,
) -> None:
    """Provision each channel's scene in its OBS now; say what was created and what was already there."""
    settings = _settings()
    targets = {name: chans for name, chans in _obs_targets(settings, channel).items() if chans}
    if not targets:
        out.print("no channel airs through OBS: nothing to set up (a channel needs output = \"obs:NAME\")")
        return

    async def work(output, channels):  # type: ignore[no-untyped-def]
        return [(c.id, await output.setup(c.id, c.avatar, OBS_CONNECT_WAIT)) for c in channels]

    results = _obs_run(settings, targets, work)
    failed = False
    for name, result in results.items():
        obs = settings.obs.get(name)
        where = f"{obs.host}:{obs.port}" if obs else "?"
        if isinstance(result, BaseException):
            failed = True
            err.print(f"[red]error[/]: OBS '{escape(name)}' not set up: {escape(str(result))}")
            continue
        assert isinstance(result, list)
        table = Table(title=f"OBS '{name}' at {where}: setup")
        for column in ("channel", "scene / input", "result"):
            table.add_column(column)
        for channel_id, done in result:
            for what, action in done:
                style = "green" if action in ("created",) else ""
                table.add_row(escape(channel_id), escape(what), f"[{style}]{escape(action)}[/]" if style else escape(action))
        out.print(table)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    from anchor.store import StoreError

    try:
        app()
    except StoreError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}")
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
