"""The text front end: written Chinese → what is said → the pinyin espeak-ng's cmn-latn-pinyin voice reads.

Each case in CASES is one a listener would notice if it broke. The espeak tests run the real engine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from anchor.problems import InputError
from anchor.speech.frontend import Lexicon, LexiconEntry, SpeechText, front_end, load_lexicon, spoken, to_pinyin
from anchor.speech.frontend.lexicon import parse_syllable
from anchor.speech.frontend.pinyin import PAUSES

# (written, said, pinyin)
CASES: list[tuple[str, str, str]] = [
    # cardinal numbers
    ('共有25人', '共有二十五人', 'gong4 you3 er4 shi2 wu3 ren2'),
    ('1,200元', '一千二百元', 'yi4 qian1 er4 bai3 yuan2'),
    ('100000人', '十万人', 'shi2 wan4 ren2'),
    ('准备2个口罩', '准备两个口罩', 'zhun3 bei4 liang3 ge4 kou3 zhao4'),
    ('2000元', '两千元', 'liang3 qian1 yuan2'),
    ('第2次复诊', '第二次复诊', 'di4 er4 ci4 fu4 zhen3'),
    ('0', '零', 'ling2'),
    ('年满18周岁', '年满十八周岁', 'nian2 man3 shi2 ba1 zhou1 sui4'),
    ('1.5万元', '一点五万元', 'yi1 dian3 wu3 wan4 yuan2'),
    ('第1.2.3条', '第一点二点三条', 'di4 yi1 dian3 er4 dian3 san1 tiao2'),
    ('Ⅱ型糖尿病', '二型糖尿病', 'er4 xing2 tang2 niao4 bing4'),
    ('IV期肺癌', '四期肺癌', 'si4 qi1 fei4 ai2'),
    # years, read digit by digit
    ('2026年', '二零二六年', 'er4 ling2 er4 liu4 nian2'),
    ('1998年出生', '一九九八年出生', 'yi1 jiu3 jiu3 ba1 nian2 chu1 sheng1'),
    ('2026年度报告', '二零二六年度报告', 'er4 ling2 er4 liu4 nian2 du4 bao4 gao4'),
    ('2025-2026年', '二零二五到二零二六年', 'er4 ling2 er4 wu3 dao4 er4 ling2 er4 liu4 nian2'),
    ('（2026）浙0302刑初123号', '（二零二六）浙零三零二刑初一百二十三号',
     'er4 ling2 er4 liu4 zhe4 ling2 san1 ling2 er4 xing2 chu1 yi4 bai3 er4 shi2 san1 hao4'),
    ('1000年', '一千年', 'yi4 qian1 nian2'),
    # dates
    ('2026年12月4日', '二零二六年十二月四日', 'er4 ling2 er4 liu4 nian2 shi2 er4 yue4 si4 ri4'),
    ('12月4日', '十二月四日', 'shi2 er4 yue4 si4 ri4'),
    ('2026-12-04', '二零二六年十二月四日', 'er4 ling2 er4 liu4 nian2 shi2 er4 yue4 si4 ri4'),
    ('2026/12/4', '二零二六年十二月四日', 'er4 ling2 er4 liu4 nian2 shi2 er4 yue4 si4 ri4'),
    ('12月4日-6日', '十二月四日到六日', 'shi2 er4 yue4 si4 ri4 dao4 liu4 ri4'),
    # times
    ('9:30', '九点三十分', 'jiu3 dian3 san1 shi2 fen1'),
    ('14:05', '十四点零五分', 'shi2 si4 dian3 ling2 wu3 fen1'),
    ('2:00', '两点', 'liang3 dian3'),
    ('1:00', '一点钟', 'yi1 dian3 zhong1'),
    ('12:00', '十二点', 'shi2 er4 dian3'),
    ('8:00-17:30', '八点到十七点三十分', 'ba1 dian3 dao4 shi2 qi1 dian3 san1 shi2 fen1'),
    ('9：30开诊', '九点三十分开诊', 'jiu3 dian3 san1 shi2 fen1 kai1 zhen3'),
    # decimals
    ('37.5', '三十七点五', 'san1 shi2 qi1 dian3 wu3'),
    ('0.5', '零点五', 'ling2 dian3 wu3'),
    ('3.14', '三点一四', 'san1 dian3 yi1 si4'),
    # percentages
    ('10%', '百分之十', 'bai3 fen1 zhi1 shi2'),
    ('3.5%', '百分之三点五', 'bai3 fen1 zhi1 san1 dian3 wu3'),
    ('10%-20%', '百分之十到二十', 'bai3 fen1 zhi1 shi2 dao4 er4 shi2'),
    ('10-20%', '百分之十到二十', 'bai3 fen1 zhi1 shi2 dao4 er4 shi2'),
    ('５％', '百分之五', 'bai3 fen1 zhi1 wu3'),
    # fractions
    ('1/3', '三分之一', 'san1 fen1 zhi1 yi1'),
    ('2/5', '五分之二', 'wu3 fen1 zhi1 er4'),
    ('三分之一左右', '三分之一左右', 'san1 fen1 zhi1 yi1 zuo3 you4'),
    # ranges
    ('9-11月', '九到十一月', 'jiu3 dao4 shi2 yi1 yue4'),
    ('3～5天', '三到五天', 'san1 dao4 wu3 tian1'),
    ('2-3次', '两到三次', 'liang3 dao4 san1 ci4'),
    ('5-10mg', '五到十毫克', 'wu3 dao4 shi2 hao2 ke4'),
    # temperatures
    ('37.5℃', '三十七点五摄氏度', 'san1 shi2 qi1 dian3 wu3 she4 shi4 du4'),
    ('37.5°C', '三十七点五摄氏度', 'san1 shi2 qi1 dian3 wu3 she4 shi4 du4'),
    ('-5℃', '零下五摄氏度', 'ling2 xia4 wu3 she4 shi4 du4'),
    ('体温超过38.5℃', '体温超过三十八点五摄氏度', 'ti3 wen1 chao1 guo4 san1 shi2 ba1 dian3 wu3 she4 shi4 du4'),
    ('36-37℃', '三十六到三十七摄氏度', 'san1 shi2 liu4 dao4 san1 shi2 qi1 she4 shi4 du4'),
    # blood pressure
    ('140/90mmHg', '一百四十比九十毫米汞柱', 'yi4 bai3 si4 shi2 bi3 jiu3 shi2 hao2 mi3 gong3 zhu4'),
    ('120/80 mmHg', '一百二十比八十毫米汞柱', 'yi4 bai3 er4 shi2 bi3 ba1 shi2 hao2 mi3 gong3 zhu4'),
    ('血压140/90', '血压一百四十比九十', 'xue4 ya1 yi4 bai3 si4 shi2 bi3 jiu3 shi2'),
    ('收缩压≥140mmHg', '收缩压大于等于一百四十毫米汞柱',
     'shou1 suo1 ya1 da4 yu2 deng3 yu2 yi4 bai3 si4 shi2 hao2 mi3 gong3 zhu4'),
    # units
    ('5mg', '五毫克', 'wu3 hao2 ke4'),
    ('0.5g', '零点五克', 'ling2 dian3 wu3 ke4'),
    ('2kg', '两千克', 'liang3 qian1 ke4'),
    ('60kg', '六十千克', 'liu4 shi2 qian1 ke4'),
    ('500ml', '五百毫升', 'wu3 bai3 hao2 sheng1'),
    ('2L', '两升', 'liang3 sheng1'),
    ('10cm', '十厘米', 'shi2 li2 mi3'),
    ('5.6mmol/L', '五点六毫摩尔每升', 'wu3 dian3 liu4 hao2 mo2 er3 mei3 sheng1'),
    ('空腹血糖<6.1mmol/L', '空腹血糖小于六点一毫摩尔每升',
     'kong1 fu4 xue4 tang2 xiao3 yu2 liu4 dian3 yi1 hao2 mo2 er3 mei3 sheng1'),
    ('100mg/dL', '一百毫克每分升', 'yi4 bai3 hao2 ke4 mei3 fen1 sheng1'),
    ('10IU', '十国际单位', 'shi2 guo2 ji4 dan1 wei4'),
    ('25kg/m²', '二十五千克每平方米', 'er4 shi2 wu3 qian1 ke4 mei3 ping2 fang1 mi3'),
    ('200μg', '二百微克', 'er4 bai3 wei1 ke4'),
    ('1,000mg', '一千毫克', 'yi4 qian1 hao2 ke4'),
    # rates and doses
    ('3次/日', '每日三次', 'mei3 ri4 san1 ci4'),
    ('1片/次', '每次一片', 'mei3 ci4 yi2 pian4'),
    ('心率80次/分', '心率每分钟八十次', 'xin1 lv4 mei3 fen1 zhong1 ba1 shi2 ci4'),
    # money
    ('¥100', '一百元', 'yi4 bai3 yuan2'),
    ('$50', '五十美元', 'wu3 shi2 mei3 yuan2'),
    # telephone and hotline numbers
    ('12309', '幺二三零九', 'yao1 er4 san1 ling2 jiu3'),
    ('请拨打12309。', '请拨打幺二三零九。', 'qing3 bo1 da3 yao1 er4 san1 ling2 jiu3。'),
    ('12368', '幺二三六八', 'yao1 er4 san1 liu4 ba1'),
    ('拨打120', '拨打幺二零', 'bo1 da3 yao1 er4 ling2'),
    ('120急救', '幺二零急救', 'yao1 er4 ling2 ji2 jiu4'),
    ('拨打110报警', '拨打幺幺零报警', 'bo1 da3 yao1 yao1 ling2 bao4 jing3'),
    ('96110反诈预警专线', '九六幺幺零反诈预警专线', 'jiu3 liu4 yao1 yao1 ling2 fan3 zha4 yu4 jing3 zhuan1 xian4'),
    ('0577-88886666', '零五七七，八八八八，六六六六', 'ling2 wu3 qi1 qi1，ba1 ba1 ba1 ba1，liu4 liu4 liu4 liu4'),
    ('13800138000', '幺三八，零零幺三，八零零零', 'yao1 san1 ba1，ling2 ling2 yao1 san1，ba1 ling2 ling2 ling2'),
    ('138-0013-8000', '幺三八，零零幺三，八零零零', 'yao1 san1 ba1，ling2 ling2 yao1 san1，ba1 ling2 ling2 ling2'),
    ('400-123-4567', '四零零，幺二三，四五六七', 'si4 ling2 ling2，yao1 er4 san1，si4 wu3 liu4 qi1'),
    ('(010)12345678', '零幺零，幺二三四，五六七八', 'ling2 yao1 ling2，yao1 er4 san1 si4，wu3 liu4 qi1 ba1'),
    ('010-12345678转123', '零幺零，幺二三四，五六七八转幺二三',
     'ling2 yao1 ling2，yao1 er4 san1 si4，wu3 liu4 qi1 ba1 zhuan3 yao1 er4 san1'),
    ('热线电话：12345', '热线电话：幺二三四五', 're4 xian4 dian4 hua4：yao1 er4 san1 si4 wu3'),
    # quantities that look like hotlines
    ('共12309件', '共一万二千三百零九件', 'gong4 yi2 wan4 er4 qian1 san1 bai3 ling2 jiu3 jian4'),
    ('12000元', '一万二千元', 'yi2 wan4 er4 qian1 yuan2'),
    ('120名医护人员', '一百二十名医护人员', 'yi4 bai3 er4 shi2 ming2 yi1 hu4 ren2 yuan2'),
    # codes and IDs
    ('编号0123', '编号零幺二三', 'bian1 hao4 ling2 yao1 er4 san1'),
    ('验证码246810', '验证码二四六八幺零', 'yan4 zheng4 ma3 er4 si4 liu4 ba1 yao1 ling2'),
    ('302室', '三零二室', 'san1 ling2 er4 shi4'),
    ('身份证号11010519491231002X', '身份证号幺幺零幺零五幺九四九幺二三幺零零二 X',
     'shen1 fen4 zheng4 hao4 yao1 yao1 ling2 yao1 ling2 wu3 yao1 jiu3 si4 jiu3 yao1 er4 san1 yao1 ling2 ling2 er4 '
     'ai4 ke4 si1'),
    ('www.12309.gov.cn', 'W W W 点 幺二三零九 点 G O V 点 C N',
     'da2 bu5 liu2 da2 bu5 liu2 da2 bu5 liu2 dian3 yao1 er4 san1 ling2 jiu3 dian3 ji4 ou1 wei1 dian3 xi1 en1'),
    # English acronyms
    ('CT检查', 'C T检查', 'xi1 ti1 jian3 cha2'),
    ('HPV疫苗', 'H P V疫苗', 'ai4 qi1 pi1 wei1 yi4 miao2'),
    ('B超', 'B超', 'bi4 chao1'),
    ('COVID-19', 'C O V I D 十九', 'xi1 ou1 wei1 ai4 di4 shi2 jiu3'),
    ('国家反诈中心APP', '国家反诈中心A P P', 'guo2 jia1 fan3 zha4 zhong1 xin1 ei1 pi1 pi1'),
    ('H1N1', 'H 一 N 一', 'ai4 qi1 yi1 en1 yi1'),
    ('PM2.5', 'P M 二点五', 'pi1 ai4 mu5 er4 dian3 wu3'),
    ('5G网络', '五 G网络', 'wu3 ji4 wang3 luo4'),
    ('G20', 'G 二十', 'ji4 er4 shi2'),
    ('DNA检测', 'D N A检测', 'di4 en1 ei1 jian3 ce4'),
    # list markers
    ('①勤洗手', '勤洗手', 'qin2 xi3 shou3'),
    ('1.勤洗手', '勤洗手', 'qin2 xi3 shou3'),
    ('步骤：1.洗手', '步骤：洗手', 'bu4 zhou4：xi3 shou3'),
    ('（一）总体要求', '总体要求', 'zong3 ti3 yao1 qiu2'),
    ('(2)多喝水', '多喝水', 'duo1 he1 shui3'),
    # symbols
    ('误差±0.5', '误差正负零点五', 'wu4 cha1 zheng4 fu4 ling2 dian3 wu3'),
    ('周一~周五', '周一到周五', 'zhou1 yi1 dao4 zhou1 wu3'),
    # polyphones
    ('银行', '银行', 'yin2 hang2'),
    ('血液', '血液', 'xue4 ye4'),
    ('重新', '重新', 'chong2 xin1'),
    ('行走', '行走', 'xing2 zou3'),
    ('长大', '长大', 'zhang3 da4'),
    ('重庆', '重庆', 'chong2 qing4'),
    ('还钱', '还钱', 'huan2 qian2'),
    ('还是', '还是', 'hai2 shi4'),
    ('长期', '长期', 'chang2 qi1'),
    ('增长', '增长', 'zeng1 zhang3'),
    ('调整', '调整', 'tiao2 zheng3'),
    ('睡觉', '睡觉', 'shui4 jiao4'),
    ('觉得', '觉得', 'jue2 de5'),
    ('音乐', '音乐', 'yin1 yue4'),
    ('快乐', '快乐', 'kuai4 le4'),
    ('处方', '处方', 'chu3 fang1'),
    # 一 and 不
    ('一个', '一个', 'yi2 ge4'),
    ('一天一次', '一天一次', 'yi4 tian1 yi2 ci4'),
    ('每周一次', '每周一次', 'mei3 zhou1 yi2 ci4'),
    ('每周一到两次', '每周一到两次', 'mei3 zhou1 yi2 dao4 liang3 ci4'),
    ('一定', '一定', 'yi2 ding4'),
    ('统一', '统一', 'tong3 yi1'),
    ('看一看', '看一看', 'kan4 yi5 kan4'),
    ('十一', '十一', 'shi2 yi1'),
    ('第一', '第一', 'di4 yi1'),
    ('一月', '一月', 'yi1 yue4'),
    ('一百', '一百', 'yi4 bai3'),
    ('一万', '一万', 'yi2 wan4'),
    ('十二月一日', '十二月一日', 'shi2 er4 yue4 yi1 ri4'),
    ('不是', '不是', 'bu2 shi4'),
    ('不好', '不好', 'bu4 hao3'),
    ('好不好', '好不好', 'hao3 bu5 hao3'),
    # punctuation as pauses
    ('您好，请稍等。', '您好，请稍等。', 'nin2 hao3，qing3 shao1 deng3。'),
    ('真的吗？', '真的吗？', 'zhen1 de5 ma5？'),
    ('“安全账户”（注意）……结束！', '“安全账户”（注意）……结束！', 'an1 quan2 zhang4 hu4 zhu4 yi4；jie2 shu4！'),
]


@pytest.mark.parametrize(("written", "said", "pinyin"), CASES, ids=[c[0] for c in CASES])
def test_front_end(written: str, said: str, pinyin: str) -> None:
    assert front_end(written) == SpeechText(written=written, said=said, pinyin=pinyin)


def test_the_table_covers_every_kind_of_text() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize(("written", "said", "pinyin"), CASES, ids=[c[0] for c in CASES])
def test_what_is_said_is_said_again_unchanged(written: str, said: str, pinyin: str) -> None:
    """Normalizing twice changes nothing: said text holds no digit, unit or marker left to read."""
    assert spoken(said) == said


@pytest.mark.parametrize(("written", "said", "pinyin"), CASES, ids=[c[0] for c in CASES])
def test_pinyin_is_only_syllables_with_tones_and_pause_marks(written: str, said: str, pinyin: str) -> None:
    for mark in set(PAUSES.values()):
        pinyin = pinyin.replace(mark, " ")
    for syllable in pinyin.split():
        assert parse_syllable(syllable) == syllable, syllable


def test_subtitles_keep_the_written_text_of_each_sentence() -> None:
    sentences = ["高血压诊断标准是140/90mmHg。", "请拨打12309。"]
    texts = [front_end(s) for s in sentences]
    assert [t.written for t in texts] == sentences
    assert [t.said for t in texts] == ["高血压诊断标准是一百四十比九十毫米汞柱。", "请拨打幺二三零九。"]


# --- the lexicon ----------------------------------------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lexicon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_word_overridden_by_its_pinyin(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, '[words]\n"单县" = { pinyin = "shan4 xian4" }\n'))
    assert front_end("单县人民检察院").pinyin.startswith("dan1 xian4")  # the county's name, misread without it
    text = front_end("单县人民检察院", lexicon)
    assert (text.said, text.pinyin) == ("单县人民检察院", "shan4 xian4 ren2 min2 jian3 cha2 yuan4")


def test_a_word_overridden_by_what_to_say(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, '[words]\n"CT" = { say = "西提" }\n"kg" = { say = "公斤" }\n'))
    text = front_end("做CT前称体重，70kg。", lexicon)
    assert text.said == "做西提前称体重，七十公斤。"
    assert text.pinyin == "zuo4 xi1 ti2 qian2 cheng1 ti3 zhong4，qi1 shi2 gong1 jin1。"
    assert front_end("PCT", lexicon).said == "P C T"  # a Latin word is matched whole, never inside another


def test_the_lexicon_comes_before_the_built_in_rules(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, '[words]\n"B超" = { pinyin = "bi4 chao1" }\n"12345" = { say = "市民热线" }\n'
                                           '"重" = { pinyin = "zhong4" }\n'))
    assert front_end("拨打12345", lexicon).said == "拨打市民热线"
    assert front_end("B超", lexicon) == SpeechText("B超", "B超", "bi4 chao1")


def test_what_to_say_is_itself_normalized(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, '[words]\n"检察热线" = { say = "12309检察服务热线" }\n'))
    assert spoken("请拨打检察热线", lexicon) == "请拨打幺二三零九检察服务热线"


def test_pinyin_may_be_written_with_tone_marks_or_u_umlaut(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, '[words]\n"银行" = { pinyin = "yín háng" }\n'
                                           '"律师" = { pinyin = "lü4 shi1" }\n'))
    assert lexicon.entries["银行"].pinyin == ("yin2", "hang2")
    assert lexicon.entries["律师"].pinyin == ("lv4", "shi1")


def test_the_longest_word_wins() -> None:
    lexicon = Lexicon([LexiconEntry("银行", pinyin=("yin2", "hang2")), LexiconEntry("银行行长", say="行长"),
                       LexiconEntry("行长", pinyin=("hang2", "zhang3"))])
    assert front_end("银行行长说", lexicon) == SpeechText("银行行长说", "行长说", "hang2 zhang3 shuo1")


def test_the_fingerprint_changes_with_the_entries() -> None:
    one = Lexicon([LexiconEntry("重庆", pinyin=("chong2", "qing4"))])
    same = Lexicon([LexiconEntry("重庆", pinyin=("chong2", "qing4"))])
    other = Lexicon([LexiconEntry("重庆", say="山城")])
    assert one.fingerprint == same.fingerprint != other.fingerprint


BAD = """# our words
[words]
"重庆" = { pinyin = "chong2 qing4" }
"行长" = { pinyin = "hang2 zhang" }
"银行" = { pinyin = "yin2 xyz2" }
"CT" = { say = "西提", pinyin = "xi1 ti1" }
"B超" = "bi4 chao1"
"长" = { pinyin = "zhang3 chang2" }
"X" = { sai = "x" }

