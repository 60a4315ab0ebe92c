"""The face check of a loan contract above CONTRACT_FACE_ABOVE (the authorization's face step,
the contract its subject: auth_flow.face_step), an officer's review of it, the lock, and the
renewal of an expired link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from auth_flow import face_match, face_review, signing
from auth_flow.enrolment import enroll_reference
from auth_flow.face_engines import LocalEngine
from auth_flow.face_step import FaceCheck
from auth_flow.signing import Proof
from auth_flow.tokens import StepRefused
from lending.contracts import ContractError, find_by_token, for_application, token_for
from lending.customers import by_openid
from sunshine.clock import travel_to, utcnow
from sunshine.db import unit_of_work
from sunshine.models import ConsentEvidence, FaceReview, HandOff, LoanContract
from tests import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.contract_helpers import TERMS, ZHANG, Disbursals, approved
from tests.unit.test_auth_flow import ENGINE, MAX, MOTION, challenges
from tests.unit.test_contracts import WEB
from tests.unit.test_face_review import OFFICE, REVIEW, officer

OWN = Proof(wechat_openid=ZHANG)
FAIL = LocalEngine(TEST_SECRET, face_match.Policy(pass_distance=0.05, review_distance=0.05))  # nobody is this close


@pytest.fixture
def above(demo_settings):
    """张建国's 80,000-yuan loan approved (above the 50,000 limit), his reference face enrolled:
    (settings, lending service, application id, contract token)."""
    svc, _, app_id, token = approved(demo_settings.database_url, amount=80_000)
    with unit_of_work(demo_settings.database_url) as s:
        enroll_reference(s, TEST_SECRET, by_openid(s, ZHANG), media.reference(), "officer01")
    return demo_settings, svc, app_id, token


def face_check(settings, engine=ENGINE) -> FaceCheck:
    return FaceCheck(engine, MOTION, challenges(settings.redis_url), MAX, 30)


def challenge(settings, token, engine=ENGINE) -> dict:
    with unit_of_work(settings.database_url) as s:
        return signing.face_challenge(
            s, find_by_token(s, token, lock=True), TERMS, OWN, WEB, face_check(settings, engine)
        )


def attempt(settings, token, engine=ENGINE, frames=None, nonce=None):
    """One face attempt as the contract page makes it: a challenge, then the clip's frames of its actions."""
    asked = challenge(settings, token, engine)
    if frames is None:
        frames, steps = media.challenge_frames([step["action"] for step in asked["steps"][1:]])
    else:
        frames, steps = frames
    with unit_of_work(settings.database_url) as s:
        contract = find_by_token(s, token, lock=True)
        return signing.check_face(
            s, contract, TERMS, OWN, WEB, face_check(settings, engine), frames, nonce or asked["nonce"], steps
        )


def sign(settings, svc, token):
    with unit_of_work(settings.database_url) as s:
        contract = find_by_token(s, token, lock=True)
        text = signing.read(s, contract, TERMS, OWN, WEB)["text_sha256"]
    with unit_of_work(settings.database_url) as s:
        return signing.sign(s, find_by_token(s, token, lock=True), text, TERMS, OWN, WEB, svc, Disbursals()).status


def refused(settings, svc, token) -> str:
    with pytest.raises(ContractError) as caught:
        sign(settings, svc, token)
    return caught.value.code


def contract(settings, app_id) -> LoanContract:
    with unit_of_work(settings.database_url) as s:
        found = for_application(s, app_id)
        s.expunge(found)
        return found


def events(settings, app_id) -> list[str]:
    with unit_of_work(settings.database_url) as s:
        cid = for_application(s, app_id).id
        return list(
            s.scalars(
                select(ConsentEvidence.event).where(ConsentEvidence.contract_id == cid).order_by(ConsentEvidence.id)
            )
        )


