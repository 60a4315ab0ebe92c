"""Hand-off rules: one open hand-off per customer, routed to their officer."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lending.customers import by_openid
from sunshine.models import HandOff, audit, utcnow

REASONS = ("customer_request", "not_understood", "above_auto_limit", "authorization_locked", "bot_unavailable")
DEFAULT_DEADLINE = timedelta(minutes=30)


class HandOffError(ValueError):
    """A hand-off request that cannot be carried out."""


def open_hand_off(session: Session, openid: str) -> HandOff | None:
    return session.scalar(select(HandOff).where(HandOff.openid == openid, HandOff.status != "closed"))


def request_hand_off(session: Session, openid: str, reason: str, summary: dict | None = None,
                     deadline: timedelta = DEFAULT_DEADLINE) -> tuple[HandOff, bool]:
    """Open a hand-off for this WeChat user, or return the one already open.

    Returns (hand_off, created). The officer is the customer's own officer
    from the credit file when known, else none (the branch queue).
    """
    if reason not in REASONS:
        raise HandOffError(f"unknown hand-off reason {reason!r}")
    existing = open_hand_off(session, openid)
    if existing is not None:
        return existing, False
    customer = by_openid(session, openid)
    hand_off = HandOff(openid=openid, customer_id=customer.id if customer else None,
                       officer_id=customer.officer_id if customer else None, reason=reason,
                       summary=summary or {}, deadline=utcnow() + deadline)
    try:
        with session.begin_nested():
            session.add(hand_off)
    except IntegrityError:
        # Another request opened one an instant ago (the unique index on open hand-offs).
        return open_hand_off(session, openid), False
    audit(session, "bot", "hand_off.requested", "hand_off", hand_off.id, reason=reason)
    return hand_off, True
