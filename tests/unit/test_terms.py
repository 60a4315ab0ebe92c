"""Loan terms as customers say them (lending.terms)."""

from __future__ import annotations

import pytest

from lending.terms import TermError, format_term, parse_term


@pytest.mark.parametrize(
    "said, months",
    [
        ("一年", 12),
        ("1年", 12),
        ("12个月", 12),
        ("十二个月", 12),
        ("半年", 6),
        ("一年半", 18),
        ("两年", 24),
        ("两年半", 30),
        ("3年", 36),
        ("三年吧", 36),
        ("借24个月", 24),
        ("６个月", 6),
        ("60个月", 60),
    ],
)
def test_terms_in_words_and_digits(said, months):
    assert parse_term(said) == months


@pytest.mark.parametrize(
    "said, why",
    [
        ("", "借多久"),
        ("好久", "没看懂期限"),
        ("0个月", "期限“0个月”"),
        ("100年", "不对"),
        ("五万", "没看懂期限"),
    ],
)
def test_unreadable_terms_say_why(said, why):
    with pytest.raises(TermError, match=why):
        parse_term(said)


def test_terms_are_shown_in_months_and_years():
    assert format_term(12) == "12个月（1年）"
    assert format_term(6) == "6个月"
