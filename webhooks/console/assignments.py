"""Which officer serves which customer (supervisors): one customer by ID number, or every
customer of a village at once (the village file's `officer` column does it on import)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from handoff import admin
from webhooks.console import bp
from webhooks.console.auth import supervisor_required
from webhooks.console.common import officer_id_of, settings


def assignments_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    page = render_template(
        "console/admin_assignments.html",
        villages=admin.villages(g.db, g.officer),
        officers=admin.active_officers(g.db),
        error=error,
    )
    return page, status


@bp.get("/admin/customers")
@supervisor_required
def admin_assignments() -> ResponseReturnValue:
    return assignments_page()


@bp.post("/admin/customers/officer")
@supervisor_required
def admin_assign_customer() -> ResponseReturnValue:
    form = request.form
    try:
        customer = admin.customer_by_id_number(g.db, settings().secret_key, form.get("id_number", ""))
        customer, officer = admin.assign_customer(g.db, g.officer, customer.id, officer_id_of(form.get("officer_id")))
    except admin.AdminError as exc:
        return assignments_page(str(exc), 400)
    flash(f"{customer.name}（{customer.id_masked}）改由{officer.display_name}负责", "ok")
    return redirect(url_for("console.admin_assignments"), code=303)


@bp.post("/admin/villages/officer")
@supervisor_required
def admin_assign_village() -> ResponseReturnValue:
    form = request.form
    village = form.get("village", "")
    try:
        changed = admin.assign_village(g.db, g.officer, village, officer_id_of(form.get("officer_id")))
    except admin.AdminError as exc:
        return assignments_page(str(exc), 400)
    flash(f"{village}：{changed}位客户换了客户经理" if changed else f"{village}的客户已经都由这位客户经理负责", "ok")
    return redirect(url_for("console.admin_assignments"), code=303)
