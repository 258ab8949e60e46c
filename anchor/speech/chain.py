"""The engine chain: per-request timeout, retries with backoff, a circuit breaker per engine, and the retries
of a preferred engine that run in the background while a fallback voice's cached Program is served."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from anchor.config import ChainSettings, Settings
from anchor.content import Prosody
from anchor.metrics import TTS_FALLBACKS, TTS_REQUESTS
from anchor.speech.engines import EngineError, SpeechEngine, SpokenAudio, engine_type

log = logging.getLogger(__name__)
BREAKERS_FILE = "breakers.json"  # in the data directory: shared by every anchor process on the PC


class EngineFailed(Exception):
    """An engine could not speak a whole Program; the message is the reason recorded in program.json.
    `unreachable`: its service cannot be reached at all, so its breaker opens at once."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


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

    def is_open(self) -> bool:
        """Whether a request now would be refused, without taking the probe that `allows` would."""
        if not self.probing:
            self._load()
        if self.opened_at is None:
            return False
        return self.probing or self.clock() - self.opened_at < self.cooldown

    def allows(self) -> bool:
        if self.is_open():
            return False
        if self.opened_at is None:
            return True
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

    def record_failure(self, error: str, trip: bool = False) -> None:
        """Count a failure; `trip` opens the breaker at once (the service cannot be reached at all)."""
        if not self.probing:
            self._load()  # count on from what the other processes saw
        self.failures += 1
        self.last_error = error
        if trip or self.probing or self.failures >= self.threshold:
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
        if self.failures == 1:
            return f"circuit open after 1 failure ({self.last_error})"
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
        self._background: dict[str, asyncio.Task[None]] = {}
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

    def in_background(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (a retry of the preferred engine for the Program `key`) beside the caller, which does not
        wait for it; at most one at a time for each key. It must handle its own errors."""
        running = self._background.get(key)
        if running is not None and not running.done():
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name=f"retry preferred engine for {key[:12]}")
        self._background[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._background.get(key) is done:
                del self._background[key]

        task.add_done_callback(forget)

    @property
    def retrying(self) -> int:
        """How many background retries are under way."""
        return sum(not task.done() for task in self._background.values())

    async def settle(self) -> None:
        """Wait until the background retries end: a one-shot command, before it exits, lets them finish."""
        while self._background:
            await asyncio.gather(*self._background.values(), return_exceptions=True)

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
                raise EngineFailed(f"{engine.name}: {error.reason} (after {attempt} attempt{'s' * (attempt > 1)})",
                                   unreachable=error.unreachable)
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
            breaker.record_failure(str(exc).removeprefix(f"{engine.name}: "), trip=exc.unreachable)
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
