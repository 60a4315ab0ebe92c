import pytest

from lending.amounts import AmountError, amount_around, find_amount, format_amount, parse_amount


@pytest.mark.parametrize(
    "text, yuan",
    [
        # the forms customers actually send
        ("5万", 50_000),
        ("5w", 50_000),
        ("5W", 50_000),
        ("三万五", 35_000),
        ("三万块", 30_000),
        ("50000元", 50_000),
        ("5千", 5_000),
        ("一万二", 12_000),
        ("2.5万", 25_000),
        ("十万", 100_000),
        # more colloquial and voice-recognition forms
        ("5万块钱", 50_000),
        ("两万", 20_000),
        ("俩万块", 20_000),
        ("二十万", 200_000),
        ("十五万", 150_000),
        ("一百二十万", 1_200_000),
        ("三千五", 3_500),
        ("两百五", 250),
        ("十万五", 105_000),
        ("一万零五百", 10_500),
        ("一万五千", 15_000),
        ("3万5", 35_000),
        ("1万2000", 12_000),
        ("1.5w", 15_000),
        ("8k", 8_000),
        ("伍万元", 50_000),
        ("壹拾万元整", 100_000),
        ("五零零零零", 50_000),
        ("50,000元", 50_000),
        ("50，000元", 50_000),
        ("５万", 50_000),  # full-width digit from some keyboards
        ("大概3万左右", 30_000),
        ("差不多八万块", 80_000),
        (" 5 万 ", 50_000),
        ("300000", 300_000),
        ("一千万", 10_000_000),
        ("一亿五千万", 150_000_000),
        ("100元", 100),
    ],
)
def test_parse_amount(text, yuan):
    assert parse_amount(text) == yuan
    assert type(parse_amount(text)) is int


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "万",
        "块钱",
        "abc",
        "好多钱",
        "5万-10万",
        "三百五千",
        "5 3",
        "5.5.5万",
        "万万",
        "五万万",
        "一万多",
        "-5万",
        "0元",
        "零",
        "100.5元",
        "1.23456万",
    ],
)
def test_unreadable_amounts_raise_a_chinese_message(text):
    with pytest.raises(AmountError) as info:
        parse_amount(text)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message)


def test_error_message_quotes_the_text_and_shows_an_example():
    with pytest.raises(AmountError, match="好多钱.*5万"):
        parse_amount("好多钱")


def test_none_is_an_amount_error():
    with pytest.raises(AmountError):
        parse_amount(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "yuan, text",
    [
        (200_000, "20万元"),
        (35_000, "3.5万元"),
        (12_300, "1.23万元"),
        (12_345, "12345元"),
        (800, "800元"),
        (0, "0元"),
        (1_000_000, "100万元"),
    ],
)
def test_format_amount(yuan, text):
    assert format_amount(yuan) == text


def test_format_and_parse_round_trip():
    for yuan in (1_000, 10_000, 25_000, 200_000, 1_230_000):
        assert parse_amount(format_amount(yuan)) == yuan


@pytest.mark.parametrize(
    "text, yuan",
    [
        ("借5万买化肥吧", 50_000),
        ("5万给", 50_000),  # a unit glued to the next word by the tokenizer
        ("想借三万五用一年", 35_000),
        ("等一下借两万块", 20_000),
        ("50000元吧", 50_000),
        ("大概十万左右吧", 100_000),
        ("借个1万2", 12_000),
        ("借10000", 10_000),
        ("贷款十万三年", 100_000),  # the term's count is not read into the amount
        ("5万2年", 50_000),
        ("借三万五两年", 35_000),
        ("两万三个月", 20_000),
        ("十万十二个月", 100_000),
        ("五万一年半", 50_000),
        ("借两万三", 23_000),  # without a term after it, 两万三 is 23000
    ],
)
def test_find_amount_in_free_text(text, yuan):
    assert find_amount(text) == yuan


@pytest.mark.parametrize(
    "text", ["", "借一下", "三年", "我手机13912345678", "w", "吃饭", "借钱", "借三十五年", "二十四个月"]
)
def test_find_amount_without_an_amount(text):
    assert find_amount(text) is None


@pytest.mark.parametrize(
    "text, marked, yuan",
    [
        ("算了三十五万吧", "十五万", 350_000),  # jieba: 三 / 十五万, and the NLU marked only 十五万
        ("借三十五万", "十五万", 350_000),  # jieba: 借三 / 十五万
        ("四十一万", "十一万", 410_000),
        ("想借2.5万", "5万", 25_000),  # cut at the decimal point
        ("贷款四十五万两年", "四十五万两", 450_000),
        ("借5万买化肥", "5万买", 50_000),  # a word glued to the amount
        ("借5万2年", "5万", 50_000),
    ],
)
def test_amount_around_reads_the_whole_amount_the_nlu_marked(text, marked, yuan):
    start = text.index(marked)
    assert amount_around(text, start, start + len(marked)) == yuan


def test_amount_around_is_none_where_no_amount_is_marked():
    text = "借两年，三万"
    assert amount_around(text, 1, 3) is None  # 两年 is a term
    assert amount_around(text, 4, 6) == 30_000
