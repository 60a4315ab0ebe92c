"""The branch's figures (handoff.figures) on a small dataset whose numbers are known: two
villages from a village file (an expired line, a line drawn on, a spouse who is no household)
and customers without a file; applications, decisions, hand-offs and authorizations at known
times, some just outside the period (Beijing dates)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select

from handoff.figures import BRANCH, NO_VILLAGE, FiguresError, Period, branch_figures, period_of
from handoff.service import CLOSING_NOTE
from lending.catalog import sync_products
from sunshine.db import unit_of_work
from sunshine.models import (
    ApplicationEvent,
    Authorization,
    ConversationMessage,
    CreditLine,
    Customer,
    HandOff,
    LoanApplication,
)
from tests.unit.lending_helpers import import_village, person_id

NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))  # UTC 10-31 16:00 .. 11-30 16:00
TODAY = date(2026, 12, 6)
_ids = count(1)


def at(text: str) -> datetime:
    """A stored time (naive UTC)."""
    return datetime.fromisoformat(text)


def customer(s, name, village=None) -> Customer:
    c = Customer(name=name, id_fingerprint=f"fp-{name}", id_sealed="-", id_masked="-", village=village)
    s.add(c)
    s.flush()
    return c


def application(s, who: Customer, events, review_mode=None, deadline=None, status="approved") -> LoanApplication:
    """An application with its history: (at, actor, from, to, action)."""
    app = LoanApplication(
        customer_id=who.id,
        product_code="sunshine_e_loan",
        amount=50_000,
        term_months=12,
        status=status,
        review_mode=review_mode,
        review_deadline=at(deadline) if deadline else None,
        risk_hits=[],
    )
    s.add(app)
    s.flush()
    for when, actor, before, after, action in events:
        s.add(
            ApplicationEvent(
                application_id=app.id, at=at(when), actor=actor, from_status=before, to_status=after, action=action
            )
        )
    return app


def hand_off(s, who: Customer | None, created: str, messages=(), status="closed") -> None:
    """A 30-minute hand-off and its messages: (at, direction, author, body)."""
    openid = f"o_{next(_ids)}"
    h = HandOff(
        openid=openid,
        customer_id=who.id if who else None,
        reason="customer_request",
        status=status,
        created_at=at(created),
        deadline=at(created) + timedelta(minutes=30),
    )
    s.add(h)
    s.flush()
    for when, direction, author, body in messages:
        s.add(
            ConversationMessage(
                openid=openid,
                hand_off_id=h.id,
                direction=direction,
                author=author,
                body=body,
                status="sent",
                created_at=at(when),
            )
        )


def authorization(s, who: Customer, created: str, consented: str | None, status: str) -> None:
    s.add(
        Authorization(
            customer_id=who.id,
            party_role="applicant",
            party_name=who.name,
            party_id_masked="-",
            purpose="贷款审批",
            requested_by="customer",
            token_hash=f"t{next(_ids)}",
            status=status,
            expires_at=at(created) + timedelta(days=1),
            created_at=at(created),
            consented_at=at(consented) if consented else None,
        )
    )


@pytest.fixture
def branch(db_url, tmp_path):
    with unit_of_work(db_url) as s:
        sync_products(s)
        import_village(
            s,
            tmp_path,
            [
                f"甲村,甲一,{person_id('19700101', seq=1)},,farmer,100000,2027-12-31,"
                f"spouse:甲一妻:{person_id('19720101', seq=2)}:,",
                f"甲村,甲二,{person_id('19700101', seq=3)},,farmer,50000,2027-12-31,,",
                f"甲村,甲三,{person_id('19700101', seq=4)},,farmer,80000,2027-12-31,,",
                f"乙村,乙一,{person_id('19700101', seq=5)},,farmer,200000,2027-12-31,,",
            ],
        )
        people = {c.name: c for c in s.scalars(select(Customer).order_by(Customer.id))}
        a, b, c, e = people["甲一"], people["甲二"], people["甲三"], people["乙一"]
        s.scalar(select(CreditLine).where(CreditLine.customer_id == a.id)).used_amount = 30_000
        s.scalar(select(CreditLine).where(CreditLine.customer_id == c.id)).valid_until = date(2026, 6, 30)  # expired
        customer(s, "甲四", "甲村")  # lives there, no credit file
        f = customer(s, "个体户")  # not from a village file

        # 甲一: submitted by himself, decided by the officer in 10 hours, within the 24 promised
        application(
            s,
            a,
            [
                ("2026-11-05 02:00", "customer", "draft", "submitted", "submitted"),
                ("2026-11-05 03:00", "system", "awaiting_authorization", "under_review", "queued_for_officer"),
                ("2026-11-05 13:00", "officer:officer01", "under_review", "approved", "approved"),
            ],
            review_mode="officer",
            deadline="2026-11-06 03:00",
        )
        # 甲二: entered by an officer, approved by the system
        application(
            s,
            b,
            [
                ("2026-11-10 00:00", "officer:officer01", "draft", "submitted", "submitted"),
                ("2026-11-10 01:00", "auto", "under_review", "approved", "approved"),
            ],
            review_mode="auto",
        )
        # 乙一: a first approval, then rejected 30 hours after entering review: 6 hours late
        application(
            s,
            e,
            [
                ("2026-11-20 00:00", "customer", "draft", "submitted", "submitted"),
                ("2026-11-20 01:00", "system", "awaiting_authorization", "under_review", "queued_for_officer"),
                ("2026-11-20 05:00", "officer:officer01", "under_review", "under_review", "first_approval"),
                ("2026-11-21 07:00", "officer:supervisor01", "under_review", "rejected", "rejected"),
            ],
            review_mode="officer",
            deadline="2026-11-21 01:00",
            status="rejected",
        )
        # 乙一 again, a minute before the period began in Beijing: not counted
        application(s, e, [("2026-10-31 15:59", "customer", "draft", "submitted", "submitted")], status="withdrawn")
        # 个体户: the period's last Beijing minute
        application(s, f, [("2026-11-30 15:59", "customer", "draft", "submitted", "submitted")], status="submitted")

        customer_said = ("2026-11-05 02:01", "inbound", "customer", "你好")
        hand_off(
            s,
            a,
            "2026-11-05 02:00",
            [
                customer_said,
                ("2026-11-05 02:10", "outbound", "officer:officer01", "您好"),
                ("2026-11-05 02:40", "outbound", "officer:officer01", "好的"),
            ],
        )
        hand_off(s, e, "2026-11-12 00:00", [("2026-11-12 00:45", "outbound", "officer:officer01", "您好")])
        hand_off(s, None, "2026-11-15 00:00", [("2026-11-15 01:00", "outbound", "officer:officer01", CLOSING_NOTE)])
        hand_off(s, e, "2026-10-20 00:00", [("2026-10-20 00:05", "outbound", "officer:officer01", "您好")])

        authorization(s, a, "2026-11-05 02:00", "2026-11-05 02:06", "consented")
        authorization(s, a, "2026-11-05 02:00", None, "superseded")  # re-issued below
        authorization(s, a, "2026-11-05 03:00", "2026-11-05 03:20", "consented")
        authorization(s, e, "2026-11-20 00:00", None, "pending")
    return db_url


def figures_of(db_url):
    with unit_of_work(db_url) as s:
        figures = branch_figures(s, NOVEMBER, TODAY)
    return {v.village: v for v in figures.villages}, figures.branch, figures


def test_households_filed_with_a_line_and_using_it(branch):
    villages, total, figures = figures_of(branch)
    assert [v.village for v in figures.villages] == ["乙村", "甲村", NO_VILLAGE]
    jia, yi, none = villages["甲村"], villages["乙村"], villages[NO_VILLAGE]
    assert (jia.households, jia.filed, jia.with_line, jia.using) == (4, 3, 2, 1)  # the spouse is no household
    assert (jia.line_amount, jia.used_amount) == (150_000, 30_000)  # the expired line counts no more
    assert (jia.filed_share, jia.line_share, jia.use_share) == (0.75, 0.5, 0.5)
    assert (yi.households, yi.filed, yi.with_line, yi.using, yi.use_share) == (1, 1, 1, 0, 0.0)
    assert (none.households, none.filed, none.filed_share, none.use_share) == (1, 0, 0.0, None)
    assert (total.village, total.households, total.filed, total.with_line, total.using) == (BRANCH, 6, 4, 3, 1)
    assert (total.line_amount, total.used_amount) == (350_000, 30_000)


def test_applications_and_decisions_against_the_promise(branch):
    villages, total, _ = figures_of(branch)
    jia, yi, none = villages["甲村"], villages["乙村"], villages[NO_VILLAGE]
    assert (jia.applications, jia.online, jia.decided, jia.auto_approved) == (2, 1, 2, 1)
    assert (jia.officer_decided, jia.on_time, jia.decision_hours) == (1, 1, 10.0)
    assert (yi.applications, yi.online, yi.decided, yi.auto_approved) == (
        1,
        1,
        1,
        0,
    )  # the first approval is no decision
    assert (yi.officer_decided, yi.on_time, yi.on_time_share, yi.decision_hours) == (1, 0, 0.0, 30.0)
    assert (none.applications, none.online, none.decided, none.auto_share, none.decision_hours) == (1, 1, 0, None, None)
    assert (total.applications, total.online, total.decided, total.auto_approved) == (4, 3, 3, 1)
    assert total.auto_share == pytest.approx(1 / 3)
    assert (total.officer_decided, total.on_time, total.on_time_share, total.decision_hours) == (2, 1, 0.5, 20.0)


def test_hand_off_first_replies_and_authorizations(branch):
    villages, total, _ = figures_of(branch)
    jia, yi, none = villages["甲村"], villages["乙村"], villages[NO_VILLAGE]
    assert (jia.hand_offs, jia.answered, jia.answered_on_time, jia.reply_minutes) == (1, 1, 1, 10.0)
    assert (yi.hand_offs, yi.answered, yi.answered_on_time, yi.reply_minutes) == (1, 1, 0, 45.0)
    assert (none.hand_offs, none.answered, none.reply_minutes) == (1, 0, None)  # closing is no answer
    assert (total.hand_offs, total.answered, total.answered_on_time_share, total.reply_minutes) == (3, 2, 0.5, 27.5)
    assert (jia.authorizations, jia.authorized, jia.authorization_minutes) == (2, 2, 13.0)
    assert (yi.authorizations, yi.authorized, yi.authorized_share) == (1, 0, 0.0)
    assert (total.authorizations, total.authorized, total.authorization_minutes) == (3, 2, 13.0)
    assert total.authorized_share == pytest.approx(2 / 3)


def test_another_period_counts_other_things_households_stay(branch):
    with unit_of_work(branch) as s:
        october = branch_figures(s, Period(date(2026, 10, 1), date(2026, 10, 31)), TODAY)
    yi = {v.village: v for v in october.villages}["乙村"]
    assert (yi.households, yi.applications, yi.hand_offs, yi.answered, yi.reply_minutes) == (1, 1, 1, 1, 5.0)
    assert october.branch.decided == october.branch.authorizations == 0


def test_an_empty_branch_has_nothing_to_divide(db_url):
    with unit_of_work(db_url) as s:
        figures = branch_figures(s, NOVEMBER, TODAY)
    assert figures.villages == [] and figures.branch.households == 0
    assert figures.branch.filed_share is None and figures.branch.reply_minutes is None


def test_the_period_asked_for():
    assert period_of(None, None, TODAY) == Period(date(2026, 11, 7), TODAY)  # the last 30 days
    assert period_of("2026-11-01", "2026-11-30", TODAY) == NOVEMBER
    assert period_of(None, "2026-11-30", TODAY) == Period(date(2026, 11, 1), date(2026, 11, 30))
    assert NOVEMBER.bounds == (datetime(2026, 10, 31, 16), datetime(2026, 11, 30, 16))
    for first, last, message in (
        ("2026-11-31", None, "日期格式不对"),
        ("昨天", None, "日期格式不对"),
        ("2026-12-02", "2026-12-01", "开始日期不能晚于结束日期"),
        ("2025-01-01", "2026-12-01", "统计期间最长366天"),
    ):
        with pytest.raises(FiguresError, match=message):
            period_of(first, last, TODAY)
