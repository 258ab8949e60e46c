"""anchor's Grafana dashboards, as code (grafana-foundation-sdk, pinned exactly).

Run from the repository root to regenerate the committed JSON (tests/test_dashboards.py fails when the JSON
and this file disagree):

    .venv/bin/python metrics/dashboards.py

Three dashboards, each with a `datasource` and a `channel` variable: Channel overview, Audience, Speech. Every
query reads the Prometheus the `datasource` variable picks. It starts on the datasource provisioned with the
uid DATASOURCE_UID (grafana/provisioning/datasources/anchor.yml), so provisioning needs no choice; a dashboard
imported through Grafana's UI, where no such uid exists, falls back to the default Prometheus, and the
variable switches between several.

Conventions in the PromQL below:
- `$channel` is always one channel (single-select). A channel is one live room aired by one anchor daemon,
  so joins between two per-channel metrics match `on(channel)` alone.
- OBS metrics carry `obs`, not `channel` (several channels can share one OBS). They are tied to the channel
  through anchor_channel_obs_info, matching `on(instance, obs)`: two broadcast PCs may both call their OBS
  "main", and only the instance tells them apart.
- Rare events (airings, renders) are averaged over a fixed hour, not `$__rate_interval`: most intervals
  hold no airing at all and would only draw gaps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "grafana" / "dashboards"

DATASOURCE_UID = "anchor-prometheus"
DATASOURCE_NAME = "anchor Prometheus"  # the provisioned datasource's name
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
TAG = "anchor"

CH = 'channel="$channel"'
# Ties an anchor_obs_* expression to the selected channel and gives it the channel label.
OBS_OF_CHANNEL = f"* on(instance, obs) group_left(channel) (anchor_channel_obs_info{{{CH}}} == 1)"

# Panel-level "relative time" that makes a panel show today so far, whatever the dashboard's range; its
# queries then use [$__range] for "since midnight" (in the dashboard's time zone).
TODAY = "now/d"

Target = tuple[str, str]  # (PromQL, legend)


# ----------------------------------------------------------------------------------------------------------
# The PromQL that needs more than one line of thought.

# On air now: anchor_on_air is 1 or 0 for every channel; anchor_airing_info{script} is 1 only while that
# script airs. The join puts the script on the 1; `or on(channel)` falls back to the bare anchor_on_air
# (0, "off air") when no script is on air, so the panel always has a value.
ON_AIR_NOW = (
    f"anchor_on_air{{{CH}}} * on(channel) group_left(script) (anchor_airing_info{{{CH}}} == 1)"
    f" or on(channel) anchor_on_air{{{CH}}}"
)

# Top scripts by interactions per minute aired, over the dashboard's range.
#
# Attribution: at each step of a subquery, the channel's interaction rate (per second, all platforms and
# kinds) is multiplied by `on(channel) group_left(script) (anchor_airing_info == 1)`. That keeps the step
# only if a script was on air then and labels it with that script; steps with nothing on air drop out, so
# interactions between programs are attributed to no script. `== 1` keeps exactly one series per channel
# (a script that aired before may linger at 0), which is what group_left needs on its "one" side.
#
# Normalising: sum_over_time of those per-step rates, times the step length, is the interactions during
# the script's airings; count_over_time of `anchor_airing_info == 1` at the same steps, times the step
# length, is the time it aired. The step length cancels, so
#     60 * Σ rate / count  =  interactions per minute aired.
# The step is $__interval (the panel sets a 1 m minimum and enough data points that it stays 1 m up to a
# week), and the rate window is $__rate_interval (at least four scrapes). The window is a little longer
# than the step: each step sees a moving average, which still sums to the right total; it blurs the
# boundary between two programs by about one window (~75 s at a 15 s scrape), small against programs of
# several minutes. A script that airs for less than one step can be missed at both ends (no division by
# zero: it is then simply absent). Dividing by minutes aired, not airings, compares a 2-minute notice
# with a 10-minute lecture fairly.
TOP_SCRIPTS = f"""topk(10,
  60 * sum by (script) (
    sum_over_time((
      sum by (channel) (rate(anchor_interactions_total{{{CH}}}[$__rate_interval]))
        * on(channel) group_left(script) (anchor_airing_info{{{CH}}} == 1)
    )[$__range:$__interval])
  )
  /
  sum by (script) (
    count_over_time((anchor_airing_info{{{CH}}} == 1)[$__range:$__interval])
  )
)"""

# The cache hit ratio. Result labels appear on first use: with no `hit` series yet, the `or` adds the miss
# series times zero so the ratio is 0, not empty.
CACHE_HIT_RATIO = (
    'sum(rate(anchor_program_cache_lookups_total{result="hit"}[1h])'
    " or 0 * rate(anchor_program_cache_lookups_total[1h]))"
    " / sum(rate(anchor_program_cache_lookups_total[1h]))"
)


def lateness(q: float) -> str:
    return (f"histogram_quantile({q}, sum by (le) "
            f"(rate(anchor_airing_lateness_seconds_bucket{{{CH}}}[1h])))")


def render_quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (engine, le) (rate(anchor_render_seconds_bucket[1h])))"


# ----------------------------------------------------------------------------------------------------------
# Panel helpers: every panel reads the one datasource, its targets get refIds A, B, C…


def _targets(targets: Sequence[Target], *, instant: bool,
             table_format: bool = False) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    built: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for ref, (expr, legend) in zip("ABCDEFGH", targets, strict=False):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
        query = query.instant() if instant else query.range()
        if table_format:
            query = query.format(PromQueryFormat.TABLE)
        built.append(query)
    return built


def _thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (dashboard_builders.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=value, color=color) for value, color in steps]))


def _states(mapping: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value mappings for 0/1 gauges: {"1": ("LIVE", "green"), …}."""
    return [model.ValueMap(options={
        value: model.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(mapping.items())
    })]


