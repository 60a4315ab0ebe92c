"""An officer's review of a face check in the band the engine cannot decide (neither clearly
the person nor clearly not: common for East-Asian faces with a small cohort).

- `hold`: the live frame the decision used (the selfie) is kept, sealed with the face-review
  key (`faces.seal_image`: a downscaled JPEG, no metadata), with the engine's score and
  thresholds. The review is not a failed try: the page tells the person an officer checks it.
- `decide`: an officer approves (the face step passes: the person continues to the consent in
  the same step session, or to signing the contract) or rejects (the attempt counts, as a failed
  match would). Recorded in
  the evidence chain, the audit log and the application's history; the frames are deleted.
- `purge`: frames nobody decided within FACE_REVIEW_RETENTION_HOURS, or whose request is no
  longer pending, are deleted by the report sweeper's rounds.

A review is of an authorization's face step or of a loan contract's (auth_flow.subjects): the
functions take either row.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from auth_flow import evidence, faces
from auth_flow.evidence import Client
from auth_flow.subjects import FaceSubject
from auth_flow.tokens import CheckResult
from lending.applications import note
from lending.parties import LABELS
from sunshine.clock import utcnow
from sunshine.models import Authorization, FaceReference, FaceReview, LoanContract, Officer, audit
from sunshine.protect import mask_name

# What helps a genuine person through the match (the message never suggests they are someone else).
RETRY_ADVICE = "请到光线均匀明亮的地方，摘下眼镜和帽子，手机拿到一臂远、正对镜头后再试"
REJECTED = f"客户经理人工核验后，未能确认是您本人。{RETRY_ADVICE}"
STATUS_LABELS = {
    "pending": "待核验",
    "approved": "已通过",
    "rejected": "未通过",
    "superseded": "客户已重新刷脸",
    "expired": "超过保留期限未处理",
}
SYSTEM = Client(ip="", user_agent="face-review-purge")


class ReviewRefused(ValueError):
    """A review that cannot be decided or shown now; the message is for the officer. Nothing changed."""


def waiting_message(minutes: int) -> str:
    return f"已请客户经理人工核验，一般{minutes}分钟内完成，请留在本页或稍后重新打开链接"


class Seen:
    """A face engine's matcher that keeps the selfie it was given (the frame the decision used)."""

    def __init__(self, match: faces.Matcher):
        self.match, self.selfie = match, b""

    def __call__(self, selfie: bytes):
        self.selfie = selfie
        return self.match(selfie)


def _drop_frames(review: FaceReview) -> None:
    review.frames_sealed = None
    review.frames_deleted_at = utcnow()


def supersede(session: Session, auth: Authorization | LoanContract) -> None:
    """A later decided attempt: a review still pending is moot and its frames go."""
    for review in session.scalars(
        select(FaceReview).where(FaceSubject(auth).reviews(), FaceReview.status == "pending")
    ):
        review.status = "superseded"
        _drop_frames(review)


def hold(
    session: Session,
    auth: Authorization | LoanContract,
    secret_key: str,
    selfie: bytes,
    face: dict,
    reference: FaceReference | None,
) -> FaceReview:
    """Keep what the officer needs to decide: the selfie sealed, the engine's score and thresholds."""
    supersede(session, auth)
    subject = FaceSubject(auth)
    review = FaceReview(
        **subject.review_link(),
        reference_id=reference.id if reference is not None else None,
        status="pending",
        face=face,
        frames_sealed=[faces.seal_image(secret_key, selfie)],
        step_session_hash=subject.step_session_hash,
        created_at=utcnow(),
    )
    session.add(review)
    session.flush()
    return review


def held_result(review: FaceReview, auth: Authorization | LoanContract, max_attempts: int, minutes: int) -> CheckResult:
    """What the page is told: an officer checks it; nothing counted."""
    return CheckResult(
        False, waiting_message(minutes), max(max_attempts - auth.attempts, 0), face=review.face, review=True
    )


def latest(session: Session, auth: Authorization | LoanContract) -> FaceReview | None:
    return session.scalar(select(FaceReview).where(FaceSubject(auth).reviews()).order_by(FaceReview.id.desc()).limit(1))


NO_REVIEW = {"status": "none", "message": ""}


def page_state(session: Session, auth: Authorization | LoanContract, minutes: int) -> dict:
    """The page's view of the latest review in this step session: waiting, rejected (how to retry), or none."""
    review = latest(session, auth)
    if review is None or review.step_session_hash != FaceSubject(auth).step_session_hash:
        return NO_REVIEW
    if review.status == "pending":
        return {"status": "pending", "message": waiting_message(minutes)}
    if review.status == "rejected" and auth.face_verified_at is None:
        return {"status": "rejected", "message": REJECTED}
    return NO_REVIEW


