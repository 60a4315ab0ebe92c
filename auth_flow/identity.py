"""The first step: the party proves who they are.

On the H5 page: their name and the last 6 digits of their ID number, with their own WeChat
(from the page's web authorization) or, when no WeChat is bound to them, a code texted to
their phone on file; or, in the bank's mini-program, with the mini-program session the party
logged in with (`/api/mp/login`). In the mini-program also: wx.login's code names their WeChat.
Whose WeChat it is follows the one rule of lending.customers.by_openid (the openid in that
AppID, or the UnionID).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from auth_flow import evidence
from auth_flow.evidence import Client
from auth_flow.tokens import CheckResult, StepRefused, bind_session, failed_check, open_for_step, party_of
from clients.sms import CODE_DIGITS, SmsClient, SmsError, code_digest, code_text, new_code
from clients.wechat import WeChatApi, WeChatApiError
from lending.customers import MINI_PROGRAM, by_openid
from sunshine.clock import utcnow
from sunshine.models import Authorization, Customer, LoanContract
from sunshine.protect import constant_time_equal, unseal

log = logging.getLogger(__name__)

ID_DIGITS = 6  # the last digits of the ID number a party types
SMS_CODE_DIGITS = CODE_DIGITS
SMS_CODE_TTL = timedelta(minutes=5)
SMS_RESEND_AFTER = timedelta(seconds=60)
SMS_MAX_SENDS = 5


def page_name(name: str) -> str:
    """The name as the page shows it before the party typed it: 张*国, 欧阳**华, 张*."""
    if len(name) <= 2:
        return name[:1] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def page_id(id_masked: str) -> str:
    """The ID number as the page shows it before identity: only its first 4 characters (province
    and city), so nothing shown overlaps the last ID_DIGITS the party is asked for."""
    return id_masked[:4] + "*" * (len(id_masked) - 4)


def identity_factor(party: Customer) -> str:
    """The factor that goes with the name/ID check on the H5 page: the party's own WeChat
    ("wechat", when one is bound to them) or a code sent to their phone on file ("sms")."""
    return "wechat" if party.wechat_openid else "sms"


# What is signed or authorized with a code sent to the phone on file: its own code fields.
CodeHolder = Authorization | LoanContract


def _code_scope(holder: CodeHolder) -> str:
    """A code works only for what it was sent for (an authorization by its id, as it always was)."""
    return str(holder.id) if isinstance(holder, Authorization) else f"contract:{holder.id}"


def text_code(
    session: Session, secret_key: str, holder: CodeHolder, party: Customer, sms: SmsClient, purpose: str, client: Client
) -> str:
    """Text a 6-digit code (valid SMS_CODE_TTL) to `party`'s phone on file for `holder` (an
    authorization or a contract, locked by the caller), at most SMS_MAX_SENDS and not twice within
    SMS_RESEND_AFTER. Recorded in the evidence chain; returns the masked phone it went to."""
    if not party.phone_sealed or not party.phone_masked:
        raise StepRefused("银行没有登记您的手机号，无法发送验证码，请联系客户经理")
    now = utcnow()
    if holder.sms_code_expires_at and now < holder.sms_code_expires_at - SMS_CODE_TTL + SMS_RESEND_AFTER:
        raise StepRefused(f"验证码刚刚发出，请{SMS_RESEND_AFTER.seconds}秒后再重新获取")
    if holder.sms_sends >= SMS_MAX_SENDS:
        raise StepRefused("验证码发送次数过多，请联系客户经理")
    code = new_code()
    try:
        sms.send(unseal(secret_key, party.phone_sealed), code_text(purpose, code, SMS_CODE_TTL.seconds // 60))
    except SmsError as exc:
        log.warning("SMS code for %s %s not sent: %s", type(holder).__name__, holder.id, exc)
        raise StepRefused("短信发送失败，请稍后再试") from None
    holder.sms_code_hash = code_digest(secret_key, _code_scope(holder), code)
    holder.sms_code_expires_at = now + SMS_CODE_TTL
    holder.sms_sends = type(holder).sms_sends + 1  # in SQL, on the row the caller locked
    evidence.append(session, holder, "sms_code_sent", client, phone=party.phone_masked)
    return party.phone_masked


def _is_party(found: Customer | None, party: Customer) -> bool:
    return found is not None and found.id == party.id


@dataclass(frozen=True)
class Factor:
    """The second factor's outcome: `ok`, what it was (`detail`, JSON for the evidence), and
    what the party reads when it failed (`why`)."""

    ok: bool
    detail: dict[str, Any]
    why: str


def own_wechat_or_code(
    session: Session,
    secret_key: str,
    holder: CodeHolder,
    party: Customer,
    client: Client,
    wechat_openid: str | None,
    sms_code: str | None,
    link: str,
    whose: str,
    wechat_unionid: str | None = None,
) -> Factor:
    """The party's own WeChat (`wechat_openid`, from WeChat's web authorization, must be the one
    bound to them) or, for a party without one, `sms_code` the unexpired code texted for `holder`
    (used up when it matches). `link` and `whose` word the messages ("授权链接", "被查询人")."""
    if party.wechat_openid:  # identity_factor(party) == "wechat"
        if not wechat_openid:
            evidence.append(session, holder, "refused", client, step="identity", reason="no_wechat_identity")
            raise StepRefused(f"请在微信里打开{link}，以确认是您本人的微信")
        return Factor(
            _is_party(by_openid(session, wechat_openid, wechat_unionid), party),
            {"factor": "wechat_oauth", "wechat_openid_sha256": hashlib.sha256(wechat_openid.encode()).hexdigest()},
            f"当前微信不是{whose}本人的微信，请本人用自己的微信打开",
        )
    code = (sms_code or "").strip()
    if not code:
        raise StepRefused("请先获取短信验证码并填写")
    ok = bool(
        holder.sms_code_hash
        and holder.sms_code_expires_at
        and holder.sms_code_expires_at >= utcnow()
        and constant_time_equal(code_digest(secret_key, _code_scope(holder), code), holder.sms_code_hash)
    )
    return Factor(ok, {"factor": "sms_code", "phone": party.phone_masked}, "短信验证码不正确或已过期，请重新获取")


def send_sms_code(session: Session, secret_key: str, token: str, sms: SmsClient, client: Client) -> str:
    """Text a code to the phone on file of a party without a bound WeChat. Returns the masked
    phone it went to."""
    auth = open_for_step(session, token, "sms_code", client)
    party = party_of(session, auth)
    if identity_factor(party) != "sms":
        raise StepRefused("您的微信已与银行绑定，请直接用本人微信打开授权链接，不需要短信验证码")
    return text_code(session, secret_key, auth, party, sms, "征信查询授权", client)


def _passed(session: Session, auth: Authorization, client: Client, max_attempts: int) -> CheckResult:
    """Identity passed: the later steps are bound to this client's new step session."""
    step_session = bind_session(session, auth, client)
    return CheckResult(True, "身份核对通过", max_attempts - auth.attempts, step_session=step_session)


