"""Authorization requests: one per party, each reached by a random, expiring, single-use token.

Only the token's SHA-256 is stored, so a database reader cannot use a token. A party
goes through the steps in order, each recorded in the evidence chain
(auth_flow.evidence):

    identity (name + last 6 of the ID number, with the party's own WeChat from the
              page's web authorization or, without a bound WeChat, an SMS code to the phone
              on file; or the mini-program login)
    -> biometric consent (its own consent, PIPL art. 29)
    -> face check (match with the enrolled reference + liveness)
    -> consent to the credit-report query  => status "consented", token used up

Every refused step is recorded too; failed identity or face checks count against
`max_attempts`, after which the token locks and the officer gets a hand-off.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import evidence, faces, notices
from auth_flow.evidence import Client
from clients.sms import SmsError
from clients.wechat import WeChatApiError
from handoff.service import request_hand_off
from lending.parties import ROLE_NAMES, ROLES
from lending.reports import parties
from sunshine.models import (
    FINAL_APPLICATION_STATUSES,
    Authorization,
    Customer,
    FaceReference,
    LoanApplication,
    audit,
    utcnow,
)
from sunshine.protect import constant_time_equal, mask_name, unseal

log = logging.getLogger(__name__)

DEFAULT_PURPOSE = "贷款审批"
BANK = "阳光农村商业银行"
ID_DIGITS = 6  # the last digits of the ID number a party types
SMS_CODE_DIGITS = 6
SMS_CODE_TTL = timedelta(minutes=5)
SMS_RESEND_AFTER = timedelta(seconds=60)
SMS_MAX_SENDS = 5

BIOMETRIC_CONSENT_TEXT = (
    f"为确认是您本人授权，{BANK}将采集您的人脸图像，与您登记的证件照比对，并检测是否为真人操作。"
    "人脸属于敏感个人信息：比对完成后照片立即删除，只保留照片的校验值（哈希）和比对结果，用于证明授权经过。"
    "您可以拒绝，改到网点当面办理。"
)


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
class Outcome:
    """The result of a checked step: `ok`, or why not and how many tries are left."""

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


def find_by_token(session: Session, token: str) -> Authorization:
    """The pending authorization this token opens; raises AuthorizationError otherwise."""
    auth = session.scalar(select(Authorization).where(Authorization.token_hash == _hash(token)))
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
        return find_by_token(session, token)
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


def consent_text(auth: Authorization, application: LoanApplication | None) -> str:
    """The text the party consents to (shown on the page and kept with the consent)."""
    about = ""
    if application is not None:
        applicant = application.customer
        about = f"，用于审批{mask_name(applicant.name)}申请的{application.product.name}" f"（申请编号{application.id}）"
    return (
        f"本人{auth.party_name}（身份证{auth.party_id_masked}）作为{ROLE_NAMES[auth.party_role]}，"
        f"授权{BANK}向中国人民银行征信中心查询本人的个人信用报告{about}。查询用途：{auth.purpose}。"
        f"本授权只用于这一笔业务，仅查询一次，查询记录会显示在本人的信用报告中。"
    )


def _party(session: Session, auth: Authorization) -> Customer:
    return session.get(Customer, auth.party_customer_id or auth.customer_id)


def _failed(
    session: Session, auth: Authorization, message: str, max_attempts: int, client: Client, face: dict | None = None
) -> Outcome:
    auth.attempts += 1
    left = max(max_attempts - auth.attempts, 0)
    if left == 0:
        _lock(session, auth, client)
        return Outcome(False, _STATUS_MESSAGES["locked"], 0, locked=True, face=face)
    return Outcome(False, f"{message}（还可以再试{left}次）", left, face=face)


def _lock(session: Session, auth: Authorization, client: Client) -> None:
    """Too many failures: the token stops working and the applicant's officer gets a hand-off."""
    auth.status = "locked"
    evidence.append(session, auth, "locked", client, attempts=auth.attempts)
    audit(session, "h5", "authorization.locked", "authorization", auth.id, attempts=auth.attempts)
    applicant = session.get(Customer, auth.customer_id)
    openid = applicant.wechat_openid or f"customer:{applicant.id}"
    request_hand_off(
        session,
        openid,
        "authorization_locked",
        {
            "authorization_id": auth.id,
            "application_id": auth.application_id,
            "party_role": auth.party_role,
            "party": mask_name(auth.party_name),
        },
    )


