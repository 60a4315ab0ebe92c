"""auth_flow end to end on a real database: a three-party application, each party
through identity, biometric consent, face check and consent, then the reports from
the bureau emulator over real HTTP; and every refusal on the way."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import func, select

from auth_flow import evidence, face_match, faces, liveness, reports
from auth_flow.consent import check_face, face_challenge, give_biometric_consent, give_consent
from auth_flow.evidence import Client
from auth_flow.face_engines import LocalEngine, probe_encoding
from auth_flow.identity import check_identity, send_sms_code
from auth_flow.tokens import (
    AuthorizationError,
    Browser,
    StepRefused,
    find_by_token,
    open_for_step,
    party_of,
    reissue_for_application,
)
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, CreditReportRecord, HandOff, LoanApplication
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.lending_helpers import service as lending_service

CLIENT = Client("10.0.0.9", "Mozilla/5.0 MicroMessenger/8.0")
TOL, MOTION, MAX = 0.5, 0.07, 5
# The clip's reference is a small, blurred video frame (not an ID photo): its own frames match
# at up to 0.5, so these tests keep the distance rule at 0.5 (the cohort here is 3 references).
POLICY = face_match.Policy(pass_distance=TOL, review_distance=TOL)
ENGINE = LocalEngine(TEST_SECRET, POLICY)


def matcher(reference):
    """What the local engine compares a selfie with: one reference, no cohort."""
    return lambda selfie: face_match.decide(reference, probe_encoding(selfie), None, POLICY)


def sms_code(sms, token, url=None):
    """Have the code texted (as the page's button does) and read it off the emulator."""
    client, texts = sms
    with unit_of_work(url) as s:
        send_sms_code(s, TEST_SECRET, token, client, CLIENT)
    return re.search(r"验证码为(\d{6})", texts[-1]["content"]).group(1)


def second_factor(url, token, sms) -> dict:
    """What the page adds to the name/ID check: the party's own WeChat, or the SMS code."""
    with unit_of_work(url) as s:
        party = party_of(s, find_by_token(s, token))
        openid = party.wechat_openid
    return {"wechat_openid": openid} if openid else {"sms_code": sms_code(sms, token, url)}


def id_digits(s, token):
    from sunshine.protect import unseal

    auth = find_by_token(s, token)
    return unseal(
        TEST_SECRET,
        s.get(type(auth.party_customer_id and by_openid(s, "o_demo_zhangjianguo")), auth.party_customer_id).id_sealed,
    )[-6:]


def bound(result) -> Browser:
    """CLIENT with the step session a passed identity check bound the request to."""
    assert result.ok and result.step_session, result.message
    return Browser(CLIENT.ip, CLIENT.user_agent, step_session=result.step_session)


def challenges(redis_url) -> liveness.Challenges:
    """The challenge store the web process uses, on the test Redis (a 90-second window)."""
    return liveness.Challenges(redis_url, 90, 3600)


def face_attempt(url, redis_url, token, frames=None, engine=ENGINE, client=CLIENT):
    """One face attempt as the page makes it (from `client`, the browser bound to the request): a
    challenge, then frames answering it (the clip's frames of each asked action), or `frames`
    spread over the challenge's steps."""
    store = challenges(redis_url)
    with unit_of_work(url) as s:
        challenge = face_challenge(s, token, client, store)
    actions = [step["action"] for step in challenge["steps"][1:]]
    if frames is None:
        frames, steps = media.challenge_frames(actions)
    else:
        steps = [i * len(challenge["steps"]) // len(frames) for i in range(len(frames))]
    with unit_of_work(url) as s:
        return check_face(s, token, frames, client, MAX, engine, MOTION, store, challenge["nonce"], steps)


def authorize(url, token, name, sms, redis_url):
    factor = second_factor(url, token, sms)
    with unit_of_work(url) as s:
        browser = bound(check_identity(s, TEST_SECRET, token, name, id_digits(s, token), CLIENT, MAX, **factor))
        give_biometric_consent(s, token, True, browser)
    result = face_attempt(url, redis_url, token, client=browser)
    assert result.ok, result.message
    with unit_of_work(url) as s:
        give_consent(s, token, True, browser)


def test_three_parties_consent_then_reports_are_queried_once_in_parallel(demo_settings, application, bureau, sms):
    url, state = bureau
    settings = replace(demo_settings, bureau_url=url)
    app_id, tokens, names = application
    svc, told = lending_service()
    for role in ("applicant", "spouse"):
        authorize(settings.database_url, tokens[role], names[role], sms, settings.redis_url)
        assert reports.fetch_reports(settings, app_id, applications=svc).state == "waiting"
    assert state["queries"] == []  # nothing is queried before every party consented
    authorize(settings.database_url, tokens["guarantor"], names["guarantor"], sms, settings.redis_url)
    assert reports.fetch_reports(settings, app_id, applications=svc).state == "received"
    assert reports.fetch_reports(settings, app_id, applications=svc).state == "claimed_elsewhere"
    assert len(state["queries"]) == 3 and len({q["authorization_id"] for q in state["queries"]}) == 3
    with unit_of_work(settings.database_url) as s:
        app = s.get(LoanApplication, app_id)
        assert app.status == "under_review" and app.review_mode == "officer"  # 担保贷: always an officer
        assert {r.status for r in s.scalars(select(CreditReportRecord).order_by(CreditReportRecord.id))} == {"received"}
        records = list(evidence.export(s))
    assert evidence.verify_chain(records) == []
    consents = [r for r in records if r["event"] == "consented"]
    assert len(consents) == 3 and all("征信" in r["consent_text"] for r in consents)
    assert all(r["face"]["decision"] == "pass" and r["face"]["distance"] <= TOL for r in consents)
    faces_ok = [r for r in records if r["event"] == "face_passed"]
    assert all(len(r["image_sha256"]) == 12 and r["client_ip"] == "10.0.0.9" for r in faces_ok)
    assert all(len(r["detail"]["challenge"]["actions"]) == 3 and r["detail"]["actions"]["ok"] for r in faces_ok)
    with pytest.raises(AuthorizationError, match="已使用"):  # single use
        with unit_of_work(settings.database_url) as s:
            find_by_token(s, tokens["applicant"])


def test_a_failing_bureau_is_retried_then_left_failed_for_the_officer_and_never_queried_twice(
    demo_settings, application, bureau, sms, monkeypatch
):
    url, state = bureau
    monkeypatch.setattr(reports, "BACKOFF_S", 0.01)
    settings = replace(demo_settings, bureau_url=url, bureau_attempts=2)
    app_id, tokens, names = application
    for role in tokens:
        authorize(settings.database_url, tokens[role], names[role], sms, settings.redis_url)
    import requests

    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "count": 6, "status": 503})
    svc, _ = lending_service()
    outcome = reports.fetch_reports(settings, app_id, applications=svc)
    assert outcome.state == "failed" and len(outcome.failed) == 3
    assert "已尝试2次" in next(iter(outcome.failed.values()))
    assert reports.fetch_reports(settings, app_id, applications=svc).state == "claimed_elsewhere"
    assert reports.fetch_reports(settings, app_id, applications=svc, retry_failed=True).state == "received"
    assert len(state["queries"]) == 3  # one per consent, retries included
    with unit_of_work(settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "under_review"


def test_a_slow_bureau_times_out_and_the_retry_gets_the_same_report(
    demo_settings, application, bureau, sms, monkeypatch
):
    url, state = bureau
    monkeypatch.setattr(reports, "BACKOFF_S", 0.01)
    settings = replace(demo_settings, bureau_url=url, bureau_timeout_s=0.3)
    app_id, tokens, names = application
    for role in tokens:
        authorize(settings.database_url, tokens[role], names[role], sms, settings.redis_url)
    import requests

    requests.post(f"{url}/_emulator/faults", json={"mode": "slow", "count": 1, "delay": 0.6})
    svc, _ = lending_service()
    assert reports.fetch_reports(settings, app_id, applications=svc).state == "received"
    assert len(state["queries"]) == 3 and state["requests"] >= 3


def test_wrong_identity_and_faces_count_attempts_then_lock_and_tell_the_officer(demo_settings, application, sms):
    url = demo_settings.database_url
    _, tokens, names = application
    token = tokens["spouse"]
    code = sms_code(sms, token, url)
    with unit_of_work(url) as s:
        out = check_identity(s, TEST_SECRET, token, names["spouse"], "000000", CLIENT, MAX, sms_code=code)
        assert not out.ok and "还可以再试4次" in out.message
    with unit_of_work(url) as s:
        with pytest.raises(StepRefused, match="先核对"):
            give_biometric_consent(s, token, True, CLIENT)
    with unit_of_work(url) as s:
        with pytest.raises(StepRefused, match="先完成"):
            give_consent(s, token, True, CLIENT)  # consent without a face check
    with unit_of_work(url) as s:
        browser = bound(
            check_identity(s, TEST_SECRET, token, names["spouse"], id_digits(s, token), CLIENT, MAX, sms_code=code)
        )
        give_biometric_consent(s, token, True, browser)
    attempts = [
        ([media.image("biden.jpg")] * 3, "没能确认是您本人。请到光线均匀明亮的地方，摘下眼镜"),  # never "not you"
        ([media.image("two_people.jpg")] * 3, "多张人脸"),
        ([media.image("dogs_no_face.jpg")] * 3, "没有检测到人脸"),
    ]
    for frames, why in attempts:
        out = face_attempt(url, demo_settings.redis_url, token, frames, client=browser)
        assert not out.ok and why in out.message and not out.locked
    # a photo held up to the camera: the right face, but planar
    photo = media.photo_held_up(media.jpeg(media.clip_frames()[150]))
    out = face_attempt(url, demo_settings.redis_url, token, photo, client=browser)
    assert out.locked and "锁定" in out.message
    with unit_of_work(url) as s:
        assert s.scalar(select(Authorization.status).where(Authorization.party_role == "spouse")) == "locked"
        hand_off = s.scalar(select(HandOff))
        assert hand_off.reason == "authorization_locked" and hand_off.openid == "o_demo_zhangjianguo"
        events = [e.event for e in s.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id))]
    assert events.count("face_failed") == 2 and events.count("face_unusable") == 2 and events[-1] == "locked"
    with unit_of_work(url) as s:
        with pytest.raises(AuthorizationError, match="锁定"):
            face_challenge(s, token, browser, challenges(demo_settings.redis_url))
    with unit_of_work(url) as s:
        assert s.scalar(select(ConsentEvidence.event).order_by(ConsentEvidence.id.desc()).limit(1)) == "refused"


