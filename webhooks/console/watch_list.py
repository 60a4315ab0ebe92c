"""The watch list (关注名单, supervisors): who is on it and why, a person added by ID number
with a reason, removed with a reason; the risk rules intercept their applications
(lending.risk's `watch_list` check). The recent changes come from the audit log."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from handoff import admin
from sunshine.models import AuditEntry, Customer
from webhooks.console import bp
from webhooks.console.auth import supervisor_required
from webhooks.console.common import settings

RECENT_CHANGES = 20


def watch_list_page(error: str | None = None, form: dict | None = None, status: int = 200) -> ResponseReturnValue:
    entries = admin.watch_list(g.db, g.officer)
    names = dict(
        g.db.execute(
            select(Customer.id_fingerprint, Customer.name).where(
                Customer.id_fingerprint.in_([e.id_fingerprint for e in entries])
            )
        ).all()
    )
    changes = g.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_type == "watch_list")
        .order_by(AuditEntry.id.desc())
        .limit(RECENT_CHANGES)
    ).all()
    page = render_template(
        "console/admin_watch_list.html", entries=entries, names=names, changes=changes, error=error, form=form or {}
    )
    return page, status


@bp.get("/admin/watch-list")
@supervisor_required
def admin_watch_list() -> ResponseReturnValue:
    return watch_list_page()


@bp.post("/admin/watch-list")
@supervisor_required
def admin_watch_add() -> ResponseReturnValue:
    form = request.form
    try:
        entry = admin.add_to_watch_list(
            g.db, g.officer, settings().secret_key, form.get("id_number", ""), form.get("reason", "")
        )
    except admin.AdminError as exc:
        # The ID number typed is not shown again (the page is not cached, but a screen is seen).
        return watch_list_page(str(exc), {"reason": form.get("reason", "")}, 400)
    flash(f"已将 {entry.id_masked} 加入关注名单，其贷款申请将被风险规则拦截", "ok")
    return redirect(url_for("console.admin_watch_list"), code=303)


@bp.post("/admin/watch-list/<int:entry_id>/remove")
@supervisor_required
def admin_watch_remove(entry_id: int) -> ResponseReturnValue:
    try:
        masked = admin.remove_from_watch_list(g.db, g.officer, entry_id, request.form.get("reason", ""))
    except admin.AdminError as exc:
        return watch_list_page(str(exc), status=400)
    flash(f"已将 {masked} 移出关注名单", "ok")
    return redirect(url_for("console.admin_watch_list"), code=303)
