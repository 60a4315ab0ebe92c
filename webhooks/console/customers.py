"""Customers: the search (name, masked ID number, phone), a customer's page (household, credit
line and its history, tags, applications, loans, authorizations, conversations), and tags set
and removed by officers. Officers reach their own customers; supervisors everyone's."""

from __future__ import annotations

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from handoff import service as handoffs
from lending import loans
from lending.catalog import CUSTOMER_TYPE_LABELS
from lending.credit_lines import CHANGE_SOURCES, current_line, line_history
from lending.customers import SearchRefused, search
from lending.tags import SOURCE_LABELS, TagRefused, catalogue, refuse, remove_tag, set_tag, tags_of
from sunshine.models import Authorization, ConversationMessage, Customer, FamilyMember, HandOff, LoanApplication, audit
from webhooks.console import bp
from webhooks.console.auth import login_required
from webhooks.console.common import AUTHORIZATION_STATUS, settings

MEMBER_ROLES = {"spouse": "配偶", "child": "子女", "parent": "父母", "sibling": "兄弟姐妹"}
NOT_YOURS = "这是其他客户经理的客户，只有主管可以查看和修改"


def _officer_scope() -> int | None:
    """Whose customers the logged-in officer reaches: their own, or (a supervisor) everyone's."""
    return None if g.officer.role == handoffs.SUPERVISOR else g.officer.id


def _customer(customer_id: int) -> Customer | Response:
    """The customer, or the page refusing it (404; 403 for another officer's customer, recorded)."""
    customer = g.db.get(Customer, customer_id)
    if customer is None:
        return Response("404 没有这位客户", 404, content_type="text/plain; charset=utf-8")
    scope = _officer_scope()
    if scope is not None and customer.officer_id != scope:
        # Recorded (the unit of work commits the answer's records): who tried whose customer.
        audit(
            g.db, f"officer:{g.officer.username}", "customer.access_refused", "customer", customer.id, path=request.path
        )
        return Response(f"403 {NOT_YOURS}", 403, content_type="text/plain; charset=utf-8")
    return customer


@bp.get("/customers")
@login_required
def customers() -> ResponseReturnValue:
    query = request.args.get("q", "").strip()[:64]
    result, error = None, None
    if query:
        try:
            result = search(g.db, settings().secret_key, query, _officer_scope())
        except SearchRefused as exc:
            error = str(exc)
    return render_template(
        "console/customers.html", query=query, result=result, error=error, types=CUSTOMER_TYPE_LABELS
    ), (400 if error else 200)


@bp.get("/customers/<int:customer_id>")
@login_required
def customer_page(customer_id: int) -> ResponseReturnValue:
    customer = _customer(customer_id)
    if isinstance(customer, Response):
        return customer
    return _render(customer)


def _render(customer: Customer, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    db = g.db
    as_head = db.scalars(
        select(FamilyMember)
        .where(FamilyMember.customer_id == customer.id)
        .order_by(FamilyMember.id)
        .options(joinedload(FamilyMember.member))
    ).all()
    heads = db.execute(
        select(FamilyMember.role, Customer)
        .join(Customer, Customer.id == FamilyMember.customer_id)
        .where(FamilyMember.member_id == customer.id)
    ).all()
    hand_offs = db.execute(
        select(HandOff, func.count(ConversationMessage.id))
        .outerjoin(ConversationMessage, ConversationMessage.hand_off_id == HandOff.id)
        .where(HandOff.customer_id == customer.id)
        .group_by(HandOff.id)
        .order_by(HandOff.id.desc())
    ).all()
    return (
        render_template(
            "console/customer.html",
            c=customer,
            error=error,
            type=CUSTOMER_TYPE_LABELS.get(customer.customer_type, customer.customer_type),
            household=[(MEMBER_ROLES.get(m.role, m.role), m.member) for m in as_head]
            + [(f"户主（本人是其{MEMBER_ROLES.get(role, role)}）", head) for role, head in heads],
            line=current_line(db, customer),
            history=line_history(db, customer.id),
            change_sources=CHANGE_SOURCES,
            tags=tags_of(db, customer.id),
            catalogue=catalogue(),
            tag_sources=SOURCE_LABELS,
            applications=db.scalars(
                select(LoanApplication)
                .where(LoanApplication.customer_id == customer.id)
                .options(joinedload(LoanApplication.product))
                .order_by(LoanApplication.id.desc())
            ).all(),
            loans=[loans.schedule_of(loan) for loan in loans.loans_of(db, customer.id)],
            authorizations=db.scalars(
                select(Authorization)
                .where(or_(Authorization.customer_id == customer.id, Authorization.party_customer_id == customer.id))
                .order_by(Authorization.id.desc())
            ).all(),
            authorization_labels=AUTHORIZATION_STATUS,
            hand_offs=hand_offs,
            apply_url=url_for("console.apply_form", customer_id=customer.id),
        ),
        status,
    )


@bp.post("/customers/<int:customer_id>/tags")
@login_required
def add_tag(customer_id: int) -> ResponseReturnValue:
    """An officer tags the customer (`tag`: kind=value from the catalogue); a tag outside it is
    refused with the reason, recorded, and nothing changes."""
    customer = _customer(customer_id)
    if isinstance(customer, Response):
        return customer
    kind, _, value = request.form.get("tag", "").partition("=")
    actor = f"officer:{g.officer.username}"
    try:
        tag = set_tag(g.db, customer.id, kind, value, actor)
    except TagRefused as exc:
        refuse(g.db, actor, customer.id, kind, value, str(exc))
        return _render(customer, error=str(exc), status=400)
    flash(f"已加标签：{catalogue().label(tag.kind)}：{tag.value}", "ok")
    return redirect(url_for("console.customer_page", customer_id=customer.id) + "#tags")


@bp.post("/customers/<int:customer_id>/tags/remove")
@login_required
def drop_tag(customer_id: int) -> ResponseReturnValue:
    customer = _customer(customer_id)
    if isinstance(customer, Response):
        return customer
    kind, value = request.form.get("kind", ""), request.form.get("value", "")
    if remove_tag(g.db, customer.id, kind, value, f"officer:{g.officer.username}"):
        flash(f"已去掉标签：{catalogue().label(kind)}：{value}", "ok")
    else:
        flash("这位客户没有这个标签（可能已被别人去掉）", "error")
    return redirect(url_for("console.customer_page", customer_id=customer.id) + "#tags")
