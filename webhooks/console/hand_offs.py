"""One hand-off: its page (the customer's profile, their chat with the bot, the
conversation with officers), its messages as JSON, the officer's reply, claim,
transfer and close, and resending an undelivered reply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from clients.rasa import RasaClient, RasaUnavailable
from clients.wechat import OUT_OF_RESPONSE_COUNT, OUT_OF_RESPONSE_WINDOW
from handoff import service as handoffs
from sunshine.clock import utcnow
from sunshine.models import ConversationMessage, HandOff, Officer
from webhooks.console import api, bp
from webhooks.console.auth import login_required, passive
from webhooks.console.common import HAND_OFF_STATUS, actor_name, beijing, jobs, masked, profile, settings

MESSAGE_STATUS = {
    "received": "",
    "queued": "发送中",
    "sent": "已送达",
    "template_queued": "模板消息发送中",
    "template_sent": "已用模板消息送达",
    "undelivered": "未送达",
}
# What the officer can do about a reply WeChat refused, by WeChat's errcode (none: resend).
UNDELIVERED_HINTS: dict[int | None, str] = {
    OUT_OF_RESPONSE_WINDOW: "客户超过48小时没有发消息，微信不允许直接回复；可以改用模板消息发送",
    OUT_OF_RESPONSE_COUNT: "客户未回复前发的消息太多，微信暂不允许再发；可以稍后重发",
}
T = TypeVar("T")


def _hand_off(hand_off_id: int) -> HandOff:
    hand_off = g.db.get(HandOff, hand_off_id)
    if hand_off is None:
        abort(404, description="没有这个会话")
    try:
        handoffs.check_access(g.officer, hand_off)
    except handoffs.NotAllowed as exc:
        abort(403, description=str(exc))
    return hand_off


def _bot_history(openid: str) -> list[dict[str, Any]] | None:
    try:
        cfg = settings()
        events = RasaClient(cfg.rasa_url, token=cfg.rasa_token).history(openid, timeout=2.0)
    except RasaUnavailable:
        return None
    return [
        dict(
            e,
            text=masked(e.get("text") or ""),
            at=datetime.fromtimestamp(e["at"], timezone.utc).replace(tzinfo=None) if e["at"] else None,
        )
        for e in events[-40:]
    ]


def _message_json(m: ConversationMessage) -> dict[str, Any]:
    undelivered = m.status == "undelivered"
    return {
        "id": m.id,
        "direction": m.direction,
        "author": actor_name(m.author),
        "body": masked(m.body),
        "status": m.status,
        "status_label": MESSAGE_STATUS.get(m.status, m.status),
        "errcode": m.errcode,
        "hint": UNDELIVERED_HINTS.get(m.errcode, "可以重发") if undelivered else "",
        "resend": ("用模板消息发送" if m.errcode == OUT_OF_RESPONSE_WINDOW else "重发") if undelivered else "",
        "at": beijing(m.created_at),
        "hand_off_id": m.hand_off_id,
    }


def _page(hand_off_id: int, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    hand_off = _hand_off(hand_off_id)
    officers = g.db.scalars(
        select(Officer).where(Officer.active.is_(True), Officer.id != hand_off.officer_id).order_by(Officer.id)
    ).all()
    return render_template(
        "console/hand_off.html",
        h=hand_off,
        profile=profile(hand_off.customer),
        now=utcnow(),
        bot_history=_bot_history(hand_off.openid),
        officers=officers,
        error=error,
        messages=[_message_json(m) for m in handoffs.conversation(g.db, hand_off.openid)],
        canned_replies=current_app.extensions["canned_replies"],
    ), status


@bp.get("/hand-offs/<int:hand_off_id>")
@login_required
def hand_off_page(hand_off_id: int) -> ResponseReturnValue:
    return _page(hand_off_id)


@api.get("/hand-offs/<int:hand_off_id>/messages")
@login_required
@passive
def messages_json(hand_off_id: int) -> ResponseReturnValue:
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
    jobs().send_message(message)
    return message


@api.post("/hand-offs/<int:hand_off_id>/replies")
@login_required
def reply_json(hand_off_id: int) -> ResponseReturnValue:
    try:
        message = _reply(hand_off_id)
    except handoffs.HandOffError as exc:
        return jsonify(error="Conflict", message=str(exc)), 409
    return jsonify(_message_json(message)), 201


@bp.post("/hand-offs/<int:hand_off_id>/reply")
@login_required
def reply_form(hand_off_id: int) -> ResponseReturnValue:
    """The reply box without JavaScript."""
    try:
        _reply(hand_off_id)
    except handoffs.HandOffError as exc:
        g.db.rollback()
        return _page(hand_off_id, error=str(exc), status=409)
    return redirect(url_for("console.hand_off_page", hand_off_id=hand_off_id))


def _act(
    hand_off_id: int, action: Callable[[HandOff], T], done: Callable[[T], ResponseReturnValue]
) -> ResponseReturnValue:
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


def _claimed(_: object) -> ResponseReturnValue:
    flash("已接手这个会话，客户的消息会出现在这里", "ok")
    return redirect(request.path.rsplit("/", 1)[0])


def _transferred(target: Officer) -> ResponseReturnValue:
    flash(f"已转交给{target.display_name}", "ok")
    return redirect(url_for("console.queue"))


def _closed(note: ConversationMessage) -> ResponseReturnValue:
    jobs().send_message(note)
    flash("会话已结束，客户再发消息会由机器人回答", "ok")
    return redirect(url_for("console.queue"))


@bp.post("/hand-offs/<int:hand_off_id>/claim")
@login_required
def claim(hand_off_id: int) -> ResponseReturnValue:
    return _act(hand_off_id, lambda h: handoffs.claim(g.db, h, g.officer), _claimed)


@bp.post("/hand-offs/<int:hand_off_id>/transfer")
@login_required
def transfer(hand_off_id: int) -> ResponseReturnValue:
    target = request.form.get("officer_id", type=int) or 0
    note = request.form.get("note", "").strip()
    return _act(hand_off_id, lambda h: handoffs.transfer(g.db, h, g.officer, target, note), _transferred)


@bp.post("/hand-offs/<int:hand_off_id>/close")
@login_required
def close(hand_off_id: int) -> ResponseReturnValue:
    note = request.form.get("note", "").strip()
    return _act(hand_off_id, lambda h: handoffs.close_by_officer(g.db, h, g.officer, note), _closed)


@bp.post("/messages/<int:message_id>/resend")
@login_required
def resend(message_id: int) -> ResponseReturnValue:
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
    enqueuer = jobs()
    (enqueuer.send_as_template if status == "template_queued" else enqueuer.send_message)(message)
    flash("已改用模板消息发送" if status == "template_queued" else "已重新发送", "ok")
    return redirect(back)
