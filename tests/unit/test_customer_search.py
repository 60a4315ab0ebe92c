"""The console's customer search: by name, by whole or masked ID number or phone, by a name and
a number together; officers find their own customers, supervisors everyone's; bad input says why."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from lending.customers import SearchRefused, normalise_name, search
from sunshine.db import unit_of_work
from sunshine.models import Customer, Officer
from tests.conftest import TEST_SECRET

# The demo village: 张建国 321283197503120119 13912340001, his wife 李秀英 321283197706050229
# 13912340002, 王春华 32128319820820033X 13912340003, ...


def names(db_url, query, officer_id=None, **kw):
    with unit_of_work(db_url) as s:
        return [c.name for c in search(s, TEST_SECRET, query, officer_id, **kw).customers]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("张建国", ["张建国"]),
        ("建国", ["张建国"]),
        ("张 建 国", ["张建国"]),  # words: each must be in the name
        ("321283197503120119", ["张建国"]),
        ("3212**********0119", ["张建国"]),
        ("3212*********20119", ["张建国"]),
        ("9999**********0119", []),  # the hidden digits are compared too
        ("0119", ["张建国"]),
        ("033x", ["王春华"]),  # an ID ending in X, typed lower-case
        ("13912340002", ["李秀英"]),
        ("139****0002", ["李秀英"]),
        ("138****0002", []),
        ("0002", ["李秀英"]),  # the last four of her phone
        ("40002", ["李秀英"]),  # any number of last digits
        ("张建国 0119", ["张建国"]),
        ("张建国 0002", []),
        ("１３９１２３４０００２", ["李秀英"]),  # full-width digits
    ],
)
def test_found_by_name_or_number(demo_db_url, query, found):
    assert names(demo_db_url, query) == found


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "请输入姓名、身份证号或手机号"),
        ("   ", "请输入姓名、身份证号或手机号"),
        ("119", "号码请至少写出最后4位"),
        ("3212**********01**", "号码请至少写出最后4位"),
        ("3212*****0119", "带*号时请写全位数"),
        ("321283197503120118", "校验位"),
        ("0119 0002", "一次只能按一个号码查找"),
    ],
)
def test_a_search_that_cannot_run_says_what_to_type(demo_db_url, query, message):
    with unit_of_work(demo_db_url) as s, pytest.raises(SearchRefused, match=message):
        search(s, TEST_SECRET, query, None)


def test_an_officer_finds_only_their_own_customers(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        officer = s.scalar(select(Officer).where(Officer.username == "officer01"))
        s.execute(update(Customer).where(Customer.name == "张建国").values(officer_id=None))
        assert [c.name for c in search(s, TEST_SECRET, "0119", officer.id).customers] == []
        assert [c.name for c in search(s, TEST_SECRET, "0119", None).customers] == ["张建国"]
        assert "李秀英" in [c.name for c in search(s, TEST_SECRET, "李", officer.id).customers]


def test_more_than_the_limit_is_said(demo_db_url):
    with unit_of_work(demo_db_url) as s:
        assert [c.name for c in search(s, TEST_SECRET, "秀", None).customers] == ["李秀英", "郑秀珍"]
        first = search(s, TEST_SECRET, "秀", None, limit=1)
        assert ([c.name for c in first.customers], first.more) == (["李秀英"], True)
        assert search(s, TEST_SECRET, "秀", None, limit=2).more is False


def test_names_are_normalised_as_stored():
    assert normalise_name(" 阿依古丽•买买提 ") == "阿依古丽·买买提"
    assert normalise_name("ＺＨＡＮＧ　San") == "ZHANGSan"