def ts(title: str, description: str, targets: Sequence[Target], *, unit: str = "short", w: int = 12, h: int = 8,
       bars: bool = False, stacked: bool = False) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(_targets(targets, instant=False)).unit(unit).span(w).height(h)
             .legend(common_builders.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).calcs([]))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING))
             .fill_opacity(10).line_width(1).min(0))
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def single(title: str, description: str, targets: Sequence[Target], *, unit: str = "short", w: int = 4, h: int = 8,
           mappings: list[model.ValueMapping] | None = None,
           thresholds: dashboard_builders.ThresholdsConfig | None = None, today: bool = False,
           text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO) -> stat.Panel:
    panel = (stat.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(_targets(targets, instant=True)).unit(unit).span(w).height(h)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .graph_mode(common.BigValueGraphMode.NONE).color_mode(common.BigValueColorMode.VALUE)
             .text_mode(text_mode)
             .thresholds(thresholds or _thresholds((None, "text"))))
    if mappings:
        panel = panel.mappings(mappings)
    if today:
        panel = panel.time_from(TODAY)
    return panel


def bars_today(title: str, description: str, targets: Sequence[Target], *, w: int = 8, h: int = 8) -> bargauge.Panel:
    return (bargauge.Panel().title(title).description(description).datasource(DATASOURCE)
            .targets(_targets(targets, instant=True)).span(w).height(h).time_from(TODAY).min(0).decimals(0)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .display_mode(common.BarGaugeDisplayMode.BASIC).value_mode(common.BarGaugeValueMode.TEXT)
            .orientation(common.VizOrientation.HORIZONTAL).show_unfilled(True)
            .thresholds(_thresholds((None, "blue"))))


# ----------------------------------------------------------------------------------------------------------
# Dashboards


class Board:
    """A dashboard being laid out: rows of panels 24 columns wide, panel ids in order."""

    def __init__(self, uid: str, title: str, description: str, time_from: str = "now-6h") -> None:
        self.next_id = 1
        self.builder = (
            dashboard_builders.Dashboard(title).uid(uid).description(description).tags([TAG])
            .time(time_from, "now").refresh("30s").timezone("browser").editable()
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
            .link(dashboard_builders.DashboardLink("anchor dashboards").type(model.DashboardLinkType.DASHBOARDS)
                  .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True))
            .with_variable(
                dashboard_builders.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
                .description("The Prometheus that scrapes anchor (job `anchor`).")
                .current(model.VariableOption(selected=True, text=DATASOURCE_NAME, value=DATASOURCE_UID))
            )
            .with_variable(
                dashboard_builders.QueryVariable("channel").label("Channel")
                .description("One live room (a file in schedules/).").datasource(DATASOURCE)
                .query("label_values(anchor_on_air, channel)")
                .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC)
            )
        )
        self.annotation_extras: dict[str, dict[str, Any]] = {}

    def row(self, title: str | None, *panels: Any) -> Board:
        """Panels left to right, wrapping every 24 columns; under a row header unless title is None."""
        if title is not None:
            self.builder.with_row(dashboard_builders.Row(title).id(self.next_id).collapsed(False))
            self.next_id += 1
        width = 0
        for panel in panels:
            panel.id(self.next_id)
            self.next_id += 1
            self.builder.with_panel(panel)
            width += panel.build().grid_pos.w
        if width % 24:
            raise ValueError(f"row {title!r}: panel widths add up to {width}, not a multiple of 24")
        return self

    def prometheus_annotation(self, name: str, expr: str, *, title_format: str, tag_keys: str, color: str,
                              step: str = "30s") -> Board:
        self.builder.annotation(dashboard_builders.AnnotationQuery().name(name).datasource(DATASOURCE)
                                .enable(True).hide(False).icon_color(color).expr(expr))
        # The SDK's AnnotationQuery stops at `expr`; these are the Prometheus datasource's own fields.
        self.annotation_extras[name] = {"step": step, "titleFormat": title_format, "tagKeys": tag_keys,
                                        "textFormat": "", "useValueForTime": False}
        return self

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(self.builder.build(), cls=JSONEncoder))
        for annotation in data.get("annotations", {}).get("list", []):
            annotation.update(self.annotation_extras.get(annotation["name"], {}))
        return data


