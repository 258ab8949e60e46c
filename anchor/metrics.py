"""Every Prometheus metric anchor exposes, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RENDER_SECONDS = Histogram(
    "anchor_render_seconds", "Wall time to render one Program, by the engine that spoke it.",
    ["engine"], buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320),
)
TTS_REQUESTS = Counter(
    "anchor_tts_requests_total", "TTS requests (one per sentence attempt), by engine and outcome.",
    ["engine", "outcome"],
)
TTS_FALLBACKS = Counter(
    "anchor_tts_fallbacks_total", "Programs rendered with a later engine because an earlier one failed.",
    ["from_engine", "to_engine"],
)
PROGRAM_CACHE_LOOKUPS = Counter(
    "anchor_program_cache_lookups_total", "Program cache lookups, by result (hit or miss).", ["result"],
)
