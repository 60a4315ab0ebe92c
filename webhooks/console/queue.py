"""The queue: the open hand-offs and the applications awaiting review an officer
(or a supervisor) works through, as a page, its live rows and JSON."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from handoff import service as handoffs
from lending.applications import officer_queue
from sunshine.clock import utcnow
from sunshine.models import ApplicationEvent, AuditEntry, ConversationMessage, Customer, LoanApplication, Officer
from webhooks.console import api, bp
from webhooks.console.auth import login_required, passive
from webhooks.console.common import iso


def _queue_context(officer_filter: int | None) -> dict[str, Any]:
    officer: Officer = g.officer
    supervisor = officer.role == handoffs.SUPERVISOR
    now = utcnow()
    hand_offs = handoffs.queue_rows(g.db, officer, officer_filter if supervisor else None)
    awaiting = officer_queue().options(joinedload(LoanApplication.customer), joinedload(LoanApplication.product))
    owner = officer_filter if supervisor else officer.id  # an officer: their customers' applications
    if owner:
        awaiting = awaiting.join(Customer, Customer.id == LoanApplication.customer_id).where(
            Customer.officer_id == owner
        )
    applications = g.db.scalars(awaiting).all()
    return {
        "hand_offs": hand_offs,
        "applications": applications,
        "now": now,
        "supervisor": supervisor,
        "hand_off_link": url_for("console.queue") + "/hand-offs/",
        "overdue": [h for h in hand_offs if h.deadline < now] if supervisor else [],
        "overdue_applications": [a for a in applications if a.review_deadline and a.review_deadline < now]
        if supervisor
        else [],
    }


def _officer_filter() -> int | None:
    return request.args.get("officer", type=int)


@bp.get("")
@login_required
def queue() -> ResponseReturnValue:
    """Open hand-offs and applications awaiting review: an officer's own and the branch
    queue's; a supervisor's every officer's (or one officer's), with what is overdue."""
    officers = g.db.scalars(select(Officer).where(Officer.active.is_(True)).order_by(Officer.id)).all()
    return render_template(
        "console/queue.html", officers=officers, officer_filter=_officer_filter(), **_queue_context(_officer_filter())
    )


@bp.get("/queue/rows")
@login_required
@passive
def queue_rows() -> ResponseReturnValue:
    """The queue's tables alone, for the page's live refresh."""
    return render_template("console/_queue_rows.html", **_queue_context(_officer_filter()))


@api.get("/changes")
@login_required
@passive
def changes() -> ResponseReturnValue:
    """A version that changes whenever a hand-off, message or application changes (the page polls it)."""
    version = [
        g.db.scalar(select(func.max(col))) or 0 for col in (AuditEntry.id, ConversationMessage.id, ApplicationEvent.id)
    ]
    return jsonify(version=".".join(map(str, version)))


@api.get("/queue")
@login_required
def queue_json() -> ResponseReturnValue:
    """The open hand-offs the officer sees, most urgent first."""
    ctx = _queue_context(_officer_filter())
    return jsonify(
        hand_offs=[
            {
                "id": h.id,
                "customer": h.customer_name,
                "reason": h.reason,
                "reason_label": handoffs.REASON_LABELS[h.reason],
                "status": h.status,
                "priority": h.priority,
                "officer": h.officer_username,
                "deadline": iso(h.deadline),
                "overdue": h.deadline < ctx["now"],
                "openid": h.openid,
            }
            for h in ctx["hand_offs"]
        ],
        applications=[
            {
                "id": a.id,
                "customer": a.customer.name,
                "product": a.product.name,
                "amount": a.amount,
                "deadline": iso(a.review_deadline) if a.review_deadline else None,
                "escalated": a.escalated_at is not None,
                "awaiting_second_approval": a.first_approved_by is not None,
            }
            for a in ctx["applications"]
        ],
    )
