"""Bad input: each gets a clear error naming file and line, exit code 2, and never a traceback."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from tests.conftest import Project, no_traceback, script_text


def _check(project: Project) -> tuple[int, str]:
    result = project.run("check")
    no_traceback(result)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("没有前言的正文。\n", 1, ["does not start with front matter", "+++"]),
        ('+++\ntitle = "标题"\n\n正文。\n', 1, ["never closed", "add a line with just +++"]),
        ('+++\ntitle = 标题\n+++\n\n正文。\n', 2, ["TOML syntax error", 'key = "value"']),
        ('+++\ntitle = "标题"\ncolour = "red"\n+++\n\n正文。\n', 3, ["unknown key 'colour'", "allowed keys here: title"]),
        ('+++\ncategory = "health"\n+++\n\n正文。\n', 1, ["missing required key 'title'"]),
        ('+++\ntitle = "标题"\nrate = "fast"\n+++\n\n正文。\n', 3, ['"+10%"']),
        ('+++\ntitle = "标题"\npitch = "+5%"\n+++\n\n正文。\n', 3, ['"+0Hz"']),
        ('+++\ntitle = "标题"\n+++\n\n<!-- 只有注释 -->\n', 4, ["nothing to speak"]),
        ("", 1, ["empty"]),
        ('+++\ntitle = "标题"\n+++\n\n正文。\n\n[pause soon]\n', 7, ["[pause 1.5s]"]),
        ('+++\ntitle = "标题"\n+++\n\n正文。\n\n[pause 90s]\n', 7, ["too long"]),
    ],
    ids=["no-front-matter", "unclosed", "toml-syntax", "unknown-key", "missing-title", "bad-rate", "bad-pitch",
         "nothing-to-speak", "empty-file", "bad-pause", "long-pause"],
)
def test_script_problems_name_file_line_and_fix(project: Project, content: str, line: int, words: list[str]) -> None:
    project.script("bad.md", content)
    code, stderr = _check(project)
    assert code == 2
    assert f"bad.md:{line}" in stderr, stderr
    for word in words:
        assert word in stderr, stderr


def test_non_utf8_script(project: Project) -> None:
    (project.scripts / "gbk.md").write_bytes(script_text("高血压的日常管理。").encode("gbk"))
    code, stderr = _check(project)
    assert code == 2 and "gbk.md:" in stderr and "UTF-8" in stderr


def test_check_reports_every_problem_at_once(project: Project) -> None:
    project.script("one.md", "正文。\n")
    project.script("two.md", '+++\ntitle = "x"\nmood = "calm"\n+++\n\n正文。\n')
    project.script("fine.md", script_text("好的。"))
    project.config.write_text(project.config.read_text() + "\n[subtitles]\nmax_line_chars = 2\n")
    code, stderr = _check(project)
    assert code == 2
    assert "one.md:1" in stderr and "two.md:3" in stderr and "anchor.toml:" in stderr
    assert "3 problems found" in stderr


def test_check_passes_on_the_samples(samples_project: Project) -> None:
    result = samples_project.run("check")
    assert result.returncode == 0, result.stderr
    assert "6 scripts are valid" in result.stdout


@pytest.mark.parametrize(
    ("extra", "at", "key", "words"),
    [
        ('[speech]\nlanguag = "zh-CN"\n', 2, "speech.languag", ["unknown key", "allowed keys here: language"]),
        ("[speech.loudness]\ntarget_lufs = 3\n", 2, "speech.loudness.target_lufs", ["less than or equal to -5"]),
        ("[speech.engines.espeak]\nspeed = 5\n", 2, "speech.engines.espeak.speed", ["unknown key", "speed_wpm"]),
        ('[speech.engines.festival]\nvoice = "x"\n', 1, "speech.engines.festival", ["unknown engine 'festival'"]),
        ('[log]\nlevel = "LOUD"\n', 2, "log.level", ["DEBUG, INFO"]),
        ("[cache\nmax_size_mb = 1\n", 1, "", ["TOML syntax error"]),
    ],
    ids=["typo-key", "out-of-range", "engine-key", "unknown-engine-table", "bad-level", "syntax"],
)
def test_config_problems_name_line_and_key(project: Project, extra: str, at: int, key: str, words: list[str]) -> None:
    """`at` is the line within the appended text where the problem is."""
    base = project.config.read_text()
    project.config.write_text(base + extra)
    code, stderr = _check(project)
    assert code == 2
    assert f"anchor.toml:{base.count(chr(10)) + at}:" in stderr, stderr
    if key:
        assert f"[{key}]" in stderr, stderr
    for word in words:
        assert word in stderr, stderr


def test_unknown_engine_in_chain(project: Project) -> None:
    project.write_config(engines=("espeak", "polly"))
    code, stderr = _check(project)
    assert code == 2 and "unknown engine 'polly'" in stderr and "choose from: edge, espeak" in stderr


def test_missing_config_file(project: Project) -> None:
    project.config.unlink()
    result = project.run("render", "--all")
    no_traceback(result)
    assert result.returncode == 2 and "anchor.toml" in result.stderr and "file not found" in result.stderr


def test_render_unknown_engine_and_voice(project: Project) -> None:
    project.script("a.md", script_text("你好。"))
    engine = project.run("render", "a.md", "--engine", "siri", "--out", "out")
    no_traceback(engine)
    assert engine.returncode == 2 and "unknown engine 'siri'" in engine.stderr
    voice = project.run("render", "a.md", "--engine", "espeak", "--voice", "zz-qq", "--out", "out")
    no_traceback(voice)
    assert voice.returncode == 2 and "espeak-ng has no voice 'zz-qq'" in voice.stderr
    named = project.run("render", "a.md", "--voice", "Robot Voice", "--out", "out")
    no_traceback(named)
    assert named.returncode == 2 and "no engine in the chain" in named.stderr


def test_unknown_voice_in_a_script_is_caught_by_check(project: Project) -> None:
    project.script("v.md", script_text("你好。", voice="xx-nonexistent"))
    code, stderr = _check(project)
    assert code == 2 and "v.md:3" in stderr and "xx-nonexistent" in stderr


def test_render_of_a_bad_script_says_where(project: Project) -> None:
    project.script("bad.md", '+++\ntitle = "x"\nsummery = "typo"\n+++\n\n正文。\n')
    result = project.run("render", "bad.md", "--out", "out")
    no_traceback(result)
    assert result.returncode == 2 and "bad.md:3" in result.stderr and "summary" in result.stderr


def test_a_50000_character_script_renders(project: Project) -> None:
    clause = "请注意按时测量血压，少吃盐，多运动，"  # 18 characters
    sentence = "各位观众朋友，" + clause * 7 + "保持良好的作息习惯。"  # 143 characters
    body = "\n\n".join([sentence] * (50_000 // len(sentence) + 1))
    assert len(body) >= 50_000
    # The length is under test, not line width or voice speed: wide subtitle lines and fast speech
    # mean fewer, longer requests and a shorter test.
    project.write_config(extra="[subtitles]\nmax_line_chars = 80\n[speech]\nmax_sentence_chars = 200\n")
    project.script("long.md", script_text(body, rate="+200%"))
    result = project.run("render", "long.md", "--out", "out")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((project.root / "out" / "program.json").read_text())
    assert meta["sentences"] >= 600 and meta["duration_seconds"] > 1800
    assert abs(meta["loudness"]["integrated_lufs"] - -16.0) <= 1.0
    cues = (project.root / "out" / "program.srt").read_text(encoding="utf-8").count(" --> ")
    assert cues == meta["cues"] >= 600


def test_scripts_too_large_to_air_are_refused_before_rendering(project: Project) -> None:
    """A pasted book must not exhaust the broadcast PC: a file over 512 KB, or more than 60,000 spoken
    characters, is refused by check and render with what to do, before any engine or ffmpeg runs."""
    sentence = "各位观众朋友，请注意按时测量血压，少吃盐，多运动。"
    project.script("book.md", script_text("\n\n".join([sentence] * (61_000 // len(sentence) + 1))))
    huge = project.script("huge.md", script_text("好" * 10) + "<!-- " + "x" * 600_000 + " -->\n")
    code, stderr = _check(project)
    assert code == 2
    assert re.search(r"book\.md:\d+: the script speaks 6\d,\d{3} characters; a program may speak at most 60,000",
                     stderr), stderr
    assert f"{huge}: the script is 0.6 MB; a script may be at most 512 KB" in stderr, stderr
    result = project.run("render", "book.md", "--out", "out")
    assert result.returncode == 2 and not (project.root / "out").exists()
    no_traceback(result)


_MANY_PROBLEMS = """[channel]
id = "many"
timezone = "Asia/Shanghai"
colour = "red"

