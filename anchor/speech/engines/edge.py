"""edge-tts: Microsoft's online neural voices, the primary engine. Never the only one.

edge-tts (with aiohttp) and the audio decoder load when an engine is made, not when this module is
imported: checking an [speech.engines.edge] table must not cost a command their start-up time.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import TYPE_CHECKING

from pydantic import Field

from anchor.speech.engines import register
from anchor.speech.engines.base import (
    EngineError,
    EngineSettings,
    SpeechEngine,
    SpokenAudio,
    UnknownVoice,
    VoiceInfo,
    WordTiming,
    language_lookup,
)

if TYPE_CHECKING:  # the script reader loads with the first script, not with a settings check
    from anchor.content import Prosody

EDGE_SAMPLE_RATE = 24000  # the service's only output: mp3, 24 kHz mono
TICKS_PER_SECOND = 10_000_000
_VOICE_NAME = re.compile(r"^[a-z]{2,3}-[A-Z]{2}(-[A-Za-z]+)?-[A-Za-z]+Neural$")


class EdgeSettings(EngineSettings):
    voices: dict[str, str] = Field(default_factory=lambda: {
        "zh-CN": "zh-CN-XiaoxiaoNeural", "zh": "zh-CN-XiaoxiaoNeural",
        "zh-HK": "zh-HK-HiuMaanNeural", "en": "en-US-EmmaMultilingualNeural",
    })
    # Empty = the library's own endpoints. Set to go through a relay, or to a local test server.
    endpoint: str = ""
    voice_list_endpoint: str = ""
    connect_timeout: int = Field(10, ge=1, le=120)


def _describe(exc: BaseException) -> EngineError:
    """Sort the library's many failure types into retryable and not."""
    import aiohttp
    from edge_tts.exceptions import EdgeTTSException, NoAudioReceived

    if isinstance(exc, aiohttp.WSServerHandshakeError) or isinstance(exc, aiohttp.ClientResponseError):
        if exc.status == 403:
            # Microsoft rotated its token: only a newer edge-tts fixes this, retrying cannot.
            return EngineError("rejected by the service (HTTP 403): upgrade edge-tts", transient=False)
        transient = exc.status in (408, 429) or exc.status >= 500
        return EngineError(f"service answered HTTP {exc.status}", transient=transient)
    cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(cause, socket.gaierror):
        # Offline or no DNS: not a blip a retry outlasts, and the same for every sentence of every program.
        assert isinstance(cause, OSError)
        return EngineError(f"the service's name does not resolve ({cause.strerror or cause}): this PC is offline "
                           f"or its DNS is down", unreachable=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return EngineError(f"cannot connect to the service ({exc.os_error.strerror or exc.os_error})")
    if isinstance(exc, asyncio.TimeoutError):
        return EngineError("the service did not answer in time")
    if isinstance(exc, NoAudioReceived):
        return EngineError("the service sent no audio")
    if isinstance(exc, (EdgeTTSException, aiohttp.ClientError)):
        return EngineError(f"{type(exc).__name__}: {exc}")
    return EngineError(f"{type(exc).__name__}: {exc}", transient=False)


@register
class EdgeEngine(SpeechEngine):
    name = "edge"
    word_timing = True
    max_concurrency = 4  # network-bound; more invites HTTP 429
    Settings = EdgeSettings

    def __init__(self, settings: EdgeSettings) -> None:
        super().__init__(settings)
        self.settings: EdgeSettings = settings

    def _point_library(self) -> None:
        """The library reads its endpoints from module globals; this is its only override point. The
        defaults come from its constants, so an engine built without an override gets them back."""
        import edge_tts.communicate
        import edge_tts.voices
        from edge_tts import constants

        setattr(edge_tts.communicate, "WSS_URL", self.settings.endpoint or constants.WSS_URL)  # noqa: B010
        setattr(edge_tts.voices, "VOICE_LIST", self.settings.voice_list_endpoint or constants.VOICE_LIST)  # noqa: B010

    def owns_voice_name(self, voice: str) -> bool:
        return bool(_VOICE_NAME.match(voice))

    async def resolve_voice(self, language: str, requested: str | None) -> str:
        if requested:
            if self.owns_voice_name(requested):
                return requested
            raise UnknownVoice(f"'{requested}' is not an edge voice name (they look like zh-CN-XiaoxiaoNeural)")
        voice = language_lookup(self.settings.voices, language)
        if voice is None:
            raise UnknownVoice(f"no edge voice for language '{language}': add it under "
                               f"[speech.engines.edge.voices] in anchor.toml")
        return voice

    async def synthesize(self, text: str, voice: str, prosody: Prosody) -> SpokenAudio:
        import aiohttp
        import edge_tts
        from edge_tts.exceptions import EdgeTTSException

        from anchor.speech import audio

        self._point_library()
        communicate = edge_tts.Communicate(
            text, voice,
            rate=f"{prosody.rate:+d}%", volume=f"{prosody.volume:+d}%", pitch=f"{prosody.pitch:+d}Hz",
            boundary="WordBoundary",
            connect_timeout=self.settings.connect_timeout,
        )
        mp3 = bytearray()
        words: list[WordTiming] = []
        try:
            async for chunk in communicate.stream():
                if chunk["type"] == "audio":
                    mp3 += chunk["data"]
                elif chunk["type"] == "WordBoundary":
                    start = chunk["offset"] / TICKS_PER_SECOND
                    words.append(WordTiming(chunk["text"], start, start + chunk["duration"] / TICKS_PER_SECOND))
        except (TimeoutError, EdgeTTSException, aiohttp.ClientError, OSError) as exc:
            raise _describe(exc) from None
        samples = await audio.decode(bytes(mp3), EDGE_SAMPLE_RATE)
        return SpokenAudio(samples, EDGE_SAMPLE_RATE, words)

    async def list_voices(self) -> list[VoiceInfo]:
        import aiohttp
        import edge_tts
        from edge_tts.exceptions import EdgeTTSException

        self._point_library()
        try:
            voices = await asyncio.wait_for(edge_tts.list_voices(), self.settings.connect_timeout + 5)
        except (TimeoutError, EdgeTTSException, aiohttp.ClientError, OSError, ValueError) as exc:
            raise _describe(exc) from None
        return [VoiceInfo(v["ShortName"], v["Locale"], v.get("Gender", ""), v.get("FriendlyName", ""))
                for v in voices]
