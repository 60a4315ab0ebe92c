"""The inbox of record while Redis is down.

The web request cannot enqueue a message for the bot without Redis. Rather
than lose it, it keeps the message in the SQL database (`conversation_messages`,
status `held`) and answers WeChat at once with a short "please wait". Once
Redis is back, `relay_held` (run every round of `python -m handoff watch`)
hands each held message to the bot's worker in the order it came; the answer
goes out through the customer-service API. WeChat's retries of a held message
are stored once (its MsgId is unique).

Exactly once: a message is marked `relayed` after its job is queued; if the
process dies in between it is queued again, and the worker's job answers a
message key once (conversation.tasks.answer_message).
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from conversation.relay import KEY_TTL_S, decide_async, seen_key
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs
from sunshine.models import ConversationMessage
from sunshine.redis import connect
from sunshine.settings import Settings

log = logging.getLogger(__name__)
HELD_FOR_LATER = "收到您的消息了。系统有点忙，请稍等一会儿，处理好马上在这里回复您，不用重复发送。"
HELD, RELAYED = "held", "relayed"
BATCH = 200


def hold(settings: Settings, openid: str, text: str, message_key: str) -> str:
    """Keep a message the bot cannot take now; returns the passive reply for the customer."""
    with unit_of_work(settings.database_url) as session:
        try:
            with session.begin_nested():
                session.add(
                    ConversationMessage(
                        openid=openid,
                        direction="inbound",
                        author="customer",
                        body=text,
                        wechat_msg_key=message_key,
                        status=HELD,
                    )
                )
        except IntegrityError:
            pass  # WeChat's retry of a message already kept
    log.warning("redis unavailable: message %s kept in the database for the bot", message_key)
    return HELD_FOR_LATER


def relay_held(settings: Settings, jobs: Jobs) -> int:
    """Queue every held message for the bot, oldest first; returns how many. Needs Redis."""
    with unit_of_work(settings.database_url) as session:
        held = session.execute(
            select(
                ConversationMessage.id,
                ConversationMessage.openid,
                ConversationMessage.body,
                ConversationMessage.wechat_msg_key,
            )
            .where(ConversationMessage.status == HELD)
            .order_by(ConversationMessage.id)
            .limit(BATCH)
        ).all()
    if not held:
        return 0
    r = connect(settings.redis_url)
    for row in held:
        r.set(seen_key(row.wechat_msg_key), "1", ex=KEY_TTL_S)  # a late WeChat retry is a duplicate now
        decide_async(r, row.wechat_msg_key)
        jobs.answer(row.openid, row.body, row.wechat_msg_key)
        with unit_of_work(settings.database_url) as session:
            session.execute(
                update(ConversationMessage)
                .where(ConversationMessage.id == row.id, ConversationMessage.status == HELD)
                .values(status=RELAYED)
                .execution_options(synchronize_session=False)
            )
    log.info("%d held message(s) queued for the bot", len(held))
    return len(held)