def identity_factor(party: Customer) -> str:
    """The factor that goes with the name/ID check on the H5 page: the party's own WeChat
    ("wechat", when one is bound to them) or a code sent to their phone on file ("sms")."""
    return "wechat" if party.wechat_openid else "sms"


def _code_hash(secret_key: str, auth: Authorization, code: str) -> str:
    return hmac.new(secret_key.encode(), f"{auth.id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_sms_code(session: Session, secret_key: str, token: str, sms, client: Client) -> str:
    """Text a 6-digit code (valid SMS_CODE_TTL) to the phone on file of a party without a bound
    WeChat; `sms` is a clients.sms.SmsClient. Returns the masked phone it went to."""
    auth = open_for_step(session, token, "sms_code", client)
    party = _party(session, auth)
    if identity_factor(party) != "sms":
        raise StepRefused("您的微信已与银行绑定，请直接用本人微信打开授权链接，不需要短信验证码")
    if not party.phone_sealed:
        raise StepRefused("银行没有登记您的手机号，无法发送验证码，请联系客户经理")
    now = utcnow()
    if auth.sms_code_expires_at and now < auth.sms_code_expires_at - SMS_CODE_TTL + SMS_RESEND_AFTER:
        raise StepRefused(f"验证码刚刚发出，请{SMS_RESEND_AFTER.seconds}秒后再重新获取")
    if auth.sms_sends >= SMS_MAX_SENDS:
        raise StepRefused("验证码发送次数过多，请联系客户经理重新发起授权")
    code = f"{secrets.randbelow(10 ** SMS_CODE_DIGITS):0{SMS_CODE_DIGITS}d}"
    try:
        sms.send(
            unseal(secret_key, party.phone_sealed),
            f"【{BANK}】您的征信查询授权验证码为{code}，{SMS_CODE_TTL.seconds // 60}分钟内有效。"
            "请勿告诉任何人（包括银行工作人员）。",
        )
    except SmsError as exc:
        log.warning("SMS code for authorization %s not sent: %s", auth.id, exc)
        raise StepRefused("短信发送失败，请稍后再试") from None
    auth.sms_code_hash, auth.sms_code_expires_at = _code_hash(secret_key, auth, code), now + SMS_CODE_TTL
    auth.sms_sends += 1
    evidence.append(session, auth, "sms_code_sent", client, phone=party.phone_masked)
    return party.phone_masked


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
) -> Outcome:
    """Step 1 on the H5 page: the party's name and the last digits of their ID number, and
    a second factor: `wechat_openid` (from WeChat's web authorization) must be the party's bound
    WeChat, or, for a party without one, `sms_code` the code texted to their phone."""
    auth = open_for_step(session, token, "identity", client)
    party = _party(session, auth)
    factor = identity_factor(party)
    if factor == "wechat" and not wechat_openid:
        evidence.append(session, auth, "refused", client, step="identity", reason="no_wechat_identity")
        raise StepRefused("请在微信里打开授权链接，以确认是您本人的微信")
    if factor == "sms" and not (sms_code or "").strip():
        raise StepRefused("请先获取短信验证码并填写")
    id_number = unseal(secret_key, party.id_sealed)
    given = (id_digits or "").strip().upper()
    name_ok = (
        (name or "").strip() == party.name
        and len(given) == ID_DIGITS
        and constant_time_equal(given, id_number[-ID_DIGITS:])
    )
    if factor == "wechat":
        second_ok = constant_time_equal(wechat_openid, party.wechat_openid)
        detail = {"wechat_openid_sha256": hashlib.sha256(wechat_openid.encode()).hexdigest()}
        why = "当前微信不是被查询人本人的微信，请本人用自己的微信打开"
    else:
        second_ok = (
            bool(auth.sms_code_hash)
            and auth.sms_code_expires_at >= utcnow()
            and constant_time_equal(_code_hash(secret_key, auth, sms_code.strip()), auth.sms_code_hash)
        )
        detail = {"phone": party.phone_masked}
        why = "短信验证码不正确或已过期，请重新获取"
    method = {"method": "name_id_digits", "factor": "wechat_oauth" if factor == "wechat" else "sms_code"}
    if name_ok and second_ok:
        auth.identity_checked_at = utcnow()
        auth.sms_code_hash = None  # a code works once
        evidence.append(session, auth, "identity_checked", client, **method, **detail)
        return Outcome(True, "身份核对通过", max_attempts - auth.attempts)
    evidence.append(
        session, auth, "identity_failed", client, **method, **detail, name_id_ok=name_ok, factor_ok=second_ok
    )
    return _failed(
        session, auth, why if name_ok else "姓名或身份证号后6位与授权信息不一致，请核对后重新输入", max_attempts, client
    )


