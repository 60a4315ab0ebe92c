"""Administration of officers' accounts (supervisors): the list, a new officer with a first
password shown once, deactivation, reactivation and a password reset (handoff.admin).

A first password is rendered in the answer to the POST, never put in the session cookie
(signed, not encrypted) nor stored in the clear; the page is not cached (no-store)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from handoff import admin
from sunshine.models import Officer
from webhooks.console import bp
from webhooks.console.auth import supervisor_required


def officers_page(error: str | None = None, form: dict | None = None, status: int = 200) -> ResponseReturnValue:
    rows = admin.officers(g.db, g.officer)
    page = render_template("console/admin_officers.html", rows=rows, roles=admin.ROLES, error=error, form=form or {})
    return page, status


def _first_password(officer: Officer, password: str, created: bool) -> ResponseReturnValue:
    return render_template("console/admin_first_password.html", officer=officer, password=password, created=created)


@bp.get("/admin/officers")
@supervisor_required
def admin_officers() -> ResponseReturnValue:
    return officers_page()


@bp.post("/admin/officers")
@supervisor_required
def admin_officer_create() -> ResponseReturnValue:
    form = request.form
    try:
        officer, password = admin.create_officer(
            g.db,
            g.officer,
            form.get("username", ""),
            form.get("display_name", ""),
            form.get("role", ""),
            form.get("wecom_userid", ""),
        )
    except admin.AdminError as exc:
        return officers_page(str(exc), form.to_dict(), 400)
    return _first_password(officer, password, created=True)


@bp.post("/admin/officers/<int:officer_id>/password")
@supervisor_required
def admin_officer_reset(officer_id: int) -> ResponseReturnValue:
    try:
        officer, password = admin.reset_password(g.db, g.officer, officer_id)
    except admin.AdminError as exc:
        return officers_page(str(exc), status=400)
    return _first_password(officer, password, created=False)


@bp.post("/admin/officers/<int:officer_id>/deactivate")
@supervisor_required
def admin_officer_deactivate(officer_id: int) -> ResponseReturnValue:
    try:
        officer = admin.deactivate(g.db, g.officer, officer_id)
    except admin.AdminError as exc:
        return officers_page(str(exc), status=400)
    flash(f"已停用{officer.display_name}的账号，其登录已全部退出，未结束的会话已退回支行队列", "ok")
    return redirect(url_for("console.admin_officers"), code=303)


@bp.post("/admin/officers/<int:officer_id>/reactivate")
@supervisor_required
def admin_officer_reactivate(officer_id: int) -> ResponseReturnValue:
    try:
        officer = admin.reactivate(g.db, g.officer, officer_id)
    except admin.AdminError as exc:
        return officers_page(str(exc), status=400)
    flash(f"已启用{officer.display_name}的账号", "ok")
    return redirect(url_for("console.admin_officers"), code=303)
