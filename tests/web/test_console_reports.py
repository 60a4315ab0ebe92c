"""The parties' credit reports on the console's application page: the summaries beside the
risk hits, a full report opened with a reason (recorded), refusals (no reason, no consent,
another officer's application) that show nothing, through Flask's test client on a real
database and Redis, with the bureau emulator's reports fetched after real consents."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from sunshine.db import unit_of_work
from sunshine.models import Customer, LoanApplication, Officer, ReportView
from sunshine.protect import unseal
from tests.conftest import TEST_SECRET
from tests.unit.test_auth_flow import authorize
from tests.unit.test_report_views import reported  # noqa: F401  the fixture: reports in for every party
from tests.web.test_console_officers import login  # noqa: F401  the fixture: a logged-in console client


def rows(url) -> list[tuple]:
    with unit_of_work(url) as s:
        return [
            (v.officer.username, v.party_role, v.reason, v.outcome)
            for v in s.scalars(select(ReportView).order_by(ReportView.id))
        ]


def open_report(client, app_id, role, reason):
    return client.post(
        f"/console/applications/{app_id}/reports",
        data={"role": role, "reason": reason, "csrf": client.csrf},
        follow_redirects=True,
    )


def test_the_summary_beside_the_rule_hits_and_a_full_report_for_a_reason(login, reported):  # noqa: F811
    settings, app_id, state = reported
    officer = login()
    page = officer.get(f"/console/applications/{app_id}").data.decode()
    card = page[page.index('id="credit-reports"') :]
    assert page.index("审批时限") < page.index('id="credit-reports"') < page.index('id="decision"')
    for role, name in (("applicant", "张建国"), ("spouse", "李秀英"), ("guarantor", "王春华")):
        assert f'<tr data-party="{role}">' in card and name in card
    summaries = [r["summary"] for r in state["reports"].values()]
    for summary in summaries:
        assert f"近1个月{summary['queries_last_1m']}次" in card and f"近6个月{summary['queries_last_6m']}次" in card
    assert card.count('<option value="loan_approval">贷款审批</option>') == 3 and "客户异议处理" in card
    assert "查阅记录" not in card and rows(settings.database_url) == []

    resp = open_report(officer, app_id, "guarantor", "loan_approval")
    assert resp.status_code == 200
    report = resp.data.decode()
    issued = next(r for r in state["reports"].values() if r["subject"]["name"] == "王春华")
    assert "个人征信报告：担保人 王春华" in report and issued["report_id"] in report
    assert "本次查阅已记录：李经理" in report and "查阅原因：贷款审批" in report
    for section in ('id="loans"', 'id="cards"', 'id="overdue-records"', 'id="queries"'):
        assert section in report
    for q in issued["queries"]:
        assert f"<td>{q['date']}</td><td>{q['institution']}</td>" in report
    with unit_of_work(settings.database_url) as s:
        guarantor = s.scalar(select(Customer).where(Customer.name == "王春华"))
        whole_id = unseal(TEST_SECRET, guarantor.id_sealed)
    assert whole_id not in report and whole_id[-4:] in report  # masked, as everywhere in the console
    assert resp.headers["Cache-Control"] == "no-store"
    assert rows(settings.database_url) == [("officer01", "guarantor", "loan_approval", "shown")]
    history = officer.get(f"/console/applications/{app_id}").data.decode()
    views = history[history.index('id="report-views"') :]
    assert "李经理" in views and "担保人" in views and "已查看" in views


def test_without_a_reason_nothing_is_shown_and_the_attempt_is_recorded(login, reported):  # noqa: F811
    settings, app_id, _ = reported
    officer = login()
    resp = open_report(officer, app_id, "applicant", "")
    page = resp.data.decode()
    assert "请先选择查阅原因（贷款审批、贷后管理、客户异议处理），查阅会被记录" in page
    assert "个人征信报告" not in page and 'id="loans"' not in page
    assert rows(settings.database_url) == [("officer01", "applicant", "", "refused")]
    assert "被拒绝：请先选择查阅原因" in page and "未选原因" in page


def test_another_officers_application_is_403_and_a_supervisor_may(login, reported):  # noqa: F811
    settings, app_id, _ = reported
    with unit_of_work(settings.database_url) as s:
        s.get(LoanApplication, app_id).customer.officer_id = s.scalar(
            select(Officer.id).where(Officer.username == "supervisor01")
        )
    officer = login()
    resp = officer.post(
        f"/console/applications/{app_id}/reports",
        data={"role": "applicant", "reason": "loan_approval", "csrf": officer.csrf},
    )
    assert resp.status_code == 403 and "个人征信报告" not in resp.data.decode()
    assert rows(settings.database_url) == []
    supervisor = login("supervisor01")
    assert "本次查阅已记录：周主任" in open_report(supervisor, app_id, "applicant", "dispute").data.decode()
    assert rows(settings.database_url) == [("supervisor01", "applicant", "dispute", "shown")]


def test_a_party_who_has_not_consented_is_refused_with_nothing_shown(
    login,  # noqa: F811
    demo_settings,
    application,
    bureau,
    sms,
):
    url, _ = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id, tokens, names = application
    authorize(settings.database_url, tokens["applicant"], names["applicant"], sms, settings.redis_url)
    with unit_of_work(settings.database_url) as s:
        s.get(LoanApplication, app_id).status = "under_review"  # an officer looking at it before every consent
    officer = login()
    card = officer.get(f"/console/applications/{app_id}").data.decode()
    card = card[card.index('id="credit-reports"') :]
    assert "已授权，征信报告尚未返回" in card and "待授权：授权同意并返回报告后才能查看" in card
    assert 'name="reason"' not in card  # nothing to open yet
    page = open_report(officer, app_id, "spouse", "loan_approval").data.decode()
    assert "借款人配偶李秀英还没有同意征信授权，不能查看其征信报告" in page and "个人征信报告" not in page
    page = open_report(officer, app_id, "applicant", "loan_approval").data.decode()
    assert "借款人本人张建国的征信报告还没有返回，暂时不能查看" in page
    assert rows(settings.database_url) == [
        ("officer01", "spouse", "loan_approval", "refused"),
        ("officer01", "applicant", "loan_approval", "refused"),
    ]
