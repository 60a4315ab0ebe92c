"""Bad requests get a specific error in Chinese the bot can show, and change nothing."""

import re

import pytest
from sqlalchemy import func, select

from lending import applications as la
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, AuditEntry, LoanApplication
from tests.unit.lending_helpers import service

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def counts(s):
    return tuple(s.scalar(select(func.count()).select_from(t)) for t in (LoanApplication, ApplicationEvent, AuditEntry))


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"product_code": "moon_loan"}, la.UnknownProduct, "没有这个贷款产品"),
        ({"product_code": "merchant_e_loan"}, la.ProductNotForCustomer, "商e贷不面向您这类客户"),
        ({"amount": -5_000}, la.AmountOutOfRange, "要大于0"),
        ({"amount": 0}, la.AmountOutOfRange, "要大于0"),
        ({"amount": 10**12}, la.AmountOutOfRange, "阳光e贷可以贷1000元到30万元"),
        ({"amount": 500}, la.AmountOutOfRange, "不在这个范围内"),
        ({"amount": 5000.5}, la.AmountOutOfRange, "整数元"),
        ({"amount": "5万"}, la.AmountOutOfRange, "整数元"),
        ({"term_months": 7}, la.TermNotOffered, "期限只有6个月、12个月、24个月、36个月"),
        ({"customer_id": 999_999}, la.CustomerNotFound, "没有找到您的客户信息"),
        ({"product_code": "guaranteed_farm_loan", "amount": 100_000}, la.GuarantorRequired, "需要一名担保人"),
        (
            {"product_code": "guaranteed_farm_loan", "amount": 100_000, "guarantor_id": "self"},
            la.GuarantorRequired,
            "不能是本人",
        ),
    ],
)
def test_bad_requests_are_refused_clearly_and_change_nothing(demo_db_url, change, error, message):
    svc, told = service()
    with unit_of_work(demo_db_url) as s:
        customer_id = by_openid(s, "o_demo_zhangjianguo").id
        before = counts(s)
        request = dict(
            customer_id=customer_id, product_code="sunshine_e_loan", amount=50_000, term_months=12, idempotency_key="k1"
        )
        request.update(change)
        if request.get("guarantor_id") == "self":
            request["guarantor_id"] = customer_id
        with pytest.raises(error, match=message) as raised:
            svc.apply(s, **request)
        assert CHINESE.search(str(raised.value))
        # The bot goes on with the same session after showing the message: nothing may be pending.
    with unit_of_work(demo_db_url) as s:
        assert counts(s) == before
    assert told.sent == []


def test_a_second_live_application_for_the_same_product_is_refused(demo_db_url):
    svc, told = service()
    with unit_of_work(demo_db_url) as s:
        customer_id = by_openid(s, "o_demo_zhangjianguo").id
        first = svc.apply(s, customer_id, "sunshine_e_loan", 50_000, 12, idempotency_key="k1")
    with unit_of_work(demo_db_url) as s:
        before = counts(s)
        with pytest.raises(la.ApplicationExists, match="已经有一笔阳光e贷申请正在办理（等待征信授权）"):
            svc.apply(s, customer_id, "sunshine_e_loan", 30_000, 12, idempotency_key="k2")
    with unit_of_work(demo_db_url) as s:
        assert counts(s) == before
        svc.withdraw(s, first.id)
    with unit_of_work(demo_db_url) as s:  # once the first has ended, a new one is welcome
        assert (
            svc.apply(s, customer_id, "sunshine_e_loan", 30_000, 12, idempotency_key="k2").status
            == "awaiting_authorization"
        )
    assert len(told.sent) == 3


def test_the_database_refuses_a_second_live_application_even_past_the_service(demo_db_url):
    """Two requests racing past the service's check meet the partial unique index."""
    from sqlalchemy.exc import IntegrityError

    with unit_of_work(demo_db_url) as s:
        customer_id = by_openid(s, "o_demo_zhangjianguo").id
        for status in ("rejected", "withdrawn", "under_review"):
            s.add(
                LoanApplication(
                    customer_id=customer_id, product_code="sunshine_e_loan", amount=1000, term_months=12, status=status
                )
            )
    with pytest.raises(IntegrityError):
        with unit_of_work(demo_db_url) as s:
            s.add(
                LoanApplication(
                    customer_id=customer_id, product_code="sunshine_e_loan", amount=1000, term_months=12, status="draft"
                )
            )


def test_an_idempotency_key_of_another_customer_is_refused(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        svc.apply(s, by_openid(s, "o_demo_zhangjianguo").id, "sunshine_e_loan", 50_000, 12, idempotency_key="k1")
    with unit_of_work(demo_db_url) as s:
        with pytest.raises(la.LendingError, match="申请编号重复"):
            svc.apply(s, by_openid(s, "o_demo_wangchunhua").id, "sunshine_e_loan", 50_000, 12, idempotency_key="k1")
