"""Outputs, one file each. A file registers its output with @register; nothing else lists them."""

from __future__ import annotations

from anchor.outputs.base import (
    AiredResult,
    AiringInterrupted,
    Cue,
    Degradation,
    Output,
    OutputError,
    OutputSettings,
    OutputUnavailable,
    Rung,
)
from anchor.registry import Registry

OUTPUTS: Registry[type[Output]] = Registry(__name__, "output")
register = OUTPUTS.register
output_names = OUTPUTS.names
output_type = OUTPUTS.get

__all__ = [
    "AiredResult",
    "AiringInterrupted",
    "Cue",
    "Degradation",
    "Output",
    "OutputError",
    "OutputSettings",
    "OutputUnavailable",
    "Rung",
    "output_names",
    "output_type",
    "register",
]
