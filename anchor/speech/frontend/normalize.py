"""Written Chinese → what is said: numbers, dates, times, units, phone numbers and codes spelled out in words.

numerals.py says a number in words (cardinal, or digit by digit), as cn2an does. What no library does is
decide *which kind* of number a token is: 2026年 is a year (digit by digit), 12309 a hotline (幺二三零九),
140/90mmHg a blood pressure, 1/3 a fraction, 3～5天 a range. cn2an.transform guesses from the token alone
and gets these wrong (37.5℃ → 三十七.五, 2026-12-04 → 二千零二十六负十二负四), so that classification is
written here: an ordered list of rules, each a pattern and a function that says the match in words. Once a
rule has said a piece of text, later rules leave it alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from anchor.speech.frontend.numerals import cardinal, digit_by_digit

if TYPE_CHECKING:
    from anchor.speech.frontend.lexicon import Lexicon

# Written forms that mean the same as ASCII: full-width digits, letters and signs.
_WIDE_TO_ASCII = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)},
                                **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
                                **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
                                "％": "%", "／": "/", "－": "-", "＋": "+", "＜": "<", "＞": ">", "＝": "=",
                                "．": ".", "＄": "$", "µ": "μ"})

NUMERALS = "零一二两三四五六七八九十百千万亿"
# Words that count things: "2" before them is 两 (两个, 两次), and a number before them is a quantity, never a hotline.
_COUNTERS = ("小时|分钟|公斤|公里|千克|毫克|毫升|周岁|人次|例|个|人|名|位|次|天|日|周|年|岁|元|块|件|家|所|台|辆|张|份|"
             "条|项|种|类|批|户|座|层|斤|吨|片|粒|支|瓶|盒|袋|杯|碗|顿|餐|针|剂|遍|倍|点|万|千|百|亿|米|克|升|套|门|组|"
             "步|口|只|头|根|本|封|期|秒|床|号|月|多|余|起|角|分|度|两")
_LIANG_AFTER = re.compile(r"(?:小时|分钟|公斤|公里|千克|毫克|毫升|周岁|个|人|名|位|次|天|周|年|岁|元|块|件|家|所|台|"
                          r"辆|张|份|条|项|种|类|批|户|座|层|斤|吨|片|粒|支|瓶|盒|袋|杯|碗|顿|餐|针|剂|遍|倍|点|万|千|"
                          r"百|亿|套|门|组|步|口|只|头|根|本|封|期|毫米|厘米|千米|米|克|升|秒)")
_COUNTER_AFTER = re.compile(rf"\s*(?:{_COUNTERS})")

# Unit symbols → words, longest first. kg is 千克 (the statutory name, and what mg/kg must say); an institution
# that prefers 公斤 writes "kg" = { say = "公斤" } in its lexicon.
UNITS: dict[str, str] = {
    "mmol/L": "毫摩尔每升", "μmol/L": "微摩尔每升", "umol/L": "微摩尔每升", "mg/dL": "毫克每分升",
    "mg/L": "毫克每升", "g/L": "克每升", "mg/kg": "毫克每千克", "ml/kg": "毫升每千克", "mL/kg": "毫升每千克",
    "km/h": "千米每小时", "kg/m²": "千克每平方米", "kg/m2": "千克每平方米", "mmHg": "毫米汞柱", "cmH2O": "厘米水柱",
    "kPa": "千帕", "kcal": "千卡", "mmol": "毫摩尔", "mg": "毫克", "μg": "微克", "ug": "微克", "mcg": "微克",
    "ng": "纳克", "kg": "千克", "g": "克", "ml": "毫升", "mL": "毫升", "dL": "分升", "L": "升", "cm²": "平方厘米",
    "m²": "平方米", "㎡": "平方米", "m³": "立方米", "km": "千米", "cm": "厘米", "mm": "毫米", "m": "米",
    "IU": "国际单位", "U": "单位", "cal": "卡", "min": "分钟", "h": "小时", "ms": "毫秒", "s": "秒",
    "bpm": "次每分钟", "Hz": "赫兹", "kHz": "千赫", "MHz": "兆赫", "GB": "吉字节", "MB": "兆字节",
    "kW": "千瓦", "kWh": "千瓦时", "W": "瓦", "mSv": "毫希沃特",
}
TEMPERATURE = {"℃": "摄氏度", "°C": "摄氏度", "°c": "摄氏度", "℉": "华氏度", "°F": "华氏度"}
PER_MILLE = {"%": "百分之", "‰": "千分之"}
# Unit symbols said even without a number before them: long enough never to be an ordinary word.
_BARE_UNITS = ("mmol/L", "μmol/L", "umol/L", "mg/dL", "mg/kg", "kg/m²", "kg/m2", "mmHg", "cmH2O", "kPa", "kcal",
               "kg", "mg", "ml", "mL", "cm", "km", "mm", "℃", "°C")

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # 1,200.5 too
_SIGNED = rf"(?:(?<![A-Za-z0-9.])-)?{_NUMBER}"
_DASH = r"\s*(?:-|~|～|—|–|至|到)\s*"  # between two numbers: a range, said 到
_UNIT = "|".join(re.escape(u) for u in sorted([*UNITS, *TEMPERATURE, *PER_MILLE], key=len, reverse=True))
_UNIT_END = r"(?![A-Za-z])"
_PHONE_CONTEXT = re.compile(r"(?:拨打|致电|电话|热线|专线|号码|手机|来电|呼叫|报警|举报|咨询|求助|联系|传真|短信|"
                            r"服务台)[^，。！？；\d]{0,6}$")
_PHONE_AFTER = re.compile(r"\s*(?:报警|急救|火警|热线|专线|电话|服务|求助|举报|反诈|投诉|咨询|客服|检察|法院|公安)")
_CODE_CONTEXT = re.compile(r"(?:编号|卡号|账号|帐号|身份证号?|证号|验证码|邮编|邮政编码|工号|学号|批号|单号|订单号|"
                           r"序列号|密码|代码|车牌号?|门牌号?|案号|文号)[^，。！？；\d]{0,4}$")
_BLOOD_PRESSURE_CONTEXT = re.compile(r"(?:血压|收缩压|舒张压|高压|低压)[^。！？；]{0,8}$")
_QUANTITY_BEFORE = re.compile(r"(?:约|共|近|超过|达到?|第|计|累计|合计|增加|减少)\s*$")


def said_digits(digits: str, one: str = "一") -> str:
    """Digit by digit (二零二六). Identifying numbers say 1 as 幺, as Chinese operators and dispatchers do."""
    return digit_by_digit(digits).replace("一", one)


def said_number(number: str) -> str:
    """A cardinal or decimal in words: 1,200 → 一千二百, 37.5 → 三十七点五, -3 → 负三, 2000 → 两千."""
    plain = number.replace(",", "")
    negative = plain.startswith("-")
    plain = plain.lstrip("-")
    whole = plain.split(".")[0]
    if len(whole) > 16:  # beyond what cardinals name: only a code is that long
        return said_digits(plain)
    words = cardinal(plain)
    if words.startswith(("二千", "二万", "二亿")):  # two thousand is 两千 in speech
        words = "两" + words[1:]
    return ("负" if negative else "") + words


def _counted(number: str, after: str) -> str:
    """A number that counts something: exactly 2 before a counter word is 两 (两个, 两次, 两毫克)."""
    if number == "2" and _LIANG_AFTER.match(after):
        return "两"
    return said_number(number)


Segment = tuple[str, bool]  # (text, settled): settled text is already said and no later rule touches it


@dataclass(frozen=True)
class Rule:
    """One kind of written token and how it is said. `say` returns None when a match is not its kind."""

    name: str
    pattern: re.Pattern[str]
    say: Callable[[re.Match[str]], str | None]

    def apply(self, segments: list[Segment]) -> list[Segment]:
        """Say every match that lies wholly in unsettled text. The pattern runs over the whole text, settled
        parts included, so context (拨打 before a number, 日 before a dash) is seen even when already said."""
        text = "".join(piece for piece, _ in segments)
        starts: list[int] = []
        position = 0
        for piece, _ in segments:
            starts.append(position)
            position += len(piece)
        said: dict[int, list[tuple[int, int, str]]] = {}  # segment index → (start, end, words) inside it
        index = 0
        for match in self.pattern.finditer(text):
            while index + 1 < len(segments) and starts[index + 1] <= match.start():
                index += 1
            piece, settled = segments[index]
            if settled or match.end() > starts[index] + len(piece) or match.start() == match.end():
                continue
            words = self.say(match)
            if words is not None:
                said.setdefault(index, []).append((match.start() - starts[index], match.end() - starts[index], words))
        if not said:
            return segments
        out: list[Segment] = []
        for index, (piece, settled) in enumerate(segments):
            last = 0
            for start, end, words in said.get(index, ()):
                if start > last:
                    out.append((piece[last:start], False))
                out.append((words, True))
                last = end
            if last < len(piece):
                out.append((piece[last:], settled))
        return out


def _before(match: re.Match[str], chars: int = 12) -> str:
    return match.string[max(0, match.start() - chars):match.start()]


def _after(match: re.Match[str]) -> str:
    return match.string[match.end():]


def _unit_words(unit: str) -> str:
    return UNITS.get(unit) or TEMPERATURE.get(unit) or ""


# --- the rules, in the order they run ------------------------------------------------------------------------

def _say_web_address(match: re.Match[str]) -> str:
    """www.12309.gov.cn → W W W 点 幺二三零九 点 G O V 点 C N: letters one by one, digits as a code."""
    address = re.sub(r"^https?://", "", match.group(0)).rstrip("/")
    marks = {".": "点", "@": "艾特", "/": "斜杠", "-": "杠", "_": "下划线", ":": "冒号"}
    parts = re.findall(r"[A-Za-z]+|\d+|.", address)
    return " ".join(said_digits(p, "幺") if p.isdigit() else marks.get(p, "") if not p.isalpha()
                    else spell(p) for p in parts if p.strip())


def _say_nothing(match: re.Match[str]) -> str:
    """①, 1., （一）: list markers are layout, not words; the pause before the item is enough."""
    return ""


def _date_words(year: str, month: str, day: str | None) -> str | None:
    if not 1 <= int(month) <= 12 or (day is not None and not 1 <= int(day) <= 31):
        return None
    return (f"{said_digits(year)}年{said_number(str(int(month)))}月"
            + (f"{said_number(str(int(day)))}日" if day else ""))


def _say_iso_date(match: re.Match[str]) -> str | None:
    """2026-12-04, 2026/12/4, 2026.12.04 → 二零二六年十二月四日."""
    return _date_words(match.group("year"), match.group("month"), match.group("day"))


def _say_year_month(match: re.Match[str]) -> str | None:
    """2026-12 → 二零二六年十二月."""
    return _date_words(match.group("year"), match.group("month"), None)


def _say_year_range(match: re.Match[str]) -> str:
    return f"{said_digits(match.group(1))}到{said_digits(match.group(2))}"


def _say_year(match: re.Match[str]) -> str:
    """A year is read digit by digit: 2026年 → 二零二六年; so is the year in a case number's brackets."""
    return said_digits(match.group("digits"))


