"""Screening: listed words are caught however they are disguised, at the line and column where they are written."""

from __future__ import annotations

import random
import re
from pathlib import Path

import opencc
import pytest

from anchor.content.screening import BUNDLED_LIST, Hit, Screen, normalize, read_list
from anchor.problems import InputError

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "scripts_content"


@pytest.fixture(scope="module")
def screen() -> Screen:
    return Screen.from_lists()


def only_hit(screen: Screen, text: str, first_line: int = 1) -> Hit:
    hits = screen.screen(text, first_line=first_line)
    assert len(hits) == 1, [str(h) for h in hits]
    return hits[0]


# (line as written, the span expected as written, its column, the entry as listed)
EVASIONS = [
    ("本品能根治高血压", "根治", 4, "根治"),
    ("本品是ＮＯ．１品牌", "ＮＯ．１", 4, "NO.1"),  # full-width Latin and digits
    ("１００％有效，请放心", "１００％有效", 1, "100%有效"),
    ("保證藥到病除", "藥到病除", 3, "药到病除"),  # traditional characters
    ("本品無毒副作用", "無毒副作用", 3, "无毒副作用"),
    ("治癒率很高", "治癒率", 1, "治愈率"),
    ("可以根 治", "根 治", 3, "根治"),  # spaces between characters: ASCII, ideographic, tab
    ("可以根\u3000治", "根\u3000治", 3, "根治"),
    ("可以根\t治", "根\t治", 3, "根治"),
    ("可以根·治", "根·治", 3, "根治"),  # punctuation and symbols between characters
    ("可以根-治", "根-治", 3, "根治"),
    ("可以根*治", "根*治", 3, "根治"),
    ("可以根…治", "根…治", 3, "根治"),
    ("可以根♥治", "根♥治", 3, "根治"),
    ("可以根\u200b治", "根\u200b治", 3, "根治"),  # an invisible zero-width space
    ("我们是No.1", "No.1", 4, "NO.1"),  # mixed-case Latin
    ("我们是nO.1", "nO.1", 4, "NO.1"),
    ("我们是n o . 1", "n o . 1", 4, "NO.1"),
    ("本品⽆副作⽤", "⽆副作⽤", 3, "无副作用"),  # Kangxi radicals that look like 无 and 用
    ("保證藥 到·病-除", "藥 到·病-除", 3, "药到病除"),  # all at once
    ("😀½ 根治", "根治", 4, "根治"),  # columns count characters, even astral ones and ones that expand
]


@pytest.mark.parametrize(("line", "span", "column", "word"), EVASIONS)
def test_each_evasion_is_caught_at_its_line_and_column(screen: Screen, line: str, span: str, column: int,
                                                       word: str) -> None:
    text = f"各位观众朋友，大家好。\n㈱ 开场白\n{line}\n谢谢收看。"
    hit = only_hit(screen, text)
    assert (hit.line, hit.column, hit.text, hit.word) == (3, column, span, word)
    assert (hit.end_line, hit.end_column) == (3, column + len(span) - 1)
    assert text[hit.start : hit.end] == span
    assert hit.list_file == BUNDLED_LIST


def test_a_word_wrapped_over_two_lines_is_caught_and_spans_them(screen: Screen) -> None:
    hit = only_hit(screen, "本品可以根\n治高血压")
    assert (hit.line, hit.column, hit.end_line, hit.end_column, hit.text) == (1, 5, 2, 1, "根\n治")


def test_a_blank_line_ends_every_match(screen: Screen) -> None:
    assert screen.screen("扎根\n\n治理") == []


def test_first_line_numbers_a_body_as_lines_of_its_file(screen: Screen) -> None:
    hit = only_hit(screen, "开场白\n本品根治高血压", first_line=7)
    assert (hit.line, hit.column) == (8, 3)


@pytest.mark.parametrize("text", [
    "加强社会治理",  # 治理 shares 治 with 根治, nothing more
    "学习政治理论",
    "根据治疗方案调整用药",
    "这是我第一次来医院",  # 第一 as an ordinal, not a rank
    "住院第一天要做检查",
    "发现异常第一时间报告",
    "请到市第一人民医院就诊",
    "把健康放在第一位",
    "第一，主食要定量。",  # 第一 enumerating at the start of a clause
    "饮食要点：第一、少吃盐",
    "- 第一，少吃盐",
    "**第一**，要定量",
    "每天蔬菜最好不少于一斤",  # 最好 as the adverb "had better"
    "最好在每年九月接种",
    "接种的最佳时间是秋季",
    "胃癌根治术后要定期复查",
    "piano1 is not NO.1",  # Latin words have boundaries
    "2100%有效",
])
def test_ordinary_language_is_not_caught(screen: Screen, text: str) -> None:
    hits = screen.screen(text)
    assert [h for h in hits if h.word != "NO.1"] == [], [str(h) for h in hits]
    if "NO.1" in text:
        assert [h.text for h in hits] == ["NO.1"]


@pytest.mark.parametrize(("text", "span", "word"), [
    ("技术全国第一", "第一", "第一"),
    ("第一品牌，值得信赖", "第一", "第一"),
    ("本院排名第一位", "第一", "第一"),
    ("哪家医院疗效最好？", "最好", "最好|"),
    ("这是最好的医院", "最好的", "最好的"),
    ("最佳疗法", "最佳", "最佳"),
])
def test_superlatives_are_caught_where_they_rank(screen: Screen, text: str, span: str, word: str) -> None:
    hit = only_hit(screen, text)
    assert (hit.text, hit.word, hit.category) == (span, word, "superlative")


