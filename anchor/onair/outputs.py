"""The outputs the channels air through: one per output reference, made when a channel first names it and
closed when no channel names it any more (a reload that moved a channel elsewhere)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from anchor.config import OutputRef, Settings
from anchor.outputs import Output, OutputError, output_type
from anchor.schedule.channel import Channel

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0


class OutputSet:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._outputs: dict[OutputRef, Output] = {}

    def __getitem__(self, ref: OutputRef) -> Output:
        return self._outputs[ref]

    def __contains__(self, ref: OutputRef) -> bool:
        return ref in self._outputs

    async def use(self, channels: Iterable[Channel]) -> None:
        """Make the outputs these channels need; close the ones none of them needs. A channel whose output
        cannot be made is reported and left without one (its airings are then logged failed)."""
        wanted = {c.output for c in channels}
        for ref in wanted - set(self._outputs):
            try:
                self._outputs[ref] = output_type(ref.kind).create(self.settings, ref)
            except (OutputError, KeyError) as exc:
                log.error("output %s cannot be used: %s", ref, exc)
        dropped = [self._outputs.pop(ref) for ref in set(self._outputs) - wanted]
        await self._close(dropped)

    def health(self) -> list[dict[str, object]]:
        return [{"output": str(ref), **output.health()} for ref, output in self._outputs.items()]

    async def close(self) -> None:
        outputs, self._outputs = list(self._outputs.values()), {}
        await self._close(outputs)

    async def _close(self, outputs: list[Output]) -> None:
        for output in outputs:
            try:
                await asyncio.wait_for(output.close(), CLOSE_TIMEOUT)
            except (OutputError, OSError, TimeoutError) as exc:
                log.warning("output %s did not close cleanly: %s", output.name, exc)
