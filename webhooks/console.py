"""`/console`: the loan officers' console, and its JSON under `/api/console`.

Pages are rendered on the server (Jinja escapes everything a customer or
officer wrote); a little JavaScript (static/console.js) counts deadlines down,
polls for changes and sends replies without reloading. Routes parse, call the
hand-off and lending services, and render; sending happens in the background
jobs (handoff.jobs), after the records are committed.
"""

from __future__ import annotations

import base64
import logging
import secrets
from datetime import datetime, timedelta, timezone
from functools import wraps

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from auth_flow.qr import authorization_url, png
from auth_flow.service import issue_for_application
from clients.rasa import RasaClient, RasaUnavailable
from handoff import service as handoffs
from lending.applications import STATUS_LABELS, Applications, LendingError, officer_queue
from lending.catalog import CUSTOMER_TYPE_LABELS
from lending.credit_lines import current_line
from lending.parties import ROLE_NAMES
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs as HandOffJobs
from sunshine.models import (
    ApplicationEvent,
    AuditEntry,
    Authorization,
    ConversationMessage,
    Customer,
    HandOff,
    LoanApplication,
    Officer,
    utcnow,
)
from sunshine.protect import constant_time_equal
from sunshine.ratelimit import LOGIN_FAILURES, LOGIN_FAILURES_BY_CLIENT, Limit, Limiter

log = logging.getLogger(__name__)
_BEIJING = timezone(timedelta(hours=8), "CST")
bp = Blueprint("console", __name__, url_prefix="/console", static_folder="static", static_url_path="/static")
api = Blueprint("console_api", __name__, url_prefix="/api/console")

HAND_OFF_STATUS = {"open": "待接手", "claimed": "处理中", "closed": "已结束"}
MESSAGE_STATUS = {
    "received": "",
    "queued": "发送中",
    "sent": "已送达",
    "template_queued": "模板消息发送中",
    "template_sent": "已用模板消息送达",
    "undelivered": "未送达",
}
AUTHORIZATION_STATUS = {
    "pending": "待授权",
    "consented": "已授权",
    "expired": "已过期",
    "locked": "已锁定",
    "revoked": "已撤销",
}
TAG_LABELS = {"occupation": "职业", "income_band": "年收入", "assets": "资产"}
UNDELIVERED_HINTS = {
    45015: "客户超过48小时没有发消息，微信不允许直接回复；可以改用模板消息发送",
    45047: "客户未回复前发的消息太多，微信暂不允许再发；可以稍后重发",
}


def _settings():
    return current_app.config["SETTINGS"]


# -- sessions, CSRF, roles -------------------------------------------------------


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token", "")
    if not sent or not constant_time_equal(sent, session.get("csrf", "")):
        abort(400, description="表单已过期，请刷新页面后重试")


def _officer(db) -> Officer | None:
    officer = db.get(Officer, session.get("officer_id", 0))
    return officer if officer is not None and officer.active else None


