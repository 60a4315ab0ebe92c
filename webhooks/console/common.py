"""What the console's pages share: settings, the labels officers read, Beijing
time, and a customer's profile beside a hand-off or an application."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app, g
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from handoff import service as handoffs
from lending.applications import AWAITING_SECOND_APPROVAL, STATUS_LABELS
from lending.catalog import CUSTOMER_TYPE_LABELS
from lending.credit_lines import current_line
from lending.loans import LOAN_STATUS_LABELS
from lending.parties import ROLE_NAMES
from lending.repayment import METHOD_LABELS, yuan_text
from lending.tags import labelled
from sunshine.clock import officer_time
from sunshine.jobs import Jobs
from sunshine.models import Authorization, Customer, LoanApplication, Officer
from sunshine.protect import mask_text
from sunshine.settings import Settings
from webhooks.console import bp

HAND_OFF_STATUS = {"open": "待接手", "claimed": "处理中", "closed": "已结束"}
AUTHORIZATION_STATUS = {
    "pending": "待授权",
    "consented": "已授权",
    "expired": "已过期",
    "locked": "已锁定",
    "released": "已解锁（作废）",
    "refused": "已拒绝",
    "superseded": "已作废",
    "revoked": "已撤销",
}


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def officer_id_of(raw: str | None) -> int | None:
    """The officer chosen in a form's select (None: none chosen)."""
    return int(raw) if raw and raw.isdigit() else None


def jobs() -> Jobs:
    """The app's job enqueuer (built by create_app): officers' replies go to the customer's queue."""
    return current_app.extensions["jobs"]


@bp.app_template_filter("beijing")
def beijing(moment: datetime | None) -> str:
    """UTC as stored -> Beijing time, as officers read it."""
    return officer_time(moment)


ACTORS = {
    "customer": "客户",
    "bot": "机器人",
    "system": "系统",
    "auto": "自动审批",
    "risk_rules": "风险规则",
    "core_banking": "核心系统",
}


@bp.app_template_filter("actor")
def actor_name(actor: str) -> str:
    """Who did it, as officers read it: 客户, 机器人, 系统, 自动审批, 核心系统, or the officer's name."""
    if actor in ACTORS:
        return ACTORS[actor]
    if "officer_names" not in g:
        g.officer_names = dict(g.db.execute(select(Officer.username, Officer.display_name)).all())
    username = actor.split(":", 1)[-1]
    return g.officer_names.get(username, username)


@bp.app_template_filter("role")
def role_label(role: str) -> str:
    """applicant / spouse / guarantor as 借款人本人 / 借款人配偶 / 担保人."""
    return ROLE_NAMES.get(role, role)


@bp.app_template_filter("masked")
def masked(text: str) -> str:
    """Free text as officers see it: ID and mobile numbers masked (the stored text is kept whole)."""
    return mask_text(text)


@bp.app_template_filter("status_label")
def status_label(application: LoanApplication) -> str:
    """How officers read an application's status: 待复核 while an approval waits for a supervisor's."""
    if application.status == "under_review" and application.first_approved_by is not None:
        return AWAITING_SECOND_APPROVAL
    return STATUS_LABELS[application.status]


@bp.app_template_filter("fen")
def fen(amount_fen: int) -> str:
    """1,234.56元: an amount kept in fen (loans, instalments)."""
    return yuan_text(amount_fen)


@bp.app_template_filter("iso")
def iso(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).isoformat()


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "reason_labels": handoffs.REASON_LABELS,
        "status_labels": HAND_OFF_STATUS,
        "application_labels": STATUS_LABELS,
        "loan_labels": LOAN_STATUS_LABELS,
        "method_labels": METHOD_LABELS,
    }


def profile(customer: Customer | None) -> dict[str, Any] | None:
    """The customer beside a hand-off or an application: type, credit line, tags,
    applications, recent authorizations."""
    if customer is None:
        return None
    db = g.db
    return {
        "customer": customer,
        "type": CUSTOMER_TYPE_LABELS.get(customer.customer_type, customer.customer_type),
        "line": current_line(db, customer),
        "tags": labelled(db, customer.id),
        "applications": db.scalars(
            select(LoanApplication)
            .where(LoanApplication.customer_id == customer.id)
            .options(joinedload(LoanApplication.product))
            .order_by(LoanApplication.id.desc())
        ).all(),
        "authorizations": db.scalars(
            select(Authorization)
            .where(Authorization.customer_id == customer.id)
            .order_by(Authorization.id.desc())
            .limit(10)
        ).all(),
        "authorization_labels": AUTHORIZATION_STATUS,
    }
