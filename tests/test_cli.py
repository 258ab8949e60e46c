"""The `anchor` command as a newcomer meets it: voices by language, tables that fit a terminal, one rule for
times, and the README's own commands working."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import date, datetime
from pathlib import Path

import pytest
from rich.cells import cell_len

from anchor.store import Airing, Outcome, open_store
from tests.conftest import REPO, Project, no_traceback


def _columns_used(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


@pytest.fixture
def bundled(tmp_path: Path) -> Project:
    """A copy of the repository's own anchor.toml, schedules and scripts."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(REPO / "anchor.toml", root / "anchor.toml")
    shutil.copytree(REPO / "schedules", root / "schedules")
    shutil.copytree(REPO / "scripts_content", root / "scripts_content")
    return Project(root)


def _voice_names(table: str) -> list[str]:
    """The first column of `anchor voices`' rows: each line under the rule that does not continue the one above."""
    rows = table.split("\n─", 1)[1].split("\n", 1)[1]
    return [line.split()[0] for line in rows.splitlines() if line and not line.startswith(" ")]


def test_voices_by_language_lists_each_espeak_voice_once(project: Project) -> None:
    result = project.run("voices", "--engine", "espeak", "--language", "zh")
    assert result.returncode == 0, result.stderr
    names = _voice_names(result.stdout)
    # Mandarin and Cantonese are Chinese (zh): both voices of each, each once.
    assert {"cmn", "cmn-latn-pinyin", "yue", "yue-latn-jyutping"} <= set(names), result.stdout
    assert len(names) == len(set(names)), names
    assert "en-us" not in names
    both = project.run("voices", "--engine", "espeak", "--language", "yue")
    assert set(_voice_names(both.stdout)) == {"yue", "yue-latn-jyutping"}


@pytest.mark.dated  # the sample channels, planned from the clock
def test_plan_and_history_fit_80_columns_with_labelled_channel_times(bundled: Project) -> None:
    env = {"COLUMNS": "80"}
    planned = bundled.run("plan", "--from", "2026-12-04T08:00+08:00", "--hours", "12", env=env)
    assert planned.returncode == 0, planned.stderr
    assert _columns_used(planned.stdout) <= 80, planned.stdout
    # Every time is the channel's own clock with its offset, and every script path is whole on one line.
    assert "2026-12-04 Fri" in planned.stdout and "10:00+08:00" in planned.stdout
    for script in ("policy/legal-aid.md", "health/hypertension.md"):
        assert script in planned.stdout, planned.stdout
    log = open_store(f"sqlite:///{bundled.root / 'data' / 'anchor.db'}")
    from datetime import timezone

    at = datetime(2026, 12, 4, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
    log.claim(Airing(channel="procuratorate", slot="constitution-day", planned_at=at, started_at=at, ended_at=at,
                     outcome=Outcome.FAILED, script="policy/legal-aid.md", error="could not render: every engine "
                     "failed: espeak: espeak-ng is not installed (apt-get install espeak-ng)"))
    history = bundled.run("history", env=env)
    assert history.returncode == 0, history.stderr
    assert _columns_used(history.stdout) <= 80, history.stdout
    assert "2026-12-04 10:00+08:00" in history.stdout and "failed" in history.stdout
    csv = bundled.run("history", "--csv")
    assert "2026-12-04 10:00:00.000+08:00" in csv.stdout  # the CSV has the same clock, to the millisecond


def _absolute_dates(value: object, where: str) -> list[str]:
    """Every TOML date and date-time in value (a parsed TOML document), as 'where = value'. (A local time such
    as 09:00 names no day and stays.)"""
    if isinstance(value, date):  # datetime is a date too
        return [f"{where} = {value.isoformat()}"]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _absolute_dates(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _absolute_dates(item, f"{where}[{i}]")]
    return []


@pytest.mark.dated  # the sample channels, planned from the clock
def test_sample_schedules_hold_no_one_off_instant_and_check_warns_about_nothing_bundled(bundled: Project) -> None:
    """A sample slot with a one-off `at` goes stale: once the instant passes, every command warns that it will
    not air. Any other date goes stale silently: a season's `from`/`until`, a dated [[blackout]], an
    `except = [day]` mean nothing once passed. A yearly occasion or a season is a cron; holidays are China's
    calendar (days = "workdays", except = "holidays")."""
    schedules = sorted((REPO / "schedules").glob("*.toml"))
    assert schedules
    for path in schedules:
        dates = _absolute_dates(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        assert not dates, f"a sample schedule with a date goes stale: {dates}"
    checked = bundled.run("check")
    assert checked.returncode == 0, checked.stderr
    # One warning is not about stale samples and stays: a year the installed holiday calendar does not cover
    # yet depends on today's date and the chinese-calendar release, not on the bundled files.
    kept = re.compile(r"no published holiday calendar covers")
    warnings = [line for line in checked.stderr.splitlines() if line.startswith("warning:") and not kept.search(line)]
    assert not warnings, checked.stderr


def _readme_commands() -> list[str]:
    """`anchor …` lines from the README's shell blocks, as a newcomer would copy them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("anchor "):
                commands.append(line)
    return commands


def test_the_readme_commands_work_after_make_run(bundled: Project, tmp_path: Path) -> None:
    """What the README tells a newcomer to type exists and runs: after activating the virtualenv that make
    set up, as the README says first. Commands that need OBS or run forever are only parsed (--help)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in readme
    commands = _readme_commands()
    assert len(commands) >= 8, commands
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "anchor").exists()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "COLUMNS": "120", "NO_PROXY": "127.0.0.1"}
    for command in commands:
        words = command.split()
        if "--config" in words:  # the README's example path is a broadcast PC's; here the bundled copy
            words[words.index("--config") + 1] = "anchor.toml"
        # What runs forever, needs OBS, a daemon, an approver, a signing key or speakers, or renders every
        # script, is only parsed (each has its own tests).
        only_parsed = ({"run", "obs", "status", "report", "audit", "approve", "revoke", "--play"} & set(words)
                       or "--all" in words)
        argv = [*words, "--help"] if only_parsed else words
        result = subprocess.run(argv, cwd=bundled.root, env=env, capture_output=True, text=True, timeout=300)
        no_traceback(result)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])



def test_say_shows_the_written_words_exactly_as_given(project: Project) -> None:
    """`:star:` and `[b]` are words a script may hold: say shows them as written, not as an emoji or markup."""
    result = project.run("say", "请按:star:键 [b]1[/b]")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "written  请按:star:键 [b]1[/b]"
