"""Active liveness: the server's random challenge (nonce, window, single use), the actions
read off the landmarks step by step, and replays refused. Landmark sequences made from a
real frame's landmarks, and real frames of the moving-face clip."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from auth_flow import faces, liveness
from auth_flow.consent import check_face, face_challenge, give_biometric_consent
from auth_flow.identity import check_identity
from auth_flow.liveness import ChallengeRefused, Challenges, check_actions
from sunshine.clock import travel_to, utcnow
from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, CreditReportRecord
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.test_auth_flow import CLIENT, ENGINE, MAX, MOTION, bound, id_digits, matcher, second_factor


@pytest.fixture(scope="module")
def look() -> np.ndarray:
    """The landmarks of a frame where the singer looks at the camera."""
    return liveness._landmarks(faces.load_image(media.jpeg(media.clip_frames()[120]), liveness.LANDMARK_WIDTH))


def posed(marks: np.ndarray, action: str, amount: float = 1.5) -> np.ndarray:
    """`marks` moved as `action` moves them, `amount` times the threshold."""
    out = marks.copy()
    width = marks[liveness.JAW_LEFT][0] - marks[liveness.JAW_RIGHT][0]
    if action in ("left", "right"):  # the nose tip moves sideways (to the image's right: the person's left)
        out[liveness.NOSE][0] += (1 if action == "left" else -1) * amount * liveness.TURN * width
    elif action == "nod":
        eyes = np.linalg.norm(marks[42:48].mean(axis=0) - marks[36:42].mean(axis=0))
        out[liveness.NOSE][1] += amount * liveness.NOD * eyes
    elif action == "mouth":
        mouth = np.linalg.norm(marks[liveness.MOUTH_CORNERS[1]] - marks[liveness.MOUTH_CORNERS[0]])
        for _, lower in liveness.INNER_LIPS:
            out[lower][1] += amount * liveness.MOUTH * mouth
    return out


def sequence(look: np.ndarray, shown: list[str], per_step: int = 3) -> tuple[list[np.ndarray], list[int]]:
    """Landmarks of frames showing `shown` (after the look at the camera), with their step index."""
    marks, steps = [], []
    for k, action in enumerate(["look", *shown]):
        for j in range(per_step):
            frame = look if action == "look" else posed(look, action, 1.2 + 0.2 * j)
            marks.append(frame + np.random.default_rng(10 * k + j).normal(0, 0.2, look.shape))  # a jitter
            steps.append(k)
    return marks, steps


ORDERS = [("left", "right", "mouth"), ("nod", "mouth", "left"), ("right", "nod", "mouth"), ("mouth", "left", "nod")]


@pytest.mark.parametrize("asked", ORDERS)
def test_landmarks_showing_the_asked_actions_in_order_pass(look, asked):
    result = check_actions(asked, *sequence(look, list(asked)))
    assert result.ok, result.message
    assert [s["asked"] for s in result.steps] == list(asked) and all(s["shown"] for s in result.steps)


@pytest.mark.parametrize("asked", ORDERS)
def test_landmarks_in_another_order_or_missing_an_action_fail(look, asked):
    swapped = [asked[1], asked[0], asked[2]]
    result = check_actions(asked, *sequence(look, swapped))
    assert not result.ok and "第2步" in result.message and "按提示的顺序" in result.message
    lazy = check_actions(asked, *sequence(look, [asked[0], asked[1], "look"]))  # the last action not done
    assert not lazy.ok and "第4步" in lazy.message and "第2步" not in lazy.message
    small = [posed(m, asked[0], 0.5) if s == 1 else m for m, s in zip(*sequence(look, ["look"] * 3), strict=True)]
    assert not check_actions(asked, small, sequence(look, ["look"] * 3)[1]).ok  # half the threshold is not enough


def test_a_turn_step_wants_its_largest_turn_the_asked_way(look):
    marks, steps = sequence(look, ["left", "right", "mouth"])
    marks[3] = posed(look, "right", 1.2)  # the first frame of the left step turns right, then left further
    marks[4] = posed(look, "left", 2.0)
    assert check_actions(("left", "right", "mouth"), marks, steps).ok
    marks[5] = posed(look, "right", 3.0)  # a left-right-left recording: its largest turn goes right
    assert not check_actions(("left", "right", "mouth"), marks, steps).ok


def test_without_a_look_at_the_camera_there_is_no_baseline(look):
    marks, steps = sequence(look, ["left", "right", "mouth"])
    result = check_actions(("left", "right", "mouth"), marks[3:], steps[3:])
    assert not result.ok and "正对镜头" in result.message


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return faces.encode(faces.load_image(media.reference()))


def challenge(actions) -> liveness.Challenge:
    return liveness.Challenge("nonce", 1, tuple(actions), utcnow(), 90)


def test_real_frames_in_the_asked_order_pass_and_in_another_order_fail(reference):
    asked = ("left", "right", "mouth")
    uploads, steps = media.challenge_frames(asked)
    right = liveness.verify(matcher(reference), uploads, MOTION, challenge(asked), steps)
    assert right.passed and right.face.live and right.actions and right.actions.ok
    for shown in [("right", "left", "mouth"), ("mouth", "right", "left")]:
        uploads, steps = media.challenge_frames(shown)
        wrong = liveness.verify(matcher(reference), uploads, MOTION, challenge(asked), steps)
        assert wrong.face.passed and not wrong.passed  # the right live face, the wrong actions
        assert wrong.actions and not wrong.actions.ok and "第2步（慢慢向左转头）" in wrong.actions.message


def test_steps_that_do_not_fit_the_challenge_are_refused_before_any_decision(reference):
    asked = ("left", "right", "mouth")
    uploads, steps = media.challenge_frames(asked)
    for bad, why in [
        (None, "对不上"),
        (steps[:-1], "对不上"),
        ([s if s < 3 else 4 for s in steps], "对不上"),  # a step the challenge does not have
        (list(reversed(steps)), "顺序不对"),  # frames labelled in another order
    ]:
        with pytest.raises(faces.FaceError, match=why):
            liveness.verify(matcher(reference), uploads, MOTION, challenge(asked), bad)


def test_challenges_are_random_single_use_bound_to_one_authorization_and_a_window(redis_url):
    store = Challenges(redis_url, 60, 3600)
    drawn = [store.issue(7) for _ in range(40)]
    assert len({c.actions for c in drawn}) > 5 and len({c.nonce for c in drawn}) == 40
    assert all(len(set(c.actions)) == 3 and set(c.actions) <= set(liveness.ACTIONS) for c in drawn)
    page = drawn[0].public()
    assert [s["action"] for s in page["steps"]] == ["look", *drawn[0].actions] and page["expires_in"] == 60
    assert all(s["prompt"].startswith("请") for s in page["steps"])
    with pytest.raises(ChallengeRefused) as earlier:  # an earlier attempt's nonce: a later one replaced it
        store.take(drawn[2].nonce, 7)
    assert earlier.value.reason == "superseded" and "最新" in str(earlier.value)
    assert store.take(drawn[-1].nonce, 7).actions == drawn[-1].actions  # the latest, within the window
    with pytest.raises(ChallengeRefused) as used:  # single use
        store.take(drawn[-1].nonce, 7)
    assert used.value.reason == "unknown_or_used_nonce" and "用过" in str(used.value)
    with pytest.raises(ChallengeRefused) as other:  # another authorization's nonce
        store.take(store.issue(8).nonce, 7)
    assert other.value.reason == "another_authorization"
    with pytest.raises(ChallengeRefused) as forged:
        store.take("forged-nonce", 7)
    assert forged.value.reason == "unknown_or_used_nonce"
    with pytest.raises(ChallengeRefused) as none:
        store.take("", 7)
    assert none.value.reason == "no_challenge"
    late = store.issue(7)
    with travel_to(utcnow() + timedelta(seconds=61)), pytest.raises(ChallengeRefused) as after:
        store.take(late.nonce, 7)  # past the window
    assert after.value.reason == "outside_window" and "60秒内" in str(after.value)


def test_frames_seen_before_are_a_replay(redis_url):
    store = Challenges(redis_url, 60, 3600)
    first, _ = media.challenge_frames(("left", "right", "mouth"), take=9001)
    again, _ = media.challenge_frames(("left", "right", "mouth"), take=9001)
    other, _ = media.challenge_frames(("left", "right", "mouth"), take=9002)
    hashes = [faces.sha256(f) for f in first]
    assert store.first_sight(hashes)
    assert not store.first_sight([faces.sha256(f) for f in again])
    assert not store.first_sight([faces.sha256(other[0]), hashes[5]])  # one old frame among new ones
    assert store.first_sight([faces.sha256(f) for f in other[1:]])


def ready_for_face(settings, token, name, sms):
    """Identity and the biometric consent done; the browser bound to the request."""
    url = settings.database_url
    factor = second_factor(url, token, sms)
    with unit_of_work(url) as s:
        browser = bound(check_identity(s, TEST_SECRET, token, name, id_digits(s, token), CLIENT, MAX, **factor))
        give_biometric_consent(s, token, True, browser)
    return browser


def submit(settings, token, browser, store, nonce, uploads, steps):
    with unit_of_work(settings.database_url) as s:
        return check_face(s, token, uploads, browser, MAX, ENGINE, MOTION, store, nonce, steps)


def test_refused_attempts_are_recorded_counted_and_query_nothing(demo_settings, application, sms, monkeypatch):
    """Through check_face: a replayed recording, a reused nonce, another party's nonce, a late
    answer and the wrong order are each refused, recorded and counted; then the right one passes."""
    url = demo_settings.database_url
    _, tokens, names = application
    store = Challenges(demo_settings.redis_url, 90, 3600)
    monkeypatch.setattr(liveness, "_random", media.FixedChallenge("left", "right", "mouth"))
    browsers = {role: ready_for_face(demo_settings, tokens[role], names[role], sms) for role in ("applicant", "spouse")}

    def challenge_for(role):
        with unit_of_work(url) as s:
            return face_challenge(s, tokens[role], browsers[role], store)["nonce"]

    token = tokens["applicant"]
    recorded, steps = media.challenge_frames(("left", "right", "mouth"))
    first = challenge_for("applicant")
    wrong_order, _ = media.challenge_frames(("right", "left", "mouth"))
    out = submit(demo_settings, token, browsers["applicant"], store, first, wrong_order, steps)
    assert not out.ok and "按提示的顺序" in out.message and out.attempts_left == 4
    out = submit(
        demo_settings, token, browsers["applicant"], store, challenge_for("applicant"), wrong_order, steps
    )  # a replay
    assert not out.ok and "以前上传过" in out.message and out.attempts_left == 3
    out = submit(demo_settings, token, browsers["applicant"], store, first, recorded, steps)  # the nonce is used up
    assert not out.ok and "用过" in out.message
    out = submit(demo_settings, token, browsers["applicant"], store, challenge_for("spouse"), recorded, steps)
    assert not out.ok and "不属于本次授权" in out.message
    late = challenge_for("applicant")
    with travel_to(utcnow() + timedelta(seconds=91)):
        out = submit(
            demo_settings,
            token,
            browsers["applicant"],
            store,
            late,
            media.challenge_frames(("left", "right", "mouth"))[0],
            steps,
        )
    assert not out.ok and out.locked and "锁定" in out.message  # the fifth failure locks (why: below)
    with unit_of_work(url) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "applicant"))
        assert auth.status == "locked" and auth.face_verified_at is None
        records = s.scalars(
            select(ConsentEvidence).where(ConsentEvidence.authorization_id == auth.id).order_by(ConsentEvidence.id)
        ).all()
        assert s.scalars(select(CreditReportRecord).order_by(CreditReportRecord.id)).all() == []
    refused = [(r.event, r.detail.get("reason")) for r in records if r.event in ("liveness_refused", "face_failed")]
    assert refused == [
        ("face_failed", None),
        ("liveness_refused", "replayed_frames"),
        ("liveness_refused", "unknown_or_used_nonce"),
        ("liveness_refused", "another_authorization"),
        ("liveness_refused", "outside_window"),
    ]
    failed = next(r for r in records if r.event == "face_failed")
    assert failed.detail["challenge"]["actions"] == ["left", "right", "mouth"]
    assert [s["shown"] for s in failed.detail["actions"]["steps"]] == [False, False, True]
    assert "nonce" not in failed.detail["challenge"] and len(failed.detail["challenge"]["nonce_sha256"]) == 64
    # the spouse, with a fresh take in the asked order, passes
    out = submit(demo_settings, tokens["spouse"], browsers["spouse"], store, challenge_for("spouse"), recorded, steps)
    assert out.ok, out.message


def test_the_demo_order_is_asked_every_time_and_the_evidence_says_so(redis_url, demo_settings):
    store = Challenges(redis_url, 60, 3600, ("left", "right", "mouth"))
    drawn = [store.issue(7) for _ in range(10)]
    assert {c.actions for c in drawn} == {("left", "right", "mouth")} and len({c.nonce for c in drawn}) == 10
    taken = store.take(drawn[-1].nonce, 7)
    assert taken.evidence()["order"] == "fixed_demo_order" and taken.evidence()["actions"] == ["left", "right", "mouth"]
    assert Challenges(redis_url, 60, 3600).issue(7).evidence()["order"] == "random"
    # The settings' order is honoured only with the demo switch on, and never in production.
    fixed = replace(demo_settings, redis_url=redis_url, sunshine_demo=True, face_challenge_demo_order="nod,left,right")
    assert Challenges.from_settings(fixed).issue(7).actions == ("nod", "left", "right")
    for off in (replace(fixed, sunshine_demo=False), replace(fixed, sunshine_env="production")):
        assert Challenges.from_settings(off).demo_order == ()
