"""Background jobs (RQ) of the hand-off: officers' replies to the customer
(customer-service message, or a template message outside WeChat's 48-hour
window) and WeCom notices to officers. Each job reads its stored record, so
nothing is lost if a process restarts between storing and sending.

They are enqueued by sunshine.jobs.Jobs on the customer's partition queue, so an
officer's replies reach the customer in order with the bot's answers.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from clients.wechat import WeChatApi, WeChatApiError
from clients.wecom import WeCom, WeComError
from sunshine.clock import full_time
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, current_settings, per_process
from sunshine.models import ConversationMessage, HandOff, OfficerNotice, utcnow
from sunshine.settings import Settings

log = logging.getLogger(__name__)
# A message or notice queued this long ago and still not sent was lost with its job: queued again.
REQUEUE_AFTER = timedelta(minutes=2)
BANK_NAME = "阳光信贷"


def tell_officer(wecom_userid: str, text: str, settings: Settings | None = None) -> None:
    """Send one WeCom text; a refusal is logged (the application's history keeps the notice)."""
    try:
        WeCom.from_settings(settings or current_settings()).send_text([wecom_userid], text)
    except WeComError as exc:
        log.warning("WeCom text to an officer undelivered: %s", exc)


def send_message(message_id: int, settings: Settings | None = None) -> None:
    """Send a queued outbound message as a customer-service text; record sent or undelivered (with
    WeChat's errcode: 45015 means outside the 48-hour window, offered as a template message)."""
    settings = settings or current_settings()
    with unit_of_work(settings.database_url) as session:
        message = session.get(ConversationMessage, message_id)
        if message is None or message.status not in ("queued", "undelivered"):
            return
        openid, body = message.openid, message.body
    status, errcode = "sent", None
    try:
        per_process(WeChatApi.from_settings, settings).send_text(openid, body)
    except WeChatApiError as exc:
        log.warning("officer message %s to %s undelivered: %s", message_id, openid, exc)
        status, errcode = "undelivered", exc.errcode
    _record(settings, ConversationMessage, message_id, status=status, errcode=errcode)


def send_as_template(message_id: int, settings: Settings | None = None) -> None:
    """Send an undelivered reply as the bank's template message (WECHAT_REPLY_TEMPLATE_ID)."""
    settings = settings or current_settings()
    with unit_of_work(settings.database_url) as session:
        message = session.get(ConversationMessage, message_id)
        if message is None or message.status != "template_queued":
            return
        openid, body, at = message.openid, message.body, full_time(message.created_at)
    data = {
        "first": {"value": "您的客户经理给您回复了"},
        "keyword1": {"value": body},
        "keyword2": {"value": at},
        "remark": {"value": f"如需继续沟通，请直接在{BANK_NAME}公众号里发消息。"},
    }
    status, errcode = "template_sent", None
    try:
        per_process(WeChatApi.from_settings, settings).send_template(openid, settings.wechat_reply_template_id, data)
    except WeChatApiError as exc:
        log.warning("template message %s to %s undelivered: %s", message_id, openid, exc)
        status, errcode = "undelivered", exc.errcode
    _record(settings, ConversationMessage, message_id, status=status, errcode=errcode)


def send_notice(notice_id: int, settings: Settings | None = None) -> None:
    """Send a stored WeCom notice to its officer; record sent or failed (with WeCom's errcode)."""
    settings = settings or current_settings()
    with unit_of_work(settings.database_url) as session:
        notice = session.get(OfficerNotice, notice_id)
        if notice is None or notice.status == "sent":
            return
        userid, text = notice.officer.wecom_userid, notice.text
    status, errcode = "sent", None
    if userid is None:  # the officer has no WeCom account: the console still shows the notice
        log.warning("WeCom notice %s not sent: its officer has no WeCom user id", notice_id)
        status = "failed"
    else:
        try:
            WeCom.from_settings(settings).send_text([userid], text)
        except WeComError as exc:
            log.warning("WeCom notice %s undelivered: %s", notice_id, exc)
            status, errcode = "failed", exc.errcode
    _record(
        settings,
        OfficerNotice,
        notice_id,
        status=status,
        errcode=errcode,
        sent_at=utcnow() if status == "sent" else None,
    )


def _record(settings: Settings, model, record_id: int, **values) -> None:
    """Record what became of a sending (a sending not recorded would be queued and sent again)."""
    with unit_of_work(settings.database_url) as session:
        session.execute(
            update(model).where(model.id == record_id).values(**values).execution_options(synchronize_session=False)
        )


def dispatch(settings: Settings, jobs: Jobs | None = None, requeue_stale: bool = True) -> int:
    """Enqueue the notices stored but not yet queued and, with `requeue_stale`, the messages
    whose job was lost (a restart); returns how many were queued."""
    jobs = jobs or Jobs(settings)
    queued = 0
    with unit_of_work(settings.database_url) as session:
        notices = session.execute(
            select(OfficerNotice, HandOff.openid)
            .join(HandOff)
            .where(OfficerNotice.status == "pending")
            .order_by(OfficerNotice.id)
            .limit(500)
        ).all()
        for notice, openid in notices:
            # Marked in Redis, not in the database (no write here to collide with the webhook's on
            # SQLite); a notice still pending when the mark expires lost its job and is queued again.
            if jobs.connection.set(
                f"sunshine:handoff:notice_queued:{notice.id}", 1, nx=True, ex=max(1, int(REQUEUE_AFTER.total_seconds()))
            ):
                jobs.send_notice(notice, openid)
                queued += 1
        if not requeue_stale:
            return queued
        stale = session.scalars(
            select(ConversationMessage)
            .where(
                ConversationMessage.status.in_(("queued", "template_queued")),
                ConversationMessage.created_at < utcnow() - REQUEUE_AFTER,
            )
            .limit(500)
        )
        for message in stale:
            (jobs.send_message if message.status == "queued" else jobs.send_as_template)(message)
            queued += 1
    return queued
