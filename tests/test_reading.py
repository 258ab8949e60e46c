"""The front end in a real render: espeak-ng is given pinyin, edge the text in words, subtitles keep what is
written; lexicon.toml re-renders what it changes and a broken one keeps its last good readings; `anchor say`."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from anchor.speech.reading import LexiconFile, speaks_mandarin
from tests.conftest import Project, no_traceback, script_text, speech_segments, srt_cues
from tests.fake_edge import FakeEdgeServer

NOTICE = "请拨打12309。体温37.5℃请就医。"
SAID = ["请拨打幺二三零九。", "体温三十七点五摄氏度请就医。"]


def espeak_recorder(project: Project) -> Path:
    """espeak-ng itself, behind a wrapper that keeps each text it was given (one file per call)."""
    real = shutil.which("espeak-ng")
    assert real, "espeak-ng is part of the system (apt-get install espeak-ng)"
    given = project.root / "espeak-given"
    given.mkdir()
    wrapper = project.root / "espeak-recorder"
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = "--voices" ]; then exec {real} "$@"; fi\n'
                       f'f=$(mktemp {given}/XXXXXX)\ncat > "$f"\nexec {real} "$@" < "$f"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    project.write_config(f'\n[speech.engines.espeak]\nbinary = "{wrapper}"\n')
    return given


def texts_given(folder: Path) -> list[str]:
    return sorted(p.read_text(encoding="utf-8") for p in folder.iterdir())


def render(project: Project, script: Path, out: Path) -> dict:
    result = project.run("render", str(script), "--out", str(out), timeout=120)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "program.json").read_text(encoding="utf-8"))


def test_espeak_is_given_pinyin_and_the_subtitles_keep_the_written_text(project: Project, tmp_path: Path) -> None:
    given = espeak_recorder(project)
    program = render(project, project.script("hotline.md", script_text(NOTICE)), tmp_path / "out")

    assert program["voice"] == "cmn-latn-pinyin"
    spoken = texts_given(given)
    assert any("yao1 er4 san1 ling2 jiu3" in t for t in spoken), spoken  # the hotline digit by digit, 1 as yāo
    assert any("san1 shi2 qi1 dian3 wu3 she4 shi4 du4" in t for t in spoken), spoken
    assert not any(re.search(r"(?<![a-z])\d", t) for t in spoken), spoken  # digits only as tones
    cues = srt_cues(tmp_path / "out" / "program.srt")
    assert [c[2] for c in cues] == ["请拨打12309", "体温37.5℃请就医"]
    # Each cue sits on its own stretch of speech: timing still holds with the longer spoken form.
    segments = speech_segments(tmp_path / "out" / "program.wav")
    for start, end, _ in cues:
        assert any(s < end and e > start for s, e in segments)
    assert cues[0][1] <= cues[1][0]


def test_edge_is_given_the_text_in_words(project: Project, fake_edge: FakeEdgeServer, tmp_path: Path) -> None:
    project.write_config(engines=("edge", "espeak"), edge=fake_edge)
    program = render(project, project.script("hotline.md", script_text(NOTICE)), tmp_path / "out")
    assert program["engine"] == "edge"
    assert sorted(r["text"] for r in fake_edge.requests) == sorted(SAID)
    assert [c[2] for c in srt_cues(tmp_path / "out" / "program.srt")] == ["请拨打12309", "体温37.5℃请就医"]


def test_english_is_said_as_written(project: Project, tmp_path: Path) -> None:
    given = espeak_recorder(project)
    render(project, project.script("en.md", script_text("Call 12309 today.", language="en-US")), tmp_path / "out")
    assert texts_given(given) == ["Call 12309 today."]


def test_the_lexicon_changes_what_is_said_and_re_renders(project: Project, tmp_path: Path) -> None:
    given = espeak_recorder(project)
    script = project.script("clinic.md", script_text("欢迎来到重庆仁济医院。"))
    before = render(project, script, tmp_path / "a")
    lexicon = project.root / "lexicon.toml"
    lexicon.write_text('[words]\n"仁济" = { pinyin = "ren2 ji4" }\n"重庆" = { say = "山城" }\n', encoding="utf-8")
    after = render(project, script, tmp_path / "b")
    assert after["key"] != before["key"] and not after["cache_hit"]  # a lexicon edit re-renders
    assert any("shan1 cheng2 ren2 ji4" in t for t in texts_given(given)), texts_given(given)
    assert srt_cues(tmp_path / "b" / "program.srt")[0][2] == "欢迎来到重庆仁济医院"
    again = render(project, script, tmp_path / "c")
    assert again["cache_hit"] and again["key"] == after["key"]


def test_anchor_check_names_the_line_of_a_bad_lexicon_entry(project: Project) -> None:
    (project.root / "lexicon.toml").write_text('[words]\n"银行" = { pinyin = "yin2 hang2" }\n'
                                               '"仁济" = { pinyin = "ren ji4" }\n', encoding="utf-8")
    result = project.run("check")
    no_traceback(result)
    assert result.returncode == 2
    assert "lexicon.toml:3" in result.stdout + result.stderr and "ren1" in result.stdout + result.stderr


def test_a_broken_lexicon_keeps_its_last_good_readings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text('[words]\n"仁济" = { pinyin = "ren2 ji4" }\n', encoding="utf-8")
    lexicon = LexiconFile(path)
    good = lexicon.lexicon()
    assert good is not None and "仁济" in good.entries
    path.write_text('[words]\n"仁济" = { pinyin = "ren2 ji4" \n', encoding="utf-8")  # unclosed table
    os.utime(path, ns=(1, 1))
    with caplog.at_level(logging.WARNING):
        assert lexicon.lexicon() is good
    assert "has errors" in caplog.text and "lexicon.toml:2" in caplog.text
    path.unlink()
    assert lexicon.lexicon() is None and lexicon.digest() == ""


def test_anchor_say_prints_what_is_said_and_the_pinyin(project: Project) -> None:
    (project.root / "lexicon.toml").write_text('[words]\n"仁济" = { pinyin = "ren2 ji4" }\n', encoding="utf-8")
    result = project.run("say", "仁济医院银行部，请拨打12309。")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in result.stdout.splitlines() if line.strip()}
    assert lines["said"] == "仁济医院银行部，请拨打幺二三零九。"
    assert lines["pinyin"].startswith("ren2 ji4 yi1 yuan4 yin2 hang2 bu4")
    assert not (project.root / "data" / "cache").exists()  # only reading: nothing rendered


def test_anchor_say_out_and_play_speak_it(project: Project, tmp_path: Path) -> None:
    wav = tmp_path / "said.wav"
    result = project.run("say", "--out", str(wav), "请拨打12309。")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "espeak / cmn-latn-pinyin" in result.stdout
    segments = speech_segments(wav)
    assert segments and sum(e - s for s, e in segments) > 1.0  # eight syllables of speech, not silence
    played = project.run("say", "--play", "请拨打12309。", env={"SDL_AUDIODRIVER": "dummy"})
    no_traceback(played)
    assert played.returncode == 0, played.stderr


# What ffprobe calls the container and the codec of a file `say --out` wrote, by its extension.
SAY_FORMATS = {".wav": ("wav", "pcm_s16le"), ".mp3": ("mp3", "mp3"), ".ogg": ("ogg", "vorbis"),
               ".opus": ("ogg", "opus"), ".m4a": ("mov,mp4,m4a,3gp,3g2,mj2", "aac"), ".aac": ("aac", "aac"),
               ".flac": ("flac", "flac")}


def probe(path: Path) -> tuple[str, str, float]:
    """(container, codec, duration) of an audio file, as ffprobe reads its contents (not its name)."""
    found = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name", "-of", "json",
         str(path)], capture_output=True, text=True, check=True, timeout=30).stdout)
    return found["format"]["format_name"], found["streams"][0]["codec_name"], float(found["format"]["duration"])


def test_anchor_say_out_writes_the_format_its_extension_names(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "said"
    for suffix, (container, codec) in SAY_FORMATS.items():
        target = folder / f"said{suffix.upper() if suffix == '.mp3' else suffix}"
        result = project.run("say", "--out", str(target), "请拨打12309。")
        no_traceback(result)
        assert result.returncode == 0, result.stderr
        written = probe(target)
        assert written[:2] == (container, codec), (suffix, written)
        assert written[2] > 1.0, (suffix, written)  # the whole program, not a stub
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"said{s}" for s in
                                                                [".MP3", *(s for s in SAY_FORMATS if s != ".mp3")])


@pytest.mark.parametrize("name", ["said.mp4a", "said"])
def test_anchor_say_out_refuses_an_unknown_extension(project: Project, tmp_path: Path, name: str) -> None:
    result = project.run("say", "--out", str(tmp_path / "said" / name), "请拨打12309。")
    no_traceback(result)
    assert result.returncode == 2
    assert name in result.stderr and ".mp3" in result.stderr and ".flac" in result.stderr, result.stderr
    assert not (tmp_path / "said").exists() and not (project.root / "data" / "cache").exists()  # nothing rendered


@pytest.mark.parametrize(("language", "mandarin"), [("zh-CN", True), ("zh", True), ("cmn", True), ("zh-TW", True),
                                                    ("zh-HK", False), ("yue", False), ("en-US", False)])
def test_which_languages_the_front_end_reads(language: str, mandarin: bool) -> None:
    assert speaks_mandarin(language) is mandarin