def channel_overview() -> dict[str, Any]:
    board = Board("anchor-channel", "anchor · Channel overview",
                  "What airs on one channel, how punctually, and the OBS and daemon behind it.")
    board.row(
        "Now",
        single("On air now", "The script on air (anchor_airing_info joined onto anchor_on_air), or off air.",
               [(ON_AIR_NOW, "{{script}}")], w=7, h=5, text_mode=common.BigValueTextMode.VALUE_AND_NAME,
               mappings=_states({"1": ("ON AIR", "green"), "0": ("off air", "text")})),
        single("Next airing", "When the channel's next planned airing starts.",
               [(f"anchor_next_airing_timestamp_seconds{{{CH}}} * 1000", "")], unit="dateTimeAsIsoNoDateIfToday",
               w=4, h=5),
        single("Starts in", "Time until the next planned airing.",
               [(f"anchor_next_airing_timestamp_seconds{{{CH}}} - time()", "")], unit="dtdurations", w=3, h=5),
        single("Programs ready", "Planned airings within the pre-render horizon whose Program is rendered.",
               [(f"anchor_programs_ready{{{CH}}}", "")], w=3, h=5),
        single("Unapproved (24 h)", "Airings in the next 24 hours whose script's current text is not approved: "
               "they will be skipped or air their fallback.", [(f"anchor_unapproved_airings{{{CH}}}", "")], w=3, h=5,
               thresholds=_thresholds((None, "green"), (1, "red"))),
        single("Stream live", "Whether the OBS this channel airs through is streaming.",
               [(f"anchor_obs_stream_active {OBS_OF_CHANNEL}", "{{obs}}")], w=4, h=5,
               mappings=_states({"1": ("LIVE", "green"), "0": ("NOT LIVE", "red")})),
    )
    board.row(
        "Airings",
        bars_today("Today's outcomes", "Airings since midnight, by final outcome (increase over today).",
                   [(f"round(sum by (outcome) (increase(anchor_airings_total{{{CH}}}[$__range])))", "{{outcome}}")]),
        ts("Airing lateness", "From the planned instant to the output's start: p50 and p99 of the airings of the "
           "past hour (airings are minutes apart, so a shorter window would mostly be empty).",
           [(lateness(0.5), "p50"), (lateness(0.99), "p99")], unit="s", w=8),
        bars_today("Degraded airings today", "Airings that went out below the full talking clip, by rung "
                   "(still picture, audio alone) and the reason the part above failed.",
                   [(f"round(sum by (rung, reason) (increase(anchor_degraded_airings_total{{{CH}}}[$__range])))",
                     "{{rung}}: {{reason}}")]),
    )
    board.row(
        None,
        ts("Airings by outcome", "Final outcomes as they happen.",
           [(f"sum by (outcome) (increase(anchor_airings_total{{{CH}}}[$__rate_interval]))", "{{outcome}}")],
           bars=True, stacked=True),
        ts("Dead air", "Share of the time a program was on air with its sound below the silence threshold.",
           [(f"rate(anchor_dead_air_seconds_total{{{CH}}}[$__rate_interval])", "dead air")],
           unit="percentunit", w=8),
        single("Dead air today", "Seconds of dead air since midnight.",
               [(f"increase(anchor_dead_air_seconds_total{{{CH}}}[$__range])", "")], unit="s", today=True,
               thresholds=_thresholds((None, "green"), (1, "orange"), (30, "red"))),
    )
    board.row(
        "OBS (joined to the channel through anchor_channel_obs_info)",
        single("OBS connected", "anchor's websocket connection to the OBS this channel airs through.",
               [(f"anchor_obs_connected {OBS_OF_CHANNEL}", "{{obs}}")],
               mappings=_states({"1": ("connected", "green"), "0": ("DISCONNECTED", "red")})),
        ts("OBS frames per second", "Frames per second OBS is rendering.",
           [(f"anchor_obs_active_fps {OBS_OF_CHANNEL}", "{{obs}}")], unit="short", w=6),
        # OBS reports skipped frames as totals since it started (a gauge: a restarted OBS starts from 0);
        # increase() reads a drop as a counter reset, which is exactly what an OBS restart is.
        ts("Skipped frames", "Frames OBS skipped while rendering and in its outputs (encoder/network).",
           [(f"increase(anchor_obs_render_skipped_frames[$__rate_interval]) {OBS_OF_CHANNEL}", "{{obs}} render"),
            (f"increase(anchor_obs_output_skipped_frames[$__rate_interval]) {OBS_OF_CHANNEL}", "{{obs}} output")],
           w=8),
        ts("Stream bitrate", "Bits per second the stream sends (from the bytes of the current stream).",
           [(f"rate(anchor_obs_stream_sent_bytes[$__rate_interval]) * 8 {OBS_OF_CHANNEL}", "{{obs}}")],
           unit="bps", w=6),
    )
    board.row(
        None,
        single("Stream reconnecting", "1 while OBS's stream output is reconnecting to the platform's server.",
               [(f"anchor_obs_stream_reconnecting {OBS_OF_CHANNEL}", "{{obs}}")],
               mappings=_states({"0": ("no", "green"), "1": ("RECONNECTING", "orange")})),
        ts("OBS reconnects", "Connections to OBS made after a lost one.",
           [(f"increase(anchor_obs_reconnects_total[$__rate_interval]) {OBS_OF_CHANNEL}", "{{obs}}")],
           bars=True, w=10),
        ts("OBS request time", "Round trip of obs-websocket requests: p50 and p99.",
           [(f"histogram_quantile(0.5, sum by (instance, obs, le) "
             f"(rate(anchor_obs_request_seconds_bucket[$__rate_interval]))) {OBS_OF_CHANNEL}", "{{obs}} p50"),
            (f"histogram_quantile(0.99, sum by (instance, obs, le) "
             f"(rate(anchor_obs_request_seconds_bucket[$__rate_interval]))) {OBS_OF_CHANNEL}", "{{obs}} p99")],
           unit="s", w=10),
    )
    board.row(
        "Daemon",
        single("anchor up", "Whether Prometheus reaches the daemon's metrics.", [('up{job="anchor"}', "{{instance}}")],
               mappings=_states({"1": ("UP", "green"), "0": ("DOWN", "red")})),
        single("Version", "The running anchor version.", [("anchor_build_info", "{{version}}")],
               text_mode=common.BigValueTextMode.NAME),
        single("Scheduler heartbeat", "Seconds since the scheduler's last heartbeat (every 15 s when healthy).",
               [("time() - anchor_scheduler_last_tick_timestamp_seconds", "")], unit="s",
               thresholds=_thresholds((None, "green"), (30, "orange"), (60, "red"))),
        ts("Schedule reloads", "Schedule reloads: applied, or rejected (the previous plan keeps airing).",
           [("sum by (result) (increase(anchor_schedule_reloads_total[$__rate_interval]))", "{{result}}")],
           bars=True, w=6),
        ts("Clock jumps", "Wall-clock steps the heartbeat noticed.",
           [("increase(anchor_clock_jumps_total[$__rate_interval])", "clock jumps")], bars=True, w=6),
    )
    return board.to_json()