def _say_section_number(match: re.Match[str]) -> str:
    """1.2.3 (a clause or version number) → 一点二点三: each part a number, the dots said 点."""
    return "点".join(said_number(part) for part in match.group(0).split("."))


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}


def _say_roman_numeral(match: re.Match[str]) -> str:
    """Ⅱ型糖尿病, IV期 → 二型糖尿病, 四期: stages and types are said as Chinese numbers, never spelled."""
    text = unicodedata.normalize("NFKC", match.group(0)).upper()
    values = [_ROMAN[ch] for ch in text if ch in _ROMAN]
    total = sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))
    return said_number(str(total))


def _time_words(hour: str, minute: str, second: str | None) -> str | None:
    h, m = int(hour), int(minute)
    if h > 24 or m > 59:
        return None
    # 1:00 is 一点钟: a bare 一点 would be read yì diǎn, "a little".
    words = ("两" if h == 2 else said_number(str(h))) + ("点钟" if h == 1 and not m else "点")
    if m:
        words += ("零" if m < 10 else "") + said_number(str(m)) + "分"
    if second and int(second):
        words += ("" if m else "零") + ("零" if int(second) < 10 else "") + said_number(str(int(second))) + "秒"
    return words


def _say_time(match: re.Match[str]) -> str | None:
    """9:30 → 九点三十分, 14:05 → 十四点零五分, 8:00-17:30 → 八点到十七点三十分."""
    first = _time_words(match.group("h1"), match.group("m1"), match.group("s1"))
    if first is None:
        return None
    if match.group("h2") is None:
        return first
    second = _time_words(match.group("h2"), match.group("m2"), match.group("s2"))
    return None if second is None else f"{first}到{second}"