def test_a_token_never_opens_another_party_or_a_superseded_request(demo_settings, application):
    url = demo_settings.database_url
    app_id, tokens, names = application
    with unit_of_work(url) as s:  # the spouse's name with the applicant's token
        out = check_identity(
            s,
            TEST_SECRET,
            tokens["applicant"],
            names["spouse"],
            id_digits(s, tokens["spouse"]),
            CLIENT,
            MAX,
            wechat_openid="o_demo_zhangjianguo",
        )
        assert not out.ok
    with unit_of_work(url) as s:  # the officer reissues: the old links stop working
        new = reissue_for_application(s, s.get(LoanApplication, app_id), "officer01", timedelta(minutes=30)).issued
        assert len(new) == 3
    with unit_of_work(url) as s:
        with pytest.raises(AuthorizationError, match="作废"):
            find_by_token(s, tokens["applicant"])
        with pytest.raises(AuthorizationError, match="无效"):
            open_for_step(s, "forged-" + tokens["applicant"][7:], "identity", CLIENT)


def test_evidence_chain_detects_changed_and_deleted_records(demo_settings, application, sms):
    url = demo_settings.database_url
    _, tokens, names = application
    authorize(url, tokens["applicant"], names["applicant"], sms, demo_settings.redis_url)
    with unit_of_work(url) as s:
        records = list(evidence.export(s))
    assert len(records) == 4 and evidence.verify_chain(records) == []
    changed = [dict(r) for r in records]
    changed[1]["client_ip"] = "1.2.3.4"
    assert evidence.verify_chain(changed) == [f"record {records[1]['id']}: content does not match its hash"]
    assert "does not follow" in evidence.verify_chain(records[:1] + records[2:])[0]


