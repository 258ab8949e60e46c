"""A Program: everything rendering makes for one script and voice, cached by what shapes it.

render_program is the render stage of the data flow: Script → sentences → engine chain → joined,
normalized audio → subtitle cues → a cache entry holding program.wav/.srt/.vtt/.json.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from anchor.config import Settings
from anchor.content import Paragraph, Pause, Script
from anchor.metrics import PROGRAM_CACHE_LOOKUPS, RENDER_SECONDS, TTS_FALLBACKS
from anchor.speech.cache import ProgramCache, cache_key
from anchor.speech.chain import EngineChain, EngineFailed
from anchor.speech.engines import SpeechEngine, SpokenAudio, UnknownVoice, WordTiming
from anchor.speech.program_files import ProgramFiles
from anchor.speech.reading import Reading, lexicon_file
from anchor.speech.sentences import split_lines, split_sentences
from anchor.speech.subtitles import PlacedSentence, build_cues, to_srt, to_vtt
from anchor.speech.wav import sha256_file, wav_seconds

log = logging.getLogger(__name__)

# Bump when a change to rendering would change its output: old cache entries then stop matching.
PIPELINE_VERSION = 2
HEAD_SILENCE = 0.25  # a clean start when the output cuts to the program
TAIL_SILENCE = 0.5
EDGE_PAD = 0.03  # kept around each sentence's speech so soft onsets are not clipped


class RenderError(Exception):
    """No engine could render the Program; the message lists why each failed."""


class LoudnessReport(BaseModel):
    integrated_lufs: float
    true_peak_dbtp: float
    range_lu: float
    target_lufs: float


class Program(BaseModel):
    key: str
    script: str
    title: str
    content_hash: str
    engine: str
    voice: str
    fallback_reason: str | None
    duration_seconds: float
    sentences: int
    cues: int
    loudness: LoudnessReport
    audio_sha256: str
    rendered_at: datetime
    render_seconds: float
    pipeline_version: int
    cache_hit: bool = False
    directory: Path | None = None

    @property
    def files(self) -> ProgramFiles:
        if self.directory is None:
            raise RenderError(f"program '{self.script}' was never written to disk")
        return ProgramFiles(self.directory)

    @classmethod
    def load(cls, directory: Path) -> Program:
        program = cls.model_validate_json(ProgramFiles(directory).meta.read_text(encoding="utf-8"))
        return program.model_copy(update={"directory": directory})

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude={"directory"})


@dataclass(frozen=True)
class Unit:
    """One TTS request: its text and the silence before it."""

    text: str
    gap_before: float


def plan_units(script: Script, engine: SpeechEngine, settings: Settings) -> list[Unit]:
    speech = settings.speech
    units: list[Unit] = []
    explicit: float | None = None  # [pause …] lines since the last paragraph
    for block in script.blocks:
        if isinstance(block, Pause):
            explicit = (explicit or 0.0) + block.seconds
            continue
        assert isinstance(block, Paragraph)
        for s_index, sentence in enumerate(split_sentences(block.text, speech.max_sentence_chars)):
            # Without word timings each subtitle line is its own request, so every cue's time is exact.
            pieces = [sentence] if engine.word_timing else split_lines(sentence, settings.subtitles.max_line_chars)
            for p_index, piece in enumerate(pieces):
                if not units:
                    gap = explicit or 0.0
                elif p_index:
                    gap = speech.clause_pause
                elif s_index:
                    gap = speech.sentence_pause
                else:
                    gap = explicit if explicit is not None else speech.paragraph_pause
                units.append(Unit(piece, gap))
        explicit = None
    return units


def reading_for(script: Script, settings: Settings) -> Reading:
    return Reading(script.language, lexicon_file(settings.lexicon))


def program_key(script: Script, engine: SpeechEngine, voice: str, settings: Settings) -> str:
    speech = settings.speech
    return cache_key({
        "reading": reading_for(script, settings).key,  # front end rules and lexicon: what is said
        "pipeline": PIPELINE_VERSION,
        "content": script.content_hash,
        "engine": engine.name,
        "voice": voice,
        "prosody": [script.prosody.rate, script.prosody.pitch, script.prosody.volume],
        "loudness": speech.loudness.model_dump(),
        "pauses": [speech.sentence_pause, speech.paragraph_pause, speech.clause_pause],
        "max_sentence_chars": speech.max_sentence_chars,
        "max_line_chars": settings.subtitles.max_line_chars,
    })


def _assemble(units: list[Unit], spoken: list[SpokenAudio], raw: Path) -> tuple[list[PlacedSentence], int, float]:
    """Write gaps and trimmed sentences as one raw PCM stream; return where each sentence landed."""
    import numpy as np

    from anchor.speech import audio

    rate = spoken[0].sample_rate
    if any(s.sample_rate != rate for s in spoken):
        raise RenderError("the engine returned mixed sample rates")
    pad = round(EDGE_PAD * rate)
    placed: list[PlacedSentence] = []
    position = 0
    with raw.open("wb") as out:
        def silence(seconds: float) -> None:
            nonlocal position
            count = round(seconds * rate)
            out.write(np.zeros(count, dtype="<i2").tobytes())
            position += count

        silence(HEAD_SILENCE)
        for unit, sentence in zip(units, spoken, strict=False):
            silence(unit.gap_before)
            first, last = audio.speech_bounds(sentence.samples)
            if last == 0:
                log.warning("engine returned silence for %r", unit.text)
                continue
            first, last = max(0, first - pad), min(len(sentence.samples), last + pad)
            start = position / rate
            shift = start - first / rate
            words = [WordTiming(w.text, w.start + shift, w.end + shift) for w in sentence.words]
            out.write(sentence.samples[first:last].astype("<i2").tobytes())
            position += last - first
            placed.append(PlacedSentence(unit.text, start, position / rate, words))
        silence(TAIL_SILENCE)
    return placed, rate, position / rate


async def _render_with(script: Script, engine: SpeechEngine, voice: str, key: str, chain: EngineChain,
                       cache: ProgramCache, settings: Settings, fallback: str | None) -> Program:
    from anchor.speech import audio

    started = time.perf_counter()
    units = plan_units(script, engine, settings)
    # Subtitles keep each unit's written text; the engine is given it as it is to be said.
    readings = await asyncio.to_thread(reading_for(script, settings).of, [u.text for u in units])
    said = [engine.reads(reading, voice) for reading in readings]
    spoken = await chain.speak(engine, said, voice, script.prosody)
    loud = settings.speech.loudness
    with cache.staging(key) as staged:
        files = ProgramFiles(staged)
        raw = staged / "speech.raw"
        placed, rate, _ = await asyncio.to_thread(_assemble, units, spoken, raw)
        del spoken  # the samples are on disk now: a long Program must not hold them twice
        measured = await audio.normalize(raw, rate, files.wav, loud.target_lufs, loud.true_peak_dbtp,
                                         loud.sample_rate)
        raw.unlink()
        cues = build_cues(placed, settings.subtitles.max_line_chars)
        files.srt.write_text(to_srt(cues), encoding="utf-8")
        files.vtt.write_text(to_vtt(cues), encoding="utf-8")
        seconds, digest = await asyncio.to_thread(lambda: (wav_seconds(files.wav), sha256_file(files.wav)))
        program = Program(
            key=key, script=script.name, title=script.title, content_hash=script.content_hash,
            engine=engine.name, voice=voice, fallback_reason=fallback,
            duration_seconds=round(seconds, 3),
            sentences=len(placed), cues=len(cues),
            loudness=LoudnessReport(integrated_lufs=measured.integrated_lufs,
                                    true_peak_dbtp=measured.true_peak_dbtp, range_lu=measured.range_lu,
                                    target_lufs=loud.target_lufs),
            audio_sha256=digest,
            rendered_at=datetime.now(UTC),
            render_seconds=round(time.perf_counter() - started, 3),
            pipeline_version=PIPELINE_VERSION,
        )
        files.meta.write_text(program.to_json(), encoding="utf-8")  # last: marks complete
        entry = await asyncio.to_thread(cache.commit, key, staged)
    RENDER_SECONDS.labels(engine.name).observe(program.render_seconds)
    return program.model_copy(update={"directory": entry})


async def _voice_for(engine: SpeechEngine, script: Script, requested: list[str]) -> str:
    """Each engine takes the first requested voice that is its own, else its default for the language."""
    own = next((v for v in requested if engine.owns_voice_name(v)), None)
    return await engine.resolve_voice(script.language, own)


async def render_program(script: Script, settings: Settings, chain: EngineChain, cache: ProgramCache,
                         voice: str | None = None, voices: list[str] | None = None) -> Program:
    """The Program for `script`: from the cache when it is there, else rendered by the first engine that can.

    Voices are asked for in order: `voice` (the command line), the script's own, then `voices` (a
    channel's voice and fallback voice). The cache is looked up for every engine first: a cached Program is
    returned at once, and when it is a later engine's (a fallback voice), the engines before it are tried
    again in the background (`chain.settle` waits for that), never in front of the hit. Raises UnknownVoice
    for an explicit voice no engine in the chain has, RenderError when every engine failed.
    """
    explicit = voice or script.voice
    if explicit and not any(e.owns_voice_name(explicit) for e in chain.engines):
        raise UnknownVoice(f"no engine in the chain ({', '.join(e.name for e in chain.engines)}) has a voice "
                           f"named '{explicit}' (`anchor voices` lists them)")
    requested = [v for v in [explicit, *(voices or [])] if v]
    reasons: list[str] = []
    uncached: list[Candidate] = []  # the engines before a hit, in the chain's order
    for engine in chain.engines:
        try:
            chosen = await _voice_for(engine, script, requested)
        except UnknownVoice as exc:
            if explicit and engine.owns_voice_name(explicit):
                raise  # the voice asked for by name is this engine's, and it has no such voice
            reasons.append(f"{engine.name}: {exc}")  # it does not speak this language: the next one may
            continue
        key = program_key(script, engine, chosen, settings)
        hit = await asyncio.to_thread(cache.get, key)
        if hit is None:
            uncached.append(Candidate(engine, chosen, key))
            continue
        # A finished Program is served even while its engine is down, and before any engine is asked.
        PROGRAM_CACHE_LOOKUPS.labels("hit").inc()
        found = Program.load(hit)
        if any(not chain.breakers[c.engine.name].is_open() for c in uncached):
            chain.in_background(uncached[0].key,
                                _retry_preferred(script, settings, chain, cache, uncached, list(reasons)))
        for earlier in uncached:
            breaker = chain.breakers[earlier.engine.name]
            reasons.append(f"{earlier.engine.name} skipped: {breaker.describe()}" if breaker.is_open() else
                           f"{earlier.engine.name}: no Program of its voice yet; it is tried in the background")
        return found.model_copy(update={"cache_hit": True, "fallback_reason": "; ".join(reasons) or None})
    PROGRAM_CACHE_LOOKUPS.labels("miss").inc()
    return await _render_first(script, settings, chain, cache, uncached, reasons)


@dataclass(frozen=True)
class Candidate:
    """An engine that may render the Program, with its voice and the cache key it would have."""

    engine: SpeechEngine
    voice: str
    key: str


async def _render_first(script: Script, settings: Settings, chain: EngineChain, cache: ProgramCache,
                        candidates: list[Candidate], reasons: list[str]) -> Program:
    """Render with the first candidate whose breaker admits it and that can speak the whole script."""
    # numpy and the ffmpeg tools load only to render: a cache hit, the most common call, does without them.
    from anchor.speech import audio

    reasons = list(reasons)
    for candidate in candidates:
        engine = candidate.engine
        if not chain.admits(engine, reasons):
            continue
        fallback = "; ".join(reasons) or None
        try:
            program = await _render_with(script, engine, candidate.voice, candidate.key, chain, cache, settings,
                                         fallback)
        except EngineFailed as exc:
            log.debug("%s: %s; trying the next engine", script.name, exc)
            reasons.append(str(exc))
            continue
        except (audio.AudioError, OSError) as exc:
            raise RenderError(f"{engine.name} spoke, but the audio could not be finished: {exc}") from exc
        if fallback:
            TTS_FALLBACKS.labels(chain.engines[0].name, engine.name).inc()
            log.warning("%s rendered with %s (%s) because %s", script.name, engine.name, candidate.voice, fallback)
        return program
    raise RenderError("; ".join(reasons) or "no engine is configured")


async def _retry_preferred(script: Script, settings: Settings, chain: EngineChain, cache: ProgramCache,
                           preferred: list[Candidate], reasons: list[str]) -> None:
    """In the background of a fallback voice's cache hit: render with the engines the chain prefers, so the
    next lookup finds their Program. A failure only feeds their breakers; the cached Program keeps airing.
    `reasons`: why engines before those were passed over (their language)."""
    try:
        program = await _render_first(script, settings, chain, cache, preferred, reasons)
    except RenderError as exc:
        log.info("%s: the cached fallback Program stays: %s", script.name, exc)
    except Exception:
        log.exception("%s: retrying the preferred engine failed", script.name)
    else:
        log.info("%s: rendered with %s (%s) in the background; it replaces the fallback from now on",
                 script.name, program.engine, program.voice)
