"""Numbers in Chinese words, as cn2an's an2cn writes them (modes "low" and "direct"), without importing cn2an:
its import compiles the patterns of its other directions (words → numbers), a fifth of `anchor say`'s time.
tests/test_numerals.py holds the two to the same output."""

from __future__ import annotations

DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_GROUP_UNITS = {4: "万", 8: "亿", 12: "万"}  # 10^12 is 一万亿, 10^15 一千万亿
_MARKS = {".": "点", "-": "负"}


def digit_by_digit(text: str) -> str:
    """Each digit as its word: 2026 → 二零二六. A decimal point is 点, a leading minus 负."""
    return "".join(DIGITS[int(c)] if c.isdigit() else _MARKS.get(c, c) for c in text)


def _whole(digits: str) -> str:
    """A whole number of at most 16 digits as a cardinal: 10 → 十, 10001 → 一万零一, 2000 → 二千."""
    digits = digits.lstrip("0")
    if not digits:
        return DIGITS[0]
    words, zero_pending = "", False
    for index, digit in enumerate(digits):
        place = len(digits) - 1 - index
        if digit == "0":
            zero_pending = zero_pending or bool(words)
        else:
            words += (DIGITS[0] if zero_pending else "") + DIGITS[int(digit)] + _SMALL_UNITS[place % 4]
            zero_pending = False
        if place in _GROUP_UNITS:
            # 亿 stays after a higher 万 group (一万亿); 万 only after a group that is not all zeros.
            group = digits[:index + 1] if place == 8 else digits[max(0, index - 3):index + 1]
            if int(group):
                words += _GROUP_UNITS[place]
            # A 零 is said only for zeros inside a group: not for those closing one (九十万六千) nor for a
            # group of zeros (100001000 一亿一千, as cn2an has it), but for those opening one (一万零一).
            zero_pending = False
    return words[1:] if words.startswith("一十") else words  # 10 is 十, 15 十五, 100000 十万


def cardinal(number: str) -> str:
    """A cardinal or decimal in words: 37.5 → 三十七点五, -3 → 负三, 0.50 → 零点五零."""
    sign = "负" if number.startswith("-") else ""
    whole, _, fraction = number.lstrip("-").partition(".")
    return sign + _whole(whole) + ("点" + digit_by_digit(fraction) if fraction else "")