def test_reference_encodings_are_encrypted_and_images_not_kept(demo_settings, application):
    with unit_of_work(demo_settings.database_url) as s:
        from sunshine.models import FaceReference

        ref = s.scalar(select(FaceReference))
        assert ref.encoding_sealed.startswith("gAAAA")  # Fernet
        encoding = faces.unseal_encoding(TEST_SECRET, ref.encoding_sealed)
        assert encoding.shape == (128,)
        with pytest.raises(InvalidToken):
            faces.unseal_encoding("another-key", ref.encoding_sealed)
        assert s.scalar(select(func.count()).select_from(FaceReference)) == 3


@pytest.mark.parametrize(
    "name,same",
    [("obama2.jpg", True), ("obama_small.jpg", True), ("biden.jpg", False), ("kit_harington_john1.jpeg", False)],
)
def test_face_match_against_a_reference(name, same):
    reference = faces.encode(faces.load_image(media.image("obama.jpg")))
    distance = faces.match(reference, faces.load_image(media.image(name)))
    assert (distance <= TOL) is same


def test_unusable_images_are_refused():
    with pytest.raises(faces.SeveralFaces):
        faces.encode(faces.load_image(media.image("two_people.jpg")))
    with pytest.raises(faces.NoFace):
        faces.encode(faces.load_image(media.image("dogs_no_face.jpg")))
    with pytest.raises(faces.NotAnImage):
        faces.load_image(b"GIF89a\x00\x00garbage")


def test_liveness_moving_head_passes_still_and_photo_fail():
    """The planar check alone (the challenge's actions are tests/unit/test_liveness.py's)."""
    ref = faces.encode(faces.load_image(media.reference()))
    assert liveness.verify(matcher(ref), media.live_frames(), MOTION).passed
    still = liveness.verify(matcher(ref), [media.jpeg(media.clip_frames()[150])] * 6, MOTION).face
    assert still.motion == 0 and not still.live
    for seed in range(3):
        frames = media.photo_held_up(media.jpeg(media.clip_frames()[150]), seed=seed)
        photo = liveness.verify(matcher(ref), frames, MOTION).face
        assert not photo.live, photo.as_dict()
