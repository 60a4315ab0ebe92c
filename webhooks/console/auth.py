"""Officers' login and logout, their sessions, first passwords, the CSRF token every
form and POST carries, and `login_required`.

A session is a row in `officer_sessions`; the signed cookie carries only a random id
whose SHA-256 the row keeps. Every request checks the row: ended (logout, password
change), older than CONSOLE_SESSION_MAX_S or unused for CONSOLE_SESSION_IDLE_S, or the
officer deactivated, and the session is over, however the cookie was copied. The
console's background polls do not count as the officer's use (`passive`).

Wrong passwords back off per user name and address (LOGIN_BACKOFF_*), so that a stranger
elsewhere cannot lock an officer out, and are limited per address across user names.
An officer whose password was given to them (`must_change_password`) chooses their own
before anything else. Administration pages are for supervisors (`supervisor_required`).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, ParamSpec

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from handoff import admin
from handoff import service as handoffs
from sunshine.clock import utcnow
from sunshine.db import unit_of_work
from sunshine.models import Officer, OfficerSession, audit
from sunshine.protect import constant_time_equal
from sunshine.ratelimit import LOGIN_FAILURES_BY_CLIENT, Backoff, Limiter
from webhooks.console import bp
from webhooks.console.common import settings

P = ParamSpec("P")
SESSION_KEY = "sid"
# A session's last use is written at most this often (the idle timeout is this coarse).
TOUCH_EVERY = timedelta(seconds=10)
PASSWORD_MIN_LENGTH = 10
# What an officer whose password must change may still reach.
PASSWORD_ENDPOINTS = frozenset({"console.password", "console.password_submit"})


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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_ended(record: OfficerSession) -> str | None:
    """Why this session is over now (expired, idle, deactivated), or None while it is live."""
    s, now = settings(), utcnow()
    if now - record.created_at >= timedelta(seconds=s.console_session_max_s):
        return "expired"
    if now - record.last_seen_at >= timedelta(seconds=s.console_session_idle_s):
        return "idle"
    if not record.officer.active:
        return "deactivated"
    return None


def current_officer(db: Session, touch: bool = True) -> Officer | None:
    """The officer logged in to this session while the session is live and their account
    active; `touch` counts this request as their use of it (not the background polls)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        return None
    record = db.scalar(select(OfficerSession).where(OfficerSession.token_hash == _hash(token)))
    if record is None or record.ended_at is not None:
        return None
    why = _session_ended(record)
    if why is not None:
        record.ended_at, record.end_reason = utcnow(), why
        return None
    if touch and utcnow() - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = utcnow()
    return record.officer


def _start_session(db: Session, officer: Officer) -> None:
    """A new session (and a new CSRF token) for this browser."""
    token, now = secrets.token_urlsafe(32), utcnow()
    db.add(
        OfficerSession(
            token_hash=_hash(token),
            officer_id=officer.id,
            created_at=now,
            last_seen_at=now,
            client_ip=(request.remote_addr or "")[:64],
        )
    )
    session.clear()
    session.update({SESSION_KEY: token, "officer_name": officer.display_name, "role": officer.role})


