"""Signing the loan contract (合同电子化) with the authorization's proofs: the borrower's own
WeChat (the page's web authorization, or the mini-program's login) or, for a borrower without a
bound WeChat, a code texted to the phone on file (auth_flow.identity's `own_wechat_or_code` and
`text_code`, the same as the authorization's first step). Above CONTRACT_FACE_ABOVE the borrower
passes a face check first: the authorization's face step (auth_flow.face_step: the server's
challenge, the enrolled reference, an officer's review in the band the engine cannot decide,
AUTH_MAX_ATTEMPTS failures lock the contract), with the contract as its subject. The signature's
evidence record carries the face check that passed.

An expired link is renewed (`renew`: by the borrower, from the expired page, or by an officer,
who also releases a locked contract): a new token, the old link stops working, at most
CONTRACT_RENEWALS_PER_DAY renewals in 24 hours.

The borrower signs the SHA-256 of the text they read: the text is made again when they sign, and
a different hash (the product's rate changed, say) refuses the signature. A signature is
recorded in the evidence chain with the text, its hash and the proof; the PDF of the signed text
is kept with its SHA-256; the application moves to `signed` and, once that commits, the
disbursement job is queued.

Every function here takes the contract (`contracts.find_by_token` for the page's link,
`contracts.for_application` for the mini-program's customer) and raises ContractError (a code for
machines, a message for the customer) or StepRefused; the refusals that are evidence (another
person's WeChat, a wrong code, a changed text) are recorded before they are raised, so the caller
commits its unit of work either way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth_flow import evidence, face_review, face_step
from auth_flow.evidence import Client
from auth_flow.face_step import FaceCheck
from auth_flow.identity import identity_factor, own_wechat_or_code, text_code
from auth_flow.subjects import FaceSubject
from auth_flow.tokens import CheckResult, StepRefused
from clients.sms import SmsClient
from lending.amounts import format_amount
from lending.applications import STATUS_LABELS, Applications
from lending.contract_pdf import render
from lending.contracts import (
    LOCKED,
    REPAYMENT_METHODS,
    ContractError,
    check_renewable,
    check_signable,
    contract_number,
    contract_text,
    pdf_intact,
    repayment_method,
)
from lending.contracts import renew as new_link
from sunshine.clock import full_time, utcnow
from sunshine.jobs import after_commit
from sunshine.models import ConsentEvidence, LoanContract, audit
from sunshine.protect import constant_time_equal

TEXT_CHANGED = "合同内容已更新，请重新阅读后再签署"
SIGNED_MESSAGE = "借款合同签署成功，正在为您放款，到账后会在微信里通知您。签署后的合同可以在本页下载。"
FACTOR_NAMES = {"wechat_oauth": "本人微信", "wxa_login": "本人微信（小程序）", "sms_code": "短信验证码"}
RENEWAL_WINDOW = timedelta(hours=24)


class Disbursing(Protocol):
    def disburse(self, application_id: int) -> None:
        """Queue the disbursement of a signed loan (sunshine.jobs.Jobs.disburse)."""


@dataclass(frozen=True)
class Terms:
    """What signing needs from the settings: BANK_NAME, SECRET_KEY, CONTRACT_FACE_ABOVE,
    CONTRACT_TTL_HOURS (a renewed link's life), CONTRACT_RENEWALS_PER_DAY, FACE_REVIEW_MINUTES."""

    bank: str
    secret_key: str
    face_above: int
    ttl: timedelta = timedelta(hours=72)
    renewals_per_day: int = 3
    review_minutes: int = 30

    @classmethod
    def from_settings(cls, settings) -> Terms:
        return cls(
            settings.bank_name,
            settings.secret_key,
            settings.contract_face_above,
            timedelta(hours=settings.contract_ttl_hours),
            settings.contract_renewals_per_day,
            settings.face_review_minutes,
        )


@dataclass(frozen=True)
class Proof:
    """How the signer proves who they are: the WeChat of the page's web authorization, the
    mini-program's openid of the customer signed in there, or an SMS code."""

    wechat_openid: str | None = None
    mp_openid: str | None = None
    sms_code: str | None = None


def _refuse(session: Session, contract: LoanContract, client: Client, code: str, message: str, **detail) -> None:
    evidence.append(session, contract, "refused", client, step="contract_sign", reason=code, **detail)
    audit(session, "h5", "contract.refused", "loan_contract", contract.id, reason=code)
    raise ContractError(code, message)


def _is_borrower(contract: LoanContract, proof: Proof) -> bool | None:
    """Whether the WeChat in `proof` is the borrower's (None: it names no WeChat)."""
    party = contract.application.customer
    if proof.mp_openid:
        return bool(party.mp_openid) and constant_time_equal(proof.mp_openid, party.mp_openid or "")
    if proof.wechat_openid:
        return bool(party.wechat_openid) and constant_time_equal(proof.wechat_openid, party.wechat_openid or "")
    return None


def check_reader(session: Session, contract: LoanContract, proof: Proof, client: Client) -> None:
    """A borrower with a bound WeChat reads and signs their contract in that WeChat only (the
    text names them in full): without a WeChat identity the page asks for one; another person's
    WeChat is refused (recorded). A borrower without one reads it from the link."""
    if not contract.application.customer.wechat_openid:
        return
    mine = _is_borrower(contract, proof)
    if mine is None:
        raise StepRefused("请在微信里打开合同链接，以确认是您本人的微信")
    if not mine:
        _refuse(session, contract, client, "other_person", "这份借款合同只能由借款人本人用自己的微信打开和签署")


def read(session: Session, contract: LoanContract, terms: Terms, proof: Proof, client: Client) -> dict[str, Any]:
    """What the signing page shows: the contract's text (made now), its hash and version, how it
    is signed, and once signed, by what proof and when. Showing an offered text records its hash."""
    check_reader(session, contract, proof, client)
    application = contract.application
    view: dict[str, Any] = {
        "contract_number": contract_number(application),
        "status": contract.status,
        "application_status": application.status,
        "application_status_label": STATUS_LABELS[application.status],
        "bank": terms.bank,
        "product": application.product.name,
        "amount": application.amount,
        "amount_text": format_amount(application.amount),
        "term_months": application.term_months,
        "annual_rate": f"{application.product.annual_rate_bp / 100:.2f}%",
        "repayment_method": REPAYMENT_METHODS[repayment_method(application.product)][0],
        "expires_at": contract.expires_at.isoformat() + "Z",
        "expired": contract.status == "offered" and contract.expires_at < utcnow(),
        "locked_message": LOCKED if contract.status == "locked" else "",
    }
    if contract.status == "signed":
        return view | {
            "text": contract.text,
            "text_sha256": contract.text_sha256,
            "version": contract.version,
            "signed_at": contract.signed_at.isoformat() + "Z" if contract.signed_at else None,
            "signed_at_text": full_time(contract.signed_at) if contract.signed_at else "",
            "signed_with": FACTOR_NAMES.get(contract.proof.get("factor", ""), ""),
            "pdf_sha256": contract.pdf_sha256,
        }
    shown = contract_text(application, terms.bank, contract.offered_at)
    contract.text_sha256 = shown.sha256
    party = application.customer
    return view | {
        "text": shown.text,
        "text_sha256": shown.sha256,
        "version": shown.version,
        "factor": "wechat" if proof.mp_openid and party.mp_openid else identity_factor(party),
        "phone_masked": party.phone_masked,
        "face_required": application.amount > terms.face_above,
        "face_verified": contract.face_verified_at is not None,
        "face_review": face_review.page_state(session, contract, terms.review_minutes),
        "face_above_text": format_amount(terms.face_above),
    }


def send_code(
    session: Session, contract: LoanContract, terms: Terms, sms: SmsClient, proof: Proof, client: Client
) -> str:
    """Text a signing code to a borrower without a bound WeChat; returns the masked phone."""
    check_reader(session, contract, proof, client)
    check_signable(contract)
    party = contract.application.customer
    if identity_factor(party) != "sms":
        raise StepRefused("您的微信已与银行绑定，请直接用本人微信打开合同链接签署，不需要短信验证码")
    return text_code(session, terms.secret_key, contract, party, sms, "借款合同签署", client)


def sign(
    session: Session,
    contract: LoanContract,
    text_sha256: str,
    terms: Terms,
    proof: Proof,
    client: Client,
    applications: Applications,
    jobs: Disbursing,
) -> LoanContract:
    """The borrower signs the text whose SHA-256 they were shown. Refused (nothing signed) when
    the contract cannot be signed now, the proof is not the borrower's, the code is wrong or
    expired (it is used up either way), or the text changed since it was shown."""
    check_reader(session, contract, proof, client)
    check_signable(contract)
    application = contract.application
    party = application.customer
    face_needed = application.amount > terms.face_above
    if face_needed and contract.face_verified_at is None:
        _refuse(
            session,
            contract,
            client,
            "face_required",
            f"借款金额超过{format_amount(terms.face_above)}，请先刷脸确认是您本人，再签署合同",
        )
    if proof.mp_openid and party.mp_openid:
        factor_ok = bool(_is_borrower(contract, proof))
        detail: dict[str, Any] = {"factor": "wxa_login"}
        why = "当前微信不是借款人本人的微信，请本人用自己的微信签署"
    else:
        factor = own_wechat_or_code(
            session,
            terms.secret_key,
            contract,
            party,
            client,
            proof.wechat_openid,
            proof.sms_code,
            "合同链接",
            "借款人",
        )
        factor_ok, detail, why = factor.ok, factor.detail, factor.why
    if not factor_ok:
        contract.sms_code_hash = None  # one guess per code
        _refuse(
            session, contract, client, "wrong_code" if detail["factor"] == "sms_code" else "other_person", why, **detail
        )
    contract.sms_code_hash = None  # a code works once
    shown = contract_text(application, terms.bank, contract.offered_at)
    if not constant_time_equal(text_sha256 or "", shown.sha256):
        _refuse(session, contract, client, "text_changed", TEXT_CHANGED, signed_sha256=str(text_sha256)[:64])
    if face_needed:  # the face check that passed goes with the signature
        detail = detail | {"face_verified_at": contract.face_verified_at.isoformat()}  # type: ignore[union-attr]
    record = evidence.append(
        session,
        contract,
        "contract_signed",
        client,
        face=_passed_face(session, contract) if face_needed else None,
        consent_text=shown.text,
        text_sha256=shown.sha256,
        version=shown.version,
        application_id=application.id,
        amount=application.amount,
        **detail,
    )
    now = utcnow()
    contract.status, contract.signed_at, contract.proof = "signed", now, detail
    contract.text, contract.text_sha256, contract.version, contract.evidence_id = (
        shown.text,
        shown.sha256,
        shown.version,
        record.id,
    )
    contract.pdf = render(shown.text, _signature_block(contract, record.record_hash), contract_number(application))
    contract.pdf_sha256 = hashlib.sha256(contract.pdf).hexdigest()
    applications.sign(session, application.id, contract.id)
    audit(session, "customer", "contract.signed", "loan_contract", contract.id, factor=detail["factor"])
    after_commit(session, partial(jobs.disburse, application.id), key=("lending.disburse", application.id))
    return contract


def _passed_face(session: Session, contract: LoanContract) -> dict:
    """The face check that let the borrower sign: the last passed attempt, or an officer's approval."""
    face = session.scalar(
        select(ConsentEvidence.face)
        .where(
            ConsentEvidence.contract_id == contract.id,
            ConsentEvidence.event.in_(("face_passed", "face_review_approved")),
        )
        .order_by(ConsentEvidence.id.desc())
        .limit(1)
    )
    return face or {}


def _face_ready(session: Session, contract: LoanContract, terms: Terms, proof: Proof, client: Client) -> None:
    """The face step of a contract is taken by its reader, while it can be signed, above the limit,
    before the face check passed."""
    check_reader(session, contract, proof, client)
    check_signable(contract)
    if contract.application.amount <= terms.face_above:
        raise StepRefused(f"借款金额不超过{format_amount(terms.face_above)}，签署这份合同不需要刷脸")
    if contract.face_verified_at is not None:
        raise StepRefused("您已通过刷脸核验，请直接签署合同")


def face_challenge(
    session: Session, contract: LoanContract, terms: Terms, proof: Proof, client: Client, face_check: FaceCheck
) -> dict:
    """A new random challenge for the borrower's next face attempt."""
    _face_ready(session, contract, terms, proof, client)
    return face_step.challenge(FaceSubject(contract), face_check.challenges)


def check_face(
    session: Session,
    contract: LoanContract,
    terms: Terms,
    proof: Proof,
    client: Client,
    face_check: FaceCheck,
    uploads: list[bytes],
    nonce: str,
    steps: list[int] | None,
) -> CheckResult:
    """One face attempt of the borrower (auth_flow.face_step); a pass lets them sign."""
    _face_ready(session, contract, terms, proof, client)
    return face_step.check(session, FaceSubject(contract), uploads, client, face_check, nonce, steps, "contract_face")


def renew(
    session: Session, contract: LoanContract, terms: Terms, proof: Proof, client: Client, by: str = "customer"
) -> str:
    """A new link for the contract (the old one stops working; returns the new token). The borrower
    (`by` "customer", through the expired link, as its reader) renews an expired link; an officer
    (`by` "officer:<username>") any unsigned one, a locked one too. At most
    CONTRACT_RENEWALS_PER_DAY renewals in 24 hours; a refusal is recorded."""
    by_officer = by.startswith("officer:")
    if not by_officer:
        check_reader(session, contract, proof, client)
    check_renewable(contract, by_officer)
    since = utcnow() - RENEWAL_WINDOW
    recent = session.scalar(
        select(func.count(ConsentEvidence.id)).where(
            ConsentEvidence.contract_id == contract.id,
            ConsentEvidence.event == "contract_renewed",
            ConsentEvidence.at >= since,
        )
    )
    if (recent or 0) >= terms.renewals_per_day:
        _refuse_renewal(session, contract, client, by, terms.renewals_per_day)
    was = contract.status
    token = new_link(contract, terms.secret_key, utcnow(), terms.ttl)
    evidence.append(session, contract, "contract_renewed", client, by=by, renewals=contract.renewals, was=was)
    audit(session, by if by_officer else "customer", "contract.renewed", "loan_contract", contract.id, was=was)
    return token


def _refuse_renewal(session: Session, contract: LoanContract, client: Client, by: str, limit: int) -> None:
    message = f"合同签署链接24小时内已重新发了{limit}次，达到上限，暂时不能再发；需要帮助请联系客户经理"
    evidence.append(session, contract, "refused", client, step="contract_renew", reason="renewal_limit", by=by)
    audit(session, "h5", "contract.renewal_refused", "loan_contract", contract.id, by=by)
    raise ContractError("renewal_limit", message)


def _signature_block(contract: LoanContract, record_hash: str) -> list[tuple[str, str]]:
    signed_at = contract.signed_at or utcnow()
    proof = contract.proof
    how = FACTOR_NAMES.get(proof.get("factor", ""), proof.get("factor", ""))
    if proof.get("phone"):
        how += f"（发送至{proof['phone']}）"
    if proof.get("face_verified_at"):
        how += "＋人脸核验"
    return [
        ("签署人", f"{contract.party_name}（身份证号码{contract.party_id_masked}）"),
        ("签署时间", f"{full_time(signed_at)}（北京时间）"),
        ("验证方式", how),
        ("存证记录", f"第{contract.evidence_id}号，记录校验值{record_hash}"),
        ("合同文本SHA-256", contract.text_sha256 or ""),
        ("合同版本", contract.version),
    ]


def pdf(session: Session, contract: LoanContract, proof: Proof, client: Client) -> bytes:
    """The signed contract's PDF for its borrower (checked against its stored hash)."""
    check_reader(session, contract, proof, client)
    return pdf_intact(contract)
