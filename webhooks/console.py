"""`/console`: the loan officers' console (login and the hand-off queue)."""
from __future__ import annotations

import secrets
from functools import wraps

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import or_, select
from werkzeug.security import check_password_hash

from sunshine.db import unit_of_work
from sunshine.models import HandOff, Officer, utcnow

bp = Blueprint("console", __name__, url_prefix="/console")


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="表单已过期，请刷新页面后重试")


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if "officer_id" not in session:
            return redirect(url_for("console.login", next=request.path))
        return view(*args, **kwargs)
    return wrapper


@bp.get("/login")
def login():
    return render_template("console/login.html", csrf=_csrf_token(), error=None)


@bp.post("/login")
def login_submit():
    _check_csrf()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    with unit_of_work(current_app.config["SETTINGS"].database_url) as db:
        officer = db.scalar(select(Officer).where(Officer.username == username, Officer.active.is_(True)))
        if officer is None or not check_password_hash(officer.password_hash, password):
            return render_template("console/login.html", csrf=_csrf_token(), error="用户名或密码不对"), 401
        session.clear()
        session.update(officer_id=officer.id, officer_name=officer.display_name, role=officer.role)
    return redirect(url_for("console.queue"))


@bp.post("/logout")
def logout():
    _check_csrf()
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("")
@login_required
def queue():
    """Open hand-offs: an officer sees their own and the branch queue, a supervisor all."""
    with unit_of_work(current_app.config["SETTINGS"].database_url) as db:
        query = select(HandOff).where(HandOff.status != "closed").order_by(HandOff.deadline)
        if session["role"] != "supervisor":
            query = query.where(or_(HandOff.officer_id == session["officer_id"], HandOff.officer_id.is_(None)))
        rows = [{"id": h.id, "customer": h.customer.name if h.customer else "未绑定客户", "reason": h.reason,
                 "status": h.status, "deadline": h.deadline, "overdue": h.deadline < utcnow(),
                 "last_messages": (h.summary or {}).get("last_messages", [])} for h in db.scalars(query)]
    return render_template("console/queue.html", hand_offs=rows, csrf=_csrf_token())
