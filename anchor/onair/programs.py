"""Programs made ready ahead of air: every planned airing in the pre-render horizon gets its Program rendered
and its output prepared (clip, scene) before its instant, soonest first, so at the minute only the output's
start remains. An airing nothing was made ready for is rendered at once by the offline engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from anchor.config import Settings
from anchor.content import load_script
from anchor.metrics import PROGRAMS_READY
from anchor.onair.outputs import OutputSet
from anchor.outputs import Cue, OutputError
from anchor.problems import InputError
from anchor.program import Program, RenderError, render_program
from anchor.schedule.channel import Channel
from anchor.schedule.planner import PlannedAiring
from anchor.speech.cache import ProgramCache
from anchor.speech.chain import EngineChain
from anchor.speech.engines import UnknownVoice

log = logging.getLogger(__name__)

# What can keep a Program from being made: the script, every engine, the voice, the disk.
NOT_MADE = (InputError, RenderError, UnknownVoice, OSError)


def cue_for(planned: PlannedAiring, channel: Channel, program: Program) -> Cue:
    return Cue(channel.id, channel.name, planned.slot, planned.planned_at, program, channel.avatar,
               deadline=planned.planned_at_utc + planned.grace)


class ReadyPrograms:
    def __init__(self, settings: Settings, chain: EngineChain, cache: ProgramCache) -> None:
        self.settings = settings
        self.chain = chain
        self.cache = cache
        self._ready: dict[str, Program] = {}  # PlannedAiring.key → its Program
        self._offline: EngineChain | None = None

    def get(self, planned: PlannedAiring) -> Program | None:
        return self._ready.get(planned.key)

    def forget(self) -> None:
        """Scripts may have changed (a reload): look them up again; the cache makes that cheap."""
        self._ready.clear()

    async def make(self, planned: PlannedAiring, channel: Channel, *, offline: bool = False) -> Program:
        """The Program for `planned`, rendered unless cached. Raises one of NOT_MADE."""
        script = await asyncio.to_thread(load_script, self.settings.scripts_dir / planned.script,
                                         self.settings.scripts_dir)
        chain = self.chain
        if offline:  # no time for a network voice: the last engine of the chain always works offline
            if self._offline is None:
                self._offline = EngineChain(self.settings, only=self.chain.engines[-1].name)
            chain = self._offline
        voices = [v for v in (channel.voice, channel.fallback_voice) if v]
        program = await render_program(script, self.settings, chain, self.cache, voices=voices)
        self._ready[planned.key] = program
        return program

    async def prepare(self, planned: list[PlannedAiring], channels: Mapping[str, Channel],
                      outputs: OutputSet) -> None:
        """Render and prepare every airing in `planned` (in order); drop what is no longer planned."""
        ready: dict[str, int] = {}
        for item in planned:
            channel = channels.get(item.channel)
            if channel is None or channel.output not in outputs:
                continue
            try:
                program = self._ready.get(item.key) or await self.make(item, channel)
                await outputs[channel.output].prepare(cue_for(item, channel, program))
            except (*NOT_MADE, OutputError) as exc:
                log.error("channel %s airing %s: cannot prepare %s: %s", item.channel, item.key, item.script, exc)
                continue
            ready[item.channel] = ready.get(item.channel, 0) + 1
        for channel_id in channels:
            PROGRAMS_READY.labels(channel_id).set(ready.get(channel_id, 0))
        keep = {p.key for p in planned}
        self._ready = {k: v for k, v in self._ready.items() if k in keep}
