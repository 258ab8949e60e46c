"""The audience stage end to end: a real daemon airs while a local server speaking Bilibili's open platform
pushes events and a bridge posts to the webhook; every event lands on the airing on air at its instant or
on the gap, and the as-run log, `anchor history`, `anchor report`, `anchor status` and the metrics agree
with exactly what was sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from anchor.store import open_store
from tests.conftest import Project
from tests.daemon_harness import Daemon, at, channel, final, free_port, setup_site, slot, wait_rows
from tests.fake_bilibili import FakeBilibili

T = TypeVar("T")
KEY_ID, KEY_SECRET, CODE, APP_ID = "test-key", "test-secret", "ABCDEFGH", 42
WEBHOOK_SECRET = "bridge-secret"


class Background:
    """An event loop in a thread, for servers the daemon (another process) talks to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def bilibili() -> Iterator[tuple[Background, FakeBilibili]]:
    background = Background()
    fake = FakeBilibili(key_id=KEY_ID, key_secret=KEY_SECRET, code=CODE, app_id=APP_ID)
    background.run(fake.start())
    try:
        yield background, fake
    finally:
        background.run(fake.stop())
        background.close()


def _dm(n: int, when: float, text: str = "请问高血压要吃药吗") -> dict[str, Any]:
    return {"cmd": "LIVE_OPEN_PLATFORM_DM", "data": {"open_id": f"viewer-{n}", "uname": f"观众{n}", "msg": text,
                                                    "msg_id": f"dm-{n}-{when}", "timestamp": int(when),
                                                    "room_id": 21452505}}


def _like(n: int, count: int, when: float) -> dict[str, Any]:
    return {"cmd": "LIVE_OPEN_PLATFORM_LIKE", "data": {"open_id": f"viewer-{n}", "uname": "x", "like_count": count,
                                                      "msg_id": f"like-{n}-{when}", "timestamp": int(when)}}


def _gift(n: int, price: int, number: int, when: float) -> dict[str, Any]:
    return {"cmd": "LIVE_OPEN_PLATFORM_SEND_GIFT", "data": {
        "open_id": f"viewer-{n}", "uname": "x", "gift_id": 1, "gift_name": "小心心", "gift_num": number,
        "price": price, "paid": True, "msg_id": f"gift-{n}-{when}", "timestamp": int(when)}}


