"""Finding the bank's customers by WeChat identity or by name and ID number."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lending.identity import normalize_id_number
from sunshine.models import Customer
from sunshine.protect import fingerprint


def by_openid(session: Session, openid: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.wechat_openid == openid))


def by_id_number(session: Session, secret_key: str, id_number: str) -> Customer | None:
    return session.scalar(select(Customer).where(
        Customer.id_fingerprint == fingerprint(secret_key, normalize_id_number(id_number))))
