"""The engine chain: per-request timeout, retries with backoff, and a circuit breaker per engine."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from anchor.config import ChainSettings, Settings
from anchor.content import Prosody
from anchor.metrics import TTS_FALLBACKS, TTS_REQUESTS
from anchor.speech.engines import EngineError, SpeechEngine, SpokenAudio, engine_type

log = logging.getLogger(__name__)
BREAKERS_FILE = "breakers.json"  # in the data directory: shared by every anchor process on the PC


class EngineFailed(Exception):
    """An engine could not speak a whole Program; the message is the reason recorded in program.json."""


class CircuitBreaker:
    """Opens after `threshold` failures in a row. After `cooldown`, one probe at a time is let through:
    its success closes the breaker, its failure re-opens it for another cooldown.

    With a `shared` file (breakers.json in the data directory) every anchor process on the PC keeps one
    state per engine: on an offline PC a one-shot `anchor render` finds the cloud voice already known
    down instead of waiting out its timeouts again. A process that takes the probe re-arms the cooldown
    for the others. Wall-clock time, since the state outlives a process."""

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.time,
                 name: str = "", shared: Path | None = None) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.name = name
        self.shared = shared
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.last_error = ""
        self._opened_before_probe: float | None = None

    def _load(self) -> None:
        if self.shared is None:
            return
        try:
            entry = json.loads(self.shared.read_text(encoding="utf-8")).get(self.name)
            if entry is None:
                return
            self.failures = int(entry["failures"])
            self.opened_at = None if entry["opened_at"] is None else float(entry["opened_at"])
            self.last_error = str(entry.get("last_error", ""))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a torn or edited file
            log.debug("ignoring %s: %s", self.shared, exc)

    def _save(self) -> None:
        if self.shared is None:
            return
        try:
            try:
                states = json.loads(self.shared.read_text(encoding="utf-8"))
                states = states if isinstance(states, dict) else {}
            except (OSError, ValueError):
                states = {}
            states[self.name] = {"failures": self.failures, "opened_at": self.opened_at,
                                 "last_error": self.last_error}
            self.shared.parent.mkdir(parents=True, exist_ok=True)
            staged = self.shared.with_name(f".{self.shared.name}.{os.getpid()}")
            staged.write_text(json.dumps(states, indent=1), encoding="utf-8")
            os.replace(staged, self.shared)  # readers see the old state or the new, never half
        except OSError as exc:  # a read-only data directory: the breaker still works in this process
            log.debug("cannot share the %s breaker through %s: %s", self.name, self.shared, exc)

    def allows(self) -> bool:
        if not self.probing:
            self._load()
        if self.opened_at is None:
            return True
        if self.probing or self.clock() - self.opened_at < self.cooldown:
            return False
        self.probing = True
        self._opened_before_probe, self.opened_at = self.opened_at, self.clock()
        self._save()  # the others wait out a cooldown of their own while this process probes
        return True

    def record_success(self) -> None:
        was_open = self.failures or self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.probing = False
        if was_open:
            self._save()

    def record_failure(self, error: str) -> None:
        if not self.probing:
            self._load()  # count on from what the other processes saw
        self.failures += 1
        self.last_error = error
        if self.probing or self.failures >= self.threshold:
            self.opened_at = self.clock()
        self.probing = False
        self._save()

    def release_probe(self) -> None:
        """A probe that ended without a verdict (cancelled) must not keep the engine shut forever."""
        if self.probing:
            self.probing = False
            self.opened_at = self._opened_before_probe
            self._save()

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
        shared = settings.data_dir / BREAKERS_FILE
        self.breakers = {e.name: CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_cooldown,
                                                name=e.name, shared=shared)
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
