"""metrics/: the Grafana dashboards and the Prometheus alert rules, checked with the real tools.

- The committed dashboard JSON is exactly what metrics/dashboards.py generates.
- Every panel query (Grafana's macros and $channel substituted) and every alert expression parses:
  `promtool check rules` on them written as recording rules.
- `promtool check rules` and `promtool test rules` pass on alerts.yml and alerts_test.yml, and every alert
  has a firing and a quiet test case.
- A real Prometheus scrapes an exposition of every anchor metric (realistic labels, counters moving), loads
  alerts.yml, and every panel query returns at least one series with a number in it. The target is a URL
  argument of check_panels_against(), so the same check can scrape the real daemon.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.metrics import MetricWrapperBase

import anchor.metrics

REPO = Path(__file__).resolve().parent.parent
METRICS = REPO / "metrics"
DASHBOARDS_DIR = METRICS / "grafana" / "dashboards"
PROVISIONING = METRICS / "grafana" / "provisioning"
ALERTS = METRICS / "alerts.yml"
ALERTS_TEST = METRICS / "alerts_test.yml"
PROMETHEUS_YML = METRICS / "prometheus.yml"

PROMTOOL = shutil.which("promtool") or "promtool"
PROMETHEUS = shutil.which("prometheus") or "prometheus"
NO_PROXY_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
# urllib follows $http_proxy unless told not to; everything here is on loopback.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

TOOL_TIMEOUT = 60
SCRAPE_INTERVAL_S = 1
PANEL_DATA_TIMEOUT_S = 30
CHANNEL = "hospital"


def run(*argv: str, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **NO_PROXY_ENV})


# ----------------------------------------------------------------------------------------------------------
# The dashboards and their queries


def load_dashboards_module() -> ModuleType:
    """metrics/dashboards.py is a script, not a package module: import it by path."""
    spec = importlib.util.spec_from_file_location("anchor_grafana_dashboards", METRICS / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Query:
    where: str  # dashboard file and panel title, for messages
    expr: str


def dashboard_queries(dashboards: Mapping[str, Mapping[str, Any]]) -> list[Query]:
    """Every PromQL the dashboards run: panel targets, Prometheus annotations, and query variables."""
    queries: list[Query] = []
    for name, board in sorted(dashboards.items()):
        panels = list(board.get("panels", []))
        for panel in list(panels):
            panels.extend(panel.get("panels", []))  # panels inside collapsed rows
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append(Query(f"{name} · {panel['title']} · {target['refId']}", target["expr"]))
        for annotation in board.get("annotations", {}).get("list", []):
            if "expr" in annotation:
                queries.append(Query(f"{name} · annotation {annotation['name']}", annotation["expr"]))
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "datasource":
                continue  # picks a datasource; runs no PromQL
            found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", str(variable.get("query", "")))
            assert found, f"{name}: variable {variable.get('name')} is not a label_values() query"
            queries.append(Query(f"{name} · variable {variable['name']}",
                                 f"group by ({found[2]}) ({found[1]})"))
    return queries


def grafana_values(scrape_interval_s: int, channel: str, interval_s: int = 5, range_s: int = 3600) -> dict[str, str]:
    """What Grafana puts in for its macros and our one variable ($__rate_interval as Grafana computes it)."""
    rate_interval = max(interval_s + scrape_interval_s, 4 * scrape_interval_s)
    return {
        "__interval": f"{interval_s}s", "__interval_ms": str(interval_s * 1000),
        "__rate_interval": f"{rate_interval}s", "__rate_interval_ms": str(rate_interval * 1000),
        "__range": f"{range_s}s", "__range_s": str(range_s), "__range_ms": str(range_s * 1000),
        "channel": channel,
    }


def substitute(expr: str, values: Mapping[str, str]) -> str:
    def one(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        if name not in values:
            raise KeyError(f"${name} has no value for the test, in: {expr}")
        return values[name]

    return re.sub(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))", one, expr)


def alert_expressions(text: str) -> dict[str, str]:
    """alert name → expr, from alerts.yml (its two forms: `expr: one line` and `expr: |` blocks).

    The venv has no YAML parser; the caller checks the count against the `- alert:` lines, and promtool
    itself parses the whole file in test_alert_rules_pass_promtool."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    name = ""
    for i, line in enumerate(lines):
        if m := re.match(r"\s*- alert: (\w+)\s*$", line):
            name = m[1]
        elif m := re.match(r"(\s*)expr: (.*)$", line):
            indent, value = len(m[1]), m[2].strip()
            if value in ("|", "|-", ">", ">-"):
                block = []
                for following in lines[i + 1:]:
                    if following.strip() and len(following) - len(following.lstrip()) <= indent:
                        break
                    block.append(following.strip())
                value = "\n".join(block).strip()
            found[name] = value
    return found


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


