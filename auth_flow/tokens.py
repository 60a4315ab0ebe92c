"""Authorization requests and their tokens: issuing one per party, opening a token for a
step, and counting failed checks until the token locks.

Only the token's SHA-256 is stored, so a database reader cannot use a token. A token
opens its request while the request is pending and not expired; failed identity or face
checks count against `max_attempts`, after which the token locks and the officer gets a
hand-off.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import evidence
from auth_flow.evidence import Client
from handoff.service import request_hand_off
from lending.parties import ROLES
from lending.reports import parties
from sunshine.clock import utcnow
from sunshine.models import FINAL_APPLICATION_STATUSES, Authorization, Customer, LoanApplication, audit
from sunshine.protect import mask_name

DEFAULT_PURPOSE = "贷款审批"
BANK = "阳光农村商业银行"


class AuthorizationError(ValueError):
    """The token is unknown, expired, used or locked; the message is for the customer."""


class UnknownToken(AuthorizationError):
    """No request has this token (mistyped or guessed); callers count these per client."""


class StepRefused(ValueError):
    """A step that cannot be taken now (out of order, missing reference); nothing was counted."""


@dataclass(frozen=True)
class IssuedAuthorization:
    authorization: Authorization
    token: str


@dataclass(frozen=True)
class CheckResult:
    """The result of an identity or face check: `ok`, or why not and how many tries are left."""

    ok: bool
    message: str
    attempts_left: int
    locked: bool = False
    face: dict | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session,
    customer: Customer,
    party: Customer,
    party_role: str,
    requested_by: str,
    ttl: timedelta,
    application_id: int | None = None,
    purpose: str = DEFAULT_PURPOSE,
) -> IssuedAuthorization:
    """Create an authorization request for one party and return it with its token."""
    if party_role not in ROLES:
        raise ValueError(f"unknown party role {party_role!r}")
    token = secrets.token_urlsafe(24)  # 32 characters: fits a mini-program scene
    auth = Authorization(
        application_id=application_id,
        customer_id=customer.id,
        party_role=party_role,
        party_name=party.name,
        party_id_masked=party.id_masked,
        party_customer_id=party.id,
        party_phone_masked=party.phone_masked,
        purpose=purpose,
        requested_by=requested_by,
        token_hash=_hash(token),
        expires_at=utcnow() + ttl,
        attempts=0,
    )
    session.add(auth)
    session.flush()
    audit(
        session,
        requested_by,
        "authorization.issued",
        "authorization",
        auth.id,
        party_role=party_role,
        application_id=application_id,
    )
    return IssuedAuthorization(auth, token)


def issue_for_application(
    session: Session, application: LoanApplication, requested_by: str, ttl: timedelta
) -> tuple[list[IssuedAuthorization], list[Authorization]]:
    """One fresh request for every party of the application who has not consented yet
    (a pending earlier one is superseded: its link stops working). Returns the new
    requests and the consents already given."""
    issued, consented = [], []
    for role, person in parties(session, application).items():
        earlier = session.scalars(
            select(Authorization).where(
                Authorization.application_id == application.id, Authorization.party_role == role
            )
        ).all()
        done = [a for a in earlier if a.status == "consented"]
        if done:
            consented.append(done[0])
            continue
        for old in earlier:
            if old.status == "pending":
                old.status = "superseded"
        purpose = f"{DEFAULT_PURPOSE}（{application.product.name}）"
        issued.append(
            issue(
                session,
                application.customer,
                person,
                role,
                requested_by,
                ttl,
                application_id=application.id,
                purpose=purpose,
            )
        )
    return issued, consented


_STATUS_MESSAGES = {
    "consented": "该授权码已使用，无需重复授权",
    "superseded": "这个授权码已作废（客户经理重新发了新的），请使用最新收到的授权码",
    "locked": "验证失败次数过多，授权码已锁定。客户经理已收到通知，会联系您重新办理",
}


def find_by_token(session: Session, token: str, lock: bool = False) -> Authorization:
    """The pending authorization this token opens; raises AuthorizationError otherwise.
    `lock`: the row is locked until the transaction ends (SELECT ... FOR UPDATE on PostgreSQL;
    SQLite's BEGIN IMMEDIATE already serializes writers), so that parallel steps on one token
    see each other's counted attempts and sent codes and never go past the limits."""
    query = select(Authorization).where(Authorization.token_hash == _hash(token))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    auth = session.scalar(query)
    if auth is None:
        raise UnknownToken("授权码无效，请向客户经理重新获取")
    if auth.status != "pending":
        raise AuthorizationError(_STATUS_MESSAGES.get(auth.status, "该授权码已使用，无需重复授权"))
    if auth.expires_at < utcnow():
        raise AuthorizationError("授权码已过期，请向客户经理重新获取")
    application = session.get(LoanApplication, auth.application_id) if auth.application_id else None
    if application is not None and application.status in FINAL_APPLICATION_STATUSES:
        raise AuthorizationError("这笔贷款申请已经撤销或办结，不需要再授权了")
    return auth


def open_for_step(session: Session, token: str, step: str, client: Client) -> Authorization:
    """find_by_token for a step the party attempts: a refusal is recorded (in the evidence chain
    when the token names a request, in the audit log when it names none) before it is raised."""
    try:
        return find_by_token(session, token, lock=True)
    except AuthorizationError as exc:
        auth = session.scalar(select(Authorization).where(Authorization.token_hash == _hash(token)))
        if auth is not None:
            evidence.append(session, auth, "refused", client, step=step, reason=str(exc))
        else:
            audit(
                session,
                "h5",
                "authorization.unknown_token",
                "authorization",
                "-",
                step=step,
                token_sha256=_hash(token)[:16],
                client_ip=client.ip,
            )
        raise


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:  # the foreign key keeps this from happening
        raise LookupError(f"customer {customer_id} of an authorization does not exist")
    return customer


def party_of(session: Session, auth: Authorization) -> Customer:
    """The customer whose report the request is about."""
    return _customer(session, auth.party_customer_id or auth.customer_id)


def failed_check(
    session: Session, auth: Authorization, message: str, max_attempts: int, client: Client, face: dict | None = None
) -> CheckResult:
    """Count a failed identity or face check; the last allowed failure locks the token."""
    auth.attempts = Authorization.attempts + 1  # in SQL: one UPDATE on the locked row
    session.flush()
    left = max(max_attempts - auth.attempts, 0)
    if left == 0:
        _lock(session, auth, client)
        return CheckResult(False, _STATUS_MESSAGES["locked"], 0, locked=True, face=face)
    return CheckResult(False, f"{message}（还可以再试{left}次）", left, face=face)


def _lock(session: Session, auth: Authorization, client: Client) -> None:
    """Too many failures: the token stops working and the applicant's officer gets a hand-off."""
    auth.status = "locked"
    evidence.append(session, auth, "locked", client, attempts=auth.attempts)
    audit(session, "h5", "authorization.locked", "authorization", auth.id, attempts=auth.attempts)
    tell_officer(session, auth, "authorization_locked")


def tell_officer(session: Session, auth: Authorization, reason: str, **summary) -> None:
    """Put the request before the applicant's officer: a hand-off (`reason`) in their queue."""
    applicant = _customer(session, auth.customer_id)
    openid = applicant.wechat_openid or f"customer:{applicant.id}"
    request_hand_off(
        session,
        openid,
        reason,
        {
            "authorization_id": auth.id,
            "application_id": auth.application_id,
            "party_role": auth.party_role,
            "party": mask_name(auth.party_name),
            **summary,
        },
    )