def _say_ratio(match: re.Match[str]) -> str:
    """3:1, 1:10000 → 三比一, 一比一万 (a colon that is not a clock time)."""
    return f"{said_number(match.group(1))}比{said_number(match.group(2))}"


def _phone_groups(digits: str) -> list[str]:
    """How a number is grouped aloud: mobiles 3-4-4, landlines 4-4 or 3-4, 400 numbers 3-3-4."""
    if len(digits) == 11 and digits[0] == "1":
        return [digits[:3], digits[3:7], digits[7:]]
    if len(digits) == 10 and digits[:3] in ("400", "800"):
        return [digits[:3], digits[3:6], digits[6:]]
    if len(digits) == 8:
        return [digits[:4], digits[4:]]
    if len(digits) == 7:
        return [digits[:3], digits[3:]]
    return [digits]


def _say_phone_number(written: str) -> str:
    """Groups said digit by digit with 1 as 幺, a comma (a short pause) between groups: 0577-88886666 →
    零五七七，八八八八，六六六六; extensions after 转."""
    main, _, extension = re.sub(r"[（(]", "", re.sub(r"[)）]", "-", written)).partition("转")
    groups: list[str] = []
    for part in re.split(r"[\s-]+", main.strip(" -")):
        if part.startswith("0") and len(part) >= 10:  # area code written without a dash: 010, 02x, else 4 digits
            area = 3 if part[1] in "12" else 4
            groups.extend([part[:area], *_phone_groups(part[area:])])
        elif part:
            groups.extend(_phone_groups(part))
    words = "，".join(said_digits(g, "幺") for g in groups)
    return words + (f"转{said_digits(extension.strip(), '幺')}" if extension.strip() else "")