[[slot]]
script = "health/missing.md"
cron = "0 9 * * *"

[[slot]]
script = "../outside.md"
cron = "0 10 * * *"

[[slot]]
script = "fine.md"
cron = "0 99 * * *"
"""
# The line of each problem above, and a word of what it says.
_MANY_LINES = {4: "colour", 7: "health/missing.md", 11: "..", 16: "cron hour 99"}


def _many_problems(project: Project) -> None:
    project.script("fine.md", script_text("好的。"))
    (project.root / "schedules").mkdir()
    (project.root / "schedules" / "many.toml").write_text(_MANY_PROBLEMS, encoding="utf-8")


def test_check_lists_every_problem_of_a_channel_file_at_once(project: Project) -> None:
    """A missing script and a `..` path used to show only once the unknown key and the bad cron were fixed."""
    _many_problems(project)
    code, folded = _check(project)
    stderr = folded.replace("\n    ", " ")  # a long problem folds onto indented lines
    assert code == 2
    for line, word in _MANY_LINES.items():
        found = [text for text in stderr.splitlines() if f"many.toml:{line}:" in text]
        assert len(found) == 1 and word in found[0], stderr
    assert 'write a path such as "health/hypertension.md"' in stderr and 'cron = "0 9 * * mon-fri"' in stderr
    assert "4 problems found" in stderr


def test_check_reads_the_scripts_dir_of_an_anchor_toml_with_errors(project: Project) -> None:
    """A bad [log] level and an unknown engine table are both named, and the scripts are checked in the folder
    paths.scripts_dir names rather than the default one."""
    base = project.config.read_text().replace('scripts_dir = "scripts_content"', 'scripts_dir = "texts"')
    project.config.write_text(base + '\n[speech.engines.festival]\nvoice = "x"\n\n[log]\nlevel = "LOUD"\n')
    (project.root / "texts").mkdir()
    (project.root / "texts" / "typo.md").write_text('+++\ntitle = "x"\ncolour = "red"\n+++\n\n正文。\n',
                                                    encoding="utf-8")
    code, stderr = _check(project)
    assert code == 2
    assert "unknown engine 'festival'" in stderr and "level must be one of" in stderr, stderr
    assert "typo.md:3" in stderr and "does not exist" not in stderr, stderr
    assert "3 problems found" in stderr


def test_check_json_lists_every_problem_and_the_verdict(project: Project) -> None:
    _many_problems(project)
    result = project.run("check", "--json")
    no_traceback(result)
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "errors" and document["errors"] == 4 and document["warnings"] == 0
    problems = document["problems"]
    assert {p["line"]: p["severity"] for p in problems} == dict.fromkeys(_MANY_LINES, "error")
    for problem in problems:
        assert problem["file"].endswith("many.toml") and "column" in problem
        assert _MANY_LINES[problem["line"]] in problem["message"] + str(problem["hint"])
    assert "problems found" not in result.stderr  # the document is the whole answer


@pytest.mark.dated
def test_check_json_on_a_valid_site_with_a_warning(project: Project, now: datetime) -> None:
    """Warnings alone: verdict ok, exit 0, the warning listed with its line."""
    project.script("fine.md", script_text("好的。"))
    past = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (project.root / "schedules").mkdir()
    (project.root / "schedules" / "once.toml").write_text(
        f'[channel]\nid = "once"\ntimezone = "Asia/Shanghai"\n\n[[slot]]\nscript = "fine.md"\nat = {past}\n',
        encoding="utf-8")
    result = project.run("check", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "ok" and document["errors"] == 0 and document["channels"] == 1
    assert [(p["line"], p["severity"]) for p in document["problems"]] == [(7, "warning")]
    assert "in the past" in document["problems"][0]["message"]


def test_check_looks_at_the_output_and_avatar_of_a_channel_file_with_errors(project: Project) -> None:
    """An output naming no OBS connection and a missing avatar folder used to show only once the file's missing
    script was fixed."""
    (project.root / "schedules").mkdir()
    (project.root / "schedules" / "c.toml").write_text(
        '[channel]\nid = "c"\ntimezone = "Asia/Shanghai"\noutput = "obs:nowhere"\navatar = "faces/none"\n\n'
        '[[slot]]\nscript = "missing.md"\ncron = "0 9 * * *"\n', encoding="utf-8")
    code, folded = _check(project)
    stderr = folded.replace("\n    ", " ")
    assert code == 2
    lines = [line for line in stderr.splitlines() if "c.toml:" in line]
    assert [line.split("c.toml:")[1].split(":")[0] for line in lines] == ["4", "5", "8"], stderr  # in line order
    assert "no OBS connection named 'nowhere'" in lines[0] and lines[1].startswith("warning:"), stderr
    assert "avatar folder not found" in lines[1] and "'missing.md' does not exist" in lines[2], stderr
    assert "2 problems found" in stderr


def test_check_reads_the_calendar_files_before_a_channel_follows_them(project: Project) -> None:
    (project.root / "calendar").mkdir()
    (project.root / "calendar" / "2027.toml").write_text("[year.2027]\nholidays = [2027-02-30]\n", encoding="utf-8")
    code, stderr = _check(project)
    assert code == 2 and "2027.toml:2" in stderr, stderr


def test_check_reads_the_body_of_a_script_whose_front_matter_has_a_syntax_error(project: Project) -> None:
    project.script("both.md", '+++\ntitle = 标题\n+++\n\n正文。\n\n[pause soon]\n')
    code, stderr = _check(project)
    assert code == 2 and "both.md:2" in stderr and "both.md:7" in stderr, stderr
