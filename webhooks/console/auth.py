"""Officers' login and logout (rate-limited by user name and by client), the
CSRF token every form and POST carries, and `login_required`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from flask import abort, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from handoff import service as handoffs
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, Officer
from sunshine.protect import constant_time_equal
from sunshine.ratelimit import LOGIN_FAILURES, LOGIN_FAILURES_BY_CLIENT, Limit, Limiter
from webhooks.console import bp
from webhooks.console.common import settings

P = ParamSpec("P")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token", "")
    if not sent or not constant_time_equal(sent, session.get("csrf", "")):
        abort(400, description="表单已过期，请刷新页面后重试")


@bp.context_processor
def _csrf() -> dict[str, Any]:
    return {"csrf": csrf_token()}


def current_officer(db: Session) -> Officer | None:
    """The officer logged in to this session, while their account is active."""
    officer = db.get(Officer, session.get("officer_id", 0))
    return officer if officer is not None and officer.active else None


def login_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """The view runs in a unit of work (`g.db`) with the logged-in officer (`g.officer`);
    without a login, pages go to the login page and the JSON API answers 401."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        with unit_of_work(settings().database_url) as db:
            officer = current_officer(db)
            if officer is None:
                session.pop("officer_id", None)
                if request.blueprint == "console_api":
                    abort(401, description="请先登录")
                return redirect(url_for("console.login", next=request.path))
            if request.method == "POST":
                check_csrf()
            g.db, g.officer = db, officer
            return view(*args, **kwargs)

    return wrapper


@bp.get("/login")
def login() -> ResponseReturnValue:
    return render_template("console/login.html", error=None, next=request.args.get("next", ""))


# A hash to check a password against when the user name is unknown, so that the answer
# takes as long as for a known one (user names cannot be found by timing).
_NO_SUCH_OFFICER = generate_password_hash(secrets.token_hex(16))


def _login_refused(target: str, limit: Limit, wait: int) -> ResponseReturnValue:
    return render_template("console/login.html", next=target, error=limit.message), 429, {"Retry-After": str(wait)}


@bp.post("/login")
def login_submit() -> ResponseReturnValue:
    check_csrf()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    limiter, client = Limiter(settings().redis_url), request.remote_addr or ""
    for limit, who in ((LOGIN_FAILURES, username), (LOGIN_FAILURES_BY_CLIENT, client)):
        wait = limiter.retry_after(limit, who)
        if wait:
            return _login_refused(target, limit, wait)
    with unit_of_work(settings().database_url) as db:
        officer = db.scalar(select(Officer).where(Officer.username == username, Officer.active.is_(True)))
        matches = check_password_hash(officer.password_hash if officer else _NO_SUCH_OFFICER, password)
        if officer is None or not matches:
            limiter.add(LOGIN_FAILURES, username)
            limiter.add(LOGIN_FAILURES_BY_CLIENT, client)
            return render_template("console/login.html", error="用户名或密码不对", next=target), 401
        limiter.clear(LOGIN_FAILURES, username)
        session.clear()
        session.update(officer_id=officer.id, officer_name=officer.display_name, role=officer.role)
        db.add(
            AuditEntry(
                actor=handoffs.actor_of(officer),
                action="console.login",
                subject_type="officer",
                subject_id=str(officer.id),
                detail={},
            )
        )
    # Only back into the console (never an outside address).
    safe = target.startswith("/console") and not target.startswith("//")
    return redirect(target if safe else url_for("console.queue"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    check_csrf()
    session.clear()
    return redirect(url_for("console.login"))