def pending_reviews(
    session: Session, authorization_ids: list[int], contract_ids: tuple[int, ...] | list[int] = ()
) -> list[FaceReview]:
    """The pending reviews of these authorizations and contracts."""
    if not authorization_ids and not contract_ids:
        return []
    return list(
        session.scalars(
            select(FaceReview)
            .where(
                or_(FaceReview.authorization_id.in_(authorization_ids), FaceReview.contract_id.in_(contract_ids)),
                FaceReview.status == "pending",
            )
            .order_by(FaceReview.id)
        )
    )


def _locked(session: Session, model, id_: int):
    return session.scalar(
        select(model).where(model.id == id_).with_for_update().execution_options(populate_existing=True)
    )


def decide(
    session: Session, review_id: int, officer: Officer, approve: bool, client: Client, max_attempts: int
) -> FaceReview:
    """The officer's decision. Raises ReviewRefused (nothing changed) for a review already decided
    or moot, and for a request that is no longer pending (expired, used, locked, superseded)."""
    found = session.get(FaceReview, review_id)
    if found is None:
        raise ReviewRefused("没有这次人脸核验")
    # The request's row first, then the review's: the order a face attempt takes them in.
    if found.contract_id is not None:
        subject = FaceSubject(_locked(session, LoanContract, found.contract_id))
    else:
        subject = FaceSubject(_locked(session, Authorization, found.authorization_id or 0))
    auth = subject.row
    review = _locked(session, FaceReview, review_id)
    if review.status != "pending":
        raise ReviewRefused(f"这次人脸核验已经处理过了（{STATUS_LABELS[review.status]}），不能重复处理")
    if not subject.open_for_face(session):
        if subject.contract:
            raise ReviewRefused("这份借款合同已签署、已锁定、链接已过期或申请已不是审批通过状态，不能再核验")
        raise ReviewRefused("这个授权链接已过期、已使用或已作废，或贷款申请已撤销或办结，不能再核验")
    if review.step_session_hash != subject.step_session_hash:
        raise ReviewRefused("客户已在另一台手机或浏览器上重新开始，这次核验作废")
    review.status = "approved" if approve else "rejected"
    review.decided_at, review.decided_by = utcnow(), officer.username
    _drop_frames(review)
    event = f"face_review_{review.status}"
    evidence.append(session, auth, event, client, face=review.face, officer=officer.username, review_id=review.id)
    audit(session, officer.username, f"face_review.{review.status}", subject.kind, auth.id, review_id=review.id)
    if approve:
        auth.face_verified_at = utcnow()
    else:
        subject.fail(session, REJECTED, max_attempts, client)
    if auth.application_id:
        verdict = "确认是本人，人脸核验通过" if approve else "不能确认是本人，人脸核验不通过（计一次失败）"
        what = "签署借款合同时" if subject.contract else ""
        note(
            session,
            auth.application_id,
            officer.display_name,
            event,
            f"客户经理{officer.display_name}人工核验{LABELS[auth.party_role]}{mask_name(auth.party_name)}"
            f"{what}的刷脸照片：{verdict}",
            officer=officer.username,
            review_id=review.id,
            **subject.review_link(),
        )
    return review


def frame(secret_key: str, review: FaceReview, index: int) -> bytes:
    """One live frame of a review (JPEG), while it is kept."""
    if not review.frames_sealed:
        raise ReviewRefused("照片已删除（核验已处理或超过保留期限）")
    if not 0 <= index < len(review.frames_sealed):
        raise ReviewRefused("没有这张照片")
    return faces.unseal_image(secret_key, review.frames_sealed[index])


def reference_photo(session: Session, secret_key: str, review: FaceReview) -> bytes:
    """The enrolled reference photo the live frame was compared with (JPEG), while the review is
    pending and the reference is the active one."""
    if review.status != "pending":
        raise ReviewRefused("核验已处理，照片不再显示")
    ref = session.get(FaceReference, review.reference_id) if review.reference_id else None
    if ref is None or not ref.active or not ref.photo_sealed:
        raise ReviewRefused("没有保存登记照片（已更换，或登记于保存照片之前），请与证件原件核对")
    return faces.unseal_image(secret_key, ref.photo_sealed)


def purge(session: Session, retention_hours: int) -> int:
    """Delete the frames of reviews nobody decided within `retention_hours`, or whose request is no
    longer pending (expired, used, locked, superseded): they become "expired". Returns how many."""
    now = utcnow()
    stale = session.scalars(
        select(FaceReview)
        .outerjoin(Authorization, Authorization.id == FaceReview.authorization_id)
        .outerjoin(LoanContract, LoanContract.id == FaceReview.contract_id)
        .where(
            FaceReview.status == "pending",
            or_(
                FaceReview.created_at < now - timedelta(hours=retention_hours),
                Authorization.status != "pending",
                Authorization.expires_at < now,
                LoanContract.status != "offered",
                LoanContract.expires_at < now,
            ),
        )
        .with_for_update(of=FaceReview)
    ).all()
    for review in stale:
        review.status = "expired"
        _drop_frames(review)
        evidence.append(
            session, FaceSubject.of_review(session, review).row, "face_review_expired", SYSTEM, review_id=review.id
        )
    return len(stale)
