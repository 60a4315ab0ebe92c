"""An officer's review of a face check (auth_flow.face_review): what is kept (sealed, only the
selfie), what the person is told, the officer's decision, and the purge."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from cryptography.fernet import InvalidToken
from PIL import Image
from sqlalchemy import func, select

from auth_flow import face_match, face_review, faces
from auth_flow.consent import give_consent, public_view
from auth_flow.enrolment import enroll_reference, reference_of
from auth_flow.evidence import Client
from auth_flow.face_engines import LocalEngine
from auth_flow.tokens import find_by_token
from sunshine.clock import utcnow
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, Authorization, ConsentEvidence, Customer, FaceReview, Officer
from sunshine.protect import fernet
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.test_auth_flow import MAX, face_attempt
from tests.unit.test_face_decision import _to_face_step

# The clip's frames match their reference at 0.3-0.5: with pass <= 0.2 and review <= 0.6, review.
REVIEW = LocalEngine(TEST_SECRET, face_match.Policy(pass_distance=0.2, review_distance=0.6))
PASS = LocalEngine(TEST_SECRET, face_match.Policy(pass_distance=0.6, review_distance=0.6))
OFFICE = Client("10.1.0.2", "console")


def attempt(settings, token, browser, engine=REVIEW):
    """One face attempt as the page makes it (a challenge, then the clip's frames answering it)."""
    return face_attempt(settings.database_url, settings.redis_url, token, engine=engine, client=browser)


def officer(s, username="officer01") -> Officer:
    return s.scalar(select(Officer).where(Officer.username == username))


@pytest.fixture
def held(demo_settings, application, sms):
    """The guarantor's face check went to review: (db url, token, browser, the review's id)."""
    db = demo_settings.database_url
    _, tokens, names = application
    token = tokens["guarantor"]
    browser = _to_face_step(db, token, names["guarantor"], sms)
    out = attempt(demo_settings, token, browser)
    assert not out.ok and out.review and out.face["decision"] == "review"
    with unit_of_work(db) as s:
        review_id = s.scalar(select(FaceReview.id))
    return db, token, browser, review_id


def test_a_review_keeps_the_selfie_sealed_costs_no_attempt_and_the_page_waits(held):
    db, token, browser, review_id = held
    with unit_of_work(db) as s:
        auth = find_by_token(s, token)
        review = s.get(FaceReview, review_id)
        assert auth.attempts == 0 and auth.face_verified_at is None
        assert review.status == "pending" and len(review.frames_sealed) == 1  # the selfie, not all 6 frames
        assert review.face["score"] > review.face["threshold"] and review.face["engine"] == "local"
        view = public_view(s, auth, browser, review_minutes=20)
        assert view["face_review"]["status"] == "pending" and "一般20分钟内完成" in view["face_review"]["message"]
        assert public_view(s, auth)["face_review"]["status"] == "none"  # another browser sees nothing of it
        sealed = review.frames_sealed[0]
        ref = reference_of(s, auth.party_customer_id)
        reference_sealed, reference_id = ref.photo_sealed, ref.id
        assert review.reference_id == reference_id
        event = s.scalar(select(ConsentEvidence).order_by(ConsentEvidence.id.desc()).limit(1))
        assert event.event == "face_review" and event.detail["review_id"] == review_id
    raw = base64.urlsafe_b64decode(sealed)
    jpeg = faces.unseal_image(TEST_SECRET, sealed)
    assert jpeg.startswith(b"\xff\xd8\xff") and Image.open(io.BytesIO(jpeg)).width <= faces.REVIEW_WIDTH
    assert jpeg[:64] not in raw and jpeg[-64:] not in raw and b"JFIF" not in raw
    # Their own key: the face encodings' key (or the personal-data key) opens neither.
    for other in (fernet(TEST_SECRET, faces.ENCODINGS_KEY), fernet(TEST_SECRET)):
        with pytest.raises(InvalidToken):
            other.decrypt(sealed.encode())
    assert faces.unseal_image(TEST_SECRET, reference_sealed).startswith(b"\xff\xd8\xff")


def test_approval_passes_the_face_step_and_the_consent_follows_in_the_same_session(held):
    db, token, browser, review_id = held
    with unit_of_work(db) as s:
        face_review.decide(s, review_id, officer(s), True, OFFICE, MAX)
    with unit_of_work(db) as s:
        review = s.get(FaceReview, review_id)
        assert review.status == "approved" and review.decided_by == "officer01"
        assert review.frames_sealed is None and review.frames_deleted_at is not None
        auth = find_by_token(s, token)
        assert auth.face_verified_at is not None and auth.attempts == 0
        assert public_view(s, auth, browser)["steps"]["face"] is True
        record = s.scalar(select(ConsentEvidence).order_by(ConsentEvidence.id.desc()).limit(1))
        assert record.event == "face_review_approved" and record.detail["officer"] == "officer01"
        history = s.scalar(select(ApplicationEvent).order_by(ApplicationEvent.id.desc()).limit(1))
        assert history.action == "face_review_approved" and "人脸核验通过" in history.reason
    with unit_of_work(db) as s:
        assert give_consent(s, token, True, browser).status == "consented"
    # Decided: the frames are gone, and a second decision changes nothing.
    with unit_of_work(db) as s:
        with pytest.raises(face_review.ReviewRefused, match="已经处理过了"):
            face_review.decide(s, review_id, officer(s), False, OFFICE, MAX)
        with pytest.raises(face_review.ReviewRefused, match="照片已删除"):
            face_review.frame(TEST_SECRET, s.get(FaceReview, review_id), 0)


def test_rejection_counts_the_attempt_and_tells_the_page_how_to_retry(held, demo_settings):
    db, token, browser, review_id = held
    with unit_of_work(db) as s:
        face_review.decide(s, review_id, officer(s), False, OFFICE, MAX)
    with unit_of_work(db) as s:
        auth = find_by_token(s, token)
        assert auth.attempts == 1 and auth.face_verified_at is None
        assert s.get(FaceReview, review_id).frames_sealed is None
        state = public_view(s, auth, browser)["face_review"]
        assert state["status"] == "rejected" and "摘下眼镜" in state["message"] and "光线" in state["message"]
    # The person tries again and passes: the rejection is no longer shown.
    assert attempt(demo_settings, token, browser, PASS).ok
    with unit_of_work(db) as s:
        assert public_view(s, find_by_token(s, token), browser)["face_review"]["status"] == "none"


def test_a_review_for_a_used_or_expired_request_is_refused_and_changes_nothing(held):
    db, token, _, review_id = held
    with unit_of_work(db) as s:
        find_by_token(s, token).expires_at = utcnow() - timedelta(minutes=1)
    with unit_of_work(db) as s:
        with pytest.raises(face_review.ReviewRefused, match="已过期"):
            face_review.decide(s, review_id, officer(s), True, OFFICE, MAX)
    with unit_of_work(db) as s:
        review = s.get(FaceReview, review_id)
        assert review.status == "pending" and review.frames_sealed and review.decided_by is None
        assert (
            s.scalar(
                select(func.count()).select_from(ConsentEvidence).where(ConsentEvidence.event.like("face_review_%"))
            )
            == 0
        )


def test_a_later_attempt_supersedes_a_pending_review_and_deletes_its_frames(held, demo_settings):
    db, token, browser, review_id = held
    assert attempt(demo_settings, token, browser).review
    with unit_of_work(db) as s:
        reviews = s.scalars(select(FaceReview).order_by(FaceReview.id)).all()
        assert [r.status for r in reviews] == ["superseded", "pending"]
        assert reviews[0].frames_sealed is None and reviews[1].frames_sealed
        assert find_by_token(s, token).attempts == 0


def test_the_sweep_purges_frames_past_their_retention(held, demo_settings, capsys):
    from auth_flow.__main__ import sweep_reports

    db, _, _, review_id = held
    with unit_of_work(db) as s:
        assert face_review.purge(s, 72) == 0  # fresh: kept
        s.get(FaceReview, review_id).created_at = utcnow() - timedelta(hours=73)
    assert sweep_reports(demo_settings, None) == 0
    assert "face reviews purged: 1" in capsys.readouterr().out
    with unit_of_work(db) as s:
        review = s.get(FaceReview, review_id)
        assert review.status == "expired" and review.frames_sealed is None
        record = s.scalar(select(ConsentEvidence).order_by(ConsentEvidence.id.desc()).limit(1))
        assert record.event == "face_review_expired" and record.detail["review_id"] == review_id
        with pytest.raises(face_review.ReviewRefused, match="已经处理过了"):
            face_review.decide(s, review_id, officer(s), True, OFFICE, MAX)


def test_a_replaced_reference_s_photo_is_dropped(held):
    db, token, _, review_id = held
    with unit_of_work(db) as s:
        auth = find_by_token(s, token)
        party = s.get(Customer, auth.party_customer_id)
        old = reference_of(s, party.id)
        enroll_reference(s, TEST_SECRET, party, media.image("obama.jpg"), "officer01")  # another photo
        s.flush()
        assert old.photo_sealed is None and not old.active
        copy = faces.unseal_image(TEST_SECRET, reference_of(s, party.id).photo_sealed)  # the new one's, downscaled
        assert Image.open(io.BytesIO(copy)).width <= faces.REVIEW_WIDTH
        with pytest.raises(face_review.ReviewRefused, match="没有保存登记照片"):
            face_review.reference_photo(s, TEST_SECRET, s.get(FaceReview, review_id))
        assert s.get(Authorization, auth.id) is auth