def _is_quantity(match: re.Match[str]) -> bool:
    """A count, not a number to dial: followed by a counter or unit (12000元), or after 约/共/第."""
    after = _after(match)
    return bool(_COUNTER_AFTER.match(after) or re.match(rf"\s*(?:{_UNIT}){_UNIT_END}", after)
                or _QUANTITY_BEFORE.search(_before(match)) or re.match(r"[.,]\d", after))


def _say_phone_by_shape(match: re.Match[str]) -> str | None:
    """Mobiles, landlines with area codes, 400/800 numbers and 5-digit service lines (12309, 12368, 95588,
    96110) look like nothing else; they are said digit by digit wherever they appear."""
    digits = re.sub(r"\D", "", match.group(0))
    if len(digits) == 5 and _is_quantity(match):
        return None
    return _say_phone_number(match.group(0))


def _say_phone_in_context(match: re.Match[str]) -> str | None:
    """Any other number right after 拨打/电话/热线… or right before 报警/急救/热线… (拨打110, 120急救)."""
    if _is_quantity(match):
        return None
    if _PHONE_CONTEXT.search(_before(match)) or _PHONE_AFTER.match(_after(match)):
        return _say_phone_number(match.group(0))
    return None


def _say_code(match: re.Match[str]) -> str | None:
    """Identifiers: after 编号/卡号/验证码…, a leading 0 (浙0302), 12 digits or more, an ID number ending in X,
    a room (302室). Said digit by digit, 1 as 幺."""
    digits = match.group("digits")
    x = match.group("x") or ""
    code = (bool(x) or digits.startswith("0") or len(digits) >= 12 or _CODE_CONTEXT.search(_before(match)) is not None
            or (re.match(r"(?:室|房间|病房|诊室)", _after(match)) is not None and len(digits) >= 3))
    if not code:
        return None
    return said_digits(digits, "幺") + (" X" if x else "")


