"""Loan terms as customers say them, normalised to whole months.

>>> parse_term("一年"), parse_term("18个月"), parse_term("半年"), parse_term("一年半")
(12, 18, 6, 18)
"""

from __future__ import annotations

import re
import unicodedata

from lending.amounts import AmountError, parse_amount

__all__ = ["TermError", "parse_term", "format_term"]


class TermError(ValueError):
    """The text is not a loan term we can read; the message is for the customer."""


_NUMBER = r"[0-9零〇一二两俩仨三四五六七八九十]+"
_TERM = re.compile(rf"(?P<n>{_NUMBER}|半)\s*(?:个|個)?\s*(?P<unit>年|月)(?P<half>半)?")
_MAX_MONTHS = 360


def parse_term(text: str) -> int:
    """Months for `text` ('两年' -> 24, '6个月' -> 6); TermError when none can be read."""
    s = unicodedata.normalize("NFKC", str(text or "")).strip()
    match = _TERM.search(s)
    if match is None:
        raise TermError(
            f"没看懂期限“{s}”，请说几个月或几年，比如 12个月 或 一年" if s else "请告诉我借多久，比如 12个月 或 一年"
        )
    n, unit = match.group("n"), match.group("unit")
    try:
        value = 0.5 if n == "半" else parse_amount(n)
    except AmountError:
        raise TermError(f"没看懂期限“{s}”，请说几个月或几年，比如 12个月 或 一年") from None
    months = value * 12 if unit == "年" else value
    if match.group("half") and unit == "年":
        months += 6
    months = int(months)
    if months <= 0 or months > _MAX_MONTHS:
        raise TermError(f"期限“{s}”不对，请说几个月或几年，比如 12个月 或 一年")
    return months


def format_term(months: int) -> str:
    """12 -> '12个月（1年）', 6 -> '6个月'."""
    if months % 12 == 0:
        return f"{months}个月（{months // 12}年）"
    return f"{months}个月"