def _post_generic(port: int, events: list[dict[str, Any]], channel_id: str = "t") -> int:
    body = json.dumps({"events": events}).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/rooms/{channel_id}/bridge", data=body, method="POST",
                                     headers={"X-Anchor-Timestamp": stamp, "X-Anchor-Signature": signature,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status


def _metric(text: str, line_start: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def _status(project: Project) -> dict[str, Any]:
    note = json.loads((project.root / "data" / "daemon.json").read_text(encoding="utf-8"))
    with urllib.request.urlopen(f"http://{note['http']}/status", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def test_interactions_land_on_the_airing_on_air_or_the_gap(
        project: Project, bilibili: tuple[Background, FakeBilibili], tmp_path: Path) -> None:
    background, fake = bilibili
    port = free_port()
    setup_site(project, port)
    rooms = (f'[[room]]\nplatform = "bilibili"\nname = "main"\napp_id = {APP_ID}\napi_base = "{fake.api_base}"\n\n'
             '[[room]]\nplatform = "webhook"\nname = "bridge"\nformat = "generic"\n\n')
    path = channel(project, slot("talk", f"at = {at(14)}", "long.md"))
    path.write_text(path.read_text(encoding="utf-8") + rooms, encoding="utf-8")
    env = {"ANCHOR_BILIBILI_KEY_ID_MAIN": KEY_ID, "ANCHOR_BILIBILI_KEY_SECRET_MAIN": KEY_SECRET,
           "ANCHOR_BILIBILI_CODE_MAIN": CODE, "ANCHOR_WEBHOOK_SECRET_BRIDGE": WEBHOOK_SECRET}
    with Daemon(project, env) as daemon:
        daemon.wait_log(r"on air: 1 channels")
        background.run(fake.wait_until(lambda: bool(fake.listening()), 30, "the daemon's websocket"))
        # Before the program: the gap.
        before = time.time()
        background.run(fake.push([_dm(1, before), _like(1, 7, before)]))
        deadline = time.monotonic() + 60
        while not (_status(project)["channels"][0]["on_air"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        state = _status(project)
        assert state["channels"][0]["on_air"]["script"] == "long.md"
        assert {(r["room"], r["connected"]) for r in state["rooms"]} == {("main", True), ("bridge", True)}
        shown = project.run("status")
        assert "ON AIR  long.md" in shown.stdout and "t/main  bilibili  connected" in shown.stdout, shown.stdout
        # During the program: comments, likes and paid gifts by Bilibili, viewers and a share by the bridge.
        # (Bilibili stamps events to the second: clear the program's first second.)
        time.sleep(1.5)
        during = time.time()
        background.run(fake.push([_dm(n, during) for n in range(2, 6)] + [_like(2, 30, during),
                                  _gift(3, 1000, 2, during), _gift(4, 500, 1, during)], protover=2))
        assert _post_generic(daemon_http(project), [
            {"id": "v1", "kind": "viewers", "count": 120}, {"id": "v2", "kind": "viewers", "count": 80},
            {"id": "s1", "kind": "share", "viewer": "wx-123"}]) == 200
        (row,) = wait_rows(project, lambda r: final(r, "talk"), timeout=90)
        after = time.time() + 1
        background.run(fake.push([_dm(9, after, "谢谢")], protover=3))
        found = _wait_audience(project, lambda r: r.comments == 4, timeout=40)
        gaps = _wait_gaps(project, lambda g: sum(x.comments for x in g) == 2, timeout=40)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        history = project.run("history")
        report = project.run("report", "--csv")
        assert daemon.stop() == 0
    assert (found.comments, found.likes, found.gifts, found.gift_cny) == (4, 30, 3, 2.5)
    assert (found.viewers_peak, found.viewers_mean) == (120, 100.0)
    assert sum(g.likes for g in gaps) == 7 and sum(g.comments for g in gaps) == 2
    # The metrics count every event once, gap and program alike; the script was on air while they came.
    assert _metric(metrics, 'anchor_interactions_total{channel="t",kind="comment",platform="bilibili"}') == 6
    assert _metric(metrics, 'anchor_interactions_total{channel="t",kind="like",platform="bilibili"}') == 37
    assert _metric(metrics, 'anchor_interactions_total{channel="t",kind="share",platform="webhook"}') == 1
    assert _metric(metrics, 'anchor_gift_value_cny_total{channel="t",platform="bilibili"}') == 2.5
    assert _metric(metrics, 'anchor_room_connected{channel="t",room="main"}') in (0.0, 1.0)
    assert 'anchor_airing_info{channel="t",script="long.md"}' in metrics
    assert "viewer-" not in metrics and "请问" not in metrics  # no viewer, no text in the metrics
    assert "audience: 4 comments, 30 likes, 3 gifts" in history.stdout and "¥2.50 in gifts" in history.stdout
    lines = report.stdout.strip().splitlines()
    assert lines[0].startswith("script,airings,minutes_aired,comments,likes,gifts,gift_cny")
    fields = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert fields["script"] == "long.md" and fields["comments"] == "4" and fields["likes"] == "30"
    minutes = (row.ended_at - row.started_at).total_seconds() / 60
    assert abs(float(fields["interactions_per_minute"]) - (4 + 30 + 3 + 0 + 1) / minutes) < 0.05 * 38 / minutes
    assert fake.answered("/v2/app/end"), "the game was ended on stop"


def daemon_http(project: Project) -> int:
    note = json.loads((project.root / "data" / "daemon.json").read_text(encoding="utf-8"))
    return int(str(note["http"]).rsplit(":", 1)[1])


def _wait_audience(project: Project, done: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}").history() if r.slot == "talk"]
        if rows and done(rows[0]):
            return rows[0]
        time.sleep(0.5)
    raise AssertionError(f"audience totals never arrived: {rows}")


def _wait_gaps(project: Project, done: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    gaps: list[Any] = []
    while time.monotonic() < deadline:
        gaps = open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}").gaps(datetime(2000, 1, 1, tzinfo=UTC))
        if done(gaps):
            return gaps
        time.sleep(0.5)
    raise AssertionError(f"gap totals never arrived: {gaps}")


def test_every_dashboard_panel_returns_data_from_a_real_daemon_airing_through_obs(
        project: Project, bilibili: tuple[Background, FakeBilibili], obs: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real Prometheus scrapes a real daemon that airs through a real OBS while Bilibili (the local server)
    and a bridge push events: every panel's query returns a number, every alert rule evaluates."""
    from concurrent.futures import ThreadPoolExecutor

    from tests import test_dashboards as boards

    background, fake = bilibili
    port = free_port()
    setup_site(project, port)
    dead = free_port()  # the cloud voice is unreachable here: the chain falls back (a panel shows it)
    project.config.write_text(project.config.read_text(encoding="utf-8").replace(
        'engines = ["espeak"]', 'engines = ["edge", "espeak"]')
        + f'\n[speech.engines.edge]\nendpoint = "ws://127.0.0.1:{dead}/edge?x=1"\n'
        f'voice_list_endpoint = "http://127.0.0.1:{dead}/voices"\n'
        f'\n[obs.studio]\nhost = "{obs.host}"\nport = {obs.port}\nrequest_timeout = 2.0\n', encoding="utf-8")
    channel_id = boards.CHANNEL
    rooms = (f'[[room]]\nplatform = "bilibili"\nname = "main"\napp_id = {APP_ID}\napi_base = "{fake.api_base}"\n\n'
             '[[room]]\nplatform = "webhook"\nname = "bridge"\nformat = "generic"\n\n')
    path = channel(project, slot("later", f"at = {at(3600)}", "short.md"), name=channel_id)
    path.write_text(path.read_text(encoding="utf-8").replace('timezone = "Asia/Shanghai"',
                                                           'timezone = "Asia/Shanghai"\noutput = "obs:studio"')
                    + rooms, encoding="utf-8")
    env = {"ANCHOR_BILIBILI_KEY_ID_MAIN": KEY_ID, "ANCHOR_BILIBILI_KEY_SECRET_MAIN": KEY_SECRET,
           "ANCHOR_BILIBILI_CODE_MAIN": CODE, "ANCHOR_WEBHOOK_SECRET_BRIDGE": WEBHOOK_SECRET,
           "ANCHOR_OBS_PASSWORD_STUDIO": obs.password}
    with Daemon(project, env) as daemon:
        daemon.wait_log(r"on air: 1 channels")
        with boards.prometheus_scraping(f"http://127.0.0.1:{port}/metrics", tmp_path / "prometheus",
                                        rule_files=(boards.ALERTS,)) as prometheus:
            background.run(fake.wait_until(lambda: bool(fake.listening()), 30, "the daemon's websocket"))
            # A program written now: rendered (and its clip made) while Prometheus watches, then aired. Long
            # enough (~15 s) that a 5 s query step falls on it after the events: a panel joins the two.
            project.script("fresh.md", "+++\ntitle = \"今日提示\"\n+++\n\n各位观众，今天的节目到这里。"
                           "请大家按时测量血压，少吃盐，多运动。天气转凉，出门注意保暖。"
                           "有问题请在评论区留言，我们下次节目再见。\n")
            path.write_text(path.read_text(encoding="utf-8") + slot("talk", f"at = {at(25)}", "fresh.md"),
                            encoding="utf-8")
            deadline = time.monotonic() + 90
            while not _status_of(project, channel_id) and time.monotonic() < deadline:
                time.sleep(0.2)
            # Is the room getting a picture? OBS here airs the scene but streams nowhere: status says so.
            shown = project.run("status")
            assert "obs:studio  connected  streaming: NOT LIVE" in shown.stdout, shown.stdout
            time.sleep(1.5)
            now = time.time()
            background.run(fake.push([_dm(n, now) for n in range(3)] + [_like(1, 5, now), _gift(2, 1000, 1, now)]))
            assert _post_generic(daemon_http(project), [{"id": "v", "kind": "viewers", "count": 33}], channel_id) == 200
            wait_rows(project, lambda r: final(r, "talk"), timeout=60)
            time.sleep(16)  # a heartbeat writes the totals; a few more scrapes see the airing's end
            values = boards.grafana_values(boards.SCRAPE_INTERVAL_S, channel_id)
            dashboards = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in boards.DASHBOARDS_DIR.glob("*.json")}
            queries = [boards.Query(q.where, boards.substitute(q.expr, values)) for q in boards.dashboard_queries(dashboards)]

            def ask(query: Any) -> str | None:
                expr = query.expr
                if "annotation" in query.where:  # Grafana asks an annotation over the time range shown
                    expr = f"max_over_time(({expr})[10m:1s])"
                answer = boards.run(boards.PROMTOOL, "query", "instant", "-o", "json", prometheus, expr, timeout=30)
                series = json.loads(answer.stdout or "[]") if answer.returncode == 0 else []
                return None if series and boards.has_a_number(series) else f"{query.where}: no number\n    {query.expr}"

            with ThreadPoolExecutor(max_workers=6) as pool:
                broken = [problem for problem in pool.map(ask, queries) if problem]
            rules = boards.get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
        assert daemon.stop() == 0
    assert not broken, "panels with no data from the real daemon:\n" + "\n".join(broken)
    evaluated = [rule for group in rules for rule in group["rules"]]
    assert evaluated and all(r["health"] == "ok" for r in evaluated), [(r["name"], r.get("lastError")) for r in evaluated]


def _status_of(project: Project, channel_id: str) -> bool:
    try:
        return any(c["id"] == channel_id and c["on_air"] for c in _status(project)["channels"])
    except (OSError, ValueError, KeyError):
        return False
