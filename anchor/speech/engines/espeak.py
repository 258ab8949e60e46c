"""espeak-ng: the offline engine that always works. Robotic, but never silent."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import TYPE_CHECKING

from pydantic import Field

from anchor.process import ProgramMissing, ProgramTimeout, run_program
from anchor.speech.engines import register
from anchor.speech.engines.base import (
    EngineError,
    EngineSettings,
    SpeechEngine,
    SpokenAudio,
    UnknownVoice,
    VoiceInfo,
    language_lookup,
)
from anchor.speech.reading import SpeechText

if TYPE_CHECKING:  # the script reader loads with the first script, not with a settings check
    from anchor.content import Prosody

DEFAULT_SPEED_WPM = 175
PINYIN_VOICES = frozenset({"cmn-latn-pinyin"})  # read tone-numbered pinyin; its plain `cmn` misreads polyphones


class EspeakSettings(EngineSettings):
    binary: str = "espeak-ng"
    speed_wpm: int = Field(DEFAULT_SPEED_WPM, ge=80, le=450)
    # Language → voice. Mandarin needs cmn-latn-pinyin: plain `cmn` reads tone digits in English.
    voices: dict[str, str] = Field(default_factory=lambda: {
        "zh": "cmn-latn-pinyin", "zh-CN": "cmn-latn-pinyin", "cmn": "cmn-latn-pinyin",
        "zh-HK": "yue", "yue": "yue", "en": "en-us",
    })


@register
class EspeakEngine(SpeechEngine):
    name = "espeak"
    word_timing = False
    max_concurrency = 2  # one process per core
    Settings = EspeakSettings

    def __init__(self, settings: EspeakSettings) -> None:
        super().__init__(settings)
        self.settings: EspeakSettings = settings
        self._voices: list[VoiceInfo] | None = None
        self._voice_lock = asyncio.Lock()

    async def _run(self, *args: str, stdin: bytes | None = None, timeout: float = 30) -> bytes:
        try:
            done = await run_program([self.settings.binary, *args], stdin, timeout)
        except ProgramMissing:
            raise EngineError(f"{self.settings.binary} is not installed (apt-get install espeak-ng)",
                              transient=False) from None
        except ProgramTimeout:
            raise EngineError(f"espeak-ng took longer than {timeout:g}s") from None
        if done.returncode != 0:
            raise EngineError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()}", transient=False)
        return done.stdout

    async def list_voices(self) -> list[VoiceInfo]:
        async with self._voice_lock:
            if self._voices is None:
                out = (await self._run("--voices")).decode("utf-8", errors="replace")
                voices: list[VoiceInfo] = []
                names: set[str] = set()
                for line in out.splitlines()[1:]:
                    cols = line.split()
                    if len(cols) < 5:
                        continue
                    # Pty Language Age/Gender VoiceName File (OtherLanguage priority)…; a language with
                    # two voices (yue, and yue in Jyutping) names the second by its file: -v takes both.
                    name = cols[1] if cols[1] not in names else cols[4].rsplit("/", 1)[-1].lower()
                    names.add(name)
                    others = tuple(re.findall(r"\((\S+) \d+\)", " ".join(cols[5:])))
                    voices.append(VoiceInfo(name=name, language=cols[1], gender=cols[2].split("/")[-1],
                                            description=cols[3].replace("_", " "), other_languages=others))
                self._voices = voices
        return self._voices

    async def resolve_voice(self, language: str, requested: str | None) -> str:
        if requested:
            if requested.split("+")[0].lower() in {v.name.lower() for v in await self.list_voices()}:
                return requested
            raise UnknownVoice(f"espeak-ng has no voice '{requested}' (`anchor voices --engine espeak` lists them)")
        voice = language_lookup(self.settings.voices, language)
        if voice is None:  # not configured: a voice of espeak-ng's own for the language, if it has one
            speaking = [v.name for v in await self.list_voices() if v.matches_language(language)]
            primary = language.lower().split("-")[0]
            preferred = [n for n in (language.lower(), f"{primary}-{primary}", primary) if n in speaking]
            voice = next(iter(preferred or speaking), None)
        if voice is None:
            raise UnknownVoice(f"no espeak-ng voice for language '{language}': add it under "
                               f"[speech.engines.espeak.voices] in anchor.toml")
        # A configured voice needs no voice list (espeak-ng --voices, a process a cached render would wait
        # for); that espeak-ng is there to read it is all that is checked.
        if shutil.which(self.settings.binary) is None:
            raise EngineError(f"{self.settings.binary} is not installed (apt-get install espeak-ng)", transient=False)
        return voice

    def reads(self, text: SpeechText, voice: str) -> str:
        return text.pinyin if voice.split("+")[0].lower() in PINYIN_VOICES else text.said

    def owns_voice_name(self, voice: str) -> bool:
        return not voice.endswith("Neural") and bool(re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*(\+\w+)?", voice))

    async def synthesize(self, text: str, voice: str, prosody: Prosody) -> SpokenAudio:
        speed = round(self.settings.speed_wpm * (1 + prosody.rate / 100))
        pitch = 50 + prosody.pitch // 2  # espeak's 0–99 scale, 50 = the voice's own pitch
        amplitude = 100 + prosody.volume
        data = await self._run(
            "-v", voice, "-s", str(min(450, max(80, speed))), "-p", str(min(99, max(0, pitch))),
            "-a", str(min(200, max(0, amplitude))), "-b", "1", "--stdin", "--stdout",
            stdin=text.encode("utf-8"),
        )
        from anchor.speech.wav import WavError, parse_streamed_wav  # numpy: loaded when speaking, not to check

        try:
            samples, rate = parse_streamed_wav(data)
        except WavError as exc:
            raise EngineError(f"espeak-ng wrote no usable WAV: {exc}", transient=False) from None
        if len(samples) == 0:
            raise EngineError("espeak-ng produced no audio", transient=False)
        return SpokenAudio(samples, rate)