[other]
a = 1
"""


def test_a_bad_lexicon_names_the_file_and_line_of_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(InputError) as caught:
        load_lexicon(path)
    found = {(p.line, p.message) for p in caught.value.problems}
    assert found == {
        (4, "'zhang' is not a pinyin syllable"),
        (5, "'xyz2' is not a pinyin syllable"),
        (6, "'CT' needs exactly one of pinyin or say"),
        (7, "'B超' needs a table with pinyin or say"),
        (8, "'长' has 1 character but 2 syllables"),
        (9, "unknown key 'sai'"),
        (9, "'X' needs exactly one of pinyin or say"),
        (11, "unknown table 'other'"),
    }
    assert all(p.file == path and p.hint for p in caught.value.problems)
    missing_tone = next(p for p in caught.value.problems if p.line == 4)
    assert str(missing_tone).startswith(f"{path}:4: [words.行长.pinyin] 'zhang' is not a pinyin syllable — add")


def test_a_lexicon_that_is_not_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[words]\n"重庆" = { pinyin = "chong2 qing4" }\n"银行" = yin2 hang2\n')
    with pytest.raises(InputError) as caught:
        load_lexicon(path)
    assert [(p.file, p.line) for p in caught.value.problems] == [(path, 3)]


def test_an_empty_lexicon_changes_nothing(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, "# nothing yet\n"))
    assert len(lexicon) == 0
    assert front_end("请拨打12309。", lexicon) == front_end("请拨打12309。")


# --- the real espeak-ng reads the pinyin ----------------------------------------------------------------------

def phonemes(pinyin: str) -> str:
    """What espeak-ng's pinyin voice makes of the text: its phoneme mnemonics, one line per clause."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is part of the system (apt-get install espeak-ng)"
    done = subprocess.run([espeak, "-v", "cmn-latn-pinyin", "-q", "-x", pinyin],
                          capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def test_espeak_reads_hang_in_yinhang_not_xing() -> None:
    read = phonemes(front_end("银行").pinyin)
    assert read == "j'i35n_| X'a35N_|"  # yin2 hang2: 行 has hang's initial and a rising tone
    assert "S;'i35N" not in read  # xing2, the reading espeak guesses from the Hanzi
    assert "S;'i35N" in phonemes("银行")  # …which is why the front end exists


def test_espeak_reads_a_hotline_digit_by_digit_with_yao() -> None:
    assert phonemes(front_end("12309").pinyin) == "j'Au55_| '@r51_| s'a55n_| l'i35N_| tS;'iou214_|"


def test_espeak_reads_tone_five_as_the_neutral_tone() -> None:
    assert phonemes(to_pinyin("吗")) == "mA11_|"  # ma5: low and short; a bare "ma" would be tone 1
    assert phonemes("ma") == "m'A55_|"


def test_espeak_pauses_at_chinese_punctuation() -> None:
    """Each mark the pinyin keeps starts a new clause in espeak's output (a pause in the audio)."""
    for mark in sorted(set(PAUSES.values())):
        assert phonemes(f"ni3 hao3{mark}zai4 jian4").count("\n") == 1, mark
    assert "\n" not in phonemes("ni3 hao3. zai4 jian4")  # an ASCII full stop before lower case does not