def login_required(view):
    """The view runs in a unit of work (`g.db`) with the logged-in officer (`g.officer`);
    without a login, pages go to the login page and the JSON API answers 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        with unit_of_work(_settings().database_url) as db:
            officer = _officer(db)
            if officer is None:
                session.pop("officer_id", None)
                if request.blueprint == "console_api":
                    abort(401, description="请先登录")
                return redirect(url_for("console.login", next=request.path))
            if request.method == "POST":
                _check_csrf()
            g.db, g.officer = db, officer
            return view(*args, **kwargs)

    return wrapper


def _hand_off(hand_off_id: int) -> HandOff:
    hand_off = g.db.get(HandOff, hand_off_id)
    if hand_off is None:
        abort(404, description="没有这个会话")
    try:
        handoffs.check_access(g.officer, hand_off)
    except handoffs.NotAllowed as exc:
        abort(403, description=str(exc))
    return hand_off


@bp.app_template_filter("beijing")
def beijing(moment: datetime | None) -> str:
    """UTC as stored -> Beijing time, as officers read it."""
    if moment is None:
        return ""
    local = moment.replace(tzinfo=timezone.utc).astimezone(_BEIJING)
    return local.strftime("%m-%d %H:%M")


@bp.app_template_filter("iso")
def iso(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).isoformat()


@bp.context_processor
def _page_context():
    return {
        "csrf": _csrf_token(),
        "reason_labels": handoffs.REASON_LABELS,
        "status_labels": HAND_OFF_STATUS,
        "application_labels": STATUS_LABELS,
        "message_labels": MESSAGE_STATUS,
    }


# -- login -----------------------------------------------------------------------


@bp.get("/login")
def login():
    return render_template("console/login.html", error=None, next=request.args.get("next", ""))


# A hash to check a password against when the user name is unknown, so that the answer
# takes as long as for a known one (user names cannot be found by timing).
_NO_SUCH_OFFICER = generate_password_hash(secrets.token_hex(16))


def _login_refused(target: str, limit: Limit, wait: int):
    return render_template("console/login.html", next=target, error=limit.message), 429, {"Retry-After": str(wait)}


@bp.post("/login")
def login_submit():
    _check_csrf()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    limiter, client = Limiter(_settings().redis_url), request.remote_addr or ""
    for limit, who in ((LOGIN_FAILURES, username), (LOGIN_FAILURES_BY_CLIENT, client)):
        wait = limiter.retry_after(limit, who)
        if wait:
            return _login_refused(target, limit, wait)
    with unit_of_work(_settings().database_url) as db:
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
def logout():
    _check_csrf()
    session.clear()
    return redirect(url_for("console.login"))


# -- the queue -------------------------------------------------------------------


def _queue_context(officer_filter: int | None) -> dict:
    officer: Officer = g.officer
    supervisor = officer.role == handoffs.SUPERVISOR
    now = utcnow()
    hand_offs = handoffs.queue_rows(g.db, officer, officer_filter if supervisor else None)
    applications = officer_queue().options(joinedload(LoanApplication.customer), joinedload(LoanApplication.product))
    owner = officer_filter if supervisor else officer.id  # an officer: their customers' applications
    if owner:
        applications = applications.join(Customer, Customer.id == LoanApplication.customer_id).where(
            Customer.officer_id == owner
        )
    applications = g.db.scalars(applications).all()
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
def queue():
    """Open hand-offs and applications awaiting review: an officer's own and the branch
    queue's; a supervisor's every officer's (or one officer's), with what is overdue."""
    officers = g.db.scalars(select(Officer).where(Officer.active.is_(True)).order_by(Officer.id)).all()
    return render_template(
        "console/queue.html", officers=officers, officer_filter=_officer_filter(), **_queue_context(_officer_filter())
    )


@bp.get("/queue/rows")
@login_required
def queue_rows():
    """The queue's tables alone, for the page's live refresh."""
    return render_template("console/_queue_rows.html", **_queue_context(_officer_filter()))


@api.get("/changes")
@login_required
def changes():
    """A version that changes whenever a hand-off, message or application changes (the page polls it)."""
    version = [
        g.db.scalar(select(func.max(col))) or 0 for col in (AuditEntry.id, ConversationMessage.id, ApplicationEvent.id)
    ]
    return jsonify(version=".".join(map(str, version)))


@api.get("/queue")
@login_required
def queue_json():
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
            }
            for a in ctx["applications"]
        ],
    )


# -- one conversation ------------------------------------------------------------


def _bot_history(openid: str) -> list[dict] | None:
    try:
        events = RasaClient(_settings().rasa_url).history(openid, timeout=2.0)
    except RasaUnavailable:
        return None
    return [
        dict(e, at=datetime.fromtimestamp(e["at"], timezone.utc).replace(tzinfo=None) if e["at"] else None)
        for e in events[-40:]
    ]


def _profile(customer: Customer | None) -> dict | None:
    if customer is None:
        return None
    db = g.db
    lines = customer.credit_lines
    return {
        "customer": customer,
        "type": CUSTOMER_TYPE_LABELS.get(customer.customer_type, customer.customer_type),
        "line": current_line(db, customer),
        "tags": {TAG_LABELS.get(k, k): v for line in lines for k, v in (line.tags or {}).items()},
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


def _author(author: str) -> str:
    """客户, 机器人, or the officer's name."""
    if author == "customer":
        return "客户"
    if author == "bot":
        return "机器人"
    if "officer_names" not in g:
        g.officer_names = dict(g.db.execute(select(Officer.username, Officer.display_name)).all())
    username = author.split(":", 1)[-1]
    return g.officer_names.get(username, username)