def audience() -> dict[str, Any]:
    board = Board("anchor-audience", "anchor · Audience",
                  "What viewers do while the channel airs; program changes are annotations.")
    board.prometheus_annotation("Programs", f"anchor_airing_info{{{CH}}} == 1", title_format="{{script}}",
                                tag_keys="script", color="purple")
    board.row(
        "Interactions",
        ts("Interactions per minute by kind", "Comments, gifts, likes (10 likes count 10), entries… per minute. "
           "The purple regions are the programs that aired.",
           [(f"sum by (kind) (rate(anchor_interactions_total{{{CH}}}[$__rate_interval])) * 60", "{{kind}}")],
           unit="cpm", w=16, stacked=True),
        ts("Viewers", "Viewers in the live room, where the platform reports it (Bilibili's open platform does not).",
           [(f"anchor_viewers{{{CH}}}", "{{platform}}")], w=8),
    )
    board.row(
        None,
        ts("Gifts (¥ per hour)", "What gifts, super chats and guards cost viewers, in yuan per hour.",
           [(f"sum by (platform) (rate(anchor_gift_value_cny_total{{{CH}}}[$__rate_interval])) * 3600",
             "{{platform}}")], unit="prefix:¥", w=8),
        single("Gifts in range", "Yuan over the dashboard's time range.",
               [(f"sum by (platform) (increase(anchor_gift_value_cny_total{{{CH}}}[$__range]))", "{{platform}}")],
               unit="prefix:¥", text_mode=common.BigValueTextMode.VALUE_AND_NAME),
        table.Panel().title("Top scripts by interactions per minute aired")
        .description("Interactions while each script was on air divided by the minutes it aired, over the "
                     "dashboard's range (see TOP_SCRIPTS in metrics/dashboards.py).")
        .datasource(DATASOURCE).targets(_targets([(TOP_SCRIPTS, "{{script}}")], instant=True, table_format=True))
        .interval("1m").max_data_points(10080).span(12).height(8).decimals(2).unit("cpm")
        .sort_by([common_builders.TableSortByFieldState().display_name("interactions / min aired").desc(True)])
        .with_transformation(model.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {"Time": True}, "renameByName": {"Value": "interactions / min aired"}})),
    )
    board.row(
        "Rooms and webhook",
        ts("Room connected", "1 while the live room's event feed is connected.",
           [(f"anchor_room_connected{{{CH}}}", "{{room}}")], w=6),
        ts("Seconds since the last event", "Silence of each room's feed; over 300 s while live raises an alert.",
           [(f"time() - anchor_room_last_event_timestamp_seconds{{{CH}}}", "{{room}}")], unit="s", w=6),
        ts("Room reconnects by reason", "Times the room's feed was made again, by why it dropped.",
           [(f"sum by (room, reason) (increase(anchor_room_reconnects_total{{{CH}}}[$__rate_interval]))",
             "{{room}}: {{reason}}")], bars=True, stacked=True, w=6),
        ts("Webhook requests by outcome", "Requests per minute to the live-room webhook (all channels).",
           [("sum by (outcome) (rate(anchor_webhook_requests_total[$__rate_interval])) * 60", "{{outcome}}")],
           unit="cpm", stacked=True, w=6),
    )
    return board.to_json()


