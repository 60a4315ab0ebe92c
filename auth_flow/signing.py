"""Signing the loan contract (合同电子化) with the authorization's proofs: the borrower's own
WeChat (the page's web authorization, or the mini-program's login) or, for a borrower without a
bound WeChat, a code texted to the phone on file (auth_flow.identity's `own_wechat_or_code` and
`text_code`, the same as the authorization's first step). Above CONTRACT_FACE_ABOVE a face check
is asked for as well.

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
from functools import partial
from typing import Any, Protocol

from sqlalchemy.orm import Session

from auth_flow import evidence
from auth_flow.evidence import Client
from auth_flow.identity import identity_factor, own_wechat_or_code, text_code
from auth_flow.tokens import StepRefused
from clients.sms import SmsClient
from lending.amounts import format_amount
from lending.applications import STATUS_LABELS, Applications
from lending.contract_pdf import render
from lending.contracts import (
    REPAYMENT_METHODS,
    ContractError,
    check_signable,
    contract_number,
    contract_text,
    pdf_intact,
    repayment_method,
)
from sunshine.clock import full_time, utcnow
from sunshine.jobs import after_commit
from sunshine.models import LoanContract, audit
from sunshine.protect import constant_time_equal

TEXT_CHANGED = "合同内容已更新，请重新阅读后再签署"
SIGNED_MESSAGE = "借款合同签署成功，正在为您放款，到账后会在微信里通知您。签署后的合同可以在本页下载。"
FACTOR_NAMES = {"wechat_oauth": "本人微信", "wxa_login": "本人微信（小程序）", "sms_code": "短信验证码"}


class Disbursing(Protocol):
    def disburse(self, application_id: int) -> None:
        """Queue the disbursement of a signed loan (sunshine.jobs.Jobs.disburse)."""


@dataclass(frozen=True)
class Terms:
    """What signing needs from the settings: BANK_NAME, SECRET_KEY, CONTRACT_FACE_ABOVE."""

    bank: str
    secret_key: str
    face_above: int

    @classmethod
    def from_settings(cls, settings) -> Terms:
        return cls(settings.bank_name, settings.secret_key, settings.contract_face_above)


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
    if application.amount > terms.face_above:
        _refuse(
            session,
            contract,
            client,
            "face_required",
            f"借款金额超过{format_amount(terms.face_above)}，需要刷脸确认本人后签署。"
            "线上刷脸签约还没有开通，请联系客户经理到网点签署",
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
    record = evidence.append(
        session,
        contract,
        "contract_signed",
        client,
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


def _signature_block(contract: LoanContract, record_hash: str) -> list[tuple[str, str]]:
    signed_at = contract.signed_at or utcnow()
    proof = contract.proof
    how = FACTOR_NAMES.get(proof.get("factor", ""), proof.get("factor", ""))
    if proof.get("phone"):
        how += f"（发送至{proof['phone']}）"
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
