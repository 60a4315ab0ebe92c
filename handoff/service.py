"""Hand-off rules: one open hand-off per customer, routed to their officer,
and everything written while it is open kept for the officer."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lending.customers import by_openid
from sunshine.models import ConversationMessage, Customer, Follower, HandOff, audit, utcnow

REASONS = ("customer_request", "not_understood", "above_auto_limit", "authorization_locked", "bot_unavailable",
           "message_undelivered")
DEFAULT_DEADLINE = timedelta(minutes=30)


class HandOffError(ValueError):
    """A hand-off request that cannot be carried out."""


def open_hand_off(session: Session, openid: str) -> HandOff | None:
    return session.scalar(select(HandOff).where(HandOff.openid == openid, HandOff.status != "closed"))


def responsible_officer_id(session: Session, openid: str, customer: Customer | None) -> int | None:
    """The customer's own officer from the credit file, else the officer of the
    service station whose code they scanned, else none (the branch queue)."""
    if customer is not None and customer.officer_id:
        return customer.officer_id
    follower = session.get(Follower, openid)
    if follower is not None and follower.station is not None:
        return follower.station.officer_id
    return None


def request_hand_off(session: Session, openid: str, reason: str, summary: dict | None = None,
                     deadline: timedelta = DEFAULT_DEADLINE) -> tuple[HandOff, bool]:
    """Open a hand-off for this WeChat user, or return the one already open.

    Returns (hand_off, created).
    """
    if reason not in REASONS:
        raise HandOffError(f"unknown hand-off reason {reason!r}")
    existing = open_hand_off(session, openid)
    if existing is not None:
        return existing, False
    customer = by_openid(session, openid)
    hand_off = HandOff(openid=openid, customer_id=customer.id if customer else None,
                       officer_id=responsible_officer_id(session, openid, customer), reason=reason,
                       summary=summary or {}, deadline=utcnow() + deadline)
    try:
        with session.begin_nested():
            session.add(hand_off)
    except IntegrityError:
        # Another request opened one an instant ago (the unique index on open hand-offs).
        return open_hand_off(session, openid), False
    audit(session, "bot", "hand_off.requested", "hand_off", hand_off.id, reason=reason)
    return hand_off, True


def keep_customer_message(session: Session, hand_off: HandOff, body: str, wechat_msg_key: str) -> bool:
    """Store what the customer wrote while an officer has the conversation.

    Returns False when this WeChat delivery was stored already (a retry).
    """
    message = ConversationMessage(openid=hand_off.openid, hand_off_id=hand_off.id, direction="inbound",
                                  author="customer", body=body, wechat_msg_key=wechat_msg_key, status="received")
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return False
    return True


def customer_message_count(session: Session, hand_off: HandOff) -> int:
    return session.scalar(select(func.count()).select_from(ConversationMessage).where(
        ConversationMessage.hand_off_id == hand_off.id, ConversationMessage.direction == "inbound"))


def keep_undelivered(session: Session, openid: str, texts: list[str], errcode: int | None,
                     author: str = "bot") -> HandOff:
    """WeChat refused to deliver `texts` (45015 outside the 48-hour window, 45047
    too many messages, or unreachable): keep them and put them before the
    customer's officer through a hand-off."""
    hand_off, _ = request_hand_off(session, openid, "message_undelivered", summary={"errcode": errcode})
    for text in texts:
        session.add(ConversationMessage(openid=openid, hand_off_id=hand_off.id, direction="outbound", author=author,
                                        body=text, status="undelivered", errcode=errcode))
    audit(session, author, "message.undelivered", "hand_off", hand_off.id, errcode=errcode, count=len(texts))
    return hand_off


def close_hand_off(session: Session, hand_off: HandOff, actor: str, note: str = "") -> None:
    """The officer ends the hand-off: the customer's next message goes to the bot again."""
    if hand_off.status == "closed":
        raise HandOffError("这个会话已经结束了")
    hand_off.status = "closed"
    hand_off.closed_at = utcnow()
    audit(session, actor, "hand_off.closed", "hand_off", hand_off.id, note=note)