def check_identity_wxa(session: Session, api, token: str, js_code: str, client: Client, max_attempts: int) -> Outcome:
    """Step 1 in the mini-program: wx.login's code must belong to the party's own WeChat."""
    auth = open_for_step(session, token, "identity", client)
    party = _party(session, auth)
    if not party.wechat_openid:
        raise StepRefused("您的微信还没有和银行客户信息绑定，请改用姓名和身份证号核对")
    try:
        openid = api.jscode2session(js_code).openid
    except WeChatApiError as exc:
        evidence.append(session, auth, "identity_failed", client, method="wxa_login", errcode=exc.errcode)
        return _failed(session, auth, "微信登录校验失败，请关闭页面后重新打开", max_attempts, client)
    if constant_time_equal(openid, party.wechat_openid):
        auth.identity_checked_at = utcnow()
        evidence.append(session, auth, "identity_checked", client, method="wxa_login", factor="wxa_login")
        return Outcome(True, "身份核对通过", max_attempts - auth.attempts)
    evidence.append(session, auth, "identity_failed", client, method="wxa_login")
    return _failed(session, auth, "当前微信不是被查询人本人的微信，请本人用自己的微信打开", max_attempts, client)


def give_biometric_consent(session: Session, token: str, agree: bool, client: Client) -> Authorization:
    """Step 2: the separate consent to processing the face image."""
    auth = open_for_step(session, token, "biometric_consent", client)
    if auth.identity_checked_at is None:
        raise StepRefused("请先核对姓名和身份证号")
    if agree is not True:
        evidence.append(session, auth, "biometric_declined", client, consent_text=BIOMETRIC_CONSENT_TEXT)
        raise StepRefused("您没有同意人脸核验，无法在线授权。可以到网点当面办理")
    auth.biometric_consent_at = utcnow()
    evidence.append(session, auth, "biometric_consent", client, consent_text=BIOMETRIC_CONSENT_TEXT)
    return auth


def enroll_reference(
    session: Session, secret_key: str, customer: Customer, image: bytes, enrolled_by: str, source: str = "officer"
) -> FaceReference:
    """Enrol an ID-photo-like reference face for `customer` (it replaces the earlier one).
    Raises faces.FaceError when the image does not hold exactly one face."""
    encoding = faces.encode(faces.load_image(image))
    for old in session.scalars(
        select(FaceReference).where(FaceReference.customer_id == customer.id, FaceReference.active.is_(True))
    ):
        old.active = False
    ref = FaceReference(
        customer_id=customer.id,
        encoding_sealed=faces.seal_encoding(secret_key, encoding),
        image_sha256=faces.sha256(image),
        source=source,
        enrolled_by=enrolled_by,
        active=True,
    )
    session.add(ref)
    session.flush()
    audit(session, enrolled_by, "face_reference.enrolled", "customer", customer.id, source=source)
    return ref


def reference_of(session: Session, customer_id: int) -> FaceReference | None:
    return session.scalar(
        select(FaceReference).where(FaceReference.customer_id == customer_id, FaceReference.active.is_(True))
    )


