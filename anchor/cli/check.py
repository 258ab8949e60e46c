"""`anchor check`: every input validated at once, each problem with file:line and what to write instead."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anchor.cli.approvals import screening_problems
from anchor.cli.common import EXIT_BAD_INPUT, Options, channel_time, err, out, read_log, report
from anchor.problems import InputError, Problem

if TYPE_CHECKING:
    from anchor.config import Settings
    from anchor.content import Script
    from anchor.schedule.channel import Channel


def _front_matter_line(path: Path, key: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if line.split("=")[0].strip() == key:
            return number
    return None


async def _speech_problems(settings: Settings, scripts: list[Script]) -> list[Problem]:
    """Every script's language must be spoken by an engine of the chain; a script's voice must belong to an
    engine in the chain, and that engine must have it."""
    from anchor.speech.chain import EngineChain
    from anchor.speech.engines import EngineError, UnknownEngine, UnknownVoice

    problems: list[Problem] = []
    try:
        chain = EngineChain(settings)
    except UnknownEngine:
        return problems  # already reported against anchor.toml
    spoken: dict[str, bool] = {}
    for language in sorted({s.language for s in scripts}):
        spoken[language] = False
        for engine in chain.engines:
            try:
                await engine.resolve_voice(language, None)
            except (UnknownVoice, EngineError):
                continue
            spoken[language] = True
            break
    for script in scripts:
        if not spoken.get(script.language, True):
            problems.append(Problem(
                script.source, _front_matter_line(script.source, "language"),
                f"no engine of the chain ({', '.join(e.name for e in chain.engines)}) speaks '{script.language}'",
                "add a voice for it under [speech.engines.<engine>.voices] in anchor.toml, or write the language "
                "of a voice `anchor voices` lists", "language"))
        if not script.voice:
            continue
        owners = [e for e in chain.engines if e.owns_voice_name(script.voice)]
        line = _front_matter_line(script.source, "voice")
        if not owners:
            problems.append(Problem(script.source, line, f"no engine in the chain has a voice named '{script.voice}'",
                                    "`anchor voices` lists them; e.g. voice = \"zh-CN-XiaoxiaoNeural\"", "voice"))
            continue
        try:
            await owners[0].resolve_voice(script.language, script.voice)
        except UnknownVoice as exc:
            problems.append(Problem(script.source, line, str(exc), key="voice"))
        except EngineError:
            pass  # cannot ask the engine now; not the script's fault
    return problems


def _approval_outlook(settings: Settings, channels: list[Channel]) -> list[Problem]:
    """Airings of the next 24 hours on channels that require approval whose text is not approved."""
    gated = {c.id: c for c in channels if c.approval_required}
    if not gated:
        return []  # nothing to ask the as-run log (and no need to load the database layer)
    from datetime import timedelta

    from anchor.content.approvals import ApprovalBook
    from anchor.onair.outlook import approval_outlook
    from anchor.schedule.planner import plan

    now = datetime.now(UTC)
    asrun = read_log(settings)
    planned = plan(list(gated.values()), now, now + timedelta(hours=24), asrun.rotation())
    outlook = approval_outlook(planned, gated, ApprovalBook(asrun.approvals()), settings.scripts_dir)
    problems = []
    for item in planned:
        seen = outlook.get(item.key)
        if seen is None or seen.reason is None:
            continue
        fate = f"its fallback {seen.airs} airs" if seen.airs else "it will be skipped"
        when = channel_time(item.planned_at, gated[item.channel].zone, "minutes")
        problems.append(Problem(gated[item.channel].source, None, f"slot {item.slot} at {when}: {fate}: {seen.reason}",
                                "anchor approve the script's current text", warning=True))
    return problems


AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document: every problem and the verdict.")]


def check(as_json: AsJson = False) -> None:
    """Validate anchor.toml, every channel and every script; list every problem with file:line. Exit 2 if any."""
    try:
        problems, channel_count, script_count = _every_problem()
    except InputError as exc:  # a problem no check above could place beside the others
        problems, channel_count, script_count = list(exc.problems), 0, 0
    problems = list(dict.fromkeys(problems))  # a calendar file's error reaches every channel that uses it
    files = {p.file: index for index, p in reversed(list(enumerate(problems)))}  # each file where it first appears
    problems.sort(key=lambda p: (files[p.file], p.line or 0))  # then a file's problems in line order
    errors = [p for p in problems if not p.warning]
    if as_json:
        from anchor.cli.jsonout import write_json_document

        write_json_document({
            "config": str(Options.config), "verdict": "errors" if errors else "ok", "errors": len(errors),
            "warnings": len(problems) - len(errors), "channels": channel_count, "scripts": script_count,
            "problems": [p.as_record() for p in problems]})
        if errors:
            raise SystemExit(EXIT_BAD_INPUT)
        return
    report(problems)
    if errors:
        err().print(f"{len(errors)} problem{'s' * (len(errors) != 1)} found")
        raise SystemExit(EXIT_BAD_INPUT)
    out().print(f"ok: {Options.config}, {channel_count} channel{'s' * (channel_count != 1)} and "
                f"{script_count} script{'s' * (script_count != 1)} are valid")


def _every_problem() -> tuple[list[Problem], int, int]:
    """Every problem of every input, warnings included; and how many channels and scripts are valid."""
    import asyncio

    from anchor.config import load_settings_leniently
    from anchor.content import find_scripts, load_script
    from anchor.preflight import (
        CALENDAR_NOTICE,
        calendar_problems,
        checked_channel_files,
        lexicon_problems,
        permission_problems,
        readiness_problems,
        room_problems,
        settings_problems,
    )
    from anchor.schedule.calendar import load_calendar
    from anchor.schedule.channel import calendar_files

    settings, problems = load_settings_leniently(Options.config)
    problems += settings_problems(settings)  # its sections with errors are at their defaults here
    engines_usable = not problems  # an engine table with errors cannot be built to ask about voices
    scripts: list[Script] = []
    if not settings.scripts_dir.is_dir():
        problems.append(Problem(Options.config, None, f"scripts folder {settings.scripts_dir} does not exist",
                                "create it or set paths.scripts_dir", "paths.scripts_dir"))
    for path in find_scripts(settings.scripts_dir):
        try:
            scripts.append(load_script(path, settings.scripts_dir))
        except InputError as exc:
            problems.extend(exc.problems)
    if engines_usable and scripts:
        problems.extend(asyncio.run(_speech_problems(settings, scripts)))
    channel_count = 0
    channels: list[Channel] = []
    if settings.schedules_dir.is_dir():  # a site may only render, with no schedules yet
        files = checked_channel_files(settings)
        channels = [f.channel for f in files if f.channel is not None]
        channel_count = len(channels)
        problems += [p for f in files for p in f.problems if not p.key.startswith("room")]
        read = [c for f in files if (c := f.channel or f.draft) is not None]  # drafts: files with errors
        problems += [p for c in read if c.rooms for p in room_problems(c)]  # errors here: fix before air
    problems += readiness_problems(settings, channels)
    problems += permission_problems(settings)
    problems += lexicon_problems(settings)
    now = datetime.now(UTC)
    problems += calendar_problems(settings, channels, now, now + CALENDAR_NOTICE)
    if calendar_files(settings):  # read by the channels that follow China's calendar; checked even before one does
        try:
            load_calendar(calendar_files(settings))
        except InputError as exc:
            problems.extend(exc.problems)
    try:
        problems += screening_problems(settings, scripts)
    except InputError as exc:  # an institution's word list with errors
        problems.extend(exc.problems)
    problems += _approval_outlook(settings, channels)
    return problems, channel_count, len(scripts)
