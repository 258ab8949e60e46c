"""The text front end: written Chinese → what is said → tone-numbered pinyin for espeak-ng's pinyin voice.

    front_end("请拨打12309。")  →  SpeechText(written="请拨打12309。", said="请拨打幺二三零九。",
                                            pinyin="qing3 bo1 da3 yao1 er4 san1 ling2 jiu3。")

Subtitles show `written`; engines that read Chinese (edge-tts) speak `said`; espeak speaks `pinyin`.
Call it once per sentence: each of the three keeps to that sentence.
"""

from __future__ import annotations

from anchor.speech.frontend import phrases  # noqa: F401  (first: pypinyin must load its phrases compactly)
from anchor.speech.frontend.lexicon import Lexicon, LexiconEntry, load_lexicon
from anchor.speech.frontend.normalize import spoken
from anchor.speech.frontend.pinyin import to_pinyin
from anchor.speech.reading import SpeechText  # defined there: engines name it without loading pypinyin


def front_end(text: str, lexicon: Lexicon | None = None) -> SpeechText:
    said = spoken(text, lexicon)
    return SpeechText(written=text, said=said, pinyin=to_pinyin(said, lexicon))


__all__ = ["Lexicon", "LexiconEntry", "SpeechText", "front_end", "load_lexicon", "spoken", "to_pinyin"]
