"""Outputs, one file each. A file registers its output with @register; nothing else lists them."""

from __future__ import annotations

from anchor.outputs.base import AiredResult, Cue, Output, OutputError, OutputSettings
from anchor.registry import Registry

OUTPUTS: Registry[type[Output]] = Registry(__name__, "output")
register = OUTPUTS.register
output_names = OUTPUTS.names
output_type = OUTPUTS.get

__all__ = ["AiredResult", "Cue", "Output", "OutputError", "OutputSettings", "register", "output_names", "output_type"]
