"""Authorization requests: one per party, each reached by a random, expiring token.

Only the token's SHA-256 is stored, so a database reader cannot use a token.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sunshine.models import Authorization, Customer, audit, utcnow

PARTY_ROLES = ("applicant", "spouse", "guarantor")
DEFAULT_PURPOSE = "贷款审批"


class AuthorizationError(ValueError):
    """The token is unknown, expired or already used; the message is for the customer."""


@dataclass(frozen=True)
class IssuedAuthorization:
    authorization: Authorization
    token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, customer: Customer, party: Customer, party_role: str, requested_by: str,
          ttl: timedelta, application_id: int | None = None, purpose: str = DEFAULT_PURPOSE) -> IssuedAuthorization:
    """Create an authorization request for one party and return it with its token."""
    if party_role not in PARTY_ROLES:
        raise ValueError(f"unknown party role {party_role!r}")
    token = secrets.token_urlsafe(24)
    auth = Authorization(application_id=application_id, customer_id=customer.id, party_role=party_role,
                         party_name=party.name, party_id_masked=party.id_masked, purpose=purpose,
                         requested_by=requested_by, token_hash=_hash(token), expires_at=utcnow() + ttl)
    session.add(auth)
    session.flush()
    audit(session, requested_by, "authorization.issued", "authorization", auth.id, party_role=party_role)
    return IssuedAuthorization(auth, token)


def find_by_token(session: Session, token: str) -> Authorization:
    """The pending authorization this token opens; raises AuthorizationError otherwise."""
    auth = session.scalar(select(Authorization).where(Authorization.token_hash == _hash(token)))
    if auth is None:
        raise AuthorizationError("授权码无效，请向客户经理重新获取")
    if auth.status != "pending":
        raise AuthorizationError("该授权码已使用，无需重复授权")
    if auth.expires_at < utcnow():
        raise AuthorizationError("授权码已过期，请向客户经理重新获取")
    return auth