def test_a_passed_face_check_lets_the_borrower_sign_and_the_signature_carries_it(above):
    settings, svc, app_id, token = above
    assert refused(settings, svc, token) == "face_required"
    result = attempt(settings, token)
    assert result.ok, result.message
    assert contract(settings, app_id).face_verified_at is not None
    with unit_of_work(settings.database_url) as s:
        view = signing.read(s, find_by_token(s, token), TERMS, OWN, WEB)
    assert (view["face_required"], view["face_verified"]) == (True, True)
    assert sign(settings, svc, token) == "signed"
    with unit_of_work(settings.database_url) as s:
        signed = for_application(s, app_id)
        record = s.get(ConsentEvidence, signed.evidence_id)
        assert record.event == "contract_signed" and record.face["decision"] == "pass"
        assert signed.proof["face_verified_at"]
    assert events(settings, app_id).count("face_passed") == 1
    with pytest.raises(ContractError) as caught:  # signed: no more face steps
        challenge(settings, token)
    assert caught.value.code == "already_signed"


def test_a_failed_face_check_is_counted_and_the_replayed_frames_are_refused(above):
    settings, svc, app_id, token = above
    frames = media.challenge_frames(["left", "right", "nod"])
    failed = attempt(settings, token, FAIL, frames=frames)
    assert not failed.ok and failed.attempts_left == MAX - 1 and "没能确认是您本人" in failed.message
    clip = attempt(settings, token, FAIL, frames=frames)  # the same frames again
    assert not clip.ok and "以前上传过" in clip.message and clip.attempts_left == MAX - 2
    assert contract(settings, app_id).attempts == 2 and contract(settings, app_id).face_verified_at is None
    assert events(settings, app_id) == ["face_failed", "liveness_refused"]
    assert refused(settings, svc, token) == "face_required"


def test_too_many_failures_lock_the_contract_until_an_officer_renews_its_link(above):
    settings, svc, app_id, token = above
    for left in range(MAX - 1, -1, -1):
        result = attempt(settings, token, frames=([b""], [0]), nonce="not-the-challenge")  # refused before any face
        assert result.attempts_left == left
    assert result.locked and "已锁定" in result.message
    assert contract(settings, app_id).status == "locked"
    with unit_of_work(settings.database_url) as s:
        assert "已锁定" in signing.read(s, find_by_token(s, token), TERMS, OWN, WEB)["locked_message"]
    with unit_of_work(settings.database_url) as s:
        assert s.scalar(select(HandOff.reason).order_by(HandOff.id.desc()).limit(1)) == "contract_locked"
        with pytest.raises(ContractError) as by_customer:
            signing.renew(s, find_by_token(s, token), TERMS, OWN, WEB)
    assert by_customer.value.code == "locked"
    assert refused(settings, svc, token) == "locked"
    with unit_of_work(settings.database_url) as s:
        new = signing.renew(s, find_by_token(s, token), TERMS, Proof(), OFFICE, by="officer:officer01")
    assert new == token_for(TEST_SECRET, app_id, 1) != token
    renewed = contract(settings, app_id)
    assert (renewed.status, renewed.attempts, renewed.renewals) == ("offered", 0, 1)
    with unit_of_work(settings.database_url) as s, pytest.raises(ContractError) as old:
        find_by_token(s, token)
    assert old.value.code == "unknown_token"
    assert attempt(settings, new).ok


def test_a_review_waits_for_the_officer_then_the_signing_proceeds(above):
    settings, svc, app_id, token = above
    held = attempt(settings, token, REVIEW)
    assert not held.ok and held.review and held.attempts_left == MAX  # nothing counted
    with unit_of_work(settings.database_url) as s:
        review = s.scalar(select(FaceReview))
        assert review.contract_id == for_application(s, app_id).id and review.authorization_id is None
        assert signing.read(s, find_by_token(s, token), TERMS, OWN, WEB)["face_review"]["status"] == "pending"
        assert face_review.pending_reviews(s, [], [review.contract_id]) == [review]
        review_id = review.id
        assert (
            s.scalar(select(HandOff.summary).order_by(HandOff.id.desc()).limit(1))["contract_id"] == review.contract_id
        )
    assert refused(settings, svc, token) == "face_required"  # waiting for the officer
    with unit_of_work(settings.database_url) as s:
        face_review.decide(s, review_id, officer(s), True, OFFICE, MAX)
    assert sign(settings, svc, token) == "signed"
    with unit_of_work(settings.database_url) as s:
        signed = for_application(s, app_id)
        assert s.get(ConsentEvidence, signed.evidence_id).face["decision"] == "review"  # the officer's approval
        assert s.get(FaceReview, review_id).frames_sealed is None
        with pytest.raises(face_review.ReviewRefused):
            face_review.decide(s, review_id, officer(s), False, OFFICE, MAX)


