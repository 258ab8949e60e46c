"""What a person reads at an 80-column terminal, or in a pipe: lines that fit, words never split (a script path or
a voice name whole on one line), lengths of time and counts said as a person says them; --version, shell
completion, and --json on status, approvals and history."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from anchor.cli.history import FIELDS
from anchor.store import Airing, Outcome, open_store
from anchor.wording import count, duration
from tests.conftest import Project, clock_now, no_traceback, script_text
from tests.daemon_harness import Daemon, at, channel, free_port, setup_site, slot

NARROW = {"COLUMNS": "80"}
WIDE = {"COLUMNS": "250"}
_CJK = r"\u2e80-\u9fff\uac00-\ud7a3\uf900-\ufaff\uff00-\uffef"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")  # a Chinese character may fold from the next: each is a "word"


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def assert_readable(narrow: str, wide: str) -> None:
    """Every line fits 80 columns (but one holding a word too wide for any line: a temporary folder's path), and
    every word of the narrow output is a word of the wide one: none was cut."""
    too_long = [line for line in _lines(narrow) if cell_len(line) > 80 and all(cell_len(w) < 70 for w in line.split())]
    assert not too_long, "\n".join(too_long)
    split = {word for word in set(_words(narrow)) - set(_words(wide)) if word.strip("─")}  # rules: a column's width
    assert not split, f"words cut at 80 columns: {sorted(split)}\n{narrow}"


def whole_on_a_line(text: str, word: str) -> bool:
    return any(re.search(rf"(^|\s){re.escape(word)}(\s|$)", line) for line in _lines(text))


def both(project: Project, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    narrow, wide = project.run(*args, env=NARROW), project.run(*args, env=WIDE)
    no_traceback(narrow)
    return narrow, wide


@pytest.mark.parametrize(("seconds", "said"), [
    (0.35, "0.35 s"), (1, "1 s"), (2.5, "2.5 s"), (90, "90 s"), (60, "1 min"), (300, "5 min"), (150, "2.5 min"),
    (3600, "1 h"), (7200, "2 h"), (36 * 3600, "36 h"), (86400, "1 day"), (7 * 86400, "7 days"), (-2, "-2 s")])
def test_a_length_of_time_reads_as_a_person_writes_it(seconds: float, said: str) -> None:
    assert duration(seconds) == said
    assert duration(timedelta(seconds=seconds)) == said


def test_a_count_agrees_with_its_noun() -> None:
    assert (count(0, "airing"), count(1, "airing"), count(2, "airing")) == ("0 airings", "1 airing", "2 airings")
    assert count(2, "entry", "entries") == "2 entries"


def test_approvals_at_80_columns_keeps_every_script_path_and_word_whole(samples_project: Project) -> None:
    project = samples_project
    project.script("policy/family/minors-duties.md",
                   script_text("各位观众朋友，大家好。"))
    narrow, wide = both(project, "approvals")
    assert narrow.returncode == 0, narrow.stderr
    assert_readable(narrow.stdout, wide.stdout)
    names = [p.relative_to(project.scripts).as_posix() for p in project.scripts.rglob("*.md")]
    for name in names:
        assert whole_on_a_line(narrow.stdout, name), (name, narrow.stdout)
    assert narrow.stdout.startswith(f"{len(names)} scripts\n"), narrow.stdout
    # A 40-column terminal cannot hold the table with each path whole: each script becomes a record.
    tight = project.run("approvals", env={"COLUMNS": "40"})
    assert all(cell_len(line) <= 40 or len(line.split()) == 1 for line in _lines(tight.stdout)), tight.stdout
    for name in names:  # the one longer than the terminal too: it overflows its line rather than be cut
        assert whole_on_a_line(tight.stdout, name), (name, tight.stdout)
    assert "  standing: pending" in tight.stdout, tight.stdout


def test_approvals_json_holds_each_scripts_standing_and_decision(project: Project) -> None:
    project.write_config('[approvers.zhang]\nrole = "主任医师"\n')
    project.script("a.md", script_text("各位观众，大家好。"))
    project.script("b.md", script_text("请注意休息。"))
    assert project.run("approve", "a.md", "--by", "zhang").returncode == 0
    one = project.run("approvals", "--pending")
    assert one.stdout.startswith("1 script\n") and "1 script not approved" in one.stderr, (one.stdout, one.stderr)
    narrow = project.run("approvals", env=NARROW)
    assert all(cell_len(line) <= 80 for line in _lines(narrow.stdout)), narrow.stdout
    assert whole_on_a_line(narrow.stdout, "zhang (主任医师)"), narrow.stdout
    shown = project.run("approvals", "--json")
    assert shown.returncode == 0, shown.stderr
    found = {item["script"]: item for item in json.loads(shown.stdout)}
    assert found["a.md"]["standing"] == "approved" and found["b.md"]["standing"] == "pending"
    assert found["b.md"]["decision"] is None and "never approved" in found["b.md"]["not_approved"]
    decision = found["a.md"]["decision"]
    assert (decision["by"], decision["role"], decision["action"]) == ("zhang", "主任医师", "approved")
    assert decision["content_hash"] == found["a.md"]["content_hash"]
    at_time = datetime.fromisoformat(decision["at"])
    assert at_time.utcoffset() is not None and abs(at_time - clock_now()) < timedelta(minutes=5)  # with its offset


def test_voices_at_80_columns_names_every_voice_whole(project: Project) -> None:
    narrow, wide = both(project, "voices", "--engine", "espeak")
    assert narrow.returncode == 0, narrow.stderr
    assert_readable(narrow.stdout, wide.stdout)
    header = _lines(wide.stdout).index(next(line for line in _lines(wide.stdout) if line.startswith("─")))
    voices = [line.split()[0] for line in _lines(wide.stdout)[header + 1:] if line and not line.startswith(" ")]
    assert len(voices) > 50 and {"cmn-latn-pinyin", "yue-latn-jyutping"} <= set(voices), wide.stdout
    for voice in voices:
        assert whole_on_a_line(narrow.stdout, voice), (voice, narrow.stdout)
    assert narrow.stdout.startswith(f"espeak: {len(voices)} voices\n"), narrow.stdout


def test_render_all_at_80_columns_keeps_paths_and_voices_whole_and_says_lengths(samples_project: Project) -> None:
    first = samples_project.run("render", "--all", "--engine", "espeak", env=NARROW)
    assert first.returncode == 0, first.stderr
    assert all(cell_len(line) <= 80 for line in _lines(first.stdout)), first.stdout
    # Render times read like "4.2 s", and a number never parts from its unit.
    assert first.stdout.count("rendered in") == 6, first.stdout
    assert len(re.findall(r"(?:rendered in|  ) \d+(?:\.\d)? s$", first.stdout, re.MULTILINE)) == 6, first.stdout
    # Again, from the cache: the same rows, to compare with a wide terminal's.
    narrow, wide = both(samples_project, "render", "--all", "--engine", "espeak")
    assert_readable(narrow.stdout, wide.stdout)
    names = sorted(p.relative_to(samples_project.scripts).as_posix() for p in samples_project.scripts.rglob("*.md"))
    for name in [*names, "cmn-latn-pinyin"]:
        assert whole_on_a_line(narrow.stdout, name), (name, narrow.stdout)
    assert narrow.stdout.startswith(f"{len(names)} programs rendered\n"), narrow.stdout
    # Each program's length and render time are said like "94 s" or "1.9 s", not "94.3 s" or "94.30s".
    lengths = re.findall(r"\.md\s+(\S+ \S+)\s", narrow.stdout)
    assert len(lengths) == len(names) and all(re.fullmatch(r"\d+ s|\d+(\.\d)? min", t) for t in lengths), lengths
    assert "-1" in narrow.stdout and "LUFS" in narrow.stdout


def test_check_folds_long_problems_between_words_at_80_columns(samples_project: Project) -> None:
    (samples_project.root / "schedules").mkdir()
    channel(samples_project, slot("gone", f"at = {at(-7200)}", "health/hypertension.md"))
    narrow, wide = both(samples_project, "check")
    problems = [line for line in _lines(wide.stderr) if line.startswith(("warning:", "error:"))]
    assert any(cell_len(line) > 80 for line in problems), wide.stderr  # something to fold
    assert_readable(narrow.stderr, wide.stderr)
    # Folded, the same words in the same order; each continuation indented under its problem.
    squeeze = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
    assert squeeze.sub("", narrow.stderr).split() == squeeze.sub("", wide.stderr).split()
    for line in _lines(narrow.stderr):
        assert line.startswith(("warning: ", "error: ", "    ")) or re.fullmatch(r"\d+ problems? found", line), line
    path = str(samples_project.root / "schedules" / "t.toml")
    assert any(re.search(rf"(^|\s){re.escape(path)}:\d+:", line) for line in _lines(narrow.stderr)), narrow.stderr
    assert "beyond its grace of 5 min: it will not air" in " ".join(narrow.stderr.split()), narrow.stderr


def test_history_says_lateness_and_counts_and_its_json_has_every_field(project: Project) -> None:
    log = open_store(f"sqlite:///{project.root / 'data' / 'anchor.db'}")
    planned = clock_now().replace(microsecond=0) - timedelta(hours=1)
    log.claim(Airing(channel="t", slot="morning", planned_at=planned, started_at=planned + timedelta(seconds=2.5),
                     ended_at=planned + timedelta(seconds=95), outcome=Outcome.AIRED, script="health/a.md",
                     engine="espeak", voice="cmn-latn-pinyin", aired_as="clip"))
    shown = project.run("history", env=NARROW)
    assert shown.returncode == 0, shown.stderr
    assert "as-run log: 1 airing\n" in shown.stdout and "aired +2.5 s" in shown.stdout, shown.stdout
    listed = project.run("history", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["channel"], row["slot"], row["outcome"], row["script"], row["voice"]) == (
        "t", "morning", "aired", "health/a.md", "cmn-latn-pinyin")
    for field in ("planned_at", "started_at", "ended_at"):
        assert datetime.fromisoformat(row[field]).utcoffset() is not None, row[field]  # ISO 8601 with its offset
    assert datetime.fromisoformat(row["planned_at"]) == planned
    assert datetime.fromisoformat(row["started_at"]) - planned == timedelta(seconds=2.5)
    assert set(row) == set(FIELDS) and row["error"] is None  # every field, as --csv has them


def test_plan_says_its_span_and_count_as_a_person_would(project: Project) -> None:
    (project.root / "schedules").mkdir()
    channel(project, slot("once", f"at = {at(1800)}", "a.md"))
    project.script("a.md", script_text("各位观众，大家好。"))
    shown = project.run("plan", "--hours", "2", env=NARROW)
    assert shown.returncode == 0, shown.stderr
    assert " for 2 h\n" in shown.stdout and "\n1 airing;" in shown.stdout, shown.stdout
    week = project.run("plan", "--days", "7", env=NARROW)
    assert " for 7 days\n" in week.stdout, week.stdout


def test_status_at_80_columns_folds_under_its_indent_and_json_holds_the_state(project: Project) -> None:
    setup_site(project, free_port())
    long_name = "policy/a-rather-long-folder-name/minors-protection-and-family-duties-explained.md"
    project.script(long_name, script_text("各位观众朋友，大家好。"))
    channel(project, slot("an-evening-slot-with-a-long-name", f"at = {at(3600)}", long_name))
    with Daemon(project) as daemon:
        daemon.wait_log(r"on air: ")
        deadline = time.monotonic() + 30
        while not (project.root / "data" / "daemon.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        narrow, wide = both(project, "status")
        listed = project.run("status", "--json")
    assert narrow.returncode == 0, narrow.stderr
    assert_readable(narrow.stdout.split("\n", 1)[1], wide.stdout.split("\n", 1)[1])  # after the line of "now"
    assert whole_on_a_line(narrow.stdout, long_name), narrow.stdout
    assert ", 1 channel, " in narrow.stdout, narrow.stdout
    # A line starts at the margin only when it is a heading; what a long line continues is indented.
    for line in _lines(narrow.stdout):
        assert not line or line.startswith(" ") or re.match(r"(anchor at |t  |live rooms|outputs)", line), line
    assert listed.returncode == 0, listed.stderr
    state = json.loads(listed.stdout)
    (only,) = state["channels"]
    assert only["id"] == "t" and only["next"]["script"] == long_name and only["on_air"] is None
    assert datetime.fromisoformat(only["next"]["at"]).utcoffset() == timedelta(hours=8)  # the channel's clock
    assert datetime.fromisoformat(state["now"]).utcoffset() is not None
    assert isinstance(state["rooms"], list) and isinstance(state["outputs"], list)


def _console_script() -> Path:
    return Path(sys.executable).parent / "anchor"


def test_version_is_the_packages_own() -> None:
    shown = subprocess.run([str(_console_script()), "--version"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"anchor {importlib.metadata.version('anchor')}\n"


def test_shell_completion_is_shown_and_completes_commands_and_options(tmp_path: Path) -> None:
    anchor = str(_console_script())
    script = subprocess.run([anchor, "--show-completion", "bash"], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    assert "_anchor_completion" in script.stdout and "_ANCHOR_COMPLETE" in script.stdout, script.stdout
    env = {**os.environ, "_ANCHOR_COMPLETE": "complete_bash", "COMP_WORDS": "anchor appr", "COMP_CWORD": "1"}
    words = subprocess.run([anchor], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert set(words.stdout.split()) == {"approve", "approvals"}, (words.stdout, words.stderr)
    env |= {"COMP_WORDS": "anchor history --", "COMP_CWORD": "2"}
    options = subprocess.run([anchor], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert {"--json", "--csv", "--since", "--channel"} <= set(options.stdout.split()), options.stdout
