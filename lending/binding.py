"""Binding a WeChat user to the bank's customer: name and ID number, then a one-time code
texted to the customer's phone on file. Once bound, the WeChat user sees the customer's line,
applies in their name, and confirms credit-report authorizations with that WeChat, so a name
and an ID number (which a spouse or a neighbour may know or guess) are not enough.

    answer = request_code(session, secret_key, openid, "张建国 3212...", limits, send)
    customer = confirm_code(session, secret_key, openid, "123456", limits, send)

- Every well-formed name+ID (right length and check digit) is answered with the same
  words (CODE_SENT), whether it names a customer, a customer bound to another WeChat, a
  customer without a phone, or nobody; the same statements run, and every text goes out
  only after the commit through `send` (in the running processes in the background:
  `background_sms`), so neither the answer nor its timing tells who is a customer. For a
  name+ID that may not be bound, an unknowable code stands in, and typing codes for it
  goes exactly as for a real one.
- Limits (settings, `BindLimits`): name+ID guesses per WeChat user per day, codes per ID
  number per day, wrong codes per code; counted atomically in the database
  (sunshine.counters, and the request row locked while a code is checked).
- A customer already bound to another WeChat is never re-bound here: their phone is told
  someone tried (an officer changes a binding). A binding is announced to the phone on file.

A refusal is raised after what it counted: the caller commits it all the same (as the bot's
actions do). Entry points (the bot's actions with the Official Account's openid; the mini-program API with
the mini-program's openid and UnionID its login yields, `app=MINI_PROGRAM`) word nothing
themselves beyond what these return or raise. A binding keeps this AppID's openid and the
UnionID on the customer, so the person is recognised in the other AppID too
(lending.customers.by_openid).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clients.sms import SmsClient, SmsError, code_digest, code_text, new_code, signed
from lending.customers import (
    OFFICIAL_ACCOUNT,
    IdentificationFailed,
    by_openid,
    by_unionid,
    openid_field,
    read_name_and_id,
)
from sunshine.clock import customer_time, utcnow
from sunshine.counters import bump
from sunshine.jobs import after_commit
from sunshine.models import Customer, WeChatBindRequest, audit
from sunshine.protect import constant_time_equal, fingerprint, mask_id_number, unseal

log = logging.getLogger(__name__)

DAY_S = 24 * 3600
Sender = Callable[[str, str], None]  # send(phone, text): called after the commit


@dataclass(frozen=True)
class BindLimits:
    guesses_per_day: int = 5  # well-formed name+ID guesses one WeChat user may make per day
    codes_per_id_per_day: int = 3  # texts sent about one ID number per day
    code_attempts: int = 3  # wrong codes before a code stops working
    code_ttl_s: int = 300

    @classmethod
    def from_settings(cls, settings) -> BindLimits:
        return cls(
            settings.bind_guesses_per_day,
            settings.bind_codes_per_id_per_day,
            settings.bind_code_attempts,
            settings.bind_code_ttl_s,
        )


class BindingRefused(ValueError):
    """The step did not bind; the message is for the WeChat user (and the same for everyone)."""


def code_sent(limits: BindLimits) -> str:
    return (
        "如果您发的姓名和身份证号与银行登记的一致，我们已经把6位验证码发到您在银行预留的手机上，"
        f"{limits.code_ttl_s // 60}分钟内有效。请把验证码直接发给我，核对后就完成微信绑定。"
        "没收到短信的话，回复“转人工”请客户经理帮您。"
    )


TOO_MANY_GUESSES = "今天核对身份的次数已经用完了，请明天再试，或回复“转人工”请客户经理帮您核实。"
ALREADY_BOUND = "您的微信已经绑定了客户信息，不用再核对。"
CODE_DEAD = "验证码已失效（过期、错误次数太多或已重新获取）。请重新发姓名和身份证号获取新的验证码，或回复“转人工”。"
BOUND_ELSEWHERE_MEANWHILE = (
    "这个身份已经绑定了另一个微信号，本次没有绑定。如需更换绑定的微信，请回复“转人工”请客户经理办理。"
)
CODE_PURPOSE = "微信绑定"
BOUND_ELSEWHERE_NOTICE = (
    "有人在微信里用您的姓名和身份证号申请绑定。您的客户信息已绑定其他微信，本次未作任何更改。"
    "如需更换绑定的微信，请带身份证到网点或联系客户经理。"
)


def bound_notice(when: str) -> str:
    return (
        f"您的客户信息已于{when}绑定微信。绑定后可在微信里查额度、申请贷款，征信查询授权也将通过该微信确认。"
        "如非本人操作，请立即联系客户经理或到网点处理。"
    )


_CODE_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")


def read_code(text: str) -> str | None:
    """The 6-digit code in a message ('123456', '验证码是 123456'), or None."""
    text = text or ""
    if len(re.findall(r"[0-9]+", text)) != 1:
        return None
    found = _CODE_IN_TEXT.findall(text)
    return found[0] if found else None


def awaiting_code(session: Session, openid: str) -> bool:
    """Whether this WeChat user asked for a code in the last day and has not used it up."""
    return (
        session.scalar(
            select(WeChatBindRequest.id).where(
                WeChatBindRequest.openid == openid,
                WeChatBindRequest.status == "pending",
                WeChatBindRequest.created_at >= utcnow() - timedelta(seconds=DAY_S),
            )
        )
        is not None
    )


def _scope(openid: str, id_fingerprint: str) -> str:
    return f"wechat_bind:{openid}:{id_fingerprint}"


def _phone(secret_key: str, customer: Customer) -> str | None:
    return unseal(secret_key, customer.phone_sealed) if customer.phone_sealed else None


def count_guess(session: Session, openid: str, limits: BindLimits) -> None:
    """One name+ID guess by this WeChat user: binding, or naming a guarantor (whose answer must
    say whether the name+ID is a customer's). Both count against one daily limit, so neither
    lets a WeChat user test more than `guesses_per_day` name+ID pairs."""
    if bump(session, f"bind_guess:{openid}", DAY_S) > limits.guesses_per_day:
        audit(session, f"wechat:{openid}", "customer.wechat_bind_limited", "wechat_bind_request", "-")
        raise BindingRefused(TOO_MANY_GUESSES)


def _free_for(customer: Customer, app: str, unionid: str | None) -> bool:
    """The customer has no WeChat user in this AppID, and no other person's UnionID."""
    return getattr(customer, openid_field(app)) is None and customer.unionid in (None, unionid)


def request_code(
    session: Session,
    secret_key: str,
    openid: str,
    text: str,
    limits: BindLimits,
    send: Sender,
    unionid: str | None = None,
    app: str = OFFICIAL_ACCOUNT,
) -> str:
    """Step 1: name and ID number in `text`. Returns the answer (the same for every well-formed
    name+ID); IdentificationFailed for a malformed one (nothing counted), BindingRefused when
    this WeChat user is bound already or has used up today's guesses."""
    name, id_number = read_name_and_id(text)
    if by_openid(session, openid, unionid, app) is not None:
        raise BindingRefused(ALREADY_BOUND)
    count_guess(session, openid, limits)
    id_fp = fingerprint(secret_key, id_number)
    texts_for_id = bump(session, f"bind_code:{id_fp}", DAY_S)
    customer = session.scalar(select(Customer).where(Customer.id_fingerprint == id_fp))
    matched = customer is not None and constant_time_equal(customer.name, name)
    phone = _phone(secret_key, customer) if matched and customer is not None else None
    may_text = phone is not None and texts_for_id <= limits.codes_per_id_per_day
    may_bind = may_text and customer is not None and _free_for(customer, app, unionid)
    session.execute(
        update(WeChatBindRequest)
        .where(WeChatBindRequest.openid == openid, WeChatBindRequest.status == "pending")
        .values(status="superseded")
    )
    code = new_code()  # for a request that may not bind nobody ever learns it
    request = WeChatBindRequest(
        openid=openid,
        id_fingerprint=id_fp,
        customer_id=customer.id if may_bind and customer is not None else None,
        code_hash=code_digest(secret_key, _scope(openid, id_fp), code),
        wrong_codes=0,
        status="pending",
        expires_at=utcnow() + timedelta(seconds=limits.code_ttl_s),
    )
    session.add(request)
    if may_bind:
        outcome = "code_sent"
        message = code_text(CODE_PURPOSE, code, limits.code_ttl_s // 60)
    elif may_text:
        outcome = "bound_elsewhere"
        message = signed(BOUND_ELSEWHERE_NOTICE)
    else:
        outcome = "no_match" if not matched else ("no_phone" if phone is None else "id_limit")
        message = ""
    if phone and message:
        after_commit(session, lambda: send(phone, message))
    audit(
        session,
        f"wechat:{openid}",
        "customer.wechat_bind_requested",
        "customer",
        customer.id if matched and customer is not None else "-",
        id_number=mask_id_number(id_number),
        outcome=outcome,
        app=app,
    )
    return code_sent(limits)


def confirm_code(
    session: Session,
    secret_key: str,
    openid: str,
    code: str,
    limits: BindLimits,
    send: Sender,
    unionid: str | None = None,
    app: str = OFFICIAL_ACCOUNT,
) -> Customer:
    """Step 2: the code this WeChat user was texted. Binds and returns the customer, and tells
    their phone; BindingRefused otherwise (the same words for a request that could never bind)."""
    request = session.scalar(
        select(WeChatBindRequest)
        .where(WeChatBindRequest.openid == openid, WeChatBindRequest.status == "pending")
        .order_by(WeChatBindRequest.id.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None or request.expires_at < utcnow() or request.wrong_codes >= limits.code_attempts:
        raise BindingRefused(CODE_DEAD)
    right = constant_time_equal(
        code_digest(secret_key, _scope(openid, request.id_fingerprint), (code or "").strip()), request.code_hash
    )
    if not right or request.customer_id is None:
        request.wrong_codes = WeChatBindRequest.wrong_codes + 1  # in SQL, on the locked row
        session.flush()
        left = limits.code_attempts - request.wrong_codes
        if left <= 0:
            request.status = "failed"
            raise BindingRefused(CODE_DEAD)
        raise BindingRefused(f"验证码不对，请核对短信里的6位数字再发一次（还可以再试{left}次）。")
    customer = session.get(Customer, request.customer_id, with_for_update=True, populate_existing=True)
    if (
        customer is None
        or not _free_for(customer, app, unionid)
        or by_openid(session, openid, unionid, app) is not None
        or (unionid and customer.unionid is None and by_unionid(session, unionid) is not None)
    ):
        request.status = "failed"
        raise BindingRefused(BOUND_ELSEWHERE_MEANWHILE)
    setattr(customer, openid_field(app), openid)
    if unionid:
        customer.unionid = unionid
    request.status = "bound"
    audit(session, f"wechat:{openid}", "customer.wechat_bound", "customer", customer.id, how="sms_code", app=app)
    phone = _phone(secret_key, customer)
    if phone:
        notice = signed(bound_notice(customer_time(utcnow())))
        after_commit(session, lambda: send(phone, notice))
    return customer


def background_sms(sms: SmsClient) -> Sender:
    """A sender that texts in a background thread, so that no answer waits for the gateway
    (which would tell a customer from a stranger by the time it takes)."""

    def deliver(phone: str, text: str) -> None:
        try:
            sms.send(phone, text)
        except SmsError as exc:
            log.warning("a WeChat-binding text was not sent: %s", exc)

    def send(phone: str, text: str) -> None:
        threading.Thread(target=deliver, args=(phone, text), name="binding-sms", daemon=True).start()

    return send


__all__ = [
    "BindLimits",
    "BindingRefused",
    "IdentificationFailed",
    "awaiting_code",
    "background_sms",
    "confirm_code",
    "read_code",
    "request_code",
]