def test_an_officer_s_rejection_counts_the_attempt(above):
    settings, svc, app_id, token = above
    attempt(settings, token, REVIEW)
    with unit_of_work(settings.database_url) as s:
        face_review.decide(s, s.scalar(select(FaceReview.id)), officer(s), False, OFFICE, MAX)
        state = signing.read(s, find_by_token(s, token), TERMS, OWN, WEB)["face_review"]
    assert state["status"] == "rejected" and contract(settings, app_id).attempts == 1
    assert refused(settings, svc, token) == "face_required"


def test_a_loan_at_or_below_the_limit_has_no_face_step(demo_settings):
    _, _, app_id, token = approved(demo_settings.database_url, amount=50_000)
    with pytest.raises(StepRefused, match="不需要刷脸"):
        challenge(demo_settings, token)
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(ConsentEvidence)) == 0


def test_another_person_s_wechat_gets_no_face_step(above):
    settings, _, _, token = above
    with unit_of_work(settings.database_url) as s, pytest.raises(ContractError) as caught:
        contract_ = find_by_token(s, token, lock=True)
        signing.face_challenge(s, contract_, TERMS, Proof(wechat_openid="o_someone"), WEB, face_check(settings))
    assert caught.value.code == "other_person"


def test_an_expired_link_is_renewed_by_its_borrower_and_the_old_one_stops_working(above):
    settings, svc, app_id, token = above
    with unit_of_work(settings.database_url) as s, pytest.raises(ContractError) as valid:
        signing.renew(s, find_by_token(s, token), TERMS, OWN, WEB)
    assert valid.value.code == "not_expired"
    with travel_to(utcnow() + timedelta(hours=73)):
        assert refused(settings, svc, token) == "expired"
        with unit_of_work(settings.database_url) as s:
            assert signing.read(s, find_by_token(s, token), TERMS, OWN, WEB)["expired"] is True
            with pytest.raises(ContractError) as stranger:
                signing.renew(s, find_by_token(s, token), TERMS, Proof(wechat_openid="o_someone"), WEB)
            assert stranger.value.code == "other_person"
        with unit_of_work(settings.database_url) as s:
            new = signing.renew(s, find_by_token(s, token), TERMS, OWN, WEB)
        with unit_of_work(settings.database_url) as s:
            assert find_by_token(s, new).expires_at > utcnow()
            with pytest.raises(ContractError) as old:
                find_by_token(s, token)
            assert old.value.code == "unknown_token"
        assert attempt(settings, new).ok
        assert sign(settings, svc, new) == "signed"
    assert events(settings, app_id)[:2] == ["refused", "contract_renewed"]


def test_renewals_are_limited_per_24_hours(above):
    settings, _, app_id, token = above
    for n in range(1, TERMS.renewals_per_day + 1):
        with unit_of_work(settings.database_url) as s:
            token = signing.renew(s, find_by_token(s, token), TERMS, Proof(), OFFICE, by="officer:officer01")
        assert token == token_for(TEST_SECRET, app_id, n)
    with unit_of_work(settings.database_url) as s, pytest.raises(ContractError) as limit:
        signing.renew(s, find_by_token(s, token), TERMS, Proof(), OFFICE, by="officer:officer01")
    assert limit.value.code == "renewal_limit" and "达到上限" in limit.value.message
    assert events(settings, app_id)[-1] == "refused" and contract(settings, app_id).renewals == TERMS.renewals_per_day
    with travel_to(utcnow() + timedelta(hours=25)), unit_of_work(settings.database_url) as s:
        signing.renew(s, find_by_token(s, token), TERMS, Proof(), OFFICE, by="officer:officer01")
    assert contract(settings, app_id).renewals == TERMS.renewals_per_day + 1
