"""What is said → tone-numbered pinyin that espeak-ng's `cmn-latn-pinyin` voice reads faithfully.

Facts about that voice (espeak-ng 1.51, checked with `espeak-ng -v cmn-latn-pinyin -q -x`):
- tone digits 1-4, and 5 for the neutral tone (ma5 → mA11); a syllable without a digit is read in tone 1,
  and a bare a, e or o is read as the English letter, so every syllable carries its digit;
- ü is written v (lv4, nve4); it applies third-tone sandhi itself (ni3 hao3 → ni35 hao214) but not the
  sandhi of 一 and 不, which this module applies;
- Chinese punctuation makes pauses: ，、 ≈ 0.16 s, ；： ≈ 0.24 s, 。？ ≈ 0.31 s, ！ ≈ 0.35 s. An ASCII "." before a
  lower-case syllable makes none, and "/" is read aloud in English ("slash"), so only those six marks are
  written out and every other symbol is dropped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT  # filled by anchor.speech.frontend.phrases

from anchor.speech.frontend.numerals import digit_by_digit
from anchor.speech.frontend.phrases import give_phrases_in

if TYPE_CHECKING:
    from anchor.speech.frontend.lexicon import Lexicon

# Pause marks espeak's pinyin voice honours, and what each written mark becomes.
PAUSES = {"，": "，", ",": "，", "、": "，", "—": "，", "–": "，", "。": "。", ".": "。", "！": "！", "!": "！",
          "？": "？", "?": "？", "；": "；", ";": "；", "：": "：", ":": "：", "…": "；"}

# English letter names as Chinese speakers say them (C 西, T 提, H 艾曲…). Written by hand: pypinyin leaves
# Latin letters alone, and espeak's own letter names in this voice are partly English sounds (F → "aif",
# X → "aiks") and partly wrong (C → "sei").
LETTERS = {
    "A": "ei1", "B": "bi4", "C": "xi1", "D": "di4", "E": "yi1", "F": "ai4 fu5", "G": "ji4", "H": "ai4 qi1",
    "I": "ai4", "J": "zhei4", "K": "kai1", "L": "ai4 le5", "M": "ai4 mu5", "N": "en1", "O": "ou1", "P": "pi1",
    "Q": "qiu1", "R": "a1 er3", "S": "ai4 si1", "T": "ti1", "U": "you1", "V": "wei1", "W": "da2 bu5 liu2",
    "X": "ai4 ke4 si1", "Y": "wai1", "Z": "zei4",
}

_HANZI = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"(?P<hanzi>[{_HANZI}]+)|(?P<letter>[A-Za-z])|(?P<digits>\d+)|(?P<pause>[{''.join(PAUSES)}])")
_DIGIT_WORDS = "零一二三四五六七八九幺"
_NUMBER_WORDS = _DIGIT_WORDS + "十百千万亿"
# 一 keeps its first tone in these ordinal uses: 一月 (January), 一号楼, 一年级, 一点钟, 十二月一日.
_ORDINAL_AFTER = ("月", "号", "楼", "年级", "点钟")
_MEASURES = "次个回天遍片粒支袋剂针顿杯瓶盒周"


def _tone(syllable: str) -> str:
    return syllable[-1] if syllable[-1:].isdigit() else "5"


def _yi(chars: str, syllables: list[str], i: int) -> str:
    """The tone of 一 at chars[i]: first in numbers, ordinals and at a word's end; else sandhi by the next tone."""
    before, after = chars[i - 1] if i else " ", chars[i + 1:] + "  "  # padded: "" is `in` every string
    following = syllables[i + 1] if i + 1 < len(syllables) else ""
    if after[0] in "百千":
        return "yi4"  # 一百, 一千: tone sandhi applies inside numbers too
    if after[0] in "万亿":
        return "yi2"
    two_before = chars[max(0, i - 2):i]
    decimal = two_before[:1] in _NUMBER_WORDS and two_before[1:] == "点"  # 六点一
    in_number = (before in _NUMBER_WORDS or before == "第" or after[0] in _DIGIT_WORDS or decimal
                 or two_before == "分之" or (after[0] == "点" and after[1] in _NUMBER_WORDS))  # 三分之一, 一点五
    week = two_before in ("星期", "礼拜") or (before == "周" and two_before != "每周")
    weekday = week and after[0] not in _MEASURES  # 周一 (Monday), but not 周一次 (once a week)
    ordinal = weekday or after.startswith(_ORDINAL_AFTER) or (before == "月" and after[0] in "日号")
    if in_number or ordinal or not following:
        return "yi1"
    if before == after[0]:
        return "yi5"  # 看一看
    if before + "一" in PHRASES_DICT and "一" + after[0] not in PHRASES_DICT:
        return "yi1"  # the end of a word: 统一, 唯一, 万一
    return "yi2" if _tone(following) == "4" else "yi4"


def _bu(chars: str, syllables: list[str], i: int) -> str:
    """不 is bu2 before a fourth tone, neutral between a repeated verb (好不好), else bu4."""
    following = syllables[i + 1] if i + 1 < len(syllables) else ""
    if syllables[i] == "bu5" or (i and chars[i - 1] == chars[i + 1:i + 2]):
        return "bu5"
    return "bu2" if following and _tone(following) == "4" else "bu4"


def _hanzi_syllables(run: str) -> list[str]:
    """One syllable per character, from pypinyin's phrase dictionary (银行 yin2 hang2, 长大 zhang3 da4); a
    character it has no reading for gives an empty syllable, dropped later."""
    give_phrases_in(run)
    syllables = lazy_pinyin(run, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore")
    if len(syllables) != len(run):  # a character without a reading: align one by one for the sandhi below
        syllables = [next(iter(lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore")), "")
                     for ch in run]
    for i, ch in enumerate(run):
        if ch == "一":
            syllables[i] = _yi(run, syllables, i)
        elif ch == "不":
            syllables[i] = _bu(run, syllables, i)
        elif ch == "幺":
            syllables[i] = "yao1"
    return syllables


def _syllables_of(text: str) -> list[str]:
    """Syllables and pause marks of text with no lexicon word in it."""
    out: list[str] = []
    for token in _TOKEN.finditer(text):
        if token.group("hanzi"):
            out.extend(s for s in _hanzi_syllables(token.group("hanzi")) if s)
        elif token.group("letter"):
            out.extend(LETTERS[token.group("letter").upper()].split())
        elif token.group("digits"):  # spoken() leaves none; read any stray digit one by one
            out.extend(_syllables_of(digit_by_digit(token.group("digits"))))
        else:
            out.append(PAUSES[token.group("pause")])
    return out


def _join(tokens: list[str]) -> str:
    """Syllables spaced, a pause mark right after the syllable it follows; no leading or doubled marks."""
    text = ""
    for token in tokens:
        if token in PAUSES.values():
            if text and text[-1] not in PAUSES.values():
                text += token
        else:
            text += (" " if text and text[-1] not in PAUSES.values() else "") + token
    return text


def to_pinyin(said: str, lexicon: Lexicon | None = None) -> str:
    """Tone-numbered pinyin of what is said (the output of `spoken`): lexicon words with their own syllables,
    the rest through pypinyin. E.g. 银行幺二三零九。 → "yin2 hang2 yao1 er4 san1 ling2 jiu3。"."""
    tokens: list[str] = []
    last = 0
    for start, end, entry in lexicon.matches(said) if lexicon is not None else ():
        if entry.pinyin is None:
            continue
        tokens.extend(_syllables_of(said[last:start]))
        tokens.extend(entry.pinyin)
        last = end
    tokens.extend(_syllables_of(said[last:]))
    return _join(tokens)