def spell(letters: str) -> str:
    """Latin letters one by one, upper case, spaced: CT → C T. Every engine then spells them the same way."""
    return " ".join(letters.upper())


def _say_letters_and_digits(match: re.Match[str]) -> str | None:
    """Names mixing letters and digits. A number ending a name is said as a number, as Chinese media do (COVID-19
    → C O V I D 十九, G20 → G 二十, PM2.5 → P M 二点五, 5G → 五 G); digits between letters are a subtype code,
    said digit by digit (H1N1 → H 一 N 一). A number with a unit (10mg) is not a name: the unit rule says it."""
    token = match.group(0)
    if re.fullmatch(rf"{_NUMBER}(?:{_UNIT})", token):
        return None
    parts = re.findall(r"[A-Za-z]+|\d+(?:\.\d+)?", token)
    digits_inside = bool(re.search(r"\d[A-Za-z]", token)) and bool(re.search(r"[A-Za-z]\d", token))
    words = [spell(p) if p.isalpha() else said_digits(p) if digits_inside else said_number(p) for p in parts]
    return " ".join(words)


def _say_blood_pressure(match: re.Match[str]) -> str | None:
    """140/90mmHg → 一百四十比九十毫米汞柱. The slash of a pressure pair is said 比, as in any pair of readings
    (三比一): both numbers keep the order a monitor shows, nothing unwritten (高压/低压) is added, and it cannot be
    heard as the fraction 九十分之一百四十 or the English "over"."""
    systolic, diastolic, unit = int(match.group(1)), int(match.group(2)), match.group("unit")
    if not (50 <= systolic <= 300 and 30 <= diastolic <= 200 and systolic > diastolic):
        return None
    if not unit and not _BLOOD_PRESSURE_CONTEXT.search(_before(match, 16)):
        return None
    return f"{said_number(match.group(1))}比{said_number(match.group(2))}" + ("毫米汞柱" if unit else "")


def _say_rate(match: re.Match[str]) -> str:
    """3次/日 → 每日三次, 1片/次 → 每次一片, 80次/分 → 每分钟八十次: how a dose or a rate is said aloud."""
    per = {"分": "分钟", "h": "小时", "d": "天"}.get(match.group("per"), match.group("per"))
    unit = match.group("unit")
    counted = _counted(match.group("n"), unit)
    return f"每{per}{counted}{UNITS.get(unit, unit)}"


def _say_range(match: re.Match[str]) -> str:
    """3～5天 → 三到五天, 9-11月 → 九到十一月, 10%-20% → 百分之十到二十, 36-37℃ → 三十六到三十七摄氏度."""
    low, high, unit = match.group("low"), match.group("high"), match.group("unit") or match.group("unit1") or ""
    if unit in PER_MILLE:
        return f"{PER_MILLE[unit]}{said_number(low)}到{said_number(high)}"
    words = f"{_counted(low, unit or _after(match))}到{said_number(high)}"
    return words + _unit_words(unit)


def _say_quantity(match: re.Match[str]) -> str:
    """37.5℃ → 三十七点五摄氏度, -5℃ → 零下五摄氏度, 10% → 百分之十, 5mg → 五毫克, 2kg → 两千克."""
    number, unit = match.group("n"), match.group("unit")
    if unit in PER_MILLE:
        return PER_MILLE[unit] + said_number(number)
    if unit in TEMPERATURE:
        return ("零下" + said_number(number[1:]) if number.startswith("-") else said_number(number)) + TEMPERATURE[unit]
    return _counted(number, UNITS[unit]) + UNITS[unit]


