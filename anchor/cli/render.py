"""`anchor render` and `anchor voices`: scripts into Programs, and the voices each engine offers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anchor.cli.common import BadInput, Failed, err, escape, out, settings
from anchor.problems import InputError, Problem

if TYPE_CHECKING:  # the render stack (numpy, ffmpeg, edge-tts) loads only in the commands that render
    from rich.progress import Progress

    from anchor.config import Settings
    from anchor.content import Script
    from anchor.program import Program
    from anchor.speech.chain import EngineChain


def _chain(app_settings: Settings, engine: str | None) -> EngineChain:
    from anchor.speech.chain import EngineChain
    from anchor.speech.engines import UnknownEngine

    try:
        return EngineChain(app_settings, only=engine)
    except UnknownEngine as exc:
        raise BadInput(str(exc)) from None


def _script_path(app_settings: Settings, given: Path) -> Path:
    if given.exists():
        return given
    inside = app_settings.scripts_dir / given
    return inside if inside.exists() else given


def _scripts(app_settings: Settings, script: Path | None) -> list[Script]:
    from anchor.content import find_scripts, load_script

    if script is not None:
        return [load_script(_script_path(app_settings, script), app_settings.scripts_dir)]
    problems: list[Problem] = []
    found = []
    for path in find_scripts(app_settings.scripts_dir):
        try:
            found.append(load_script(path, app_settings.scripts_dir))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return found


def _publish(program: Program, directory: Path) -> None:
    """Copy a cached Program's files to where the user asked; program.json also says whether it was a hit."""
    from anchor.speech.program_files import ProgramFiles

    directory.mkdir(parents=True, exist_ok=True)
    source, target = program.files, ProgramFiles(directory)
    for name in ("wav", "srt", "vtt"):
        shutil.copyfile(getattr(source, name), getattr(target, name))
    target.meta.write_text(program.to_json(), encoding="utf-8")


def render(
    script: Annotated[Path | None, typer.Argument(help="A script file, or its path inside scripts_content/.")] = None,
    all_scripts: Annotated[bool, typer.Option("--all", help="Render every script.")] = False,
    engine: Annotated[str | None, typer.Option(help="Use only this engine (no fallback).")] = None,
    voice: Annotated[str | None, typer.Option(help="Voice for the engine that has it.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write program.wav/.srt/.vtt/.json.")] = None,
) -> None:
    """Render scripts into Programs: normalized speech audio plus subtitles."""
    import asyncio

    from anchor.cli.tables import Column, write_table
    from anchor.program import RenderError, render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.engines import UnknownVoice
    from anchor.wording import count, duration

    app_settings = settings()
    if all_scripts == (script is not None):
        raise BadInput("give one SCRIPT or --all")
    targets = _scripts(app_settings, script)
    base = out_dir or app_settings.data_dir / "renders"
    chain = _chain(app_settings, engine)
    cache = ProgramCache(app_settings.cache_dir, app_settings.cache.max_size_mb * 1024 * 1024)
    rows: list[tuple[Program, Path]] = []
    failures: list[str] = []

    async def run_all(progress: Progress | None) -> None:
        task = progress.add_task("rendering", total=len(targets)) if progress else None
        for target in targets:
            if progress is not None and task is not None:
                progress.update(task, description=target.name)
            try:
                program = await render_program(target, app_settings, chain, cache, voice=voice)
            except RenderError as exc:
                failures.append(f"{target.name}: every engine failed: {exc}")
            else:
                directory = (base / Path(target.name).with_suffix("")) if script is None else base
                await asyncio.to_thread(_publish, program, directory)
                rows.append((program, directory))
            if progress is not None and task is not None:
                progress.advance(task)
        # A fallback voice's cached Program was served at once; the preferred engine, retried behind it,
        # finishes before this process ends so the next render finds its Program.
        await chain.settle()

    try:
        if all_scripts:
            # Only --all shows a progress bar: one script spares its start-up the bar's import.
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err(), transient=True) as progress:
                asyncio.run(run_all(progress))
        else:
            asyncio.run(run_all(None))
    except UnknownVoice as exc:
        raise BadInput(str(exc)) from None
    if rows:
        write_table([Column("script"), Column("length", fold=False), Column("engine / voice"), Column("loudness"),
                     Column("cache")],
                    [(program.script, duration(program.duration_seconds), f"{program.engine} / {program.voice}",
                      f"{program.loudness.integrated_lufs:.1f} LUFS {program.loudness.true_peak_dbtp:.1f} dBTP",
                      "hit" if program.cache_hit else f"rendered in {duration(program.render_seconds)}")
                     for program, _ in rows], title=count(len(rows), "program") + " rendered")
        for program, _ in rows:
            if program.fallback_reason:
                out().print(f"[yellow]{escape(program.script)}[/]: fell back to {program.engine} because "
                            f"{escape(program.fallback_reason)}")
        shown = base.resolve()
        shown = shown.relative_to(Path.cwd()) if shown.is_relative_to(Path.cwd()) else shown  # shorter, whole
        out().print(f"Files are in {shown}" + ("/, a folder for each script" if script is None else ""),
                    highlight=False)
    if failures:
        raise Failed("\n".join(failures))


def voices(
    engine: Annotated[str | None, typer.Option(help="Only this engine.")] = None,
    language: Annotated[str | None, typer.Option(help="Only voices whose language starts with this, e.g. zh.")] = None,
) -> None:
    """List the voices each engine offers."""
    import asyncio

    from anchor.cli.tables import Column, write_table
    from anchor.speech.engines import EngineError, UnknownEngine, engine_type
    from anchor.wording import count

    app_settings = settings()
    names = [engine] if engine else app_settings.speech.chain.engines
    unreachable = []
    for name in names:
        try:
            instance = engine_type(name).create(app_settings)
        except UnknownEngine as exc:
            raise BadInput(str(exc)) from None
        try:
            found = asyncio.run(instance.list_voices())
        except EngineError as exc:
            err().print(f"[yellow]{name}[/]: the voice list cannot be reached ({escape(exc.reason)}); "
                        f"voices already set in anchor.toml keep working when the service is back")
            unreachable.append(name)
            continue
        if language:
            found = [v for v in found if v.matches_language(language)]
        write_table([Column("voice"), Column("language"), Column("gender", fold=False), Column("description")],
                    [(v.name, v.language, v.gender, v.description) for v in found],
                    title=f"{name}: {count(len(found), 'voice')}")
    if unreachable:
        raise Failed(f"the voice list of {', '.join(unreachable)} could not be reached")
