"""Programs made ready ahead of air: every planned airing in the pre-render horizon gets its Program rendered
and its output prepared (clip, scene) before its instant, soonest first, so at the minute only the output's
start remains. An airing nothing was made ready for is rendered at once by the offline engine.

A script that no longer loads (a bad edit saved mid-day) airs its last good Program, still in the cache,
with a warning naming the file and line: the last Program made from each script is noted under
data_dir/last-good/programs/.

On every channel a text is screened before it is made or aired: a listed claim no approval of that exact text
accepted keeps it off air (anchor.content.clearance). The word lists are read again on a reload; a list with
errors keeps the last good lists (at start: the bundled list alone) and is logged with file:line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

from anchor.config import Settings
from anchor.content import load_script
from anchor.content.approvals import ApprovalBook, ApprovalStatus
from anchor.content.clearance import Clearance, clearance, screen_file
from anchor.content.screening import Screen
from anchor.metrics import PROGRAM_CACHE_LOOKUPS, PROGRAMS_READY, RENDER_SECONDS
from anchor.onair.outputs import OutputSet
from anchor.outputs import Cue, OutputError
from anchor.problems import InputError
from anchor.program import Program, RenderError, render_program
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring
from anchor.speech.cache import ProgramCache, cache_key
from anchor.speech.chain import EngineChain
from anchor.speech.engines import UnknownVoice
from anchor.store import AsRunLog

log = logging.getLogger(__name__)

APPROVALS_FRESH_FOR = 2.0  # seconds a read of the approval records serves (prepare asks for many airings)


class NotCleared(Exception):
    """This text of the script may not air here; `reason` says why, for the as-run log."""

    def __init__(self, script: str, reason: str) -> None:
        super().__init__(f"{script}: {reason}")
        self.reason = reason


class NotApproved(NotCleared):
    """The channel requires approval and this text of the script has none (the status says why)."""

    def __init__(self, status: ApprovalStatus) -> None:
        super().__init__(status.script, status.reason())
        self.status = status


class UnacceptedClaims(NotCleared):
    """The text has listed claims that no approval of it accepted: it airs on no channel."""

    def __init__(self, found: Clearance) -> None:
        super().__init__(found.script, found.reason())
        self.clearance = found


# What can keep a Program from being made: the script, every engine, the voice, the disk, approval, screening.
NOT_MADE = (InputError, RenderError, UnknownVoice, OSError, NotCleared)


class ApprovalReader:
    """The approval records as the as-run log holds them (shared by every PC of a fleet), read off the loop."""

    def __init__(self, asrun: AsRunLog) -> None:
        self.asrun = asrun
        self._book: ApprovalBook | None = None
        self._read_at = -math.inf

    async def book(self, fresh: bool = False) -> ApprovalBook:
        if fresh or self._book is None or time.monotonic() - self._read_at > APPROVALS_FRESH_FOR:
            self._book = ApprovalBook(await asyncio.to_thread(self.asrun.approvals))
            self._read_at = time.monotonic()
        return self._book


def cue_for(planned: PlannedAiring, channel: Channel, program: Program) -> Cue:
    return Cue(channel.id, channel.name, planned.slot, planned.planned_at, program, channel.avatar,
               deadline=planned.planned_at_utc + planned.grace)


class KeptPrograms:
    """The last Program made from each script (for each set of channel voices), noted by its cache key."""

    def __init__(self, folder: Path, cache: ProgramCache) -> None:
        self.folder = folder
        self.cache = cache

    def _note(self, script: str, voices: list[str]) -> Path:
        return self.folder / f"{cache_key({'script': script, 'voices': voices})[:24]}.json"

    def keep(self, script: str, voices: list[str], program: Program) -> None:
        """Blocking (a small write): call it in a thread."""
        note = self._note(script, voices)
        text = json.dumps({"script": script, "key": program.key, "rendered_at": program.rendered_at.isoformat()})
        try:
            if note.is_file() and note.read_text(encoding="utf-8") == text:
                return
            note.parent.mkdir(parents=True, exist_ok=True)
            partial = note.with_suffix(".part")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, note)
        except OSError as exc:
            log.warning("cannot note the last good Program of %s: %s", script, exc.strerror or exc)

    def recall(self, script: str, voices: list[str]) -> Program | None:
        """Blocking: call it in a thread."""
        try:
            key = json.loads(self._note(script, voices).read_text(encoding="utf-8"))["key"]
        except (OSError, ValueError, KeyError):
            return None
        entry = self.cache.get(str(key))
        return Program.load(entry).model_copy(update={"cache_hit": True}) if entry else None


class ReadyPrograms:
    def __init__(self, settings: Settings, chain: EngineChain, cache: ProgramCache,
                 approvals: ApprovalReader | None = None) -> None:
        self.settings = settings
        self.chain = chain
        self.cache = cache
        self.approvals = approvals
        self.approved_under: dict[str, int] = {}  # PlannedAiring.key → the approval its Program aired under
        self.with_claims: set[str] = set()  # PlannedAiring.keys whose text has accepted claims: re-asked at air
        self.kept = KeptPrograms(settings.data_dir / "last-good" / "programs", cache)
        self._ready: dict[str, Program] = {}  # PlannedAiring.key → its Program
        self._offline: EngineChain | None = None
        self._told: set[str] = set()  # scripts whose stand-in has been logged, so it is said once
        self._prepare_problems: dict[tuple[str, str], str] = {}  # (channel, script) → the problem logged
        self._screen: Screen | None = None
        self._screen_stale = True
        for result in ("hit", "miss"):  # known series start at 0
            PROGRAM_CACHE_LOOKUPS.labels(result)
        for engine in chain.engines:
            RENDER_SECONDS.labels(engine.name)

    def get(self, planned: PlannedAiring) -> Program | None:
        return self._ready.get(planned.key)

    def forget(self) -> None:
        """Scripts or word lists may have changed (a reload): look them up again; the cache makes that cheap."""
        self._ready.clear()
        self._screen_stale = True

    def _read_screen(self) -> Screen:
        """The word lists, read again; a list with errors keeps the last good ones. Blocking: call it in a thread."""
        try:
            self._screen = Screen.from_lists(self.settings.screening_dir)
        except InputError as exc:
            kept = "the last good lists" if self._screen else "the bundled list alone"
            for problem in exc.problems:
                log.error("word list not loaded: %s; screening uses %s until it is fixed", problem, kept)
            if self._screen is None:
                self._screen = Screen.from_lists(bundled=True)
        self._screen_stale = False
        return self._screen

    async def screen(self) -> Screen:
        if self._screen is None or self._screen_stale:
            return await asyncio.to_thread(self._read_screen)
        return self._screen

    async def _check_claims(self, planned: PlannedAiring, source: Path, content_hash: str, fresh: bool) -> None:
        """On every channel, a text with a listed claim no approval of that text accepted does not air."""
        hits = await asyncio.to_thread(screen_file, await self.screen(), source)
        if not hits:
            self.with_claims.discard(planned.key)
            return
        book = await self.approvals.book(fresh) if self.approvals is not None else ApprovalBook([])
        found = clearance(planned.script, hits, book.status(planned.script, content_hash))
        if not found.clear:
            raise UnacceptedClaims(found)
        self.with_claims.add(planned.key)

    async def _check_approval(self, planned: PlannedAiring, channel: Channel, content_hash: str,
                              fresh: bool) -> None:
        """On a channel that requires approval, only approved text is rendered or aired (NotApproved)."""
        if not channel.approval_required:
            return
        if self.approvals is None:
            raise NotApproved(ApprovalBook([]).status(planned.script, content_hash))
        status = (await self.approvals.book(fresh)).status(planned.script, content_hash)
        if not status.approved or status.decision is None or status.decision.id is None:
            raise NotApproved(status)
        self.approved_under[planned.key] = status.decision.id

    async def make(self, planned: PlannedAiring, channel: Channel, *, offline: bool = False,
                   fresh: bool = False) -> Program:
        """The Program for `planned`, rendered unless cached; the script's last good Program when the script
        no longer loads. `fresh` re-reads the approvals (at air time). Raises one of NOT_MADE."""
        voices = [v for v in (channel.voice, channel.fallback_voice) if v]
        try:
            script = await asyncio.to_thread(load_script, self.settings.scripts_dir / planned.script,
                                             self.settings.scripts_dir)
        except InputError as exc:
            kept = await asyncio.to_thread(self.kept.recall, planned.script, voices)
            if kept is None:
                raise
            await self._check_approval(planned, channel, kept.content_hash, fresh)
            if planned.script not in self._told:
                self._told.add(planned.script)
                for problem in exc.problems:
                    log.warning("%s; its last good version (rendered %s) airs until it is fixed", problem,
                                kept.rendered_at.isoformat(timespec="seconds"))
            self._ready[planned.key] = kept
            return kept
        self._told.discard(planned.script)
        await self._check_approval(planned, channel, script.content_hash, fresh)
        await self._check_claims(planned, script.source, script.content_hash, fresh)
        chain = self.chain
        if offline:  # no time for a network voice: the last engine of the chain always works offline
            if self._offline is None:
                self._offline = EngineChain(self.settings, only=self.chain.engines[-1].name)
            chain = self._offline
        program = await render_program(script, self.settings, chain, self.cache, voices=voices)
        await asyncio.to_thread(self.kept.keep, planned.script, voices, program)
        self._ready[planned.key] = program
        return program

    async def prepare(self, planned: list[PlannedAiring], channels: Mapping[str, Channel],
                      outputs: OutputSet) -> None:
        """Render and prepare every airing in `planned` (in order); drop what is no longer planned. A problem
        is logged once for each script, not again at every heartbeat until it changes."""
        ready: dict[str, int] = {}
        told: dict[tuple[str, str], str] = {}
        for item in planned:
            channel = channels.get(item.channel)
            if channel is None or channel.output not in outputs:
                continue
            try:
                program = self._ready.get(item.key) or await self._make_or_fallback(item, channel)
                await outputs[channel.output].prepare(cue_for(item, channel, program))
            except (*NOT_MADE, OutputError) as exc:
                told[(item.channel, item.script)] = problem = f"cannot prepare {item.script}: {exc}"
                if self._prepare_problems.get((item.channel, item.script)) != problem:
                    level = logging.WARNING if isinstance(exc, NotCleared) else logging.ERROR
                    log.log(level, "channel %s airing %s: %s", item.channel, item.key, problem)
                continue
            ready[item.channel] = ready.get(item.channel, 0) + 1
        self._prepare_problems = told
        for channel_id in channels:
            PROGRAMS_READY.labels(channel_id).set(ready.get(channel_id, 0))
        keep = {p.key for p in planned}
        self._ready = {k: v for k, v in self._ready.items() if k in keep}
        self.with_claims &= keep

    async def _make_or_fallback(self, item: PlannedAiring, channel: Channel) -> Program:
        try:
            return await self.make(item, channel)
        except NotCleared:
            if not item.fallback:
                raise
            return await self.make(dataclasses.replace(item, script=item.fallback), channel)