def _say_money(match: re.Match[str]) -> str:
    return said_number(match.group("n")) + ("美元" if match.group("sign") == "$" else "元")


def _say_fraction(match: re.Match[str]) -> str | None:
    """1/3 → 三分之一: the denominator comes first in Chinese."""
    if int(match.group(2)) == 0:
        return None
    return f"{said_number(match.group(2))}分之{said_number(match.group(1))}"


def _say_number(match: re.Match[str]) -> str:
    """Any other number is a cardinal or a decimal; -5度 is 零下五度."""
    number, after = match.group(0), _after(match)
    if number.startswith("-") and after.startswith("度"):
        return "零下" + said_number(number[1:])
    if _before(match, 1) == "第":  # 第2次 is an ordinal: 第二次, never 第两次
        return said_number(number)
    return _counted(number, after)


def _say_to(match: re.Match[str]) -> str:
    """A dash after a said date or number and before another number is a range: 4日-6日 → 四日到六日."""
    return "到"


def _say_bare_unit(match: re.Match[str]) -> str:
    return _unit_words(match.group(0))


def _say_spelled(match: re.Match[str]) -> str:
    return spell(match.group(0))


_SYMBOLS = {"≥": "大于等于", "≤": "小于等于", ">": "大于", "<": "小于", "±": "正负", "×": "乘", "÷": "除以",
            "=": "等于", "+": "加", "&": "和", "~": "到", "～": "到", "/": "、", "*": "", "#": "", "@": "",
            "%": "", "^": "", "|": "、", "\\": "", "_": ""}


def _say_symbol(match: re.Match[str]) -> str:
    return _SYMBOLS[match.group(0)]


def _rule(name: str, pattern: str, say: Callable[[re.Match[str]], str | None]) -> Rule:
    return Rule(name, re.compile(pattern), say)


_T = r"(?P<h{0}>[01]?\d|2[0-4])[:：](?P<m{0}>[0-5]\d)(?:[:：](?P<s{0}>[0-5]\d))?"