def _message_json(m: ConversationMessage) -> dict:
    return {
        "id": m.id,
        "direction": m.direction,
        "author": _author(m.author),
        "body": m.body,
        "status": m.status,
        "status_label": MESSAGE_STATUS.get(m.status, m.status),
        "errcode": m.errcode,
        "hint": UNDELIVERED_HINTS.get(m.errcode, "可以重发") if m.status == "undelivered" else "",
        "at": beijing(m.created_at),
        "hand_off_id": m.hand_off_id,
    }


@bp.get("/hand-offs/<int:hand_off_id>")
@login_required
def hand_off_page(hand_off_id: int, error: str | None = None, status: int = 200):
    hand_off = _hand_off(hand_off_id)
    officers = g.db.scalars(
        select(Officer).where(Officer.active.is_(True), Officer.id != hand_off.officer_id).order_by(Officer.id)
    ).all()
    return render_template(
        "console/hand_off.html",
        h=hand_off,
        profile=_profile(hand_off.customer),
        now=utcnow(),
        bot_history=_bot_history(hand_off.openid),
        officers=officers,
        error=error,
        messages=[_message_json(m) for m in handoffs.conversation(g.db, hand_off.openid)],
    ), status


@api.get("/hand-offs/<int:hand_off_id>/messages")
@login_required
def messages_json(hand_off_id: int):
    """Everything kept for this customer (their words, officers' replies with their delivery)."""
    hand_off = _hand_off(hand_off_id)
    return jsonify(
        status=hand_off.status,
        status_label=HAND_OFF_STATUS[hand_off.status],
        officer=hand_off.officer.display_name if hand_off.officer else None,
        messages=[_message_json(m) for m in handoffs.conversation(g.db, hand_off.openid)],
    )


def _reply(hand_off_id: int) -> ConversationMessage:
    hand_off = _hand_off(hand_off_id)
    message = handoffs.officer_reply(g.db, hand_off, g.officer, request.form.get("text", ""))
    g.db.commit()
    HandOffJobs(_settings()).send_message(message)
    return message


@api.post("/hand-offs/<int:hand_off_id>/replies")
@login_required
def reply_json(hand_off_id: int):
    try:
        message = _reply(hand_off_id)
    except handoffs.HandOffError as exc:
        return jsonify(error="Conflict", message=str(exc)), 409
    return jsonify(_message_json(message)), 201


@bp.post("/hand-offs/<int:hand_off_id>/reply")
@login_required
def reply_form(hand_off_id: int):
    """The reply box without JavaScript."""
    try:
        _reply(hand_off_id)
    except handoffs.HandOffError as exc:
        g.db.rollback()
        return hand_off_page.__wrapped__(hand_off_id, error=str(exc), status=409)
    return redirect(url_for("console.hand_off_page", hand_off_id=hand_off_id))


def _act(hand_off_id: int, action, done):
    """Run `action(hand_off)`, commit, and answer `done(result)`; a refusal is shown on the
    conversation page and changes nothing."""
    hand_off = _hand_off(hand_off_id)
    try:
        result = action(hand_off)
    except handoffs.HandOffError as exc:
        g.db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.hand_off_page", hand_off_id=hand_off_id))
    g.db.commit()
    return done(result)


def _claimed(_):
    flash("已接手这个会话，客户的消息会出现在这里", "ok")
    return redirect(request.path.rsplit("/", 1)[0])


def _transferred(target: Officer):
    flash(f"已转交给{target.display_name}", "ok")
    return redirect(url_for("console.queue"))


def _closed(note: ConversationMessage):
    HandOffJobs(_settings()).send_message(note)
    flash("会话已结束，客户再发消息会由机器人回答", "ok")
    return redirect(url_for("console.queue"))