def test_every_bundled_sample_script_is_clean(screen: Screen) -> None:
    # A sample with a hit would not air (nor pass `anchor check`) out of the box. The risky spots that must stay
    # quiet: 第一，主食要定量 (diabetes-diet.md), 蔬菜最好不少于一斤, 因此最好在每年九月 (flu-vaccination.md),
    # 第三/最后 (hypertension.md).
    samples = sorted(SAMPLES.rglob("*.md"))
    assert len(samples) >= 6
    found = [(path.relative_to(SAMPLES).as_posix(), str(h)) for path in samples
             for h in screen.screen(path.read_text(encoding="utf-8-sig"))]
    assert found == []


def test_institution_lists_name_their_category_and_file(tmp_path: Path) -> None:
    lists = tmp_path / "screening"
    lists.mkdir()
    house = lists / "院内禁语.txt"
    house.write_text("# 本院宣传科规定\n偏方\n秘方  # 含“祖传秘方”\n\n[brands]\nBrand X\n根治\n!国家级自然保护区\n",
                     encoding="utf-8")
    screen = Screen.from_lists(lists)
    text = "这个偏方是祖传秘方，BRAND-X 有售。\n可以根治。\n国家级自然保护区不是医院。"
    found = [(h.line, h.column, h.text, h.word, h.category, h.list_file.name, h.list_line)
             for h in screen.screen(text)]
    assert found == [
        (1, 3, "偏方", "偏方", "院内禁语", "院内禁语.txt", 2),
        (1, 8, "秘方", "秘方", "院内禁语", "院内禁语.txt", 3),
        (1, 11, "BRAND-X", "Brand X", "brands", "院内禁语.txt", 6),
        # The same word in two lists is two reasons: each list is named.
        (2, 3, "根治", "根治", "cure-guarantee", "forbidden_claims.txt", 36),
        (2, 3, "根治", "根治", "brands", "院内禁语.txt", 7),
    ]  # and the institution's exception protects the bundled 国家级 inside 国家级自然保护区
    # Without the bundled list, the exception would protect nothing: that is reported, so a typo shows.
    with pytest.raises(InputError, match=r"院内禁语.txt:8: the exception"):
        Screen.from_lists(lists, bundled=False)
    house.write_text(house.read_text(encoding="utf-8").replace("!国家级自然保护区\n", ""), encoding="utf-8")
    alone = Screen.from_lists(lists, bundled=False)
    assert [h.word for h in alone.screen(text)] == ["偏方", "秘方", "Brand X", "根治"]


@pytest.mark.parametrize(("content", "line", "message"), [
    ("偏方\n·-·\n", 2, "nothing to match"),
    ("偏方\n[ ]\n秘方\n", 2, "a category needs a name"),
    ("!禁止吸烟区\n", 1, "protects no listed word"),
    ("!根治\n", 1, "protects no listed word"),  # an exception may not simply unlist a word
    (b"\xe5\x81\x8f\xe6\x96\xb9\n\xff\xfe\n", 2, "not valid UTF-8"),
])
def test_a_bad_list_names_its_file_and_line(tmp_path: Path, content: str | bytes, line: int, message: str) -> None:
    path = tmp_path / "bad.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        Screen.from_lists(tmp_path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == (path, line)
    assert message in problem.message
    assert str(problem).startswith(f"{path}:{line}:")


def test_every_bad_list_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("偏方\n--\n", encoding="utf-8")
    (tmp_path / "b.txt").mkdir()  # unreadable: a folder where a list should be
    with pytest.raises(InputError) as caught:
        Screen.from_lists(tmp_path)
    assert [(p.file.name, p.line) for p in caught.value.problems] == [("a.txt", 2), ("b.txt", None)]
    assert "cannot read" in caught.value.problems[1].message


def test_the_bundled_list_cites_a_legal_source_for_each_category() -> None:
    listings = read_list(BUNDLED_LIST)
    header = [line for line in BUNDLED_LIST.read_text(encoding="utf-8").split("\n") if line.startswith("#")]
    citations = "\n".join(header)
    assert "http" not in citations and "www" not in citations
    for category in sorted({entry.category for entry in listings}):
        cited = [line for line in header if re.match(rf"#\s+{re.escape(category)}\s", line)]
        assert cited and re.search(r"第[一二三四五六七八九十]+条", cited[0]), category


def test_every_bundled_word_is_caught_however_it_is_disguised(screen: Screen) -> None:
    to_traditional = opencc.OpenCC("s2t")
    rng = random.Random(2024)
    separators = [" ", "\u3000", "·", "-", "*", "_", "/", "\u200b", "，", "~"]
    words = [e for e in read_list(BUNDLED_LIST) if not e.is_exception and not e.anchored]
    assert len(words) > 80
    for entry in words:
        disguised = ""
        for index, char in enumerate(to_traditional.convert(entry.word)):
            if char.isascii() and char.isalnum():  # full-width, in random case
                char = chr(ord(char.upper() if rng.random() < 0.5 else char.lower()) + 0xFEE0)
            disguised += char
            if index < len(entry.word) - 1 and rng.random() < 0.7:
                disguised += rng.choice(separators)
        text = f"大家好，{disguised}谢谢。"
        assert any(h.word == entry.word and h.text == disguised and h.column == 5 for h in screen.screen(text)), \
            (entry.word, disguised, [str(h) for h in screen.screen(text)])


def test_normalizing_keeps_a_map_back_to_the_original() -> None:
    folded, origins = normalize("Ａ·½ß藥")
    assert folded == "a12ss药"
    assert origins == [0, 2, 2, 3, 3, 4]


def test_no_lists_catch_nothing(tmp_path: Path) -> None:
    assert Screen.from_lists(tmp_path / "missing", bundled=False).screen("根治") == []
