"""The text front end: written Chinese → what is said → tone-numbered pinyin for espeak-ng's pinyin voice.

    front_end("请拨打12309。")  →  SpeechText(written="请拨打12309。", said="请拨打幺二三零九。",
                                            pinyin="qing3 bo1 da3 yao1 er4 san1 ling2 jiu3。")

Subtitles show `written`; engines that read Chinese (edge-tts) speak `said`; espeak speaks `pinyin`.
Call it once per sentence: each of the three keeps to that sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from anchor.speech.frontend.lexicon import Lexicon, LexiconEntry, load_lexicon
from anchor.speech.frontend.normalize import spoken
from anchor.speech.frontend.pinyin import to_pinyin


@dataclass(frozen=True)
class SpeechText:
    written: str  # as the script has it: what subtitles show
    said: str  # in words: numbers, units and codes spelled out
    pinyin: str  # tone-numbered syllables and pause marks, for espeak-ng -v cmn-latn-pinyin


def front_end(text: str, lexicon: Lexicon | None = None) -> SpeechText:
    said = spoken(text, lexicon)
    return SpeechText(written=text, said=said, pinyin=to_pinyin(said, lexicon))


__all__ = ["Lexicon", "LexiconEntry", "SpeechText", "front_end", "load_lexicon", "spoken", "to_pinyin"]