def speech() -> dict[str, Any]:
    board = Board("anchor-speech", "anchor · Speech",
                  "Rendering Programs: time per engine, TTS requests, fallbacks, the Program cache. Speech is "
                  "rendered for every channel; only 'Programs ready' is per channel.", time_from="now-24h")
    board.row(
        "Rendering",
        ts("Render time by engine", "Wall time to render one Program, p50 and p95 per engine, over the "
           "renders of the past hour (renders come in bursts, ahead of air time).",
           [(render_quantile(0.5), "{{engine}} p50"), (render_quantile(0.95), "{{engine}} p95")], unit="s", w=10),
        ts("Renders per hour", "Programs rendered per hour, by the engine that spoke them.",
           [("sum by (engine) (rate(anchor_render_seconds_count[1h])) * 3600", "{{engine}}")], w=10),
        single("Programs ready", "Planned airings of $channel within the pre-render horizon that are rendered.",
               [(f"anchor_programs_ready{{{CH}}}", "")]),
    )
    board.row(
        "TTS",
        ts("TTS requests by outcome", "One request per sentence attempt, per minute, by engine and outcome.",
           [("sum by (engine, outcome) (rate(anchor_tts_requests_total[$__rate_interval])) * 60",
             "{{engine}} {{outcome}}")], unit="cpm", w=8),
        ts("Fallbacks", "Programs rendered by a later engine because an earlier one failed.",
           [("sum by (from_engine, to_engine) (increase(anchor_tts_fallbacks_total[$__rate_interval]))",
             "{{from_engine}} → {{to_engine}}")], bars=True, w=8),
        ts("Program cache hit ratio", "Share of Program lookups answered from the cache, over the past hour.",
           [(CACHE_HIT_RATIO, "hit ratio")], unit="percentunit", w=8),
    )
    return board.to_json()


DASHBOARDS = {
    "anchor-channel.json": channel_overview,
    "anchor-audience.json": audience,
    "anchor-speech.json": speech,
}


def render(data: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, UTF-8, one newline at the end."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name → JSON text, exactly as committed."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (OUT_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {(OUT_DIR / name).relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
