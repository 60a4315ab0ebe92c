"""The officer's working day (handoff.workbench) on the demo village: their hand-offs and the
branch queue, applications to decide and (supervisors) to confirm, overdue loans through the
core-banking emulator, contracts waiting and disbursements the core refused; each group counted,
its overdue counted, and only the officer's own customers."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select

from handoff import service as h
from handoff.workbench import ROW_LIMIT, SOURCES, WorkDay, WorkGroup, today_work
from lending.disbursement import disburse
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.models import Customer, LoanContract, Officer
from tests.unit.lending_helpers import T0, service
from tests.unit.loan_helpers import approved, paid_out
from tests.unit.test_four_eyes import LIMIT, under_review
from tests.unit.test_lending_applications import ZHANG, officer
from tests.unit.test_reminders import first_due, sweep


def work(db_url, username="officer01", now=None) -> dict[str, WorkGroup]:
    with unit_of_work(db_url) as s:
        return {g.kind: g for g in today_work(s, officer(s, username), now=now)}


def test_hand_offs_their_own_and_the_branch_queue_most_urgent_first(demo_settings):
    url = demo_settings.database_url
    with unit_of_work(url) as s:
        h.request_hand_off(s, ZHANG, "customer_request")  # 张建国 is officer01's customer
        h.request_hand_off(s, "o_stranger", "bot_unavailable")  # nobody's: the branch queue
    now = clock.utcnow()
    groups = work(url, now=now)
    mine, queue = groups["hand_offs"], groups["branch_queue"]
    assert (mine.count, mine.overdue, [r.who for r in mine.rows]) == (1, 0, ["张建国"])
    assert mine.rows[0].what == "客户要求转人工" and mine.rows[0].page == "hand_off"
    assert (queue.count, [r.who for r in queue.rows]) == (1, ["未绑定客户"])
    later = work(url, now=now + timedelta(hours=1))  # the 30 minutes have passed
    assert later["hand_offs"].overdue == later["branch_queue"].overdue == 1 and later["hand_offs"].rows[0].overdue
    supervisor = work(url, "supervisor01")
    assert supervisor["hand_offs"].count == 0 and supervisor["branch_queue"].count == 1


def test_decisions_for_the_officer_and_second_approvals_for_another_supervisor(demo_db_url):
    svc, _ = service()
    app_id = under_review(demo_db_url, svc, 150_000, key="a")  # above the automatic limit: an officer decides
    groups = work(demo_db_url, now=T0)
    assert [g.kind for g in groups.values()] == [
        "hand_offs",
        "branch_queue",
        "decisions",
        "overdue_loans",
        "inspections",
        "contracts",
        "disbursements",
    ]  # no second approvals for an officer
    decisions = groups["decisions"]
    assert (decisions.count, decisions.overdue) == (1, 0)
    row = decisions.rows[0]
    assert (row.who, row.what, row.page, row.page_id) == ("张建国", "阳光e贷 150,000元", "application", app_id)
    assert row.due == T0 + timedelta(hours=24) and not row.overdue
    assert work(demo_db_url, now=T0 + timedelta(hours=25))["decisions"].overdue == 1
    with unit_of_work(demo_db_url) as s:
        svc.approve(s, app_id, officer(s), "同意")  # within the one-approval amount: decided
    assert work(demo_db_url, now=T0)["decisions"].count == 0
    with unit_of_work(demo_db_url) as s:
        svc.withdraw(s, app_id)  # one live application per product

    large = under_review(demo_db_url, svc, LIMIT + 1, key="b")
    with unit_of_work(demo_db_url) as s:
        svc.approve(s, large, officer(s), "同意")  # the first approval: 待复核
    groups = work(demo_db_url, now=T0)
    assert groups["decisions"].count == 0  # the officer has done their part
    confirm = work(demo_db_url, "supervisor01", now=T0)["second_approvals"]
    assert (confirm.count, confirm.rows[0].page_id) == (1, large)


def test_a_supervisor_does_not_confirm_their_own_first_approval(demo_db_url):
    svc, _ = service()
    large = under_review(demo_db_url, svc, LIMIT + 1)
    with unit_of_work(demo_db_url) as s:
        svc.approve(s, large, officer(s, "supervisor01"), "同意")
    assert work(demo_db_url, "supervisor01", now=T0)["second_approvals"].count == 0


def test_overdue_loans_of_their_customers_only(core):
    settings, svc, _, url, _ = core
    paid_out(settings, svc)
    assert work(settings.database_url)["overdue_loans"].count == 0
    late = first_due() + timedelta(days=5)
    sweep(settings, svc, url, late)  # the core says instalment 1 is overdue; synchronised here
    groups = work(settings.database_url, now=clock.utcnow() + (late - clock.today()))
    overdue = groups["overdue_loans"]
    assert (overdue.count, overdue.overdue) == (1, 1)
    row = overdue.rows[0]
    assert row.who == "张建国" and row.page == "application" and row.overdue
    assert row.what.startswith("逾期") and row.what.endswith("元，已5天")
    assert work(settings.database_url, "supervisor01")["overdue_loans"].count == 0


def test_contracts_waiting_for_the_signature_and_expired_links(core):
    settings, svc, _, url, _ = core
    waiting = approved(settings, svc, signed=False)
    groups = work(settings.database_url, now=T0)
    contracts = groups["contracts"]
    assert (contracts.count, contracts.overdue, contracts.rows[0].page_id) == (1, 0, waiting)
    assert contracts.rows[0].what == "待客户签署"
    with unit_of_work(settings.database_url) as s:
        expires = s.scalar(select(LoanContract.expires_at).where(LoanContract.application_id == waiting))
    expired = work(settings.database_url, now=expires + timedelta(minutes=1))["contracts"]
    assert expired.overdue == 1 and expired.rows[0].what == "签署链接已过期，需重发链接"


def test_disbursements_the_core_refused(core):
    settings, svc, _, url, _ = core
    signed = approved(settings, svc)
    requests.post(f"{url}/_emulator/faults", json={"mode": "refuse", "path": "disbursements"}, timeout=5)
    assert disburse(settings, signed, svc) == "failed"
    refused = work(settings.database_url)["disbursements"]
    assert (refused.count, refused.rows[0].page_id) == (1, signed)
    assert "冻结" in refused.rows[0].what
    assert work(settings.database_url)["contracts"].count == 0


def test_counts_are_whole_rows_are_limited_and_sources_may_be_added(demo_settings):
    url = demo_settings.database_url
    with unit_of_work(url) as s:
        for n in range(ROW_LIMIT + 3):
            h.request_hand_off(s, f"o_stranger_{n}", "customer_request")
    queue = work(url)["branch_queue"]
    assert (queue.count, len(queue.rows)) == (ROW_LIMIT + 3, ROW_LIMIT)

    def visits(session, officer_: Officer, day: WorkDay) -> WorkGroup:
        mine = session.scalars(
            select(Customer.name).where(Customer.officer_id == officer_.id).order_by(Customer.id)
        ).all()
        return WorkGroup("visits", "今日走访", len(mine), 0, (), f"{day.today}没有走访")

    with unit_of_work(url) as s:
        groups = today_work(s, officer(s), (*SOURCES, visits))
    assert groups[-1].kind == "visits" and groups[-1].count > 0
