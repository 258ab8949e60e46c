"""`anchor say`: how a text is read before it airs: the words said, the pinyin, and (asked) the voice."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anchor.cli.common import BadInput, Failed, escape, out, settings

if TYPE_CHECKING:
    from anchor.config import Settings
    from anchor.program import Program

PLAYER = ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error"]


def _speak(app_settings: Settings, text: str, language: str, engine: str | None, voice: str | None) -> Program:
    """Render TEXT as a one-paragraph script would air: same front end, engines, loudness and cache."""
    import asyncio

    from anchor.cli.render import _chain
    from anchor.content import load_script
    from anchor.program import RenderError, render_program
    from anchor.speech.cache import ProgramCache
    from anchor.speech.engines import UnknownVoice

    chain = _chain(app_settings, engine)
    cache = ProgramCache(app_settings.cache_dir, app_settings.cache.max_size_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="anchor-say-") as folder:
        path = Path(folder) / "say.md"
        path.write_text(f'+++\ntitle = "anchor say"\nlanguage = "{language}"\n+++\n\n{text}\n', encoding="utf-8")
        script = load_script(path, Path(folder))

        async def spoken() -> Program:
            program = await render_program(script, app_settings, chain, cache, voice=voice)
            await chain.settle()  # a preferred engine retried behind a fallback's cache hit finishes first
            return program

        try:
            return asyncio.run(spoken())
        except UnknownVoice as exc:
            raise BadInput(str(exc)) from None
        except RenderError as exc:
            raise Failed(f"every engine failed: {exc}") from None


def _check_extension(target: Path) -> None:
    """Refuse, before anything is rendered, a file name whose extension is no format `say` writes."""
    from anchor.speech.audio import EXPORT_FORMATS

    if target.suffix.lower() not in EXPORT_FORMATS:
        given = f"'{target.suffix}'" if target.suffix else "no extension"
        raise BadInput(f"--out {target}: {given} is not an audio format anchor writes; end the name with one of "
                       f"{', '.join(EXPORT_FORMATS)}")


def _export(wav: Path, target: Path) -> None:
    import asyncio

    from anchor.speech.audio import AudioError, export

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(export(wav, target))
    except (AudioError, OSError) as exc:
        raise Failed(f"cannot write {target}: {exc}") from None


def say(
    text: Annotated[str, typer.Argument(help="The words to check, as a script would have them.")],
    language: Annotated[str | None, typer.Option(help="Language tag; default: [speech] language.")] = None,
    play: Annotated[bool, typer.Option("--play", help="Speak it on this PC's speakers (ffplay).")] = False,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the spoken words to this file, encoded as its extension says: .wav, .mp3, .ogg, "
                      ".opus, .m4a, .aac or .flac.")] = None,
    engine: Annotated[str | None, typer.Option(help="Use only this engine (no fallback).")] = None,
    voice: Annotated[str | None, typer.Option(help="Voice for the engine that has it.")] = None,
) -> None:
    """Show how TEXT is read: the words said and the pinyin espeak reads, after lexicon.toml. --play or --out
    also speaks it, exactly as a script airs."""
    from anchor.speech.reading import Reading, lexicon_file
    from anchor.speech.sentences import split_sentences

    app_settings = settings()
    if not text.strip():
        raise BadInput('give the words to read, e.g. anchor say "请拨打12309"')
    if out_file is not None:
        _check_extension(out_file)
    language = language or app_settings.speech.language
    reading = Reading(language, lexicon_file(app_settings.lexicon))
    sentences = [s for line in text.splitlines() if line.strip()
                 for s in split_sentences(line.strip(), app_settings.speech.max_sentence_chars)]
    read = reading.of(sentences)
    # Plain lines, exactly as read: rich would turn a written `:star:` into an emoji, and loading it is a
    # tenth of this command's time.
    print(f"written  {''.join(r.written for r in read)}")
    print(f"said     {''.join(r.said for r in read)}")
    if reading.mandarin:
        print(f"pinyin   {' '.join(r.pinyin for r in read)}")
    else:
        print(f"({language} is said as written: the Chinese front end reads Mandarin only)")
    if not (play or out_file):
        return
    program = _speak(app_settings, text, language, engine, voice)
    out().print(f"spoken by {program.engine} / {program.voice}, {program.duration_seconds:.1f} s"
                + (f" (fell back: {escape(program.fallback_reason)})" if program.fallback_reason else ""),
                highlight=False)
    if out_file is not None:
        _export(program.files.wav, out_file)
        out().print(f"written to {out_file}", highlight=False, soft_wrap=True)
    if play:
        if shutil.which(PLAYER[0]) is None:
            raise Failed("ffplay is not installed (apt-get install ffmpeg); use --out FILE instead")
        # A person is listening: the length of the words, plus time for the player to open the device.
        done = subprocess.run([*PLAYER, str(program.files.wav)], capture_output=True, text=True,
                              timeout=program.duration_seconds + 30)
        if done.returncode != 0:
            raise Failed(f"ffplay could not play it: {done.stderr.strip() or done.returncode}")
