"""Local stand-in for Microsoft's Edge read-aloud TTS service: speaks the wire protocol the
real edge-tts 7.3.1 client expects; audio is real mp3 (espeak-ng -> ffmpeg, 24 kHz 48 kbit/s mono).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import uuid
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import unescape

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

MODES = ("ok", "forbidden", "no_audio", "hang", "busy")
_BASE = "/consumer/speech/synthesize/readaloud"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A CJK run, or a run of word characters that are not CJK (punctuation never matches).
_TOKEN_RE = re.compile(rf"[{_CJK}]+|(?:(?![{_CJK}])\w)+(?:['’](?:(?![{_CJK}])\w)+)*")
# Exactly what edge_tts.communicate.mkssml() emits.
_SSML_RE = re.compile(r"<voice name='([^']*)'><prosody pitch='([^']*)' rate='([^']*)' "
                      r"volume='([^']*)'>(.*)</prosody></voice>", re.S)
_TICKS_PER_S, _BITRATE, _CHUNK = 10_000_000, 48_000, 4096


def _voice(short: str, gender: str, friendly: str, cats: list[str], pers: list[str]) -> dict[str, Any]:
    locale, name = short.rsplit("-", 1)
    return {"Name": f"Microsoft Server Speech Text to Speech Voice ({locale}, {name})",
            "ShortName": short, "Gender": gender, "Locale": locale,
            "SuggestedCodec": "audio-24khz-48kbitrate-mono-mp3", "FriendlyName": friendly,
            "Status": "GA", "VoiceTag": {"ContentCategories": cats, "VoicePersonalities": pers}}


_ZH, _EN = "Chinese (Mainland)", "English (United States)"
VOICES: list[dict[str, Any]] = [
    _voice("zh-CN-XiaoxiaoNeural", "Female", f"Microsoft Xiaoxiao Online (Natural) - {_ZH}", ["News", "Novel"], ["Warm"]),
    _voice("zh-CN-YunxiNeural", "Male", f"Microsoft Yunxi Online (Natural) - {_ZH}", ["Novel"], ["Lively", "Sunshine"]),
    _voice("zh-CN-XiaoyiNeural", "Female", f"Microsoft Xiaoyi Online (Natural) - {_ZH}", ["Cartoon", "Novel"], ["Lively"]),
    _voice("en-US-EmmaMultilingualNeural", "Female", f"Microsoft EmmaMultilingual Online (Natural) - {_EN}",
           ["Conversation", "Copilot"], ["Cheerful", "Clear", "Conversational"]),
    _voice("en-US-GuyNeural", "Male", f"Microsoft Guy Online (Natural) - {_EN}", ["News", "Novel"], ["Passion"]),
]


def _words(text: str) -> list[str]:
    """Edge-like word units: Latin words, CJK runs cut into 2-character 'words'."""
    out: list[str] = []
    for tok in _TOKEN_RE.findall(text):
        if re.match(rf"[{_CJK}]", tok):
            out.extend(tok[i : i + 2] for i in range(0, len(tok), 2))
        else:
            out.append(tok)
    return out


def _boundaries(text: str, duration_s: float, kind: str) -> list[dict[str, Any]]:
    """Word/SentenceBoundary metadata spread over the audio proportionally to character count."""
    if kind == "WordBoundary":
        words = _words(text)
    else:  # sentences keep their closing punctuation, like the service's SentenceBoundary
        words = [u.strip() for u in re.findall(r"[^。！？!?.]+[。！？!?.]*", text) if u.strip()]
    total = sum(len(w) for w in words) or 1
    per_char = duration_s * _TICKS_PER_S / total
    out, done = [], 0
    for w in words:
        data = {"Offset": int(done * per_char), "Duration": int(len(w) * per_char),
                "text": {"Text": w, "Length": len(w), "BoundaryType": kind}}
        out.append({"Type": kind, "Data": data})
        done += len(w)
    return out


async def _pipe(args: list[str], data: bytes) -> bytes:
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*args, stdin=pipe, stdout=pipe, stderr=pipe)
    try:
        out, err = await proc.communicate(data)
    finally:
        if proc.returncode is None:  # cancelled (e.g. stop()): don't leak the child
            proc.kill()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")
    return out


async def _synthesize(text: str) -> tuple[bytes, float]:
    """Return (mp3 bytes, speech duration in seconds)."""
    voice = "cmn-latn-pinyin" if re.search(rf"[{_CJK}]", text) else "en-us"
    # Text goes via stdin so a leading '-' can't be parsed as an espeak option.
    wav = await _pipe(["espeak-ng", "-v", voice, "--stdin", "--stdout"], text.encode())
    # espeak streams wav with a bogus size field, so measure the data instead.
    channels, rate = int.from_bytes(wav[22:24], "little"), int.from_bytes(wav[24:28], "little")
    bytes_per_s = rate * channels * int.from_bytes(wav[34:36], "little") / 8
    duration = max(len(wav) - wav.find(b"data") - 8, 0) / bytes_per_s
    mp3 = await _pipe(["ffmpeg", "-loglevel", "error", "-f", "wav", "-i", "-", "-ar", "24000",
                       "-ac", "1", "-b:a", "48k", "-f", "mp3", "-"], wav)
    return mp3, duration


class FakeEdgeServer:
    """Speaks edge-tts's websocket protocol on 127.0.0.1 (free port), in a background thread."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests: list[dict[str, str]] = []
        self.connections = 0
        self.port = 0  # known after start()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:  # fail loudly on typos instead of silently behaving like "ok"
            raise ValueError(f"unknown mode {value!r}; expected one of {MODES}")
        self._mode = value

    @property
    def wss_url(self) -> str:
        # Must contain '?': the client appends "&ConnectionId=...".
        return f"ws://127.0.0.1:{self.port}{_BASE}/edge/v1?TrustedClientToken=test"

    @property
    def voices_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{_BASE}/voices/list?trustedclienttoken=test"

    def start(self) -> FakeEdgeServer:
        self._thread = threading.Thread(target=self._run, name="FakeEdgeServer", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeEdgeServer did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("FakeEdgeServer failed to start") from self._error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
        except Exception:  # still stop the loop; a stuck handler must not hang the test run
            log.warning("FakeEdgeServer shutdown was not clean", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)

    def __enter__(self) -> FakeEdgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._setup())
        except BaseException as e:  # report to start() instead of dying silently
            self._error = e
        self._ready.set()
        if self._error is None:
            loop.run_forever()
        loop.close()

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_get(f"{_BASE}/edge/v1", self._on_ws)
        app.router.add_get(f"{_BASE}/voices/list", self._on_voices)
        # Short shutdown_timeout: the default (60 s) would let a busy handler stall stop().
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        # Close open sockets first ("hang" handlers otherwise wait forever).
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY) for ws in list(self._sockets)),
                             return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def _refusal(self) -> web.Response | None:
        # Date header matters: on 403 the client adjusts clock skew from it and retries once.
        status = {"forbidden": 403, "busy": 429}.get(self.mode)
        if status is None:
            return None
        return web.Response(status=status, text="refused by FakeEdgeServer",
                            headers={"Date": formatdate(usegmt=True)})

    async def _on_voices(self, _request: web.Request) -> web.Response:
        return self._refusal() or web.json_response(VOICES)

    async def _on_ws(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        # timeout = close-handshake wait; keeps stop() bounded if a client never answers.
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        self._sockets.add(ws)
        boundary = "WordBoundary"
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                head, _, body = msg.data.partition("\r\n\r\n")
                headers = dict(line.split(":", 1) for line in head.split("\r\n") if ":" in line)
                if headers.get("Path") == "speech.config":  # no answer; picks the boundary kind
                    opts = json.loads(body)["context"]["synthesis"]["audio"]["metadataoptions"]
                    boundary = "WordBoundary" if opts.get("wordBoundaryEnabled") == "true" else "SentenceBoundary"
                if headers.get("Path") != "ssml":
                    continue
                m = _SSML_RE.search(body)
                if m is None:
                    log.warning("unparseable SSML: %r", body[:200])
                    await ws.close(code=WSCloseCode.INVALID_TEXT)
                    break
                voice, pitch, rate, volume, text = m.groups()
                text = unescape(text, {"&quot;": '"', "&apos;": "'"})
                self.requests.append({"voice": voice, "rate": rate, "pitch": pitch,
                                      "volume": volume, "text": text})
                if self.mode == "hang":
                    continue  # keep reading so close frames (and stop()) are still handled
                await self._answer(ws, headers.get("X-RequestId", uuid.uuid4().hex), text, boundary)
        finally:
            self._sockets.discard(ws)
        return ws

    async def _answer(self, ws: web.WebSocketResponse, rid: str, text: str, boundary: str) -> None:
        def frame(path: str, body: Any) -> str:
            return (f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\n"
                    f"Path:{path}\r\n\r\n{json.dumps(body, ensure_ascii=False)}")

        tag = uuid.uuid4().hex
        await ws.send_str(frame("turn.start", {"context": {"serviceTag": tag}}))
        if self.mode == "ok":  # any other mode at this point (e.g. flipped mid-turn) = no audio
            mp3, duration = await _synthesize(text)
            pending = _boundaries(text, duration, boundary)
            stream_id = uuid.uuid4().hex.upper()
            await ws.send_str(frame("response", {"context": {"serviceTag": tag},
                                                 "audio": {"type": "inline", "streamId": stream_id}}))
            # Binary frame: 2-byte BE length L, then L header bytes ending in CRLF, then audio.
            # (The client parses the 2 length bytes as part of the first header line, so
            # Path must not be the first header.)
            head = f"X-RequestId:{rid}\r\nContent-Type:audio/mpeg\r\nX-StreamId:{stream_id}\r\nPath:audio\r\n"
            prefix = len(head).to_bytes(2, "big") + head.encode()
            for pos in range(0, len(mp3), _CHUNK):
                chunk_end = (pos + _CHUNK) * 8 * _TICKS_PER_S // _BITRATE
                while pending and pending[0]["Data"]["Offset"] < chunk_end:
                    await ws.send_str(frame("audio.metadata", {"Metadata": [pending.pop(0)]}))
                await ws.send_bytes(prefix + mp3[pos : pos + _CHUNK])
            for meta in pending:
                await ws.send_str(frame("audio.metadata", {"Metadata": [meta]}))
            # The real service ends the audio stream with an empty, Content-Type-less frame.
            tail = f"X-RequestId:{rid}\r\nPath:audio\r\n"
            await ws.send_bytes(len(tail).to_bytes(2, "big") + tail.encode())
        await ws.send_str(frame("turn.end", {}))
