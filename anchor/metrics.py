"""Every Prometheus metric anchor exposes, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

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

AIRINGS = Counter(
    "anchor_airings_total", "Planned airings by their final outcome (aired, late, missed, failed, interrupted).",
    ["channel", "outcome"],
)
AIRING_LATENESS = Histogram(
    "anchor_airing_lateness_seconds", "From the planned instant to the output's start.", ["channel"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 120, 300),
)
ON_AIR = Gauge("anchor_on_air", "1 while the channel is airing a program.", ["channel"])
NEXT_AIRING = Gauge(
    "anchor_next_airing_timestamp_seconds", "Unix time of the channel's next planned airing.", ["channel"],
)
SCHEDULER_TICK = Gauge(
    "anchor_scheduler_last_tick_timestamp_seconds", "Unix time of the scheduler's last heartbeat.",
)
SCHEDULE_RELOADS = Counter(
    "anchor_schedule_reloads_total", "Schedule reloads, by result (applied or rejected).", ["result"],
)
CLOCK_JUMPS = Counter("anchor_clock_jumps_total", "Wall-clock steps detected by the heartbeat.")
PROGRAMS_READY = Gauge(
    "anchor_programs_ready", "Planned airings within the pre-render horizon whose Program is ready.", ["channel"],
)
BUILD_INFO = Info("anchor_build", "The running anchor version.")
