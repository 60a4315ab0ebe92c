"""An officer's review of a face check, end to end over the web app: the party's page is told to
wait (no attempt counted), the officer sees the live frame and the reference side by side on the
application's page and the hand-off, decides with 通过 / 不通过, and the page continues. The
images and the decision are refused to another officer, without CSRF, and twice."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, FaceReview, HandOff, Officer
from tests.unit.test_auth_flow import MAX, id_digits
from tests.web.test_auth_api import face_form, in_wechat
from tests.web.test_console_officers import login  # noqa: F401  the fixture

GUARANTOR_WECHAT = "o_demo_wangchunhua"
# The clip's frames match their reference at 0.3-0.5: passing at <= 0.2 and reviewing up to 0.6, review.
REVIEW_BAND = {"face_tolerance": 0.2, "face_review_distance": 0.6, "face_review_minutes": 15}


def to_review(make_client, demo_settings, application):
    """The guarantor's page after a face check in the review band: (party client, token, review id)."""
    _, tokens, names = application
    token, base = tokens["guarantor"], f"/api/authorizations/{tokens['guarantor']}"
    with unit_of_work(demo_settings.database_url) as s:
        digits = id_digits(s, token)
    party = in_wechat(make_client(**REVIEW_BAND), GUARANTOR_WECHAT)
    resp = party.post(f"{base}/identity", json={"name": names["guarantor"], "id_digits": digits})
    assert resp.status_code == 200, resp.json
    assert party.post(f"{base}/biometric-consent", json={"agree": True}).json["ok"]
    resp = party.post(f"{base}/face", data=face_form(party, base), content_type="multipart/form-data")
    assert resp.status_code == 422 and resp.json["review"] is True and resp.json["attempts_left"] == MAX
    assert "已请客户经理人工核验，一般15分钟内完成" in resp.json["message"]
    view = party.get(base).json
    assert view["face_review"]["status"] == "pending" and view["steps"]["face"] is False
    with unit_of_work(demo_settings.database_url) as s:
        review_id = s.scalar(select(FaceReview.id).where(FaceReview.status == "pending"))
    return party, token, review_id


def test_the_officer_compares_and_approves_and_the_page_continues_to_the_consent(
    make_client,
    demo_settings,
    application,
    login,  # noqa: F811
):
    app_id = application[0]
    party, token, review_id = to_review(make_client, demo_settings, application)
    officer = login()
    page = officer.get(f"/console/applications/{app_id}").data.decode()
    frame, reference = (
        f"/console/face-reviews/{review_id}/frames/0.jpg",
        f"/console/face-reviews/{review_id}/reference.jpg",
    )
    assert "人脸人工核验" in page and frame in page and reference in page and "交人工核验" in page
    for url in (frame, reference):
        image = officer.get(url)
        assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data[:3] == b"\xff\xd8\xff"
        assert image.headers["Cache-Control"] == "no-store"
    with unit_of_work(demo_settings.database_url) as s:
        hand_off_id = s.scalar(select(HandOff.id).where(HandOff.reason == "face_review"))
    assert frame in officer.get(f"/console/hand-offs/{hand_off_id}").data.decode()

    decision = f"/console/face-reviews/{review_id}/decision"
    assert officer.post(decision, data={"decision": "approve"}).status_code == 400  # no CSRF token
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(FaceReview, review_id).status == "pending"
    resp = officer.post(
        decision, data={"decision": "approve", "hand_off_id": hand_off_id, "csrf": officer.csrf}, follow_redirects=True
    )
    assert "已确认是本人" in resp.data.decode() and resp.request.path == f"/console/hand-offs/{hand_off_id}"
    again = officer.post(decision, data={"decision": "reject", "csrf": officer.csrf}, follow_redirects=True)
    assert "已经处理过了（已通过），不能重复处理" in again.data.decode()
    gone = officer.get(frame)
    assert gone.status_code == 404 and "照片已删除" in gone.data.decode()
    with unit_of_work(demo_settings.database_url) as s:
        review = s.get(FaceReview, review_id)
        assert review.status == "approved" and review.frames_sealed is None and review.decided_by == "officer01"
        auth = s.get(Authorization, review.authorization_id)
        assert auth.attempts == 0
        events = [
            e.event
            for e in s.scalars(
                select(ConsentEvidence).where(ConsentEvidence.authorization_id == auth.id).order_by(ConsentEvidence.id)
            )
        ]
        assert events[-2:] == ["face_review", "face_review_approved"]
    # The waiting page's next poll: the face step passed; the consent follows in the same session.
    base = f"/api/authorizations/{token}"
    view = party.get(base).json
    assert view["steps"]["face"] is True and view["face_review"]["status"] == "none"
    assert party.post(f"{base}/consent", json={"agree": True}).json["status"] == "consented"


def test_a_rejection_counts_the_attempt_and_the_page_says_how_to_retry(make_client, demo_settings, application, login):  # noqa: F811
    party, token, review_id = to_review(make_client, demo_settings, application)
    officer = login()
    resp = officer.post(
        f"/console/face-reviews/{review_id}/decision", data={"decision": "reject", "csrf": officer.csrf}
    )
    assert resp.status_code == 302
    view = party.get(f"/api/authorizations/{token}").json
    assert view["face_review"]["status"] == "rejected" and "摘下眼镜" in view["face_review"]["message"]
    with unit_of_work(demo_settings.database_url) as s:
        assert (
            s.scalar(
                select(Authorization.attempts).where(Authorization.id == s.get(FaceReview, review_id).authorization_id)
            )
            == 1
        )


def test_another_officer_gets_neither_the_images_nor_the_decision(make_client, demo_settings, application, login):  # noqa: F811
    _, _, review_id = to_review(make_client, demo_settings, application)
    with unit_of_work(demo_settings.database_url) as s:
        s.add(
            Officer(
                username="officer02",
                display_name="赵经理",
                role="officer",
                password_hash=generate_password_hash("sunshine-demo"),
                must_change_password=False,
            )
        )
    other = login("officer02")
    for url in (f"/console/face-reviews/{review_id}/frames/0.jpg", f"/console/face-reviews/{review_id}/reference.jpg"):
        resp = other.get(url)
        assert resp.status_code == 403 and resp.mimetype != "image/jpeg"
    resp = other.post(f"/console/face-reviews/{review_id}/decision", data={"decision": "approve", "csrf": other.csrf})
    assert resp.status_code == 403
    assert other.get("/console/face-reviews/99999/frames/0.jpg").status_code == 404
    assert other.get(f"/console/applications/{application[0]}").status_code == 403
    assert make_client().get(f"/console/face-reviews/{review_id}/frames/0.jpg").status_code == 302  # not logged in
    with unit_of_work(demo_settings.database_url) as s:
        review = s.get(FaceReview, review_id)
        assert review.status == "pending" and review.frames_sealed and review.decided_by is None
    # A frame index the review does not have, and a decision that is neither.
    officer = login()
    assert officer.get(f"/console/face-reviews/{review_id}/frames/3.jpg").status_code == 404
    resp = officer.post(
        f"/console/face-reviews/{review_id}/decision",
        data={"decision": "maybe", "csrf": officer.csrf},
        follow_redirects=True,
    )
    assert "请选择通过或不通过" in resp.data.decode()
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(FaceReview, review_id).status == "pending"