def check_identity(
    session: Session,
    secret_key: str,
    token: str,
    name: str,
    id_digits: str,
    client: Client,
    max_attempts: int,
    wechat_openid: str | None = None,
    sms_code: str | None = None,
    wechat_unionid: str | None = None,
    mini_program: tuple[str, str | None] | None = None,
) -> CheckResult:
    """Step 1 on the H5 page: the party's name and the last digits of their ID number, and
    a second factor: the mini-program session (`mini_program`: its openid and UnionID) must be
    the party's, else `wechat_openid` (with `wechat_unionid`, from WeChat's web authorization)
    must be the party's bound WeChat, or, for a party without one, `sms_code` the code texted
    to their phone."""
    auth = open_for_step(session, token, "identity", client)
    party = party_of(session, auth)
    if mini_program is not None:
        mp_openid, mp_unionid = mini_program
        factor = Factor(
            _is_party(by_openid(session, mp_openid, mp_unionid, MINI_PROGRAM), party),
            {"factor": "mp_session", "mp_openid_sha256": hashlib.sha256(mp_openid.encode()).hexdigest()},
            "当前登录小程序的微信不是被查询人本人的微信，请本人用自己的微信登录",
        )
    else:
        factor = own_wechat_or_code(
            session, secret_key, auth, party, client, wechat_openid, sms_code, "授权链接", "被查询人", wechat_unionid
        )
    detail: dict[str, Any] = {"method": "name_id_digits", **factor.detail}
    second_ok, why = factor.ok, factor.why
    id_number = unseal(secret_key, party.id_sealed)
    given = (id_digits or "").strip().upper()
    name_ok = (
        (name or "").strip() == party.name
        and len(given) == ID_DIGITS
        and constant_time_equal(given, id_number[-ID_DIGITS:])
    )
    if name_ok and second_ok:
        auth.identity_checked_at = utcnow()
        auth.sms_code_hash = None  # a code works once
        evidence.append(session, auth, "identity_checked", client, **detail)
        return _passed(session, auth, client, max_attempts)
    evidence.append(session, auth, "identity_failed", client, **detail, name_id_ok=name_ok, factor_ok=second_ok)
    return failed_check(
        session, auth, why if name_ok else "姓名或身份证号后6位与授权信息不一致，请核对后重新输入", max_attempts, client
    )


def check_identity_wxa(
    session: Session, api: WeChatApi, token: str, js_code: str, client: Client, max_attempts: int
) -> CheckResult:
    """Step 1 in the mini-program: wx.login's code must belong to the party's own WeChat."""
    auth = open_for_step(session, token, "identity", client)
    party = party_of(session, auth)
    if not (party.wechat_openid or party.mp_openid or party.unionid):
        raise StepRefused("您的微信还没有和银行客户信息绑定，请改用姓名和身份证号核对")
    try:
        login = api.jscode2session(js_code)
    except WeChatApiError as exc:
        evidence.append(session, auth, "identity_failed", client, method="wxa_login", errcode=exc.errcode)
        return failed_check(session, auth, "微信登录校验失败，请关闭页面后重新打开", max_attempts, client)
    if _is_party(by_openid(session, login.openid, login.unionid, MINI_PROGRAM), party):
        auth.identity_checked_at = utcnow()
        evidence.append(session, auth, "identity_checked", client, method="wxa_login", factor="wxa_login")
        return _passed(session, auth, client, max_attempts)
    evidence.append(session, auth, "identity_failed", client, method="wxa_login")
    return failed_check(session, auth, "当前微信不是被查询人本人的微信，请本人用自己的微信打开", max_attempts, client)
