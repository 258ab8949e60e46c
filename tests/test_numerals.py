"""anchor's numbers in words are cn2an's, without the cost of importing cn2an in every `anchor say`."""

from __future__ import annotations

import random

import cn2an
import pytest

from anchor.speech.frontend.numerals import cardinal, digit_by_digit


def numbers() -> list[str]:
    """Every number up to 20000, and zero-heavy ones of every length to 16 digits, some with decimals or a
    minus: where 零 is said or not (一万零一, 九十万六千, 一亿一千), 十 for 一十, 万 above 亿."""
    found = [str(n) for n in range(20001)]
    found += ["00", "05", "007", "010", "0.50", "3.0", "100.05", "-3", "0.0", "100000001", "100001000",
              "1000000010000", "1000000000000000", "1234567890123456"]
    pick = random.Random(17)
    for _ in range(30000):
        digits = "".join(pick.choice("0000000123456789") for _ in range(pick.randint(1, 16)))
        found.append(digits)
        found.append(digits + "." + "".join(pick.choice("0123456789") for _ in range(pick.randint(1, 4))))
        found.append("-" + digits)
    return found


@pytest.mark.parametrize("mode", ["low", "direct"])
def test_numbers_in_words_are_cn2ans(mode: str) -> None:
    ours = cardinal if mode == "low" else digit_by_digit
    differing = [(n, ours(n), cn2an.an2cn(n, mode)) for n in numbers() if ours(n) != cn2an.an2cn(n, mode)]
    assert differing == []


def test_a_number_too_long_for_a_cardinal_is_said_digit_by_digit() -> None:
    from anchor.speech.frontend.normalize import said_number

    assert said_number("12345678901234567.5") == "一二三四五六七八九零一二三四五六七点五"  # cn2an raised here