# ----------------------------------------------------------------------------------------------------------
# Static checks


def test_committed_json_is_what_dashboards_py_generates() -> None:
    generated = load_dashboards_module().generate()
    committed = {path.name: path.read_text(encoding="utf-8") for path in DASHBOARDS_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "dashboard files differ: run .venv/bin/python metrics/dashboards.py"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run .venv/bin/python metrics/dashboards.py"


def _datasource_refs(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every `datasource` value in a dashboard's JSON, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield where, value
            yield from _datasource_refs(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _datasource_refs(value, f"{where}[{i}]")


def test_every_query_reads_the_datasource_variable_which_starts_on_the_provisioned_one(
        dashboards: dict[str, dict[str, Any]]) -> None:
    """Importable through Grafana's UI (no datasource of the provisioned uid there: the variable falls back to
    the default Prometheus) and through provisioning (the variable starts on the provisioned uid)."""
    datasource_yml = (PROVISIONING / "datasources" / "anchor.yml").read_text(encoding="utf-8")
    uid = re.search(r"^\s+uid: (\S+)$", datasource_yml, re.MULTILINE)
    name = re.search(r"^\s+- name: (.+)$", datasource_yml, re.MULTILINE)
    assert uid and name and re.search(r"^\s+type: prometheus$", datasource_yml, re.MULTILINE)
    variable_ref = {"type": "prometheus", "uid": "${datasource}"}
    assert len(dashboards) == 3
    for board_name, board in dashboards.items():
        assert "__inputs" not in board, board_name  # the variable does the import's job
        variables = {v["name"]: v for v in board["templating"]["list"]}
        datasource = variables["datasource"]
        assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus"), board_name
        assert datasource["current"]["value"] == uid[1] and datasource["current"]["text"] == name[1], board_name
        assert variables["channel"]["query"] == "label_values(anchor_on_air, channel)", board_name
        assert variables["channel"]["datasource"] == variable_ref, board_name
        refs = list(_datasource_refs(board))
        assert len(refs) >= 10, board_name
        fixed = [where for where, ref in refs if ref != variable_ref]
        assert not fixed, f"{board_name}: a fixed datasource breaks a UI import: {fixed}"
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == variable_ref, (board_name, panel["title"])
                assert panel["targets"] and all(t["datasource"] == variable_ref for t in panel["targets"]), \
                    (board_name, panel["title"])
        for annotation in board.get("annotations", {}).get("list", []):
            assert annotation["datasource"] == variable_ref, (board_name, annotation["name"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{board_name}: panel ids repeat"

    # The file provider reads the folder that `cp -rL metrics/grafana/provisioning/. /etc/grafana/provisioning/`
    # fills from the link dashboards/anchor → ../../dashboards.
    provider = (PROVISIONING / "dashboards" / "anchor.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+type: file$", provider, re.MULTILINE)
    assert re.search(r"^\s+path: /etc/grafana/provisioning/dashboards/anchor$", provider, re.MULTILINE)
    assert (PROVISIONING / "dashboards" / "anchor").resolve() == DASHBOARDS_DIR.resolve()


def test_every_metric_anchor_exposes_is_on_a_dashboard(dashboards: dict[str, dict[str, Any]]) -> None:
    exprs = " ".join(query.expr for query in dashboard_queries(dashboards))
    used = set(re.findall(r"\banchor_\w+", exprs))
    used |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    missing = sorted(name for name in exposed_series_names() if name not in used)
    assert not missing, f"metrics on no dashboard: {missing}"


def test_every_query_and_alert_expression_passes_promtool_check_rules(
        dashboards: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    values = grafana_values(scrape_interval_s=15, channel=CHANNEL, interval_s=60, range_s=86400)
    queries = [Query(q.where, substitute(q.expr, values)) for q in dashboard_queries(dashboards)]
    alerts_text = ALERTS.read_text(encoding="utf-8")
    alerts = alert_expressions(alerts_text)
    assert len(alerts) == len(re.findall(r"^\s*- alert: ", alerts_text, re.MULTILINE)) == 9
    queries += [Query(f"alerts.yml · {name}", expr) for name, expr in alerts.items()]
    assert len(queries) > 40

    rules = [{"record": f"anchor_test:query_{i}", "expr": q.expr} for i, q in enumerate(queries)]
    path = tmp_path / "queries.yml"  # JSON is YAML
    path.write_text(json.dumps({"groups": [{"name": "dashboards_and_alerts", "rules": rules}]}, indent=1))
    checked = run(PROMTOOL, "check", "rules", str(path))
    index = "\n".join(f"query_{i}: {q.where}" for i, q in enumerate(queries))
    assert checked.returncode == 0, f"{checked.stdout}{checked.stderr}\n{index}"
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


def test_alert_rules_pass_promtool() -> None:
    checked = run(PROMTOOL, "check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(PROMTOOL, "test", "rules", str(ALERTS_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    names = re.findall(r"^\s*- alert: (\w+)", ALERTS.read_text(encoding="utf-8"), re.MULTILINE)
    cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", ALERTS_TEST.read_text(encoding="utf-8"))
    for name in names:
        assert (name, "") in cases, f"{name}: no test case where it fires"
        assert (name, " []") in cases, f"{name}: no test case where it stays quiet"
    alerts_text = ALERTS.read_text(encoding="utf-8")
    severities = re.findall(r"^\s+severity: (critical|warning)$", alerts_text, re.MULTILINE)
    actions = re.findall(r"^\s+action: >-$", alerts_text, re.MULTILINE)
    assert len(severities) == len(actions) == len(names)


# ----------------------------------------------------------------------------------------------------------
# An exposition of every anchor metric, with realistic labels, moving between scrapes


def anchor_metric_definitions() -> list[MetricWrapperBase]:
    return [value for value in vars(anchor.metrics).values() if isinstance(value, MetricWrapperBase)]


def exposed_series_names() -> list[str]:
    """Names as Prometheus sees them: counters with _total, histograms by _bucket's base, info with _info."""
    suffix = {"counter": "_total", "info": "_info"}
    return [m._name + suffix.get(str(m._type), "") for m in anchor_metric_definitions()]


ON_AIR_SCRIPTS = ("health/hypertension", "policy/legal-aid")  # hospital alternates between them
B, D = "bilibili", "douyin"
ROOMS = {("hospital", "bilibili"): B, ("hospital", "douyin"): D, ("procuratorate", "bilibili"): B}
LABEL_SETS: dict[str, list[dict[str, str]]] = {
    "anchor_render_seconds": [{"engine": "edge"}, {"engine": "espeak"}],
    "anchor_tts_requests": [{"engine": "edge", "outcome": "ok"}, {"engine": "edge", "outcome": "error"},
                            {"engine": "espeak", "outcome": "ok"}],
    "anchor_tts_fallbacks": [{"from_engine": "edge", "to_engine": "espeak"}],
    "anchor_program_cache_lookups": [{"result": "hit"}, {"result": "miss"}],
    "anchor_airings": [{"channel": c, "outcome": o} for c in ("hospital", "procuratorate")
                       for o in ("aired", "late", "missed", "failed", "interrupted", "skipped")],
    "anchor_degraded_airings": [{"channel": "hospital", "rung": "still", "reason": "avatar"},
                                {"channel": "hospital", "rung": "audio", "reason": "ffmpeg"},
                                {"channel": "procuratorate", "rung": "still", "reason": "late"}],
    "anchor_airing_lateness_seconds": [{"channel": "hospital"}, {"channel": "procuratorate"}],
    "anchor_on_air": [{"channel": "hospital"}, {"channel": "procuratorate"}],
    "anchor_next_airing_timestamp_seconds": [{"channel": "hospital"}, {"channel": "procuratorate"}],
    "anchor_scheduler_last_tick_timestamp_seconds": [{}],
    "anchor_schedule_reloads": [{"result": "applied"}, {"result": "rejected"}],
    "anchor_clock_jumps": [{}],
    "anchor_programs_ready": [{"channel": "hospital"}, {"channel": "procuratorate"}],
    "anchor_build": [{}],
    **{name: [{"obs": "studio"}] for name in (
        "anchor_obs_connected", "anchor_obs_reconnects", "anchor_obs_active_fps", "anchor_obs_render_skipped_frames",
        "anchor_obs_output_skipped_frames", "anchor_obs_stream_active", "anchor_obs_stream_reconnecting",
        "anchor_obs_stream_sent_bytes", "anchor_obs_request_seconds")},
    # Both channels air through one OBS: the dashboards must still tell them apart.
    "anchor_channel_obs_info": [{"channel": c, "obs": "studio"} for c in ("hospital", "procuratorate")],
    "anchor_dead_air_seconds": [{"channel": "hospital"}, {"channel": "procuratorate"}],
    "anchor_interactions": [{"channel": c, "platform": p, "kind": k} for (c, p) in ROOMS for k in (
        ("comment", "gift", "superchat", "guard", "like", "enter") if p == B else ("comment", "gift", "like", "follow")
    )],
    "anchor_gift_value_cny": [{"channel": c, "platform": p} for (c, p) in ROOMS],
    "anchor_viewers": [{"channel": "hospital", "platform": D}],  # Bilibili's open platform reports none
    "anchor_room_connected": [{"channel": c, "room": r} for (c, _), r in ROOMS.items()],
    "anchor_room_last_event_timestamp_seconds": [{"channel": c, "room": r} for (c, _), r in ROOMS.items()],
    "anchor_room_reconnects": [{"channel": "hospital", "room": B, "reason": "silent"},
                               {"channel": "hospital", "room": D, "reason": "closed"},
                               {"channel": "procuratorate", "room": B, "reason": "ended"}],
    "anchor_webhook_requests": [{"outcome": o} for o in ("accepted", "duplicate", "bad_signature", "stale")],
    "anchor_airing_info": [{"channel": "hospital", "script": s} for s in ON_AIR_SCRIPTS]
                          + [{"channel": "procuratorate", "script": "policy/legal-aid"}],
    "anchor_unapproved_airings": [{"channel": "hospital"}, {"channel": "procuratorate"}],
}


class Exposition:
    """anchor's metrics re-made in a registry of the test's own; every scrape moves them one step on."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics: dict[str, Any] = {}
        self.step = 0
        self.lock = threading.Lock()
        for m in anchor_metric_definitions():
            # prometheus_client keeps a metric's definition in these attributes (no public accessor).
            name, doc, labels, kind = m._name, m._documentation, m._labelnames, m._type
            metric: Any
            if kind == "counter":
                metric = Counter(name, doc, labels, registry=self.registry)
            elif kind == "gauge":
                metric = Gauge(name, doc, labels, registry=self.registry)
            elif kind == "histogram":
                assert isinstance(m, Histogram)
                metric = Histogram(name, doc, labels, registry=self.registry, buckets=m._upper_bounds)
            elif kind == "info":
                metric = Info(name, doc, labels, registry=self.registry)
            else:
                raise AssertionError(f"{name}: a {kind} metric; teach the test about it")
            self.metrics[name] = metric
            assert name in LABEL_SETS, f"{name}: add its realistic label sets to LABEL_SETS"
            for label_set in LABEL_SETS[name]:
                assert set(label_set) == set(labels), f"{name}: test labels {sorted(label_set)} != {labels}"
        self.advance()

    def child(self, name: str, label_set: Mapping[str, str]) -> Any:
        metric = self.metrics[name]
        return metric.labels(**label_set) if label_set else metric

    def advance(self) -> None:
        now, k = time.time(), self.step
        self.step += 1
        for name, label_sets in LABEL_SETS.items():
            metric_type = self.metrics[name]._type
            for i, labels in enumerate(label_sets):
                child = self.child(name, labels)
                if metric_type == "counter":
                    child.inc(1 + (k + i) % 3)
                elif metric_type == "histogram":
                    for j in range(2):
                        child.observe((0.02 + 0.5 * ((k + i + j) % 7)) * (60 if "render" in name else 1))
                elif metric_type == "info":
                    child.info({"version": "0.1.0"})
        gauges: dict[str, Callable[[Mapping[str, str]], float]] = {
            "anchor_on_air": lambda ls: 1.0 if ls["channel"] == "hospital" else 0.0,
            "anchor_next_airing_timestamp_seconds": lambda ls: now + 300,
            "anchor_scheduler_last_tick_timestamp_seconds": lambda ls: now - 3,
            "anchor_programs_ready": lambda ls: 6,
            "anchor_obs_connected": lambda ls: 1,
            "anchor_obs_active_fps": lambda ls: 30 - k % 2,
            "anchor_obs_render_skipped_frames": lambda ls: 2 * k,
            "anchor_obs_output_skipped_frames": lambda ls: k,
            "anchor_obs_stream_active": lambda ls: 1,
            "anchor_obs_stream_reconnecting": lambda ls: 0,
            "anchor_obs_stream_sent_bytes": lambda ls: 750_000 * k,
            "anchor_channel_obs_info": lambda ls: 1,
            "anchor_viewers": lambda ls: 120 + k % 9,
            "anchor_room_connected": lambda ls: 1,
            "anchor_room_last_event_timestamp_seconds": lambda ls: now - 42,
            # hospital changes program every 5 scrapes; procuratorate's last script lingers at 0
            "anchor_airing_info": lambda ls: float(ls["channel"] == "hospital"
                                                   and ls["script"] == ON_AIR_SCRIPTS[(k // 5) % 2]),
            "anchor_unapproved_airings": lambda ls: 1 if ls["channel"] == "procuratorate" else 0,
        }
        assert set(gauges) == {n for n, m in self.metrics.items() if m._type == "gauge"}, "a gauge has no value rule"
        for name, value in gauges.items():
            for labels in LABEL_SETS[name]:
                self.child(name, labels).set(value(labels))

    def scrape(self) -> bytes:
        with self.lock:
            self.advance()
            return generate_latest(self.registry)


@contextmanager
def serve_exposition(exposition: Exposition) -> Iterator[str]:
    """The exposition at http://127.0.0.1:<free port>/metrics until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition.scrape()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_exposition_is_every_anchor_metric_and_lint_clean() -> None:
    exposition = Exposition()
    assert sorted(LABEL_SETS) == sorted(exposition.metrics)
    linted = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition.scrape(), capture_output=True,
                            timeout=TOOL_TIMEOUT)
    assert linted.returncode == 0, linted.stderr.decode()


# ----------------------------------------------------------------------------------------------------------
# A real Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_json(url: str, timeout: float = 5) -> Any:
    with HTTP.open(url, timeout=timeout) as response:
        return json.load(response)


def instant(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    answer = get_json(f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_for(what: str, condition: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")


@contextmanager
def prometheus_running(config: Path, workdir: Path) -> Iterator[str]:
    """A real Prometheus on 127.0.0.1:<free port> with this config file and a throwaway TSDB in workdir, until
    the block ends; yields its base URL once it is ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "prometheus.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
            stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for("Prometheus to be ready", lambda: HTTP.open(f"{url}/-/ready", timeout=2).status == 200, 30, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def prometheus_scraping(target_url: str, workdir: Path, rule_files: tuple[Path, ...] = ()) -> Iterator[str]:
    """A real Prometheus on 127.0.0.1:<free port> scraping target_url as job `anchor` every second, until
    enough samples are in for rates; yields its base URL and stops it afterwards."""
    target = urllib.parse.urlsplit(target_url)
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "scrape_timeout": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": "anchor", "scheme": target.scheme, "metrics_path": target.path or "/metrics",
                            "static_configs": [{"targets": [target.netloc]}]}],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))
    with prometheus_running(workdir / "prometheus.yml", workdir) as url:
        # rate() needs two samples in its window; wait for six scrapes.
        wait_for("six successful scrapes of the target",
                 lambda: bool(instant(url, 'sum_over_time(up{job="anchor"}[1m]) >= 6')), 40,
                 workdir / "prometheus.log")
        yield url


def has_a_number(series: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in series)


def check_panels_against(target_url: str, workdir: Path, channel: str = CHANNEL, require_numbers: bool = True) -> None:
    """Scrape target_url (anchor's /metrics, or a stand-in) with a real Prometheus and run every dashboard
    query through `promtool query instant`: a query that returns no series is a broken panel. alerts.yml is
    loaded too: every rule must evaluate without error."""
    with prometheus_scraping(target_url, workdir, rule_files=(ALERTS,)) as prometheus_url:
        boards = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARDS_DIR.glob("*.json")}
        values = grafana_values(SCRAPE_INTERVAL_S, channel)
        queries = [Query(q.where, substitute(q.expr, values)) for q in dashboard_queries(boards)]

        def ask(query: Query) -> str | None:
            answer = run(PROMTOOL, "query", "instant", "-o", "json", prometheus_url, query.expr, timeout=30)
            if answer.returncode != 0:
                return f"{query.where}: promtool failed: {answer.stderr.strip()}\n    {query.expr}"
            series = json.loads(answer.stdout or "[]")
            if not series:
                return f"{query.where}: no series\n    {query.expr}"
            if require_numbers and not has_a_number(series):
                return f"{query.where}: only NaN/Inf\n    {query.expr}"
            return None

        # A subquery's steps fall on multiples of its step (5 s), so a Prometheus a few seconds old may not yet
        # have a step with two samples in a rate window: re-ask a panel without data until a deadline.
        deadline = time.monotonic() + PANEL_DATA_TIMEOUT_S
        waiting = queries
        while True:
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(ask, waiting))
            broken = [problem for problem in answers if problem]
            if not broken or time.monotonic() > deadline:
                break
            waiting = [query for query, problem in zip(waiting, answers) if problem]
            time.sleep(SCRAPE_INTERVAL_S)
        assert not broken, "broken panels:\n" + "\n".join(broken)

        rules = get_json(f"{prometheus_url}/api/v1/rules")["data"]["groups"]
        evaluated = [rule for group in rules for rule in group["rules"]]
        assert len(evaluated) == 9
        unhealthy = [f"{r['name']}: {r.get('lastError')}" for r in evaluated if r["health"] != "ok"]
        assert not unhealthy, unhealthy


def test_every_panel_query_returns_series_from_a_real_prometheus(tmp_path: Path) -> None:
    with serve_exposition(Exposition()) as target_url:
        check_panels_against(target_url, tmp_path / "prometheus")


# ----------------------------------------------------------------------------------------------------------
# metrics/prometheus.yml: the Prometheus an operator starts from the checkout


def test_the_bundled_prometheus_config_is_valid_and_scrapes_the_daemons_default_port() -> None:
    checked = run(PROMTOOL, "check", "config", str(PROMETHEUS_YML))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    from anchor.config import DaemonSettings

    defaults = DaemonSettings()
    text = PROMETHEUS_YML.read_text(encoding="utf-8")
    assert re.search(r"^\s+- job_name: anchor$", text, re.MULTILINE)
    assert f'targets: ["{defaults.metrics_host}:{defaults.metrics_port}"]' in text
    # The README's commands run from any checkout: no path into one developer's virtualenv.
    readme = (METRICS / "README.md").read_text(encoding="utf-8")
    assert "prometheus --config.file=metrics/prometheus.yml" in readme
    assert not re.findall(r"/\S+/\.venv/", readme), "metrics/README.md names an absolute virtualenv path"


def test_a_prometheus_started_on_the_bundled_config_loads_the_alerts_and_scrapes_anchor(tmp_path: Path) -> None:
    """`prometheus --config.file=metrics/prometheus.yml` as the README says: its rule files are found beside it
    (here through links, as the copy's target is the test's own exposition on a free port)."""
    text = PROMETHEUS_YML.read_text(encoding="utf-8")
    rule_files = re.findall(r"^rule_files:\n((?:\s+- \S+\n)+)", text, re.MULTILINE)
    names = re.findall(r"- (\S+)", rule_files[0]) if rule_files else []
    assert names == ["alerts.yml"], "load the alerts with a path relative to metrics/prometheus.yml"
    for name in names:
        (tmp_path / name).symlink_to(METRICS / name)
    with serve_exposition(Exposition()) as target_url:
        target = urllib.parse.urlsplit(target_url).netloc
        config = tmp_path / "prometheus.yml"
        config.write_text(text.replace('"127.0.0.1:9464"', f'"{target}"'), encoding="utf-8")
        assert config.read_text(encoding="utf-8") != text
        with prometheus_running(config, tmp_path) as prometheus_url:
            groups = get_json(f"{prometheus_url}/api/v1/rules")["data"]["groups"]
            loaded = sorted(rule["name"] for group in groups for rule in group["rules"])
            assert loaded == sorted(alert_expressions(ALERTS.read_text(encoding="utf-8"))), loaded
            # The alerts read up{job="anchor"}: the job scrapes (Prometheus's first scrape falls within one
            # 15 s interval of its start).
            wait_for("a scrape of job anchor", lambda: bool(instant(prometheus_url, 'up{job="anchor"} == 1')), 40,
                     tmp_path / "prometheus.log")
