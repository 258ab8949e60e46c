"""The engine chain: per-request timeout, retries with backoff, and a circuit breaker per engine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from anchor.config import ChainSettings, Settings
from anchor.content import Prosody
from anchor.metrics import TTS_FALLBACKS, TTS_REQUESTS
from anchor.speech.engines import EngineError, SpeechEngine, SpokenAudio, engine_type

log = logging.getLogger(__name__)


class EngineFailed(Exception):
    """An engine could not speak a whole Program; the message is the reason recorded in program.json."""


class CircuitBreaker:
    """Opens after `threshold` failures in a row. After `cooldown`, one probe at a time is let through:
    its success closes the breaker, its failure re-opens it for another cooldown."""

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.last_error = ""

    def allows(self) -> bool:
        if self.opened_at is None:
            return True
        if self.probing or self.clock() - self.opened_at < self.cooldown:
            return False
        self.probing = True
        return True

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def record_failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.probing or self.failures >= self.threshold:
            self.opened_at = self.clock()
        self.probing = False

    def release_probe(self) -> None:
        """A probe that ended without a verdict (cancelled) must not keep the engine shut forever."""
        self.probing = False

    def describe(self) -> str:
        if self.opened_at is None:
            return "circuit closed"
        if self.probing:
            return f"circuit open, a probe is under way (last error: {self.last_error})"
        return f"circuit open after {self.failures} failures in a row (last: {self.last_error})"


class EngineChain:
    """The engines to try, in order, each with its breaker. Long-lived: breakers remember across renders."""

    def __init__(self, settings: Settings, only: str | None = None) -> None:
        self.settings: ChainSettings = settings.speech.chain
        names = [only] if only else self.settings.engines
        self.engines: list[SpeechEngine] = [engine_type(n).create(settings) for n in names]
        self.breakers = {e.name: CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_cooldown)
                         for e in self.engines}
        for engine in self.engines:  # known series start at 0
            for outcome in ("ok", "error", "timeout"):
                TTS_REQUESTS.labels(engine.name, outcome)
            if engine is not self.engines[0]:
                TTS_FALLBACKS.labels(self.engines[0].name, engine.name)

    def admits(self, engine: SpeechEngine, skipped: list[str]) -> bool:
        """Whether `engine` may try now; if not, why goes to `skipped`."""
        breaker = self.breakers[engine.name]
        if breaker.allows():
            return True
        skipped.append(f"{engine.name} skipped: {breaker.describe()}")
        return False

    async def _request(self, engine: SpeechEngine, text: str, voice: str, prosody: Prosody) -> SpokenAudio:
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(self.settings.request_timeout):
                    spoken = await engine.synthesize(text, voice, prosody)
                TTS_REQUESTS.labels(engine.name, "ok").inc()
                return spoken
            except TimeoutError:
                error = EngineError(f"no answer within {self.settings.request_timeout:g}s")
                TTS_REQUESTS.labels(engine.name, "timeout").inc()
            except EngineError as exc:
                error = exc
                TTS_REQUESTS.labels(engine.name, "error").inc()
            if not error.transient or attempt == attempts:
                raise EngineFailed(f"{engine.name}: {error.reason} (after {attempt} attempt{'s' * (attempt > 1)})")
            delay = self.settings.backoff * 2 ** (attempt - 1)
            log.debug("%s: %s; retrying in %.1fs (attempt %d of %d)", engine.name, error.reason, delay,
                        attempt + 1, attempts)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def speak(self, engine: SpeechEngine, texts: list[str], voice: str, prosody: Prosody) -> list[SpokenAudio]:
        """Every text with one engine and voice, or EngineFailed: a Program never mixes voices."""
        gate = asyncio.Semaphore(engine.max_concurrency)
        breaker = self.breakers[engine.name]

        async def one(text: str) -> SpokenAudio:
            async with gate:
                return await self._request(engine, text, voice, prosody)

        tasks = [asyncio.ensure_future(one(t)) for t in texts]
        try:
            results = await asyncio.gather(*tasks)
        except EngineFailed as exc:
            was_open = breaker.opened_at is not None
            breaker.record_failure(str(exc).removeprefix(f"{engine.name}: "))
            if breaker.opened_at is not None and not was_open:  # once per outage, not once per program
                log.warning("%s: %s; not asked again for %g s", engine.name, breaker.describe(), breaker.cooldown)
            raise
        except BaseException:
            breaker.release_probe()
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        breaker.record_success()
        return results