def passive(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Mark a view the page calls by itself (polls): it does not keep the session alive
    (an unattended console still times out; its script then reloads to the login)."""
    view.passive = True  # type: ignore[attr-defined]
    return view


def login_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """The view runs in a unit of work (`g.db`) with the logged-in officer (`g.officer`);
    without a login, pages go to the login page and the JSON API answers 401. An officer
    who must change their password reaches only the password page until they have."""
    background = getattr(view, "passive", False)

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        with unit_of_work(settings().database_url) as db:
            officer = current_officer(db, touch=not background)
            if officer is None:
                session.pop(SESSION_KEY, None)
                if request.blueprint == "console_api":
                    return {"error": "Unauthorized", "message": "请先登录"}, 401
                return redirect(url_for("console.login", next=request.path))
            if officer.must_change_password and request.endpoint not in PASSWORD_ENDPOINTS:
                if request.blueprint == "console_api":
                    return {"error": "Forbidden", "message": "请先修改初始密码"}, 403
                return redirect(url_for("console.password"))
            if request.method == "POST":
                check_csrf()
            g.db, g.officer = db, officer
            return view(*args, **kwargs)

    return wrapper


def supervisor_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """`login_required`, and only a supervisor reaches the view: anyone else gets 403 with the
    reason, the refusal recorded (handoff.admin.require_supervisor) and nothing changed."""

    @wraps(view)
    def supervisor_only(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        try:
            admin.require_supervisor(g.db, g.officer, request.endpoint or request.path)
        except admin.NotSupervisor as exc:
            return render_template("console/refused.html", message=str(exc)), 403
        return view(*args, **kwargs)

    return login_required(supervisor_only)


# --- logging in and out ------------------------------------------------------------------


def _backoff() -> Backoff:
    s = settings()
    return Backoff(s.redis_url, "login", s.login_backoff_after, s.login_backoff_base_s, s.login_backoff_max_s)


def _wait_message(wait: int) -> str:
    later = f"{math.ceil(wait / 60)}分钟" if wait >= 60 else f"{wait}秒"
    return f"密码错误次数太多，请{later}后再试"


@bp.get("/login")
def login() -> ResponseReturnValue:
    return render_template("console/login.html", error=None, next=request.args.get("next", ""))


# A hash to check a password against when the user name is unknown, so that the answer
# takes as long as for a known one (user names cannot be found by timing).
_NO_SUCH_OFFICER = generate_password_hash(secrets.token_hex(16))


def _refused(target: str, message: str, wait: int) -> ResponseReturnValue:
    return render_template("console/login.html", next=target, error=message), 429, {"Retry-After": str(wait)}


@bp.post("/login")
def login_submit() -> ResponseReturnValue:
    check_csrf()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    limiter, backoff, client = Limiter(settings().redis_url), _backoff(), request.remote_addr or ""
    who = f"{username}|{client}"  # this user name from this address only
    wait = backoff.retry_after(who)
    if wait:
        return _refused(target, _wait_message(wait), wait)
    wait = limiter.retry_after(LOGIN_FAILURES_BY_CLIENT, client)
    if wait:
        return _refused(target, LOGIN_FAILURES_BY_CLIENT.message, wait)
    with unit_of_work(settings().database_url) as db:
        officer = db.scalar(select(Officer).where(Officer.username == username, Officer.active.is_(True)))
        matches = check_password_hash(officer.password_hash if officer else _NO_SUCH_OFFICER, password)
        if officer is None or not matches:
            backoff.fail(who)
            limiter.add(LOGIN_FAILURES_BY_CLIENT, client)
            return render_template("console/login.html", error="用户名或密码不对", next=target), 401
        backoff.clear(who)
        _start_session(db, officer)
        audit(db, handoffs.actor_of(officer), "console.login", "officer", officer.id)
        if officer.must_change_password:
            return redirect(url_for("console.password"))
    # Only back into the console (never an outside address).
    safe = target.startswith("/console") and not target.startswith("//")
    return redirect(target if safe else url_for("console.home"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    check_csrf()
    token = session.get(SESSION_KEY)
    if isinstance(token, str) and token:
        with unit_of_work(settings().database_url) as db:
            db.execute(
                update(OfficerSession)
                .where(OfficerSession.token_hash == _hash(token), OfficerSession.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason="logout")
            )
    session.clear()
    return redirect(url_for("console.login"))


# --- choosing a password -----------------------------------------------------------------


def password_problem(officer: Officer, current: str, new: str, repeated: str) -> str | None:
    """What is wrong with this password change (Chinese), or None when it may be made."""
    if not check_password_hash(officer.password_hash, current):
        return "当前密码不对"
    if new != repeated:
        return "两次输入的新密码不一样"
    if len(new) < PASSWORD_MIN_LENGTH:
        return f"新密码至少要{PASSWORD_MIN_LENGTH}位"
    if officer.username.lower() in new.lower():
        return "新密码不能包含用户名"
    if check_password_hash(officer.password_hash, new):
        return "新密码不能和原来的密码一样"
    return None


def _password_page(error: str | None, status: int = 200) -> ResponseReturnValue:
    forced = g.officer.must_change_password
    page = render_template("console/password.html", error=error, forced=forced, min_length=PASSWORD_MIN_LENGTH)
    return page, status


@bp.get("/password")
@login_required
def password() -> ResponseReturnValue:
    return _password_page(None)


@bp.post("/password")
@login_required
def password_submit() -> ResponseReturnValue:
    """Change the password: every session of the officer ends (copies of this one's cookie
    too), and this browser gets a new one."""
    officer: Officer = g.officer
    backoff, who = _backoff(), f"{officer.username}|{request.remote_addr or ''}"
    wait = backoff.retry_after(who)
    if wait:
        return _password_page(_wait_message(wait), 429)
    form = request.form
    problem = password_problem(officer, form.get("current", ""), form.get("new", ""), form.get("repeat", ""))
    if problem is not None:
        if problem == "当前密码不对":
            backoff.fail(who)
        return _password_page(problem, 400)
    officer.password_hash = generate_password_hash(form["new"])
    officer.must_change_password, officer.password_changed_at = False, utcnow()
    ended = admin.end_sessions(g.db, officer, "password_changed")
    _start_session(g.db, officer)
    audit(g.db, handoffs.actor_of(officer), "console.password_changed", "officer", officer.id, sessions_ended=ended)
    flash("密码已修改，其他地方的登录已全部退出", "ok")
    return redirect(url_for("console.queue"))
