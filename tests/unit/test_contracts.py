"""The electronic loan contract: its text, signing with the borrower's own WeChat or an SMS code,
the evidence, the PDF, and every refusal (nothing signed, nothing paid)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from auth_flow import evidence, signing
from auth_flow.evidence import Client
from auth_flow.signing import Proof
from lending.applications import IllegalTransition
from lending.contracts import (
    ContractError,
    amount_in_capitals,
    contract_text,
    find_by_token,
    for_application,
    pdf_intact,
)
from lending.customers import by_openid
from sunshine.clock import travel_to, utcnow
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, ConsentEvidence, LoanApplication, LoanContract, LoanProduct
from tests import TEST_SECRET
from tests.unit.contract_helpers import TERMS, ZHANG, Disbursals, approved
from tests.unit.lending_helpers import service

WEB = Client(ip="10.0.0.8", user_agent="MicroMessenger")
OWN = Proof(wechat_openid=ZHANG)


@pytest.mark.parametrize(
    ("yuan", "capitals"),
    [
        (1, "壹元整"),
        (1010, "壹仟零壹拾元整"),
        (50_000, "伍万元整"),
        (100_500, "壹拾万零伍佰元整"),
        (123_456, "壹拾贰万叁仟肆佰伍拾陆元整"),
        (1_000_001, "壹佰万零壹元整"),
        (10_001_000, "壹仟万壹仟元整"),
        (200_000_000, "贰亿元整"),
    ],
)
def test_amounts_in_chinese_capitals(yuan, capitals):
    assert amount_in_capitals(yuan) == capitals


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, 10**12])
def test_an_amount_that_is_not_whole_positive_yuan_has_no_capitals(bad):
    with pytest.raises(ValueError):
        amount_in_capitals(bad)


def _read(db_url, token, proof=OWN):
    with unit_of_work(db_url) as s:
        return signing.read(s, find_by_token(s, token), TERMS, proof, WEB)


def _sign(db_url, svc, token, text_sha256, proof=OWN, jobs=None):
    jobs = jobs if jobs is not None else Disbursals()
    with unit_of_work(db_url) as s:
        return signing.sign(s, find_by_token(s, token, lock=True), text_sha256, TERMS, proof, WEB, svc, jobs).id


def _refused(db_url, svc, token, text_sha256, proof=OWN) -> str:
    """Sign and expect a refusal (committed: a refusal is evidence); returns its code."""
    jobs = Disbursals()
    with unit_of_work(db_url) as s:
        with pytest.raises(ContractError) as caught:
            signing.sign(s, find_by_token(s, token, lock=True), text_sha256, TERMS, proof, WEB, svc, jobs)
    assert jobs.queued == []
    return caught.value.code


def _state(db_url, app_id):
    with unit_of_work(db_url) as s:
        contract = for_application(s, app_id)
        return s.get(LoanApplication, app_id).status, contract.status, contract.pdf


def test_the_contract_names_the_parties_the_amount_in_capitals_the_rate_and_the_terms(demo_db_url):
    _, told, app_id, token = approved(demo_db_url, amount=50_000)
    assert told.sent[-1][1].endswith(f"请点击签署借款合同：/contract/{token}")
    assert told.details[-1]["link"] == f"/contract/{token}"  # what a template message opens
    view = _read(demo_db_url, token)
    text = view["text"]
    assert text.startswith("个人借款合同")
    for part in (
        "贷款人（甲方）：阳光农村商业银行",
        "借款人（乙方）：张建国　身份证号码：3212**********0119",
        "人民币50,000.00元（大写：人民币伍万元整）",
        "买化肥",
        "12个月",
        "年利率4.35%",
        "随借随还",
        "阳光e贷：面向整村授信农户的信用贷款",
        f"合同编号：YGJK{app_id:08d}",
        "（北京时间）",
    ):
        assert part in text, part
    assert "321283197503120119" not in text
    assert view["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (view["status"], view["factor"], view["face_required"]) == ("offered", "wechat", False)
    with unit_of_work(demo_db_url) as s:  # what was shown is recorded
        assert for_application(s, app_id).text_sha256 == view["text_sha256"]


def test_signing_with_the_borrowers_wechat_records_evidence_keeps_the_pdf_and_queues_the_disbursement(demo_db_url):
    svc, told, app_id, token = approved(demo_db_url)
    shown = _read(demo_db_url, token)
    jobs = Disbursals()
    contract_id = _sign(demo_db_url, svc, token, shown["text_sha256"], jobs=jobs)
    assert jobs.queued == [app_id]  # after the commit
    assert told.sent[-1] == (
        ZHANG,
        "您的阳光e贷申请（5万元，12个月）借款合同已签署，正在为您放款，到账后会在微信里通知您。",
    )
    with unit_of_work(demo_db_url) as s:
        contract = s.get(LoanContract, contract_id)
        assert (contract.status, contract.application.status) == ("signed", "signed")
        assert contract.text == shown["text"] and contract.text_sha256 == shown["text_sha256"]
        assert contract.proof["factor"] == "wechat_oauth"
        assert contract.pdf.startswith(b"%PDF") and contract.pdf_sha256 == hashlib.sha256(contract.pdf).hexdigest()
        assert b"STSong-Light" in contract.pdf
        record = s.get(ConsentEvidence, contract.evidence_id)
        assert (record.event, record.contract_id, record.authorization_id) == ("contract_signed", contract_id, None)
        assert record.consent_text == shown["text"] and record.detail["text_sha256"] == shown["text_sha256"]
        assert (record.party_name, record.client_ip) == ("张建国", "10.0.0.8")
        assert evidence.verify_chain(evidence.export(s), evidence.configured_keys()) == []
        event = s.scalars(
            select(ApplicationEvent).where(ApplicationEvent.application_id == app_id).order_by(ApplicationEvent.id)
        ).all()[-1]
        assert (event.from_status, event.to_status, event.detail) == (
            "approved",
            "signed",
            {"contract_id": contract_id},
        )
    signed = _read(demo_db_url, token)
    assert signed["status"] == "signed" and signed["signed_with"] == "本人微信" and signed["text"] == shown["text"]


def test_a_changed_record_of_a_signing_breaks_the_chain(demo_db_url):
    svc, _, _, token = approved(demo_db_url)
    _sign(demo_db_url, svc, token, _read(demo_db_url, token)["text_sha256"])
    with unit_of_work(demo_db_url) as s:
        records = list(evidence.export(s))
    records[-1]["contract_id"] += 1  # the record claims another contract
    assert evidence.verify_chain(records, evidence.configured_keys()) == [
        f"record {records[-1]['id']}: content does not match its hash"
    ]


def test_a_text_changed_after_it_was_shown_is_not_signed(demo_db_url):
    svc, _, app_id, token = approved(demo_db_url)
    shown = _read(demo_db_url, token)
    with unit_of_work(demo_db_url) as s:
        s.get(LoanProduct, "sunshine_e_loan").annual_rate_bp = 465  # the product's rate changed
    assert _refused(demo_db_url, svc, token, shown["text_sha256"]) == "text_changed"
    assert _state(demo_db_url, app_id) == ("approved", "offered", None)
    again = _read(demo_db_url, token)
    assert "年利率4.65%" in again["text"] and again["text_sha256"] != shown["text_sha256"]
    _sign(demo_db_url, svc, token, again["text_sha256"])  # read again, signed
    assert _state(demo_db_url, app_id)[:2] == ("signed", "signed")


def test_another_persons_wechat_can_neither_read_nor_sign(demo_db_url):
    svc, _, app_id, token = approved(demo_db_url)
    shown = _read(demo_db_url, token)
    stranger = Proof(wechat_openid="o_someone_else")
    with unit_of_work(demo_db_url) as s, pytest.raises(ContractError) as caught:  # committed: it is evidence
        signing.read(s, find_by_token(s, token), TERMS, stranger, WEB)
    assert caught.value.code == "other_person" and "借款人本人" in caught.value.message
    assert _refused(demo_db_url, svc, token, shown["text_sha256"], stranger) == "other_person"
    # outside WeChat (no WeChat identity) a borrower who has one can neither read nor sign
    with unit_of_work(demo_db_url) as s:
        with pytest.raises(signing.StepRefused, match="请在微信里打开合同链接"):
            signing.read(s, find_by_token(s, token), TERMS, Proof(), WEB)
        with pytest.raises(signing.StepRefused, match="请在微信里打开合同链接"):
            signing.sign(s, find_by_token(s, token), shown["text_sha256"], TERMS, Proof(), WEB, svc, Disbursals())
    assert _state(demo_db_url, app_id) == ("approved", "offered", None)
    with unit_of_work(demo_db_url) as s:
        reasons = [r.detail.get("reason") for r in s.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id))]
        assert reasons == ["other_person", "other_person"]


def test_an_expired_or_already_signed_contract_is_not_signed(demo_db_url):
    svc, _, app_id, token = approved(demo_db_url)
    sha = _read(demo_db_url, token)["text_sha256"]
    with travel_to(utcnow() + timedelta(hours=73)):
        assert _refused(demo_db_url, svc, token, sha) == "expired"
    assert _state(demo_db_url, app_id) == ("approved", "offered", None)
    _sign(demo_db_url, svc, token, sha)
    assert _refused(demo_db_url, svc, token, sha) == "already_signed"
    with unit_of_work(demo_db_url) as s:
        assert s.scalar(select(func.count()).where(ApplicationEvent.to_status == "signed")) == 1


def test_a_withdrawn_application_is_not_signed_and_a_signed_one_cannot_be_withdrawn(demo_db_url):
    svc, _, app_id, token = approved(demo_db_url)
    sha = _read(demo_db_url, token)["text_sha256"]
    with unit_of_work(demo_db_url) as s:
        svc.withdraw(s, app_id)
    assert _refused(demo_db_url, svc, token, sha) == "withdrawn"
    assert _state(demo_db_url, app_id) == ("withdrawn", "offered", None)
    svc, _, app_id, token = approved(demo_db_url, amount=30_000)
    _sign(demo_db_url, svc, token, _read(demo_db_url, token)["text_sha256"])
    with unit_of_work(demo_db_url) as s, pytest.raises(IllegalTransition, match="已签约"):
        svc.withdraw(s, app_id)


def test_an_unapproved_application_has_no_contract_to_sign(demo_db_url):
    svc, _ = service(clock=utcnow)
    with unit_of_work(demo_db_url) as s:
        app = svc.apply(s, by_openid(s, ZHANG).id, "sunshine_e_loan", 50_000, 12, idempotency_key="u1")
        with pytest.raises(ContractError) as caught:
            for_application(s, app.id)
        assert caught.value.code == "no_contract"
        with pytest.raises(ContractError) as unknown:
            find_by_token(s, "forged-token")
        assert unknown.value.code == "unknown_token"
        assert s.scalar(select(func.count()).select_from(LoanContract)) == 0


def test_a_loan_above_the_face_limit_is_not_signed_without_a_face_check(demo_db_url):
    svc, _, app_id, token = approved(demo_db_url, amount=80_000)
    view = _read(demo_db_url, token)
    assert view["face_required"] is True
    assert _refused(demo_db_url, svc, token, view["text_sha256"]) == "face_required"
    assert _state(demo_db_url, app_id) == ("approved", "offered", None)


def test_a_borrower_without_wechat_signs_with_a_code_sent_to_the_phone_on_file(demo_db_url, sms):
    client, received = sms
    svc, _, app_id, token = approved(demo_db_url, wechat=False)
    view = _read(demo_db_url, token, Proof())
    assert (view["factor"], view["phone_masked"]) == ("sms", "139****0001")
    with unit_of_work(demo_db_url) as s:
        assert signing.send_code(s, find_by_token(s, token, lock=True), TERMS, client, Proof(), WEB) == "139****0001"
    code = re.search(r"\d{6}", received[-1]["content"]).group()
    assert received[-1]["phone"] == "13912340001" and "借款合同签署" in received[-1]["content"]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert _refused(demo_db_url, svc, token, view["text_sha256"], Proof(sms_code=wrong)) == "wrong_code"
    # one guess per code: the right code no longer works either
    assert _refused(demo_db_url, svc, token, view["text_sha256"], Proof(sms_code=code)) == "wrong_code"
    with unit_of_work(demo_db_url) as s:  # a new code only after the resend wait
        with pytest.raises(signing.StepRefused, match="60秒后"):
            signing.send_code(s, find_by_token(s, token, lock=True), TERMS, client, Proof(), WEB)
    with travel_to(utcnow() + timedelta(seconds=61)):
        with unit_of_work(demo_db_url) as s:
            signing.send_code(s, find_by_token(s, token, lock=True), TERMS, client, Proof(), WEB)
        code = re.search(r"\d{6}", received[-1]["content"]).group()
        _sign(demo_db_url, svc, token, view["text_sha256"], Proof(sms_code=code))
    with unit_of_work(demo_db_url) as s:
        contract = for_application(s, app_id)
        assert contract.status == "signed" and contract.proof == {"factor": "sms_code", "phone": "139****0001"}
        assert contract.sms_code_hash is None and contract.sms_sends == 2
        assert pdf_intact(contract) == contract.pdf


def test_an_expired_code_does_not_sign(demo_db_url, sms):
    client, received = sms
    svc, _, app_id, token = approved(demo_db_url, wechat=False)
    sha = _read(demo_db_url, token, Proof())["text_sha256"]
    with unit_of_work(demo_db_url) as s:
        signing.send_code(s, find_by_token(s, token, lock=True), TERMS, client, Proof(), WEB)
    code = re.search(r"\d{6}", received[-1]["content"]).group()
    with travel_to(utcnow() + timedelta(minutes=6)):
        assert _refused(demo_db_url, svc, token, sha, Proof(sms_code=code)) == "wrong_code"
    assert _state(demo_db_url, app_id) == ("approved", "offered", None)


def test_an_altered_pdf_is_not_handed_out(demo_db_url):
    svc, _, app_id, token = approved(demo_db_url)
    _sign(demo_db_url, svc, token, _read(demo_db_url, token)["text_sha256"])
    with unit_of_work(demo_db_url) as s:
        contract = for_application(s, app_id)
        contract.pdf = contract.pdf.replace(b"%PDF", b"%PDX", 1)
        with pytest.raises(ContractError) as caught:
            pdf_intact(contract)
        assert caught.value.code == "pdf_altered"


def test_the_text_is_the_same_whenever_it_is_made_and_the_template_has_a_version(demo_db_url):
    _, _, app_id, _ = approved(demo_db_url)
    with unit_of_work(demo_db_url) as s:
        contract = for_application(s, app_id)
        one = contract_text(contract.application, "阳光农村商业银行", contract.offered_at)
        two = contract_text(contract.application, "阳光农村商业银行", contract.offered_at)
        other_bank = contract_text(contract.application, "另一家银行", contract.offered_at)
    assert one == two and one.version == contract.version == "2026.1"
    assert other_bank.sha256 != one.sha256
    assert TEST_SECRET not in one.text
