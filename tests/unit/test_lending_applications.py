"""The application service: status machine, idempotency, decisions, deadlines, notices."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lending.applications import DecisionError, IllegalTransition, ReportsIncomplete, officer_queue
from lending.contracts import for_application, token_for
from lending.credit_lines import current_line
from lending.customers import by_openid
from lending.disbursement import disburse
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, CreditLine, LoanApplication, Officer
from tests import TEST_SECRET
from tests.unit.lending_helpers import T0, report, service

ZHANG = "o_demo_zhangjianguo"  # farmer, line 20万, spouse 李秀英
ZHANG_ID, SPOUSE_ID = "321283197503120119", "321283197706050229"


def zhang_reports():
    return {"applicant": report(ZHANG_ID, "张建国"), "spouse": report(SPOUSE_ID, "李秀英")}


def apply_zhang(db_url, svc, amount=50_000, key="k1", product="sunshine_e_loan"):
    with unit_of_work(db_url) as s:
        return svc.apply(s, by_openid(s, ZHANG).id, product, amount, 12, idempotency_key=key, purpose="买化肥").id


def officer(s, username="officer01") -> Officer:
    return s.scalar(select(Officer).where(Officer.username == username))


def test_small_loan_is_approved_when_the_reports_arrive_then_disbursed(demo_settings, corebank):
    demo_db_url = demo_settings.database_url
    svc, told = service(core_banking=corebank[0])
    app_id = apply_zhang(demo_db_url, svc)
    assert told.sent == [
        (
            ZHANG,
            "您的阳光e贷申请（5万元，12个月）已提交。请完成征信查询授权"
            "（需要授权：本人张**、配偶李**），授权后马上为您审批。",
        )
    ]
    with unit_of_work(demo_db_url) as s:
        assert s.get(LoanApplication, app_id).status == "awaiting_authorization"
        assert current_line(s, by_openid(s, ZHANG), today=T0.date()).available == 150_000  # held while in progress
        app = svc.report_arrived(s, app_id, zhang_reports())
        assert (app.status, app.review_mode, app.risk_hits) == ("approved", "auto", [])
    assert told.sent[-1] == (
        ZHANG,
        "好消息！您的阳光e贷申请（5万元，12个月）已审批通过，请点击签署借款合同："
        f"/contract/{token_for(TEST_SECRET, app_id)}",
    )
    with unit_of_work(demo_db_url) as s:
        svc.sign(s, app_id, for_application(s, app_id).id)
    assert disburse(demo_settings, app_id, svc) == "paid"
    with unit_of_work(demo_db_url) as s:
        assert s.get(LoanApplication, app_id).loan_account.startswith("LN")
        events = s.scalars(
            select(ApplicationEvent).where(ApplicationEvent.application_id == app_id).order_by(ApplicationEvent.id)
        ).all()
        assert [(e.from_status, e.to_status, e.actor) for e in events] == [
            (None, "draft", "customer"),
            ("draft", "submitted", "customer"),
            ("submitted", "awaiting_authorization", "system"),
            ("awaiting_authorization", "under_review", "system"),
            ("under_review", "approved", "auto"),
            ("approved", "signed", "customer"),
            ("signed", "disbursed", "core_banking"),
        ]
        assert all(e.at == T0 for e in events) and "自动审批通过" in events[4].reason
        line = current_line(s, by_openid(s, ZHANG), today=T0.date())
        assert (line.used, line.pending, line.available) == (50_000, 0, 150_000)
    assert "5万元已发放到您尾号" in told.sent[-1][1]
    assert len(told.sent) == 4  # one notice per commit: the latest state


def test_the_same_idempotency_key_makes_one_application(demo_db_url):
    svc, told = service()
    first = apply_zhang(demo_db_url, svc, key="wx-msg-1")
    again = apply_zhang(demo_db_url, svc, key="wx-msg-1")
    assert first == again and len(told.sent) == 1
    with unit_of_work(demo_db_url) as s:
        assert s.scalar(select(func.count()).select_from(LoanApplication)) == 1
        assert s.scalar(select(func.count()).select_from(ApplicationEvent)) == 3


def test_a_large_loan_waits_for_an_officer_and_is_escalated_once_when_late(demo_db_url):
    svc, told = service()
    app_id = apply_zhang(demo_db_url, svc, amount=150_000)
    with unit_of_work(demo_db_url) as s:
        app = svc.report_arrived(s, app_id, zhang_reports())
        assert (app.status, app.review_mode, app.review_deadline) == (
            "under_review",
            "officer",
            T0 + timedelta(hours=24),
        )
    assert told.sent[-1][1].endswith("已转给客户经理审核，会在12月2日10:00前给您答复。")
    with unit_of_work(demo_db_url) as s:
        assert svc.escalate_overdue(s, T0 + timedelta(hours=23)) == []
        assert [a.id for a in svc.escalate_overdue(s, T0 + timedelta(hours=25))] == [app_id]
    with unit_of_work(demo_db_url) as s:
        assert svc.escalate_overdue(s, T0 + timedelta(hours=30)) == []
        assert [a.id for a in s.scalars(officer_queue())] == [app_id]
        escalated = s.scalar(select(ApplicationEvent).where(ApplicationEvent.action == "escalated"))
        assert escalated.actor == "system" and "升级" in escalated.reason
        app = svc.approve(s, app_id, officer(s), "收入稳定，同意")
        assert app.status == "approved" and app.escalated_at == T0 + timedelta(hours=25)
    with unit_of_work(demo_db_url) as s:
        last = s.scalars(select(ApplicationEvent).order_by(ApplicationEvent.id.desc())).first()
        assert (last.actor, last.to_status, last.reason) == ("officer:officer01", "approved", "收入稳定，同意")
        assert s.scalars(officer_queue()).all() == []


def test_officer_rejection_tells_the_customer(demo_db_url):
    svc, told = service()
    app_id = apply_zhang(demo_db_url, svc, amount=150_000)
    with unit_of_work(demo_db_url) as s:
        svc.report_arrived(s, app_id, zhang_reports())
        assert svc.reject(s, app_id, officer(s), "经营用途不清").status == "rejected"
    assert "没有通过审批" in told.sent[-1][1]


def test_illegal_steps_raise_and_change_nothing(demo_db_url):
    svc, told = service()
    app_id = apply_zhang(demo_db_url, svc)
    with unit_of_work(demo_db_url) as s:
        with pytest.raises(IllegalTransition, match="等待征信授权.*不能改为“审批通过”"):
            svc.approve(s, app_id, officer(s), "同意")
        with pytest.raises(IllegalTransition, match="不能改为“已签约”"):
            svc.sign(s, app_id, contract_id=0)  # no contract is offered before approval
        with pytest.raises(ReportsIncomplete, match="还缺配偶的征信报告"):
            svc.report_arrived(s, app_id, {"applicant": report(ZHANG_ID)})
        assert s.get(LoanApplication, app_id).status == "awaiting_authorization"
        svc.withdraw(s, app_id)
        with pytest.raises(IllegalTransition, match="已撤销"):
            svc.withdraw(s, app_id)
    with unit_of_work(demo_db_url) as s:
        assert s.scalar(select(func.count()).select_from(ApplicationEvent)) == 4
        assert s.get(LoanApplication, app_id).loan_account is None
    assert told.sent[-1] == (ZHANG, "您的阳光e贷申请（5万元，12个月）已撤销，需要时可以随时重新申请。")


def test_an_officer_decision_needs_a_reason_and_an_active_officer(demo_db_url):
    svc, _ = service()
    app_id = apply_zhang(demo_db_url, svc, amount=150_000)
    with unit_of_work(demo_db_url) as s:
        svc.report_arrived(s, app_id, zhang_reports())
        with pytest.raises(DecisionError, match="审批意见"):
            svc.approve(s, app_id, officer(s), "  ")
        retired = officer(s)
        retired.active = False
        with pytest.raises(DecisionError, match="停用"):
            svc.reject(s, app_id, retired, "不同意")
        assert s.get(LoanApplication, app_id).status == "under_review"


def test_nobody_is_told_of_a_change_that_was_rolled_back(demo_db_url):
    svc, told = service()
    with pytest.raises(RuntimeError):
        with unit_of_work(demo_db_url) as s:
            svc.apply(s, by_openid(s, ZHANG).id, "sunshine_e_loan", 50_000, 12, idempotency_key="k")
            raise RuntimeError("the bot crashed before the commit")
    assert told.sent == []
    with unit_of_work(demo_db_url) as s:
        assert s.scalar(select(func.count()).select_from(LoanApplication)) == 0


def test_a_failing_notifier_does_not_undo_the_decision(demo_db_url):
    svc, _ = service()

    def broken(openid, text, **_):
        raise ConnectionError("redis is down")

    svc.notify = broken
    app_id = apply_zhang(demo_db_url, svc)
    with unit_of_work(demo_db_url) as s:
        assert s.get(LoanApplication, app_id).status == "awaiting_authorization"


def test_disbursement_counts_against_the_line(demo_settings, corebank):
    demo_db_url = demo_settings.database_url
    svc, _ = service(core_banking=corebank[0])
    app_id = apply_zhang(demo_db_url, svc, amount=80_000)
    with unit_of_work(demo_db_url) as s:
        svc.report_arrived(s, app_id, zhang_reports())
        svc.sign(s, app_id, for_application(s, app_id).id)
    assert disburse(demo_settings, app_id, svc) == "paid"
    with unit_of_work(demo_db_url) as s:
        assert (
            s.scalar(select(CreditLine.used_amount).where(CreditLine.customer_id == by_openid(s, ZHANG).id)) == 80_000
        )
