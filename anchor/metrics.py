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
DEGRADED_AIRINGS = Counter(
    "anchor_degraded_airings_total", "Airings that went out below the full talking clip (as a still picture or "
    "the audio alone), by rung and by the reason the part above failed.", ["channel", "rung", "reason"],
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
    "anchor_schedule_reloads_total", "Schedule reloads, by result: applied; partial (a file with errors airs "
    "its last good version); rejected (the schedules folder is gone).", ["result"],
)
CLOCK_JUMPS = Counter("anchor_clock_jumps_total", "Wall-clock steps detected by the heartbeat.")
PROGRAMS_READY = Gauge(
    "anchor_programs_ready", "Planned airings within the pre-render horizon whose Program is ready.", ["channel"],
)
BUILD_INFO = Info("anchor_build", "The running anchor version.")

# OBS Studio, per connection ([obs.NAME], label `obs`). Statistics are per OBS, not per channel: several
# channels can share one OBS, so anchor_channel_obs_info says which OBS each channel airs through (join on obs).
OBS_CONNECTED = Gauge("anchor_obs_connected", "1 while anchor is connected to the OBS websocket, else 0.", ["obs"])
OBS_RECONNECTS = Counter(
    "anchor_obs_reconnects_total", "Connections to the OBS made after a lost one.", ["obs"],
)
OBS_ACTIVE_FPS = Gauge("anchor_obs_active_fps", "Frames per second OBS is rendering (GetStats activeFps).", ["obs"])
OBS_RENDER_SKIPPED_FRAMES = Gauge(
    "anchor_obs_render_skipped_frames",
    "Frames OBS skipped in rendering, as OBS reports them (GetStats renderSkippedFrames): cumulative since "
    "OBS started, a gauge because a restarted OBS starts again from 0.", ["obs"],
)
OBS_OUTPUT_SKIPPED_FRAMES = Gauge(
    "anchor_obs_output_skipped_frames",
    "Frames OBS's outputs skipped (GetStats outputSkippedFrames): cumulative since OBS started, a gauge "
    "because a restarted OBS starts again from 0.", ["obs"],
)
OBS_STREAM_ACTIVE = Gauge("anchor_obs_stream_active", "1 while OBS is streaming (GetStreamStatus).", ["obs"])
OBS_STREAM_RECONNECTING = Gauge(
    "anchor_obs_stream_reconnecting", "1 while OBS's stream output is reconnecting to the server.", ["obs"],
)
OBS_STREAM_SENT_BYTES = Gauge(
    "anchor_obs_stream_sent_bytes",
    "Bytes the current OBS stream has sent (GetStreamStatus outputBytes); a gauge because every new stream "
    "starts again from 0.", ["obs"],
)
OBS_REQUEST_SECONDS = Histogram(
    "anchor_obs_request_seconds", "Round trip of obs-websocket requests OBS answered (success or refusal).",
    ["obs"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CHANNEL_OBS_INFO = Gauge(
    "anchor_channel_obs_info", "1 for each channel airing through an OBS (obs label): join the anchor_obs_* "
    "series on obs.", ["channel", "obs"],
)
DEAD_AIR = Counter(
    "anchor_dead_air_seconds_total", "Seconds a program was on air while its sound stayed below the silence "
    "threshold for longer than the bound (measured from OBS's meters, or the aired file).", ["channel"],
)

# The audience: live rooms and what viewers did. Labels are bounded: channel, room, platform, kind, reason,
# outcome and the script (a catalog the institution controls) — never a viewer, a text or a title.
INTERACTIONS = Counter(
    "anchor_interactions_total", "Viewer interactions received from the live rooms (a like event of 10 likes "
    "counts 10), by kind.", ["channel", "platform", "kind"],
)
GIFT_VALUE = Counter(
    "anchor_gift_value_cny_total", "What viewers' gifts, super chats and guards cost, in yuan.",
    ["channel", "platform"],
)
VIEWERS = Gauge("anchor_viewers", "Viewers in the live room now, where the platform reports it.",
                ["channel", "platform"])
ROOM_CONNECTED = Gauge("anchor_room_connected", "1 while the live room's event feed is connected.", ["channel", "room"])
ROOM_LAST_EVENT = Gauge(
    "anchor_room_last_event_timestamp_seconds", "Unix time of the last event received from the live room.",
    ["channel", "room"],
)
ROOM_RECONNECTS = Counter(
    "anchor_room_reconnects_total", "Times the live room's feed was made again, by why it dropped.",
    ["channel", "room", "reason"],
)
WEBHOOK_REQUESTS = Counter(
    "anchor_webhook_requests_total", "Requests to the live-room webhook, by outcome (accepted, duplicate, "
    "bad_signature, stale, replayed, malformed, too_large, unknown_room).", ["outcome"],
)
AIRING_INFO = Gauge(
    "anchor_airing_info", "1 while this script is on air on the channel: join interactions to programs in PromQL.",
    ["channel", "script"],
)

# Content governance.
UNAPPROVED_AIRINGS = Gauge(
    "anchor_unapproved_airings", "Planned airings in the next 24 hours whose script's current text will not air: "
    "not approved where the channel requires it, or holding a listed claim no approval accepted (they will be "
    "skipped, or air their fallback).", ["channel"],
)
