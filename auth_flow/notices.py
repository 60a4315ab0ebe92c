"""Telling the officer how an authorization goes: each consent (or refusal), the reports'
arrival and a query that finally failed go into the application's history
(lending.applications.note) and to the officer through an `OfficerNotifier`.

The default notifier, `notify_officer`, records the notice (audit entry
`officer.notified`) and, once the transaction commits, queues it for the officer
in WeCom (sunshine.jobs.Jobs.tell_officer).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from auth_flow.progress import missing_consents
from lending.applications import note
from lending.parties import ROLE_NAMES
from sunshine.jobs import Jobs, after_commit, current_settings
from sunshine.models import Authorization, LoanApplication, Officer, audit
from sunshine.protect import mask_name


class OfficerNotifier(Protocol):
    def __call__(self, session: Session, officer_id: int | None, text: str) -> None:
        """Tell officer `officer_id` (None: the customer has no officer) `text`, in `session`'s transaction."""


def notify_officer(session: Session, officer_id: int | None, text: str) -> None:
    """Record the notice and, after the commit, send it to the officer in WeCom."""
    audit(session, "system", "officer.notified", "officer", officer_id if officer_id is not None else "-", text=text)
    officer = session.get(Officer, officer_id) if officer_id is not None else None
    if officer is not None and officer.wecom_userid:
        userid = officer.wecom_userid
        # A failure to queue is logged: the notice is in the audit log and the application's history.
        after_commit(session, lambda: Jobs(current_settings()).tell_officer(userid, text))


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
