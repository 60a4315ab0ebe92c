"""auth_flow.report_views: the parties' report summaries beside the rule hits, a full report
opened only for a reason and with the party's consent and report in, every view and every
refusal a row of `report_views`. The reports are the bureau emulator's, fetched over HTTP
after the parties consented through the real flow."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from auth_flow import reports
from auth_flow.report_views import PartyReport, ReportRefused, open_report, party_reports, views_of
from clients.bureau import CreditReport
from emulators.bureau.api import build_report, with_check_digit
from sunshine.db import unit_of_work
from sunshine.models import Authorization, LoanApplication, Officer, ReportView
from tests.conftest import TEST_SECRET
from tests.unit.lending_helpers import service as lending_service
from tests.unit.test_auth_flow import authorize
from tests.unit.test_auth_identity_and_reports import consent_all


def officer(s, username="officer01") -> Officer:
    return s.scalar(select(Officer).where(Officer.username == username))


def views(url) -> list[tuple]:
    with unit_of_work(url) as s:
        return [
            (v.officer.username, v.party_role, v.reason, v.outcome, v.refusal, v.report_id)
            for v in s.scalars(select(ReportView).order_by(ReportView.id))
        ]


@pytest.fixture
def reported(demo_settings, application, bureau, sms):
    """The application once its three parties consented and the bureau's reports came back."""
    url, state = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id = consent_all(settings, application, sms)
    assert reports.fetch_reports(settings, app_id, applications=lending_service()[0]).state == "received"
    return settings, app_id, state


def test_each_party_s_summary_is_the_bureau_s_report(reported):
    settings, app_id, state = reported
    with unit_of_work(settings.database_url) as s:
        got = party_reports(s, TEST_SECRET, s.get(LoanApplication, app_id))
        assert [p.role for p in got] == ["applicant", "spouse", "guarantor"]
        assert all(p.consented for p in got)
        issued = {q["report_id"] for q in state["queries"]}
        assert {p.report.report_id for p in got} == issued
        for p in got:
            expected = state["reports"][p.report.report_id]
            assert p.report.summary == expected["summary"] and p.report.queries == expected["queries"]
    assert views(settings.database_url) == []  # the summaries are not a view of the full report


def test_a_full_report_opens_for_a_reason_and_the_view_is_recorded(reported):
    settings, app_id, _ = reported
    with unit_of_work(settings.database_url) as s:
        party, view = open_report(s, TEST_SECRET, s.get(LoanApplication, app_id), officer(s), "spouse", "loan_approval")
        assert party.name == "李秀英" and party.report.subject["name"] == "李秀英"
        consent = s.scalar(
            select(Authorization).where(
                Authorization.application_id == app_id,
                Authorization.party_role == "spouse",
                Authorization.status == "consented",
            )
        )
        assert view.authorization_id == consent.id and view.at is not None
        report_id = party.report.report_id
    assert views(settings.database_url) == [("officer01", "spouse", "loan_approval", "shown", None, report_id)]
    with unit_of_work(settings.database_url) as s:
        assert [v.party_role for v in views_of(s, app_id)] == ["spouse"]


def test_the_views_cannot_be_changed_or_deleted(reported):
    """On SQLite and, with DATABASE_URL=postgresql://..., PostgreSQL (where TRUNCATE too)."""
    settings, app_id, _ = reported
    with unit_of_work(settings.database_url) as s:
        open_report(s, TEST_SECRET, s.get(LoanApplication, app_id), officer(s), "applicant", "post_loan_management")
    statements = ["UPDATE report_views SET reason = 'dispute'", "DELETE FROM report_views"]
    if settings.database_url.startswith("postgresql"):
        statements.append("TRUNCATE report_views")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with unit_of_work(settings.database_url) as s:
                s.execute(text(statement))
    assert [v[2:4] for v in views(settings.database_url)] == [("post_loan_management", "shown")]


def test_without_a_reason_nothing_opens_and_the_attempt_is_recorded(reported):
    settings, app_id, _ = reported
    for reason in ("", "好奇"):
        with pytest.raises(ReportRefused, match="请先选择查阅原因（贷款审批、贷后管理、客户异议处理）"):
            with unit_of_work(settings.database_url) as s:
                try:
                    open_report(s, TEST_SECRET, s.get(LoanApplication, app_id), officer(s), "applicant", reason)
                except ReportRefused:
                    s.commit()  # as the console does: the refusal is kept
                    raise
    assert [v[1:5] for v in views(settings.database_url)] == [
        ("applicant", "", "refused", "请先选择查阅原因（贷款审批、贷后管理、客户异议处理），查阅会被记录")
    ] * 2


def test_an_unknown_party_is_refused_and_nothing_is_recorded(reported):
    settings, app_id, _ = reported
    with unit_of_work(settings.database_url) as s:
        with pytest.raises(ReportRefused, match="没有这个关系人"):
            open_report(s, TEST_SECRET, s.get(LoanApplication, app_id), officer(s), "neighbour", "loan_approval")
    assert views(settings.database_url) == []


def test_a_party_who_has_not_consented_or_whose_report_is_not_in_is_refused_and_recorded(
    demo_settings, application, bureau, sms
):
    url, _ = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id, tokens, names = application
    authorize(settings.database_url, tokens["applicant"], names["applicant"], sms, settings.redis_url)
    with unit_of_work(settings.database_url) as s:
        app, me = s.get(LoanApplication, app_id), officer(s)
        with pytest.raises(ReportRefused, match="借款人配偶李秀英还没有同意征信授权，不能查看其征信报告"):
            open_report(s, TEST_SECRET, app, me, "spouse", "loan_approval")
        # consented, but the reports are queried only once every party has
        with pytest.raises(ReportRefused, match="借款人本人张建国的征信报告还没有返回"):
            open_report(s, TEST_SECRET, app, me, "applicant", "loan_approval")
        summaries = party_reports(s, TEST_SECRET, app)
        assert [(p.role, p.consented, p.report) for p in summaries] == [
            ("applicant", True, None),
            ("spouse", False, None),
            ("guarantor", False, None),
        ]
    assert [v[1:4] for v in views(settings.database_url)] == [
        ("spouse", "loan_approval", "refused"),
        ("applicant", "loan_approval", "refused"),
    ]


def party_with(seq_digit: str) -> PartyReport:
    """A party whose report is the emulator's for an ID number of the given risk (16th character)."""
    id_number = with_check_digit(f"32108219800101{seq_digit}{seq_digit}1")
    data = {"report_id": "R1", "issued_at": "2026-12-06T09:00:00+00:00", **build_report(id_number, "张三")}
    return PartyReport("applicant", "张三", None, CreditReport.from_json(data))


def test_the_worst_overdue_in_one_phrase():
    assert party_with("0").worst_overdue == "无逾期"
    past = party_with("7")
    assert past.worst_overdue == f"曾逾期，最长{past.report.summary['max_overdue_months']}个月，已还清"
    serious = party_with("9")
    summary = serious.report.summary
    assert serious.worst_overdue == (
        f"当前逾期{summary['current_overdue_amount']:,.2f}元，最长逾期{summary['max_overdue_months']}个月"
    )
    assert PartyReport("spouse", "李四", None, None).worst_overdue == ""


def test_the_report_s_time_is_read_in_beijing_time():
    party = party_with("0")
    assert party.issued == "2026-12-06 17:00"
    assert PartyReport("spouse", "李四", None, None).issued == ""
