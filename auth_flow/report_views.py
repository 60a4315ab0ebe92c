"""Officers reading the parties' credit reports of an application.

Beside the risk hits an officer sees a summary of each party's report (accounts, overdue
records, the worst overdue, recent queries: the bureau's own counts, the ones the rules
read). A full report opens only for a stated reason (`VIEW_REASONS`), and only when the
party consented and the report came back; each opening and each refusal is a row of
`report_views` (who, when, whose report, why, under which consent), kept for the bank's
supervision. Which officer may open the application at all is the caller's rule (the
console's: the customer's own officer or a supervisor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow.reports import received_reports
from clients.bureau import CreditReport
from lending.parties import ROLE_NAMES, ROLES
from lending.reports import parties
from sunshine.clock import full_time
from sunshine.models import Authorization, LoanApplication, Officer, ReportView

VIEW_REASONS = {"loan_approval": "贷款审批", "post_loan_management": "贷后管理", "dispute": "客户异议处理"}
ACCOUNT_STATUS = {"normal": "正常", "closed": "已结清", "overdue": "逾期"}


class ReportRefused(Exception):
    """The full report is not shown: `message` says why, in the officer's words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PartyReport:
    """One party of the application: their latest authorization and, once received, their report."""

    role: str
    name: str
    authorization: Authorization | None
    report: CreditReport | None

    @property
    def consented(self) -> bool:
        return self.authorization is not None and self.authorization.status == "consented"

    @property
    def issued(self) -> str:
        """When the bureau issued the report, in Beijing time (2026-12-06 17:44)."""
        if self.report is None:
            return ""
        return full_time(datetime.fromisoformat(self.report.issued_at).astimezone(timezone.utc).replace(tzinfo=None))

    @property
    def worst_overdue(self) -> str:
        """The worst the bureau says of this party's repayments, in one phrase."""
        if self.report is None:
            return ""
        summary = self.report.summary
        months = summary.get("max_overdue_months", 0)
        if self.report.has_current_overdue:
            return f"当前逾期{summary.get('current_overdue_amount', 0):,.2f}元，最长逾期{months}个月"
        if self.report.has_overdue_records:
            return f"曾逾期，最长{months}个月，已还清"
        return "无逾期"


def party_reports(session: Session, secret_key: str, application: LoanApplication) -> list[PartyReport]:
    """Every party whose report the product requires, in the order applicant, spouse, guarantor."""
    reports = received_reports(session, secret_key, application.id)
    out = []
    for role, person in parties(session, application).items():
        authorization = session.scalar(
            select(Authorization)
            .where(Authorization.application_id == application.id, Authorization.party_role == role)
            .order_by(Authorization.id.desc())
            .limit(1)
        )
        out.append(PartyReport(role, person.name, authorization, reports.get(role)))
    return out


def open_report(
    session: Session, secret_key: str, application: LoanApplication, officer: Officer, role: str, reason: str
) -> tuple[PartyReport, ReportView]:
    """`role`'s full report for `officer`, for `reason`; the view is recorded. Refused (and the
    refusal recorded) without a reason, for a party the application has not, or whose consent or
    report is missing. The caller commits either way."""
    if role not in ROLES:
        raise ReportRefused("没有这个关系人")

    def refuse(message: str) -> ReportRefused:
        session.add(
            ReportView(
                officer_id=officer.id,
                application_id=application.id,
                party_role=role,
                reason=reason if reason in VIEW_REASONS else "",
                outcome="refused",
                refusal=message,
            )
        )
        return ReportRefused(message)

    if reason not in VIEW_REASONS:
        raise refuse(f"请先选择查阅原因（{'、'.join(VIEW_REASONS.values())}），查阅会被记录")
    party = next((p for p in party_reports(session, secret_key, application) if p.role == role), None)
    if party is None:
        raise refuse(f"这笔申请不需要{ROLE_NAMES[role]}的征信报告")
    consent = party.authorization
    if consent is None or consent.status != "consented":
        raise refuse(f"{ROLE_NAMES[role]}{party.name}还没有同意征信授权，不能查看其征信报告")
    if party.report is None:
        raise refuse(f"{ROLE_NAMES[role]}{party.name}的征信报告还没有返回，暂时不能查看")
    view = ReportView(
        officer_id=officer.id,
        application_id=application.id,
        party_role=role,
        reason=reason,
        outcome="shown",
        authorization_id=consent.id,
        report_id=party.report.report_id,
    )
    session.add(view)
    session.flush()
    return party, view


def views_of(session: Session, application_id: int) -> list[ReportView]:
    """Who opened (or was refused) which report of the application, newest first."""
    return list(
        session.scalars(
            select(ReportView).where(ReportView.application_id == application_id).order_by(ReportView.id.desc())
        )
    )
