"""What gets spoken, and how it is cut into requests and subtitle lines."""

from __future__ import annotations

from pathlib import Path

from anchor.content import Paragraph, Pause, load_script
from anchor.content.spoken import spoken_blocks
from anchor.speech.sentences import split_lines, split_sentences, width
from tests.conftest import Project, script_text


def blocks(body: str) -> list:
    found, problems = spoken_blocks(body, 1, Path("x.md"))
    assert not problems
    return found


def test_markup_comments_and_code_are_not_spoken() -> None:
    body = """# 标题 #

这是**重点**，请看[链接](https://example.org/a)和 `代码`。<!-- 不读
这一行 -->还有![图](x.png)结尾。

```
print("never spoken")
```

- 第一项
- 第二项，

> 引用的话。
"""
    got = blocks(body)
    assert got == [
        Paragraph("标题", 1, heading=True),
        Paragraph("这是重点，请看链接和代码。还有结尾。", 3),
        Paragraph("第一项。第二项。", 10),
        Paragraph("引用的话。", 13),
    ]


def test_pauses_and_line_numbers_survive_comments() -> None:
    got = blocks("<!-- a\nb\nc -->\n第一段。\n\n[pause 1.5s]\n[pause 500ms]\n\n第二段。")
    assert got == [Paragraph("第一段。", 4), Pause(1.5, 6), Pause(0.5, 7), Paragraph("第二段。", 9)]


def test_wrapped_lines_join_without_spaces_in_chinese_and_with_spaces_in_english() -> None:
    assert blocks("第一行\n第二行。")[0].text == "第一行第二行。"
    assert blocks("first line\nsecond line.")[0].text == "first line second line."


def test_sentences_split_on_chinese_and_western_punctuation() -> None:
    assert split_sentences("你好。今天天气怎样？很好！", 80) == ["你好。", "今天天气怎样？", "很好！"]
    assert split_sentences("他说：“你好。”然后走了。", 80) == ["他说：“你好。”", "然后走了。"]
    assert split_sentences("Dr. Li costs 3.5 yuan. Next one.", 80) == ["Dr. Li costs 3.5 yuan.", "Next one."]
    assert split_sentences("……好的。", 80) == ["……好的。"]  # no request made of punctuation alone


def test_long_sentences_are_capped_at_clauses_and_lines_fit() -> None:
    sentence = "在未使用降压药的情况下，非同日三次测量血压，收缩压达到140毫米汞柱或舒张压达到90毫米汞柱，就可以诊断为高血压。"
    capped = split_sentences(sentence, 30)
    assert len(capped) > 1 and "".join(capped) == sentence
    assert all(width(p) <= 30 for p in capped)
    lines = split_lines(sentence, 18)
    assert "".join(lines) == sentence and all(width(line) <= 18 for line in lines)
    english = split_lines("This is a rather long English sentence that must be cut into lines.", 18)
    assert " ".join(english) == "This is a rather long English sentence that must be cut into lines."
    assert all(width(line) <= 18 for line in english)


def test_content_hash_follows_the_spoken_text_and_voice_not_the_title(project: Project) -> None:
    def hashed(text: str) -> str:
        path = project.script("h.md", text)
        return load_script(path, project.scripts).content_hash

    base = hashed(script_text("你好。"))
    assert hashed(script_text("你好。", title="另一个标题", summary="概要")) == base
    assert hashed(script_text("你好。\n\n<!-- 注释 -->")) == base
    assert hashed(script_text("你好！")) != base
    assert hashed(script_text("你好。", rate="+10%")) != base
    assert hashed(script_text("你好。", voice="zh-CN-YunxiNeural")) != base