RULES: tuple[Rule, ...] = (
    _rule("web address", r"(?:https?://|www\.)[A-Za-z0-9./_-]+[A-Za-z0-9/]|[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z]+)+",
          _say_web_address),
    _rule("list marker", r"[\u2460-\u249b\u24f5-\u24fe\u2776-\u2793]"
          r"|(?:^|(?<=[\s。！？；：:;]))(?:\d{1,2}[.、．)）](?!\d)(?=\s*\S)"
          r"|[（(](?:\d{1,2}|[一二三四五六七八九十]{1,3})[)）])", _say_nothing),
    _rule("date", r"(?<![\d.])(?P<year>1[89]\d\d|2[01]\d\d)(?P<sep>[-/.])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})"
          r"(?![\d.])", _say_iso_date),
    _rule("section number", r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])", _say_section_number),
    _rule("roman numeral", r"[\u2160-\u217f]|(?<![A-Za-z])(?:I{1,3}|IV|VI{0,3}|IX|X{1,3})(?=[期型级度类])",
          _say_roman_numeral),
    _rule("year range", rf"(?<!\d)(1[89]\d\d|2[01]\d\d){_DASH}(1[89]\d\d|2[01]\d\d)(?=\s*(?:年|学年))",
          _say_year_range),
    _rule("year and month", r"(?<![\d.])(?P<year>1[89]\d\d|2[01]\d\d)[-/](?P<month>\d{1,2})(?![\d/-])",
          _say_year_month),
    _rule("year", r"(?<![\d.])(?P<digits>1[89]\d\d|2[01]\d\d)(?=\s*(?:年|版|届|级|学年|赛季))", _say_year),
    _rule("year of a case number", r"(?<=[（(〔\[【])(?P<digits>\d{4})(?=[)）〕\]】])", _say_year),
    _rule("time", rf"(?<![\d.:]){_T.format(1)}(?:{_DASH}{_T.format(2)})?(?![\d:])", _say_time),
    _rule("ratio", r"(?<![\d.:])(\d+)[:：](\d+)(?![\d:])", _say_ratio),
    _rule("phone number", r"(?<![\d.,-])(?:1[3-9]\d(?:[\s-]?\d{4}){2}|(?:[（(]0\d{2,3}[)）]|0\d{2,3}-?)\s?\d{7,8}"
          r"(?:-\d{1,5}|转\d{1,5})?|[48]00[\s-]?\d{3}[\s-]?\d{4}|(?:12\d|9[56]\d)\d{2})(?![\d.])", _say_phone_by_shape),
    _rule("hotline", r"(?<![\d.,])\d{3,12}(?:-\d{2,8})*(?![\d.%])", _say_phone_in_context),
    _rule("code", r"(?<![\d.,])(?P<digits>\d{2,})(?P<x>(?<=\d{17})[Xx](?![A-Za-z]))?(?![\d.]|,\d)", _say_code),
    _rule("letters and digits", rf"(?<![A-Za-z0-9.]){_NUMBER}[A-Za-z]+(?![A-Za-z0-9])"
          r"|(?<![A-Za-z0-9])[A-Za-z]+(?:-?\d+(?:\.\d+)?[A-Za-z]*)+(?![A-Za-z0-9])", _say_letters_and_digits),
    _rule("blood pressure", r"(?<![\d.])(\d{2,3})\s*/\s*(\d{2,3})(?![\d.])\s*(?P<unit>mmHg|毫米汞柱)?",
          _say_blood_pressure),
    _rule("rate", rf"(?P<n>{_NUMBER})\s*(?P<unit>{_UNIT}|[个次片粒支袋滴杯克升])\s*/\s*"
          r"(?P<per>日|天|次|周|月|年|小时|晚|餐|分|h|d)(?![A-Za-z])", _say_rate),
    _rule("range", rf"(?<![\d.])(?P<low>{_NUMBER})\s*(?P<unit1>[%‰℃]|°C)?{_DASH}(?P<high>{_NUMBER})"
          rf"(?:\s*(?P<unit>{_UNIT}){_UNIT_END})?", _say_range),
    _rule("quantity", rf"(?P<n>{_SIGNED})\s?(?P<unit>{_UNIT}){_UNIT_END}", _say_quantity),
    _rule("money", rf"(?P<sign>[¥￥$])\s*(?P<n>{_NUMBER})", _say_money),
    _rule("dash", rf"(?<=[日月号年天周点分秒度岁次个{NUMERALS}])\s*[-~～—–]\s*(?=[\d{NUMERALS}])", _say_to),
    _rule("fraction", r"(?<![\d./])(\d+)/(\d+)(?![\d/])", _say_fraction),
    _rule("number", rf"(?:(?<![A-Za-z0-9.])-)?(?<![\d.]){_NUMBER}", _say_number),
    _rule("unit", "|".join(rf"(?<![A-Za-z]){re.escape(u)}(?![A-Za-z])" for u in _BARE_UNITS), _say_bare_unit),
    _rule("letters", r"[A-Za-z]+", _say_spelled),
    _rule("symbol", "|".join(re.escape(s) for s in _SYMBOLS), _say_symbol),
)


def spoken(text: str, lexicon: Lexicon | None = None) -> str:
    """What is said for `text`: the lexicon's words first, then the built-in rules in order."""
    text = text.translate(_WIDE_TO_ASCII)
    segments: list[Segment] = []
    last = 0
    for start, end, entry in lexicon.matches(text) if lexicon is not None else ():
        if start > last:
            segments.append((text[last:start], False))
        # A `say` text is itself normalized (it may hold digits); a `pinyin` word stays as written for the
        # pinyin stage to find again.
        segments.append((spoken(entry.say) if entry.say is not None else entry.word, True))
        last = end
    segments.append((text[last:], False))
    for rule in RULES:
        segments = rule.apply(segments)
    return "".join(text for text, _ in segments)
