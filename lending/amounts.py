"""Amounts as customers type or speak them, normalised to whole yuan.

    >>> parse_amount("5万"), parse_amount("三万五"), parse_amount("50000元")
    (50000, 35000, 50000)

Accepted: Arabic digits (with a decimal point or thousands commas), Chinese
numerals (小写 一二三 and 大写 壹贰叁, 两/俩/仨), the units 十 百 千 万 亿 and
w/k, a currency word at the end (元 块 块钱 人民币 ...), a hedge such as 大概 …
左右. The colloquial elision is understood: 三万五 = 35000, 一万二 = 12000,
三千五 = 3500 (a lone digit after a unit counts in the next lower unit).
Anything else raises AmountError, whose message can be shown to the customer.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = ["AmountError", "parse_amount", "find_amount", "amount_around", "format_amount"]


class AmountError(ValueError):
    """The text is not an amount of money we can read; the message is for the customer."""


_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "壹": 1,
    "二": 2,
    "贰": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "叁": 3,
    "仨": 3,
    "四": 4,
    "肆": 4,
    "五": 5,
    "伍": 5,
    "六": 6,
    "陆": 6,
    "七": 7,
    "柒": 7,
    "八": 8,
    "捌": 8,
    "九": 9,
    "玖": 9,
}
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000}
_LETTER_UNITS = {"w": "万", "k": "千"}

_PREFIXES = ("大概", "大约", "差不多", "约莫", "约")
_SUFFIXES = ("人民币", "块钱", "元钱", "块", "元", "圆", "钱", "左右", "整")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\d]")
_MAX_YUAN = 10**12


def _unreadable(text: str) -> AmountError:
    return AmountError(f"没看懂金额“{text}”，请直接写数字，比如 5万 或 50000元")


def _clean(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).strip().lower()
    s = re.sub(r"(?<=\d)[,，\s](?=\d{3}(?!\d))", "", s)  # 50,000 / 50 000
    s = re.sub(r"(?<!\d)\s+|\s+(?!\d)", "", s)  # 5 万 -> 5万, but 5 3 stays wrong
    changed = True
    while changed and s:
        changed = False
        for prefix in _PREFIXES:
            if s.startswith(prefix):
                s, changed = s[len(prefix) :], True
        for suffix in _SUFFIXES:
            if s.endswith(suffix):
                s, changed = s[: -len(suffix)], True
    return "".join(_LETTER_UNITS.get(ch, ch) for ch in s)


def _parse(s: str) -> Decimal:
    tokens = _TOKEN.findall(s)
    if not tokens or "".join(tokens) != s:
        raise ValueError
    # 五零零零零 / 二〇二四: Chinese digits read one by one, no units at all.
    if len(tokens) > 1 and all(t in _DIGITS for t in tokens):
        return Decimal("".join(str(_DIGITS[t]) for t in tokens))

    total = Decimal(0)  # everything closed by 万/亿
    section = Decimal(0)  # the part below 万 being built
    pending: Decimal | None = None
    pending_single = False  # pending is one digit, eligible for 三万五-style elision
    last_unit = 0  # the unit just before pending (0: none)
    small_floor = 10**5  # small units within a section must decrease
    yi_seen = wan_open = False
    for tok in tokens:
        if tok[0].isdigit() or tok in _DIGITS:
            if pending is not None:
                raise ValueError
            if tok[0].isdigit():
                pending = Decimal(tok)
                pending_single = len(tok) == 1
            else:
                pending = Decimal(_DIGITS[tok])
                pending_single = tok not in ("零", "〇")
                if pending == 0:  # 一万零五百: the zero only says a unit is skipped
                    pending, last_unit = None, 0
        elif tok in _SMALL_UNITS:
            unit = _SMALL_UNITS[tok]
            if unit >= small_floor:
                raise ValueError
            section += (pending if pending is not None else Decimal(1)) * unit
            pending, last_unit, small_floor = None, unit, unit
        elif tok in _BIG_UNITS:
            head = section + (pending if pending is not None else 0)
            if tok == "亿":
                if yi_seen or total + head == 0:
                    raise ValueError
                total = (total + head) * _BIG_UNITS[tok]
                yi_seen, wan_open = True, False
            else:
                if wan_open or head == 0:  # 万 twice without 亿 between
                    raise ValueError
                total += head * _BIG_UNITS[tok]
                wan_open = True
            section, pending, last_unit, small_floor = Decimal(0), None, _BIG_UNITS[tok], 10**5
        else:
            raise ValueError
    if pending is not None:
        if pending_single and last_unit >= 10:
            pending *= last_unit // 10
        section += pending
    return total + section


def parse_amount(text: str) -> int:
    """Whole yuan for `text` (e.g. '三万块' -> 30000); AmountError when it cannot be read."""
    if text is None or not str(text).strip():
        raise AmountError("请告诉我金额，比如 5万 或 50000元")
    text = str(text)
    cleaned = _clean(text)
    if not cleaned:
        raise _unreadable(text.strip())
    try:
        value = _parse(cleaned)
    except (ValueError, InvalidOperation):
        raise _unreadable(text.strip()) from None
    if value != value.to_integral_value():
        raise AmountError(f"金额“{text.strip()}”不是整元数，请精确到元")
    if value <= 0:
        raise AmountError("金额要大于0元")
    if value > _MAX_YUAN:
        raise AmountError(f"金额“{text.strip()}”太大了，请核对一下")
    return int(value)


_CANDIDATE = re.compile(
    r"[0-9０-９零〇一二两俩仨三四五六七八九壹贰叁肆伍陆柒捌玖十拾百佰千仟万萬亿wWkK.,，]+"
    r"(?:人民币|块钱|元钱|块|元|圆)?"
)
_UNIT_OR_CURRENCY = re.compile(r"[十拾百佰千仟万萬亿wWkK块元圆]|人民币")
_TERM_NEXT = re.compile(r"\s*(?:个|年|月|期|周|天)")
_TERM_COUNT = re.compile(r"\d{1,3}|[一二两三四五六七八九]?十[一二三四五六七八九]?|[一二两三四五六七八九半]")


def _without_term(candidate: str, following: str) -> str:
    """The candidate without the count of a term said right after it: in 5万2年 and
    三万五两年 the amounts are 5万 and 三万五 (the terms 2年 and 两年); 三年 alone is no
    amount at all. The longest count that leaves a readable amount (or nothing) goes."""
    if not _TERM_NEXT.match(following):
        return candidate
    for size in range(min(3, len(candidate)), 0, -1):
        head, count = candidate[:-size], candidate[-size:]
        if not _TERM_COUNT.fullmatch(count):
            continue
        if not head.strip(".,，"):
            return ""
        try:
            parse_amount(head.strip(".,，"))
        except AmountError:
            continue
        return head
    return candidate


def find_amount(text: str) -> int | None:
    """The first amount in free text ('借5万买化肥吧' -> 50000), or None.

    A bare Chinese digit is not taken for an amount (一下, 三年 are not money),
    nor is a long digit run such as a phone number.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    for match in _CANDIDATE.finditer(text):
        candidate = _without_term(match.group(0), text[match.end() :]).strip(".,，")
        digits = re.sub(r"\D", "", candidate)
        if not _UNIT_OR_CURRENCY.search(candidate) and len(digits) < 2:
            continue
        if len(digits) > 10:
            continue
        try:
            return parse_amount(candidate)
        except AmountError:
            continue
    return None


def amount_around(text: str, start: int, end: int) -> int | None:
    """The amount whose words overlap text[start:end], read whole, or None.

    For an amount the NLU marked: jieba may cut 三十五万 as 三 / 十五万, or 借三 /
    十五万, and the NLU mark only 十五万; the customer said 350000.
    """
    for match in _CANDIDATE.finditer(text or ""):
        if match.start() < end and start < match.end():
            candidate = _without_term(match.group(0), text[match.end() :]).strip(".,，")
            try:
                return parse_amount(candidate)
            except AmountError:
                return None
    return None


def format_amount(yuan: int) -> str:
    """Customer-facing amount: 200000 -> '20万元', 35000 -> '3.5万元', 800 -> '800元'."""
    yuan = int(yuan)
    if abs(yuan) >= 10_000 and yuan % 100 == 0:
        wan = Decimal(yuan) / 10_000
        return f"{wan.normalize():f}万元"
    return f"{yuan}元"
