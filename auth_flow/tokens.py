"""Authorization requests and their tokens: issuing one per party, opening a token for a
step, and counting failed checks until the token locks.

Only the token's SHA-256 is stored, so a database reader cannot use a token. A token
opens its request while the request is pending and not expired; failed identity or face
checks count against `max_attempts`, after which the token locks and the officer gets a
hand-off.

One session per party: passing identity binds the request to the browser session that
passed it (`bind_session`: a random id the browser keeps in a cookie, only its SHA-256
stored). The later steps (BOUND_STEPS) are refused from any other session, even one holding
the same link. Another session that passes identity itself takes the binding over and starts
the later steps afresh: it inherits nothing, the first session's requests are refused from
then on, and the chain records the change ("session_replaced").

Links are limited: the bot issues a party at most 1 + `daily_limit` links in 24 hours, and
never a fresh one while the party's request is locked; a lock stays until an officer
releases it (`release_lock`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import evidence, notices
from auth_flow.evidence import Client
from handoff.service import request_hand_off
from lending.applications import note
from lending.parties import LABELS, ROLES
from lending.reports import parties
from sunshine.clock import utcnow
from sunshine.models import (
    FINAL_APPLICATION_STATUSES,
    Authorization,
    Customer,
    LoanApplication,
    LoanContract,
    Officer,
    audit,
)
from sunshine.protect import constant_time_equal, mask_name

DEFAULT_PURPOSE = "贷款审批"
BANK = "阳光农村商业银行"


class AuthorizationError(ValueError):
    """The token is unknown, expired, used or locked; the message is for the customer."""


class UnknownToken(AuthorizationError):
    """No request has this token (mistyped or guessed); callers count these per client."""


class StepRefused(ValueError):
    """A step that cannot be taken now (out of order, missing reference); nothing was counted."""


class OtherSession(StepRefused):
    """A step after identity from another session than the one that passed identity."""


@dataclass(frozen=True)
class Browser(Client):
    """A client with the step session its browser was given when it passed identity."""

    step_session: str = ""


# The steps after identity: only the session that passed identity may take them.
BOUND_STEPS = frozenset({"biometric_consent", "face", "consent"})
OTHER_SESSION = (
    "请在刚才核对身份的那台手机上继续。如果换了手机或浏览器，请在这里从第1步核对身份重新开始"
    "（之前那台手机上的进度会作废）"
)
REISSUE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class IssuedAuthorization:
    authorization: Authorization
    token: str


@dataclass(frozen=True)
class Held:
    """A party who got no fresh link: `reason` is "locked" or "daily_limit"; `message` is for the applicant."""

    role: str
    reason: str
    message: str


@dataclass(frozen=True)
class Reissue:
    issued: list[IssuedAuthorization] = field(default_factory=list)
    consented: list[Authorization] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)


@dataclass(frozen=True)
class CheckResult:
    """The result of an identity or face check: `ok`, or why not and how many tries are left."""

    ok: bool
    message: str
    attempts_left: int
    locked: bool = False
    face: dict | None = None
    # Identity passed: the id of the step session the later steps are bound to (the browser's cookie).
    step_session: str | None = None
    # The face check went to an officer's review (auth_flow.face_review): nothing counted, the page waits.
    review: bool = False


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


def reissue_for_application(
    session: Session,
    application: LoanApplication,
    requested_by: str,
    ttl: timedelta,
    daily_limit: int | None = None,
    client: Client | None = None,
    roles: Collection[str] | None = None,
) -> Reissue:
    """One fresh request for every party of the application who has not consented yet
    (a pending earlier one is superseded: its link stops working). A party whose request is
    locked gets none until an officer releases it; with `daily_limit`, a party who already got
    1 + daily_limit links from `requested_by` in the last 24 hours gets none either (their
    pending link keeps working). Each party held back is recorded in the evidence chain.
    `roles`: only these parties (a party opening their own request in the mini-program)."""
    out = Reissue()
    since = utcnow() - REISSUE_WINDOW
    for role, person in parties(session, application).items():
        if roles is not None and role not in roles:
            continue
        earlier = session.scalars(
            select(Authorization)
            .where(Authorization.application_id == application.id, Authorization.party_role == role)
            .order_by(Authorization.id)
        ).all()
        done = [a for a in earlier if a.status == "consented"]
        if done:
            out.consented.append(done[0])
            continue
        who = notices.party_label(role, person.name)
        locked = [a for a in earlier if a.status == "locked"]
        recent = [a for a in earlier if a.requested_by == requested_by and a.created_at >= since]
        held = None
        if locked:
            held = Held(role, "locked", locked_message(role, person.name))
        elif daily_limit is not None and len(recent) > daily_limit:
            held = Held(
                role,
                "daily_limit",
                f"{who}的授权链接24小时内已重新发了{daily_limit}次，达到上限，暂时不能再发。"
                "之前发的链接在有效期内仍可使用；需要帮助请联系客户经理。",
            )
        if held is not None:
            target = locked[-1] if locked else earlier[-1]
            evidence.append(
                session,
                target,
                "refused",
                client or Client(),
                step="reissue",
                reason=held.reason,
                message=held.message,
                by=requested_by,
            )
            audit(
                session, requested_by, "authorization.reissue_refused", "authorization", target.id, reason=held.reason
            )
            out.held.append(held)
            continue
        for old in earlier:
            if old.status == "pending":
                old.status = "superseded"
        purpose = f"{DEFAULT_PURPOSE}（{application.product.name}）"
        out.issued.append(
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
    return out


def locked_message(role: str, name: str) -> str:
    """What the applicant reads about a party whose request is locked."""
    return (
        f"{notices.party_label(role, name)}的授权链接因核验失败次数过多已锁定，"
        "需要客户经理核实后解锁，解锁后再发新链接。"
    )


def locked_requests(session: Session, application: LoanApplication) -> list[Authorization]:
    """The application's requests locked and not yet released by an officer."""
    return list(
        session.scalars(
            select(Authorization)
            .where(Authorization.application_id == application.id, Authorization.status == "locked")
            .order_by(Authorization.id)
        )
    )


