"""pypinyin's phrase dictionary looked up in place, phrase by phrase, reads exactly as the whole dictionary
loaded at once; and a process that reads a text loads only that text's phrases."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from anchor.speech.frontend.phrases import LONGEST_PHRASE, PHRASES_FILE, PhraseFile
from tests.conftest import REPO, SAMPLES

HANZI_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def whole_dictionary() -> dict[str, list[list[str]]]:
    loaded: dict[str, list[list[str]]] = json.loads((files("pypinyin") / PHRASES_FILE).read_text(encoding="utf-8"))
    return loaded


def test_every_phrase_is_found_in_place_with_its_readings() -> None:
    whole = whole_dictionary()
    keys = list(whole)
    assert keys == sorted(keys), "pypinyin's phrases_dict.json is no longer sorted: the binary search needs it"
    assert max(map(len, keys)) <= LONGEST_PHRASE
    found = PhraseFile(Path(str(files("pypinyin") / PHRASES_FILE)))
    for key in keys:
        assert found.lookup(key) == (True, whole[key]), key
    for key in keys[::97]:  # every part of a phrase begins one; a phrase with one more character is none
        for end in range(1, len(key)):
            begins, readings = found.lookup(key[:end])
            assert begins and readings == whole.get(key[:end]), key[:end]
        assert found.lookup(key + "〇") == (False, None)
    assert found.lookup("\u3400") == (False, None)  # before the first key
    assert found.lookup("\U0002ffff") == (False, None)  # after the last


def texts_to_read() -> list[str]:
    """The sample scripts, and runs made of pieces of phrases (so a run often ends inside a longer phrase,
    or holds phrases that overlap)."""
    texts = [line for path in sorted(SAMPLES.rglob("*.md")) for line in path.read_text(encoding="utf-8").splitlines()
             if HANZI_RUN.search(line)]
    keys = list(whole_dictionary())
    pick = random.Random(17)
    for _ in range(400):
        pieces = []
        for key in pick.sample(keys, pick.randint(1, 4)):
            start = pick.randint(0, len(key) - 1)
            pieces.append(key[start:pick.randint(start + 1, len(key))])
        texts.append("".join(pieces))
    texts += ["一丁点", "银行行长长大了", "统一看一看一下", "重新长大", "一丝不"]
    return texts


READ = """
import json, sys
from anchor.speech.frontend import to_pinyin  # first, as anchor does: it sets pypinyin's switches
from pypinyin.constants import PHRASES_DICT
texts = json.load(sys.stdin)
print(json.dumps({"pinyin": [to_pinyin(t) for t in texts], "phrases": len(PHRASES_DICT)}))
"""


def read_in_a_process(texts: list[str], whole_dictionary_loaded: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    if whole_dictionary_loaded:
        env["PYPINYIN_NO_PHRASES"] = ""  # pypinyin reads it as unset: it loads all its phrases at import
    done = subprocess.run([sys.executable, "-c", READ], input=json.dumps(texts), capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_phrases_looked_up_in_place_read_as_the_whole_dictionary() -> None:
    texts = texts_to_read()
    lazy = read_in_a_process(texts, whole_dictionary_loaded=False)
    whole = read_in_a_process(texts, whole_dictionary_loaded=True)
    assert isinstance(whole["phrases"], int) and whole["phrases"] > 40_000
    assert isinstance(lazy["phrases"], int) and 0 < lazy["phrases"] < 5_000  # only these texts' phrases
    differing = [(t, a, b) for t, a, b in zip(texts, lazy["pinyin"], whole["pinyin"], strict=True)  # type: ignore[call-overload]
                 if a != b]
    assert differing == []
