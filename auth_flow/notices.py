"""Telling the officer how an authorization goes: each consent (or refusal), the reports'
arrival and a query that finally failed go into the application's history
(lending.applications.note) and to the officer through an `OfficerNotifier`.

The default notifier, `notify_officer` (lending.notify), records the notice (audit entry
`officer.notified`) and, once the transaction commits, queues it for the officer
in WeCom (sunshine.jobs.Jobs.tell_officer).

The applicant hears in WeChat (`tell_applicant`: audit entry `customer.notified`, then
sunshine.jobs.Jobs.notice after the commit) when a party's link locks, a party declines
the face check or refuses the query. Each party gets their request's link in WeChat
(`send_requests`), whoever issued it: the bot, or an officer entering the application.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from auth_flow.progress import missing_consents
from auth_flow.qr import authorization_url
from lending.applications import Notifier, note
from lending.notify import OfficerNotifier, notify_officer
from lending.parties import LABELS, ROLE_NAMES
from sunshine.jobs import Jobs, after_commit, current_settings
from sunshine.models import Authorization, Customer, LoanApplication, audit
from sunshine.protect import mask_name

if TYPE_CHECKING:
    from auth_flow.tokens import IssuedAuthorization


def party_label(role: str, name: str) -> str:
    """Who a party is, as the applicant reads it: 您本人, 您的配偶李**."""
    return "您本人" if role == "applicant" else f"您的{LABELS[role]}{mask_name(name)}"


def tell_applicant(session: Session, applicant: Customer, text: str, application_id: int | None = None) -> None:
    """Record a notice to the applicant and, after the commit, send it in WeChat by the first channel
    that takes it (conversation.notices; none bound: recorded only)."""
    openid = applicant.wechat_openid
    audit(session, "system", "customer.notified", "customer", applicant.id, text=text, sent=bool(openid))
    if openid:
        after_commit(
            session,
            lambda: Jobs(current_settings()).notice(openid, text, "authorization_progress", application_id),
        )


def validity(ttl: timedelta) -> str:
    """How long a link works, as people read it: 30分钟内有效, 24小时内有效."""
    minutes = int(ttl.total_seconds() // 60)
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60}小时内有效"
    return f"{max(minutes, 1)}分钟内有效"


def request_text(applicant: Customer, role: str, url: str, ttl: timedelta) -> str:
    """A party's authorization request as they read it in WeChat."""
    if role == "applicant":
        return f"您的贷款申请需要您本人授权查询征信。请本人打开链接核对、刷脸、同意，{validity(ttl)}：\n{url}"
    return (
        f"{mask_name(applicant.name)}申请贷款，需要您授权查询征信（{LABELS[role]}）。"
        f"请本人打开链接核对、刷脸、同意，{validity(ttl)}：\n{url}"
    )


def send_requests(
    session: Session,
    application: LoanApplication,
    issued: Iterable[IssuedAuthorization],
    notify: Notifier,
    public_base_url: str,
    ttl: timedelta,
) -> list[str]:
    """Send each party their request's link in WeChat once the transaction commits, through
    `notify` (lending.notify.WeChatNotifier: a customer-service message inside the 48-hour window,
    else a subscription or template message, else the officer). Returns the roles sent; a party
    without WeChat gets nothing here (their QR code, or the mini-program's list of requests)."""
    sent = []
    applicant = application.customer
    for item in issued:
        auth = item.authorization
        party = session.get(Customer, auth.party_customer_id)
        if party is None or not party.wechat_openid:
            continue
        url = authorization_url(public_base_url, item.token)
        details = {
            "kind": "authorization_request",
            "application_id": application.id,
            "link": url,
            "fields": {"applicant": mask_name(applicant.name), "party": f"{LABELS[auth.party_role]}征信查询授权"},
        }
        text = request_text(applicant, auth.party_role, url, ttl)
        after_commit(session, partial(notify, party.wechat_openid, text, **details), key=("auth_flow.request", auth.id))
        sent.append(auth.party_role)
    return sent


def locked_text(auth: Authorization) -> str:
    app = f"（申请编号{auth.application_id}）" if auth.application_id else ""
    return (
        f"{party_label(auth.party_role, auth.party_name)}的征信授权{app}因核验失败次数过多已锁定，"
        "链接已失效。客户经理已收到通知，核实后会解锁；解锁前不会再发新链接。"
    )


def party_declined(session: Session, auth: Authorization, what: str) -> None:
    """A party declined the face check (`what` = "biometric") or refused the query ("consent"):
    the applicant is told, and the application's history records it."""
    applicant = session.get(Customer, auth.customer_id)
    who = party_label(auth.party_role, auth.party_name)
    if what == "biometric":
        text = f"{who}没有同意人脸核验，无法在线完成征信授权。可以一起到网点当面办理，或联系客户经理。"
    else:
        text = f"{who}拒绝了征信查询授权，这笔申请暂时无法继续审批。如有疑问请联系客户经理。"
    if applicant is not None:
        tell_applicant(session, applicant, text, auth.application_id)
    if what == "biometric" and auth.application_id:
        note(
            session,
            auth.application_id,
            "system",
            "biometric_declined",
            f"{ROLE_NAMES[auth.party_role]}{mask_name(auth.party_name)}没有同意人脸核验",
            authorization_id=auth.id,
        )


def _tell(
    session: Session, application: LoanApplication, action: str, text: str, notify: OfficerNotifier | None, **detail
) -> None:
    note(session, application.id, "system", action, text, **detail)
    (notify or notify_officer)(session, application.customer.officer_id, text)


def consent_recorded(session: Session, auth: Authorization, notify: OfficerNotifier | None = None) -> None:
    """A party consented to (or refused) the query of their report."""
    application = session.get(LoanApplication, auth.application_id) if auth.application_id else None
    if application is None:  # an authorization outside any application: nobody to tell
        return
    who = f"{ROLE_NAMES[auth.party_role]}{mask_name(auth.party_name)}"
    if auth.status == "consented":
        missing = missing_consents(session, application)
        text = f"申请{application.id}：{who}已完成征信查询授权。" + (
            f"还需：{'、'.join(ROLE_NAMES[r] for r in missing)}。" if missing else "全部授权完成，正在查询征信报告。"
        )
        _tell(
            session,
            application,
            "authorization_consented",
            text,
            notify,
            party_role=auth.party_role,
            authorization_id=auth.id,
        )
    else:
        _tell(
            session,
            application,
            "authorization_refused",
            f"申请{application.id}：{who}拒绝了征信查询授权，请与客户联系。",
            notify,
            party_role=auth.party_role,
            authorization_id=auth.id,
        )


def reports_received(
    session: Session, application: LoanApplication, report_ids: dict[str, str], notify: OfficerNotifier | None = None
) -> None:
    roles = "、".join(ROLE_NAMES[r] for r in report_ids)
    _tell(
        session,
        application,
        "credit_reports_received",
        f"申请{application.id}：征信报告已返回（{roles}），已交审批。",
        notify,
        reports=report_ids,
    )


def reports_failed(
    session: Session, application: LoanApplication, failed: dict[str, str], notify: OfficerNotifier | None = None
) -> None:
    why = "；".join(f"{ROLE_NAMES[r]}：{reason}" for r, reason in failed.items())
    _tell(
        session,
        application,
        "credit_reports_failed",
        f"申请{application.id}：征信报告查询失败（{why}）。申请暂停在待授权，需重新查询。",
        notify,
        failed=failed,
    )
