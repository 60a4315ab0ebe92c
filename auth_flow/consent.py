"""The steps after identity, in order: consent to the face check (its own consent, PIPL
art. 29), the face check (match with the enrolled reference + liveness), and consent to
the credit-report query, which uses the token up. And what the page shows of a request.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import evidence, face_review, face_step, liveness, notices
from auth_flow.evidence import Client
from auth_flow.face_engines import FaceEngine
from auth_flow.face_step import FaceCheck
from auth_flow.identity import ID_DIGITS, identity_factor, page_id, page_name
from auth_flow.notices import OfficerNotifier
from auth_flow.subjects import FaceSubject
from auth_flow.tokens import (
    BANK,
    CheckResult,
    StepRefused,
    in_session,
    open_for_step,
    party_of,
)
from lending.parties import ROLE_NAMES
from sunshine.clock import utcnow
from sunshine.models import Authorization, ConsentEvidence, Customer, LoanApplication, Officer, audit
from sunshine.protect import mask_name

BIOMETRIC_CONSENT_TEXT = (
    f"为确认是您本人授权，{BANK}将采集您的人脸图像，与您登记的证件照比对，并检测是否为真人操作。"
    "人脸属于敏感个人信息：比对完成后照片立即删除，只保留照片的校验值（哈希）和比对结果，用于证明授权经过；"
    "如果自动比对不能确定是您本人，会加密保存一张照片交客户经理人工核对，核对完即删除。"
    "您可以拒绝，改到网点当面办理。"
)


BIOMETRIC_DECLINED = (
    "您没有同意人脸核验，本次无法在线授权，已告知申请人。可以到网点当面办理；如果改变主意，可以点“同意，开始刷脸”继续"
)


def _application(session: Session, auth: Authorization) -> LoanApplication | None:
    return session.get(LoanApplication, auth.application_id) if auth.application_id else None


def consent_text(auth: Authorization, application: LoanApplication | None) -> str:
    """The text the party consents to (shown on the page and kept with the consent)."""
    about = ""
    if application is not None:
        applicant = application.customer
        about = f"，用于审批{mask_name(applicant.name)}申请的{application.product.name}（申请编号{application.id}）"
    return (
        f"本人{auth.party_name}（身份证{auth.party_id_masked}）作为{ROLE_NAMES[auth.party_role]}，"
        f"授权{BANK}向中国人民银行征信中心查询本人的个人信用报告{about}。查询用途：{auth.purpose}。"
        f"本授权只用于这一笔业务，仅查询一次，查询记录会显示在本人的信用报告中。"
    )


def give_biometric_consent(session: Session, token: str, agree: bool, client: Client) -> Authorization:
    """Step 2: the separate consent to processing the face image."""
    auth = open_for_step(session, token, "biometric_consent", client)
    if auth.identity_checked_at is None:
        raise StepRefused("请先核对姓名和身份证号")
    if agree is not True:
        told = session.scalar(
            select(ConsentEvidence.id).where(
                ConsentEvidence.authorization_id == auth.id, ConsentEvidence.event == "biometric_declined"
            )
        )
        evidence.append(session, auth, "biometric_declined", client, consent_text=BIOMETRIC_CONSENT_TEXT)
        if told is None:  # the applicant hears of it once
            notices.party_declined(session, auth, "biometric")
        raise StepRefused(BIOMETRIC_DECLINED)
    auth.biometric_consent_at = utcnow()
    evidence.append(session, auth, "biometric_consent", client, consent_text=BIOMETRIC_CONSENT_TEXT)
    return auth


def _ready_for_face(session: Session, auth: Authorization, client: Client, step: str) -> None:
    if auth.identity_checked_at is None or auth.biometric_consent_at is None:
        evidence.append(session, auth, "refused", client, step=step, reason="out_of_order")
        raise StepRefused("请先核对身份并同意人脸核验")


def face_challenge(session: Session, token: str, client: Client, challenges: liveness.Challenges) -> dict:
    """Step 3 begins: a new random challenge (the actions the page asks for) for this attempt."""
    auth = open_for_step(session, token, "face", client)  # the face step's first request: bound alike
    _ready_for_face(session, auth, client, "face_challenge")
    return face_step.challenge(FaceSubject(auth), challenges)


def check_face(
    session: Session,
    token: str,
    uploads: list[bytes],
    client: Client,
    max_attempts: int,
    engine: FaceEngine,
    min_motion: float,
    challenges: liveness.Challenges,
    nonce: str,
    steps: list[int] | None,
    review_minutes: int = 30,
) -> CheckResult:
    """Step 3: the frames taken while the party does the challenge's actions (auth_flow.face_step:
    the shared face step; a match in the review band waits for an officer)."""
    auth = open_for_step(session, token, "face", client)
    _ready_for_face(session, auth, client, "face")
    face_check = FaceCheck(engine, min_motion, challenges, max_attempts, review_minutes)
    return face_step.check(session, FaceSubject(auth), uploads, client, face_check, nonce, steps)


def give_consent(
    session: Session, token: str, agree: bool, client: Client, notify: OfficerNotifier | None = None
) -> Authorization:
    """Step 4: consent to the credit-report query; the token is used up. The officer hears of
    it (and of a refusal) through `notify` (default: lending.notify.notify_officer)."""
    auth = open_for_step(session, token, "consent", client)
    if auth.identity_checked_at is None or auth.biometric_consent_at is None or auth.face_verified_at is None:
        evidence.append(session, auth, "refused", client, step="consent", reason="face_not_verified")
        raise StepRefused("请先完成身份核对和人脸核验，再确认授权")
    text = consent_text(auth, _application(session, auth))
    if agree is not True:
        auth.status = "refused"
        evidence.append(session, auth, "consent_refused", client, consent_text=text)
        audit(session, "h5", "authorization.refused", "authorization", auth.id)
        notices.party_declined(session, auth, "consent")
        if auth.application_id:
            notices.consent_recorded(session, auth, notify)
        return auth
    face = session.scalar(
        select(ConsentEvidence.face)
        .where(ConsentEvidence.authorization_id == auth.id, ConsentEvidence.event == "face_passed")
        .order_by(ConsentEvidence.id.desc())
        .limit(1)
    )
    auth.status, auth.consented_at = "consented", utcnow()
    evidence.append(session, auth, "consented", client, consent_text=text, face=face or {})
    audit(session, "h5", "authorization.consented", "authorization", auth.id, party_role=auth.party_role)
    if auth.application_id:
        session.flush()
        notices.consent_recorded(session, auth, notify)
    return auth


def requester(session: Session, auth: Authorization) -> str:
    """Who is asking, as the party reads it: the bank's officer who issued the link, or the
    bank's assistant on behalf of the applicant's officer (never "bot")."""
    issuer = session.scalar(select(Officer).where(Officer.username == auth.requested_by.removeprefix("officer:")))
    if issuer is not None:
        return f"{BANK}客户经理{issuer.display_name}"
    applicant = session.get(Customer, auth.customer_id)
    officer = session.get(Officer, applicant.officer_id) if applicant and applicant.officer_id else None
    return f"阳光信贷助手（{BANK}微信服务号）" + (f"，负责的客户经理：{officer.display_name}" if officer else "")


def public_view(session: Session, auth: Authorization, client: Client | None = None, review_minutes: int = 30) -> dict:
    """What the authorization page shows: who is asking, for what, and how far the party has
    come in this session. Before this session passed identity it shows nothing of what the
    identity check asks: the name masked (张*国) and the ID number's first characters only."""
    bound = client is not None and in_session(auth, client)
    view = {
        "party_name": auth.party_name if bound else page_name(auth.party_name),
        "party_role": auth.party_role,
        "party_role_name": ROLE_NAMES[auth.party_role],
        "party_id_masked": auth.party_id_masked if bound else page_id(auth.party_id_masked),
        "party_phone_masked": auth.party_phone_masked,
        "purpose": auth.purpose,
        "requested_by": requester(session, auth),
        "bank": BANK,
        "expires_at": auth.expires_at.isoformat() + "Z",
        "status": auth.status,
        "steps": {
            "identity": bound and auth.identity_checked_at is not None,
            "biometric_consent": bound and auth.biometric_consent_at is not None,
            "face": bound and auth.face_verified_at is not None,
        },
        "id_digits": ID_DIGITS,
        "biometric_consent_text": BIOMETRIC_CONSENT_TEXT,
        "identity_factor": identity_factor(party_of(session, auth)),
        # The consent text names the party in full: shown once this session passed identity.
        "consent_text": consent_text(auth, _application(session, auth)) if bound else "",
        # An officer's review of this session's face check: waiting, or rejected (how to retry).
        "face_review": face_review.page_state(session, auth, review_minutes) if bound else face_review.NO_REVIEW,
    }
    return view
