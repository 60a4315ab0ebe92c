"""An officer's review of a face check (auth_flow.face_review): a card on the application's page
and on the `face_review` hand-off with the live frame and the enrolled reference side by side,
the score and threshold, and 通过 / 不通过. The images are served here, only to an officer
allowed to see the application (or, without one, the applicant's officer or a supervisor), and
never cached (the console's `no_store`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from auth_flow import face_review
from auth_flow.evidence import Client
from auth_flow.subjects import FaceSubject
from handoff import service as handoffs
from lending.contracts import contract_of
from lending.parties import ROLE_NAMES
from sunshine.models import Authorization, Customer, FaceReview, HandOff
from webhooks.console import bp
from webhooks.console.auth import login_required
from webhooks.console.common import settings


def _allowed(subject: FaceSubject) -> bool:
    """The console's rule for an application (`applications._application`: a supervisor, or the
    applicant's officer), applied to the request's applicant, with or without an application."""
    if g.officer.role == handoffs.SUPERVISOR:
        return True
    applicant = g.db.get(Customer, subject.applicant_id)
    return applicant is not None and applicant.officer_id == g.officer.id


def _review(review_id: int) -> tuple[FaceReview, FaceSubject]:
    review = g.db.get(FaceReview, review_id)
    if review is None:
        abort(404, description="没有这次人脸核验")
    subject = FaceSubject.of_review(g.db, review)
    if not _allowed(subject):
        abort(403, description="这是其他客户经理的客户，只有主管可以查看")
    return review, subject


def _card(review: FaceReview, subject: FaceSubject) -> dict[str, Any]:
    face, row = review.face or {}, subject.row
    what = "，签署借款合同" if subject.contract else ""
    return {
        "review": review,
        "party": f"{row.party_name}（{ROLE_NAMES[row.party_role]}{what}）",
        "frames": len(review.frames_sealed or []),
        "score": face.get("score"),
        "threshold": face.get("threshold"),
        "review_threshold": face.get("review_threshold"),
        "higher_is_better": face.get("engine") == "certified",
        "engine": "认证人脸核身服务" if face.get("engine") == "certified" else "本地比对",
        "method": face.get("method"),
    }


def review_cards(application_id: int | None = None, hand_off: HandOff | None = None) -> list[dict[str, Any]]:
    """The pending reviews an application's page or a `face_review` hand-off shows."""
    contract_ids: list[int] = []
    if application_id is not None:
        ids = list(g.db.scalars(select(Authorization.id).where(Authorization.application_id == application_id)))
        contract = contract_of(g.db, application_id)
        contract_ids = [contract.id] if contract is not None else []
    elif hand_off is not None and hand_off.reason == "face_review":
        summary = hand_off.summary or {}
        ids = [int(summary["authorization_id"])] if summary.get("authorization_id") else []
        contract_ids = [int(summary["contract_id"])] if summary.get("contract_id") else []
    else:
        return []
    cards = []
    for review in face_review.pending_reviews(g.db, ids, contract_ids):
        subject = FaceSubject.of_review(g.db, review)
        if _allowed(subject):
            cards.append(_card(review, subject))
    return cards


@bp.app_context_processor
def _reviews() -> dict[str, Any]:
    return {"face_review_cards": review_cards, "retention_hours": settings().face_review_retention_hours}


def _jpeg(image: Callable[[], bytes]) -> Response:
    """One of the review's images (unsealed in memory), or 404 when it is gone."""
    try:
        return Response(image(), mimetype="image/jpeg")
    except face_review.ReviewRefused as exc:
        abort(404, description=str(exc))


@bp.get("/face-reviews/<int:review_id>/frames/<int:index>.jpg")
@login_required
def face_review_frame(review_id: int, index: int) -> ResponseReturnValue:
    review, _ = _review(review_id)
    return _jpeg(lambda: face_review.frame(settings().secret_key, review, index))


@bp.get("/face-reviews/<int:review_id>/reference.jpg")
@login_required
def face_review_reference(review_id: int) -> ResponseReturnValue:
    review, _ = _review(review_id)
    return _jpeg(lambda: face_review.reference_photo(g.db, settings().secret_key, review))


@bp.post("/face-reviews/<int:review_id>/decision")
@login_required
def face_review_decide(review_id: int) -> ResponseReturnValue:
    """通过 / 不通过: the face step passes, or the attempt counts; the frames are deleted."""
    review, subject = _review(review_id)
    hand_off_id = request.form.get("hand_off_id", type=int)
    if hand_off_id:
        back = redirect(url_for("console.hand_off_page", hand_off_id=hand_off_id))
    elif subject.application_id:
        back = redirect(url_for("console.application_page", application_id=subject.application_id))
    else:
        back = redirect(url_for("console.queue"))
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        flash("请选择通过或不通过", "error")
        return back
    client = Client(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))
    try:
        face_review.decide(g.db, review.id, g.officer, decision == "approve", client, settings().auth_max_attempts)
    except face_review.ReviewRefused as exc:
        g.db.rollback()
        flash(str(exc), "error")
        return back
    g.db.commit()
    if decision == "approve":
        next_step = "签署合同" if subject.contract else "确认授权"
        flash(f"已确认是本人：客户的页面会自动进入下一步（{next_step}），照片已删除", "ok")
    else:
        flash("已记为核验不通过（计一次失败），客户会看到重新刷脸的提示，照片已删除", "ok")
    return back
