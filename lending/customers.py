"""Finding the bank's customers by WeChat identity or by name and ID number."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lending.identity import normalize_id_number
from sunshine.models import Customer, FamilyMember
from sunshine.protect import fingerprint


def by_openid(session: Session, openid: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.wechat_openid == openid))


def by_id_number(session: Session, secret_key: str, id_number: str) -> Customer | None:
    return session.scalar(select(Customer).where(
        Customer.id_fingerprint == fingerprint(secret_key, normalize_id_number(id_number))))


def spouse_of(session: Session, customer: Customer) -> Customer | None:
    """The customer's spouse from the household file, recorded from either side."""
    link = session.scalar(select(FamilyMember).where(
        FamilyMember.role == "spouse",
        or_(FamilyMember.customer_id == customer.id, FamilyMember.member_id == customer.id)))
    if link is None:
        return None
    other_id = link.member_id if link.customer_id == customer.id else link.customer_id
    return session.get(Customer, other_id)
