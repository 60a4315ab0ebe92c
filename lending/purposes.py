"""What a loan is for, found inside a longer message ("我想用阳光e贷借5万一年买化肥" -> "买化肥").

A purpose starts with what the money buys or does (买, 盖, 进货, 装修, 上学, ...); the loan's own
words (贷款, 额度, 利息) end it. Amounts, terms and product names are cut out by the
caller (the spans the NLU marked), so that "借5万买化肥" leaves "买化肥".

>>> find_purpose("俺想贷点款买化肥")
'买化肥'
>>> find_purpose("我想用阳光e贷借5万一年买化肥和种子", [(3, 7), (8, 10), (10, 12)])
'买化肥和种子'
>>> find_purpose("我要贷款") is None
True
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["EXAMPLES", "MAX_PURPOSE", "find_purpose"]

# What the money does, as farmers, merchants and salaried customers say it.
_START = re.compile(
    r"(?:用来|用于|拿来|拿去|用在)?"
    r"(买|购买|购置|添置|盖|建|修|翻修|装修|进货|囤货|养|种|承包|租|扩大|周转|交学费|看病|治病|上学|读书|开店|开个|办厂)"
)
_LOAN_WORDS = re.compile(r"贷|额度|利息|利率|还款|借款|门票|缴费|验资|摇号")
_STOP = re.compile(r"[，。,.!！?？；;\s]")
_TRAILING = "的了啊呀吧呢哈用钱"
MAX_PURPOSE = 200
# What each kind of customer typically borrows for: the examples the chat and the console offer.
EXAMPLES = {
    "farmer": ("买化肥种子", "盖大棚", "买农机", "买猪苗"),
    "merchant": ("进货", "门面装修", "资金周转"),
    "civil_servant": ("装修房子", "买车", "孩子上学"),
}


def find_purpose(text: str, skip: list[tuple[int, int]] | None = None) -> str | None:
    """The purpose said in `text`, from its first purpose word to the end of that clause, with
    the spans in `skip` (start, end: amounts, terms, products) left out; None when none is said."""
    chars = list(unicodedata.normalize("NFKC", str(text or "")))
    for start, end in skip or []:
        for i in range(max(0, start), min(len(chars), end)):
            chars[i] = "，"  # a marked value ends the clause before it
    cleaned = "".join(chars)
    # Said with an amount, the purpose follows it ("俺是种地的 想借5万买种子化肥"): look there first.
    after = max((end for _, end in skip or []), default=0)
    matches = sorted(_START.finditer(cleaned), key=lambda m: m.start(1) < after)
    for match in matches:
        clause = _STOP.split(cleaned[match.start(1) :], maxsplit=1)[0]
        clause = _LOAN_WORDS.split(clause, maxsplit=1)[0].rstrip(_TRAILING).strip()
        if len(clause) >= 2:
            return clause[:MAX_PURPOSE]
    return None
