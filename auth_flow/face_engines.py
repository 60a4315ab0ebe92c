"""Who decides whether the selfie is the person: one small interface, two engines (FACE_ENGINE).

- `local` (default, offline): face_recognition's encoding of the selfie against the customer's
  enrolled reference, decided by `auth_flow.face_match` (cohort: the other customers' references).
- `certified`: a licensed face-verification service (人脸核身) compares the selfie with the
  authoritative ID photo of the person's ID number and name (`clients.faceid`, Tencent Cloud
  FaceID's ImageRecognitionV2 wire format). Its similarity decides: at least FACEID_PASS_SIM
  passes, at least FACEID_REVIEW_SIM goes to an officer's review.

`engine.matcher(session, party)` gives the function `auth_flow.liveness.verify` calls with the
selfie; its `Decision` (engine, score, thresholds) goes into the evidence.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import face_match, faces
from auth_flow.enrolment import reference_of
from clients.faceid import FaceIdClient, FaceIdError, FaceIdUnavailable
from sunshine.models import Customer, FaceReference
from sunshine.protect import unseal

# The most recent references of other customers make the cohort. The ratio depends on the cohort's
# size (more people: nearer neighbours, a stricter ratio); its thresholds were measured with cohorts
# of about 170 references (README, "Face decision"), so production uses a cohort of that order.
COHORT_MAX = 200


class NoReference(Exception):
    """Nothing to compare the selfie with; the message is for the person."""


class EngineUnavailable(faces.Retake):
    """The verification service did not answer: the attempt is not counted."""


class FaceEngine(Protocol):
    name: str
    secret_key: str  # also seals what an officer's review of the check keeps (auth_flow.face_review)

    def matcher(self, session: Session, party: Customer) -> faces.Matcher: ...


def cohort_of(session: Session, secret_key: str, exclude_customer_id: int, limit: int = COHORT_MAX) -> np.ndarray:
    """Other customers' active reference encodings, one per row (the customer's own never)."""
    sealed = session.scalars(
        select(FaceReference.encoding_sealed)
        .where(FaceReference.active.is_(True), FaceReference.customer_id != exclude_customer_id)
        .order_by(FaceReference.id.desc())
        .limit(limit)
    ).all()
    if not sealed:
        return np.empty((0, 128))
    return np.stack(faces.unseal_encodings(secret_key, list(sealed)))


def probe_encoding(selfie: bytes) -> np.ndarray:
    """The selfie's encoding as the local engine compares it (quality gates included)."""
    return faces.encode(faces.load_image(selfie), check_quality=True)


class LocalEngine:
    name = "local"

    def __init__(self, secret_key: str, policy: face_match.Policy):
        self.secret_key, self.policy = secret_key, policy

    def matcher(self, session: Session, party: Customer) -> faces.Matcher:
        ref = reference_of(session, party.id)
        if ref is None:
            raise NoReference("银行还没有登记您的证件照，暂时不能刷脸授权，请联系客户经理")
        reference = faces.unseal_encoding(self.secret_key, ref.encoding_sealed)
        cohort = cohort_of(session, self.secret_key, party.id)
        sha = ref.image_sha256

        def match(selfie: bytes) -> face_match.Decision:
            probe = probe_encoding(selfie)
            return face_match.decide(reference, probe, cohort, self.policy, reference_sha256=sha)

        return match


# The service's business results that mean the selfie itself cannot be compared.
_SELFIE_ERRORS = {
    "FailedOperation.LifePhotoDetectNoFaces": faces.NoFace("没有检测到人脸，请正对摄像头、光线充足后重试"),
    "FailedOperation.LifePhotoDetectFaces": faces.SeveralFaces("画面中有多张人脸，请确保只有您本人在镜头前"),
    "FailedOperation.LifePhotoPoorQuality": faces.PoorQuality("画面质量太差，请到明亮处、拿稳手机、正对镜头再拍"),
    "FailedOperation.LifePhotoSizeError": faces.PoorQuality("人脸太小或太大，请让脸部占满取景框再拍"),
    "FailedOperation.LifePhotoDetectFake": faces.PoorQuality("请不要翻拍照片或屏幕，由本人正对镜头拍摄"),
}
_NO_ID_PHOTO = ("FailedOperation.IdNoExistSystem", "FailedOperation.IdPhotoNoExist", "FailedOperation.IdNameMisMatch")


class CertifiedEngine:
    name = "certified"

    def __init__(self, secret_key: str, client: FaceIdClient, pass_sim: float, review_sim: float):
        self.secret_key, self.client = secret_key, client
        self.pass_sim, self.review_sim = pass_sim, review_sim

    def matcher(self, session: Session, party: Customer) -> faces.Matcher:
        id_number, name = unseal(self.secret_key, party.id_sealed), party.name

        def match(selfie: bytes) -> face_match.Decision:
            try:
                answer = self.client.image_recognition(id_number, name, selfie)
            except FaceIdUnavailable:
                raise EngineUnavailable("人脸核验服务暂时繁忙，请稍后再试（本次不计入次数）") from None
            except FaceIdError as exc:
                raise EngineUnavailable(f"人脸核验服务未能受理（{exc.code}），请稍后再试（本次不计入次数）") from None
            if answer.result in _SELFIE_ERRORS:
                raise _SELFIE_ERRORS[answer.result]
            if answer.result in _NO_ID_PHOTO:
                raise NoReference("权威库中没有找到与您身份信息一致的证件照，请联系客户经理到网点办理")
            if answer.sim is None:
                raise EngineUnavailable(f"人脸核验服务未给出结果（{answer.result}），请稍后再试（本次不计入次数）")
            return face_match.Decision(
                "certified",
                "similarity",
                face_match.outcome(answer.sim, self.pass_sim, self.review_sim, higher_is_better=True),
                answer.sim,
                self.pass_sim,
                self.review_sim,
                higher_is_better=True,
                request_id=answer.request_id,
            )

        return match


def engine_from_settings(s) -> FaceEngine:
    if s.face_engine == "certified":
        return CertifiedEngine(s.secret_key, FaceIdClient.from_settings(s), s.faceid_pass_sim, s.faceid_review_sim)
    return LocalEngine(s.secret_key, face_match.Policy.from_settings(s))
