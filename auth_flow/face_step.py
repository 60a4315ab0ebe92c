"""The face step, one implementation for every subject (auth_flow.subjects): an authorization's
step 3 and the face check of signing a loan contract above CONTRACT_FACE_ABOVE.

`challenge` issues the attempt's random challenge (auth_flow.liveness); `check` takes the frames:
an unused challenge of this subject inside its window, frames never seen before, the same person
(as the face engine decides against the party's enrolled reference, or the certified service),
live (not planar), the actions in order. A frame to retake (poor quality, service busy) uses no
attempt; a match in the review band is held for an officer (auth_flow.face_review) and uses no
attempt either; a failure counts, and the last allowed one locks the subject. Every outcome is
recorded in the evidence chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from auth_flow import evidence, face_review, faces, liveness
from auth_flow.enrolment import reference_of
from auth_flow.evidence import Client
from auth_flow.face_engines import FaceEngine, NoReference, engine_from_settings
from auth_flow.face_review import RETRY_ADVICE
from auth_flow.subjects import FaceSubject
from auth_flow.tokens import CheckResult, StepRefused
from sunshine.clock import utcnow


@dataclass(frozen=True)
class FaceCheck:
    """What a face attempt needs: the engine, the liveness threshold, the challenges, the attempts
    allowed (AUTH_MAX_ATTEMPTS) and how long an officer's review usually takes (FACE_REVIEW_MINUTES)."""

    engine: FaceEngine
    min_motion: float
    challenges: liveness.Challenges
    max_attempts: int
    review_minutes: int = 30

    @classmethod
    def from_settings(cls, s) -> FaceCheck:
        return cls(
            engine_from_settings(s),
            s.face_liveness_min_motion,
            liveness.Challenges.from_settings(s),
            s.auth_max_attempts,
            s.face_review_minutes,
        )


def challenge(subject: FaceSubject, challenges: liveness.Challenges) -> dict:
    """A new random challenge (the actions the page asks for) for the subject's next attempt."""
    return challenges.issue(subject.challenge_key).public()


def check(
    session: Session,
    subject: FaceSubject,
    uploads: list[bytes],
    client: Client,
    face_check: FaceCheck,
    nonce: str,
    steps: list[int] | None,
    step: str = "face",
) -> CheckResult:
    """One attempt: the frames taken while the party does the challenge's actions (`steps[i]`:
    the step of frame i). On a pass the subject's `face_verified_at` is set. `step`: the name
    the evidence gives the step."""
    row, max_attempts, engine = subject.row, face_check.max_attempts, face_check.engine
    hashes = [faces.sha256(u) for u in uploads]
    party = subject.party(session)
    try:
        asked_for = face_check.challenges.admit(nonce, subject.challenge_key, hashes)
    except liveness.ChallengeRefused as exc:
        evidence.append(session, row, "liveness_refused", client, image_sha256=hashes, reason=exc.reason)
        return subject.fail(session, str(exc), max_attempts, client)
    asked = asked_for.evidence()
    try:
        seen = face_review.Seen(engine.matcher(session, party))
        verdict = liveness.verify(seen, uploads, face_check.min_motion, asked_for, steps)
    except NoReference as exc:
        evidence.append(session, row, "refused", client, step=step, reason="no_reference", engine=engine.name)
        raise StepRefused(str(exc)) from None
    except faces.Retake as exc:
        evidence.append(
            session,
            row,
            "face_retake",
            client,
            image_sha256=hashes,
            reason=str(exc),
            engine=engine.name,
            challenge=asked,
        )
        return CheckResult(False, str(exc), max(max_attempts - row.attempts, 0))
    except faces.FaceError as exc:
        evidence.append(session, row, "face_unusable", client, image_sha256=hashes, reason=str(exc), challenge=asked)
        return subject.fail(session, str(exc), max_attempts, client)
    result, actions = verdict.face, verdict.actions
    face = result.as_dict()
    detail: dict[str, Any] = {"challenge": asked, "actions": actions.as_dict() if actions else None}
    face_review.supersede(session, row)  # a decided attempt: a review still pending is moot
    if verdict.passed:
        row.face_verified_at = utcnow()
        evidence.append(session, row, "face_passed", client, face=face, image_sha256=hashes, **detail)
        return CheckResult(True, "人脸核验通过", max_attempts - row.attempts, face=face)
    if verdict.review:  # neither clearly the person nor not: an officer compares the selfie with the reference
        review = face_review.hold(session, row, engine.secret_key, seen.selfie, face, reference_of(session, party.id))
        evidence.append(
            session, row, "face_review", client, face=face, image_sha256=hashes, review_id=review.id, **detail
        )
        subject.tell_officer(session, "face_review", engine=result.match.engine, score=round(result.match.score, 4))
        return face_review.held_result(review, row, max_attempts, face_check.review_minutes)
    evidence.append(session, row, "face_failed", client, face=face, image_sha256=hashes, **detail)
    if not result.live and result.match.outcome != "fail":
        why = "未检测到真人动作，请对准摄像头、按提示做动作，不要使用照片"
    elif not verdict.actions_ok and result.match.outcome != "fail":
        why = actions.message if actions else "动作不对，请按提示重新刷脸"
    else:
        why = f"这次没能确认是您本人。{RETRY_ADVICE}"
    return subject.fail(session, why, max_attempts, client, face=face)