def check_face(
    session: Session,
    secret_key: str,
    token: str,
    uploads: list[bytes],
    client: Client,
    max_attempts: int,
    tolerance: float,
    min_motion: float,
) -> Outcome:
    """Step 3: the frames taken while the party turns their head: same face as the reference, and live."""
    auth = open_for_step(session, token, "face", client)
    if auth.identity_checked_at is None or auth.biometric_consent_at is None:
        evidence.append(session, auth, "refused", client, step="face", reason="out_of_order")
        raise StepRefused("请先核对身份并同意人脸核验")
    ref = reference_of(session, auth.party_customer_id or auth.customer_id)
    if ref is None:
        evidence.append(session, auth, "refused", client, step="face", reason="no_reference")
        raise StepRefused("银行还没有登记您的证件照，暂时不能刷脸授权，请联系客户经理")
    hashes = [faces.sha256(u) for u in uploads]
    try:
        result = faces.verify(faces.unseal_encoding(secret_key, ref.encoding_sealed), uploads, tolerance, min_motion)
    except faces.FaceError as exc:
        evidence.append(session, auth, "face_unusable", client, image_sha256=hashes, reason=str(exc))
        return _failed(session, auth, str(exc), max_attempts, client)
    face = result.as_dict()
    if result.passed:
        auth.face_verified_at = utcnow()
        evidence.append(
            session, auth, "face_passed", client, face=face, image_sha256=hashes, reference_sha256=ref.image_sha256
        )
        return Outcome(True, "人脸核验通过", max_attempts - auth.attempts, face=face)
    evidence.append(
        session, auth, "face_failed", client, face=face, image_sha256=hashes, reference_sha256=ref.image_sha256
    )
    why = (
        "未检测到转头动作，请对准摄像头、按提示慢慢左右转头，不要使用照片"
        if result.matched
        else "人脸与登记的证件照不一致，请本人操作"
    )
    return _failed(session, auth, why, max_attempts, client, face=face)


def give_consent(session: Session, token: str, agree: bool, client: Client, notify=None) -> Authorization:
    """Step 4: consent to the credit-report query; the token is used up. The officer hears of
    it (and of a refusal) through `notify` (an auth_flow.notices.OfficerNotifier; default: recorded)."""
    auth = open_for_step(session, token, "consent", client)
    if auth.identity_checked_at is None or auth.biometric_consent_at is None or auth.face_verified_at is None:
        evidence.append(session, auth, "refused", client, step="consent", reason="face_not_verified")
        raise StepRefused("请先完成身份核对和人脸核验，再确认授权")
    text = consent_text(auth, session.get(LoanApplication, auth.application_id) if auth.application_id else None)
    if agree is not True:
        auth.status = "refused"
        evidence.append(session, auth, "consent_refused", client, consent_text=text)
        audit(session, "h5", "authorization.refused", "authorization", auth.id)
        if auth.application_id:
            notices.consent_recorded(session, auth, notify)
        return auth
    face = session.scalar(
        select(evidence.ConsentEvidence.face)
        .where(evidence.ConsentEvidence.authorization_id == auth.id, evidence.ConsentEvidence.event == "face_passed")
        .order_by(evidence.ConsentEvidence.id.desc())
        .limit(1)
    )
    auth.status, auth.consented_at = "consented", utcnow()
    evidence.append(session, auth, "consented", client, consent_text=text, face=face or {})
    audit(session, "h5", "authorization.consented", "authorization", auth.id, party_role=auth.party_role)
    if auth.application_id:
        session.flush()
        notices.consent_recorded(session, auth, notify)
    return auth


def public_view(session: Session, auth: Authorization) -> dict:
    """What the authorization page shows: who is asking, for what, and how far the party has come."""
    application = session.get(LoanApplication, auth.application_id) if auth.application_id else None
    return {
        "party_name": auth.party_name,
        "party_role": auth.party_role,
        "party_role_name": ROLE_NAMES[auth.party_role],
        "party_id_masked": auth.party_id_masked,
        "party_phone_masked": auth.party_phone_masked,
        "purpose": auth.purpose,
        "requested_by": auth.requested_by,
        "bank": BANK,
        "expires_at": auth.expires_at.isoformat() + "Z",
        "status": auth.status,
        "steps": {
            "identity": auth.identity_checked_at is not None,
            "biometric_consent": auth.biometric_consent_at is not None,
            "face": auth.face_verified_at is not None,
        },
        "id_digits": ID_DIGITS,
        "biometric_consent_text": BIOMETRIC_CONSENT_TEXT,
        "identity_factor": identity_factor(_party(session, auth)),
        "consent_text": consent_text(auth, application),
    }