@bp.post("/hand-offs/<int:hand_off_id>/claim")
@login_required
def claim(hand_off_id: int):
    return _act(hand_off_id, lambda h: handoffs.claim(g.db, h, g.officer), _claimed)


@bp.post("/hand-offs/<int:hand_off_id>/transfer")
@login_required
def transfer(hand_off_id: int):
    target = request.form.get("officer_id", type=int) or 0
    note = request.form.get("note", "").strip()
    return _act(hand_off_id, lambda h: handoffs.transfer(g.db, h, g.officer, target, note), _transferred)


@bp.post("/hand-offs/<int:hand_off_id>/close")
@login_required
def close(hand_off_id: int):
    note = request.form.get("note", "").strip()
    return _act(hand_off_id, lambda h: handoffs.close_by_officer(g.db, h, g.officer, note), _closed)


@bp.post("/messages/<int:message_id>/resend")
@login_required
def resend(message_id: int):
    message = g.db.get(ConversationMessage, message_id)
    if message is None:
        abort(404, description="没有这条消息")
    back = (
        url_for("console.hand_off_page", hand_off_id=message.hand_off_id)
        if message.hand_off_id
        else url_for("console.queue")
    )
    try:
        status = handoffs.resend(g.db, message, g.officer)
    except handoffs.NotAllowed as exc:
        abort(403, description=str(exc))
    except handoffs.HandOffError as exc:
        flash(str(exc), "error")
        return redirect(back)
    g.db.commit()
    jobs = HandOffJobs(_settings())
    (jobs.send_as_template if status == "template_queued" else jobs.send_message)(message)
    flash("已改用模板消息发送" if status == "template_queued" else "已重新发送", "ok")
    return redirect(back)


# -- applications awaiting review ----------------------------------------------------


def _application(application_id: int) -> LoanApplication:
    application = g.db.get(LoanApplication, application_id)
    if application is None:
        abort(404, description="没有这笔贷款申请")
    if g.officer.role != handoffs.SUPERVISOR and application.customer.officer_id != g.officer.id:
        abort(403, description="这是其他客户经理的客户，只有主管可以查看")
    return application


@bp.get("/applications/<int:application_id>")
@login_required
def application_page(application_id: int):
    application = _application(application_id)
    return render_template(
        "console/application.html", a=application, profile=_profile(application.customer), now=utcnow()
    )


@bp.post("/applications/<int:application_id>/authorization-codes")
@login_required
def authorization_codes(application_id: int):
    """Issue fresh authorization codes for every party still to consent (earlier links stop
    working) and show them on one printable page."""
    application = _application(application_id)
    if application.status != "awaiting_authorization":
        flash("这笔申请现在不需要征信授权", "error")
        return redirect(url_for("console.application_page", application_id=application_id))
    settings = _settings()
    issued, consented = issue_for_application(
        g.db, application, f"officer:{g.officer.username}", timedelta(seconds=settings.authorization_ttl_s)
    )
    codes = [
        {
            "role": ROLE_NAMES[i.authorization.party_role],
            "name": i.authorization.party_name,
            "id_masked": i.authorization.party_id_masked,
            "expires_at": i.authorization.expires_at,
            "url": authorization_url(settings.public_base_url, i.token),
            "png": base64.b64encode(png(authorization_url(settings.public_base_url, i.token))).decode(),
        }
        for i in issued
    ]
    g.db.commit()
    return render_template(
        "console/authorization_codes.html",
        a=application,
        codes=codes,
        consented=[ROLE_NAMES[c.party_role] for c in consented],
    )


@bp.post("/applications/<int:application_id>/decision")
@login_required
def decide(application_id: int):
    """Approve or reject with a reason, through the lending service (the customer is told after commit)."""
    _application(application_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400, description="请选择通过或不通过")
    service = Applications.from_settings(_settings())
    try:
        getattr(service, decision)(g.db, application_id, g.officer, request.form.get("reason", ""))
        g.db.commit()
    except LendingError as exc:
        g.db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.application_page", application_id=application_id))
    flash("已审批通过" if decision == "approve" else "已拒绝，客户会收到通知", "ok")
    return redirect(url_for("console.queue"))
