"""Locked authorizations: a party's link locks after too many failed checks and stays locked
(the bot sends no fresh one) until an officer releases it here, on the application's page."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from auth_flow.evidence import Client
from auth_flow.tokens import StepRefused, locked_requests, release_lock
from lending.parties import ROLE_NAMES
from sunshine.models import Authorization, LoanApplication
from webhooks.console import bp
from webhooks.console.applications import _application
from webhooks.console.auth import login_required


def locked_authorizations(application_id: int) -> list[Authorization]:
    application = g.db.get(LoanApplication, application_id)
    return locked_requests(g.db, application) if application is not None else []


@bp.app_context_processor
def _locks() -> dict[str, Any]:
    return {"locked_authorizations": locked_authorizations, "party_role_names": ROLE_NAMES}


@bp.post("/applications/<int:application_id>/authorizations/<int:authorization_id>/release")
@login_required
def release(application_id: int, authorization_id: int) -> ResponseReturnValue:
    """Release a locked authorization of this application (the officer has checked with the party)."""
    application = _application(application_id)
    auth = g.db.get(Authorization, authorization_id)
    back = redirect(url_for("console.application_page", application_id=application.id))
    if auth is None or auth.application_id != application.id:
        flash("这笔申请没有这个授权", "error")
        return back
    client = Client(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))
    try:
        release_lock(g.db, auth, g.officer, client)
    except StepRefused as exc:
        flash(str(exc), "error")
        return back
    g.db.commit()
    flash("已解锁。客户再问助手或您重新生成二维码时，会发新的授权链接", "ok")
    return back