def release_lock(session: Session, auth: Authorization, officer: Officer, client: Client | None = None) -> None:
    """An officer releases a locked request: it becomes "released" (its link stays dead) and the
    party can be sent a fresh link. Recorded in the chain, the audit log and the application's history."""
    if auth.status != "locked":
        raise StepRefused("这个授权没有被锁定，不需要解锁")
    auth.status = "released"
    evidence.append(session, auth, "released", client or Client(), officer=officer.username)
    audit(session, officer.username, "authorization.released", "authorization", auth.id)
    if auth.application_id:
        note(
            session,
            auth.application_id,
            officer.display_name,
            "authorization_released",
            f"客户经理{officer.display_name}解除了{LABELS[auth.party_role]}{mask_name(auth.party_name)}的授权锁定",
            authorization_id=auth.id,
            officer=officer.username,
        )


_STATUS_MESSAGES = {
    "consented": "该授权码已使用，无需重复授权",
    "superseded": "这个授权码已作废（客户经理重新发了新的），请使用最新收到的授权码",
    "locked": "验证失败次数过多，授权码已锁定。客户经理已收到通知，会联系您重新办理",
    "released": "这个授权码已作废（客户经理已解除锁定），请使用最新收到的授权码",
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


def session_hash(step_session: str) -> str:
    return hashlib.sha256(step_session.encode()).hexdigest()


def in_session(auth: Authorization, client: Client) -> bool:
    """The request is bound to `client`'s step session (the one that passed identity)."""
    given = client.step_session if isinstance(client, Browser) else ""
    return bool(given and auth.step_session_hash) and constant_time_equal(
        session_hash(given), auth.step_session_hash or ""
    )


def bind_session(session: Session, auth: Authorization, client: Client) -> str:
    """Identity passed: bind the request to a fresh step session and return its id (for the
    browser's cookie). Another session than the bound one starts the later steps afresh."""
    if auth.step_session_hash and not in_session(auth, client):
        had = {"biometric_consent": auth.biometric_consent_at is not None, "face": auth.face_verified_at is not None}
        auth.biometric_consent_at = auth.face_verified_at = None
        evidence.append(session, auth, "session_replaced", client, previous=auth.step_session_hash[:16], reset=had)
    step_session = secrets.token_urlsafe(32)
    auth.step_session_hash = session_hash(step_session)
    return step_session


def open_for_step(session: Session, token: str, step: str, client: Client) -> Authorization:
    """find_by_token for a step the party attempts: a refusal is recorded (in the evidence chain
    when the token names a request, in the audit log when it names none) before it is raised.
    A step after identity from another session than the one that passed identity is refused."""
    try:
        auth = find_by_token(session, token, lock=True)
    except AuthorizationError as exc:
        auth_ = session.scalar(select(Authorization).where(Authorization.token_hash == _hash(token)))
        if auth_ is not None:
            evidence.append(session, auth_, "refused", client, step=step, reason=str(exc))
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
    if step in BOUND_STEPS and auth.identity_checked_at is not None and not in_session(auth, client):
        evidence.append(session, auth, "refused", client, step=step, reason="other_session", message=OTHER_SESSION)
        raise OtherSession(OTHER_SESSION)
    return auth


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:  # the foreign key keeps this from happening
        raise LookupError(f"customer {customer_id} of an authorization does not exist")
    return customer


def party_of(session: Session, auth: Authorization) -> Customer:
    """The customer whose report the request is about."""
    return _customer(session, auth.party_customer_id or auth.customer_id)


def failed_check(
    session: Session,
    auth: Authorization | LoanContract,
    message: str,
    max_attempts: int,
    client: Client,
    face: dict | None = None,
    lock: Callable[[], str] | None = None,
) -> CheckResult:
    """Count a failed identity or face check of an authorization or a loan contract's signing;
    the last allowed failure locks it (`lock`, which returns what the person is told; default:
    the authorization's lock)."""
    counter = LoanContract.attempts if isinstance(auth, LoanContract) else Authorization.attempts
    auth.attempts = counter + 1  # in SQL: one UPDATE on the locked row
    session.flush()
    left = max(max_attempts - auth.attempts, 0)
    if left == 0:
        if lock is None and isinstance(auth, LoanContract):
            raise TypeError("a contract's failed check is given its lock (auth_flow.subjects)")
        told = lock() if lock is not None else _lock(session, auth, client)  # type: ignore[arg-type]
        return CheckResult(False, told, 0, locked=True, face=face)
    return CheckResult(False, f"{message}（还可以再试{left}次）", left, face=face)


def _lock(session: Session, auth: Authorization, client: Client) -> str:
    """Too many failures: the token stops working and the applicant's officer gets a hand-off."""
    auth.status = "locked"
    evidence.append(session, auth, "locked", client, attempts=auth.attempts)
    audit(session, "h5", "authorization.locked", "authorization", auth.id, attempts=auth.attempts)
    notices.tell_applicant(
        session, _customer(session, auth.customer_id), notices.locked_text(auth), auth.application_id
    )
    tell_officer(session, auth, "authorization_locked")
    return _STATUS_MESSAGES["locked"]


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
