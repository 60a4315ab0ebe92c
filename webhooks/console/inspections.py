"""The annual inspection (年检) in the console: the officer's on-site tasks, a task's page (this
year's data beside last year's, the findings, conclusion and photos; locked once submitted),
and each batch's progress and summary. The rules and the locking are lending.inspection's."""

from __future__ import annotations

from flask import Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from auth_flow import faces
from handoff import service as handoffs
from lending import inspection
from lending.inspection import CONCLUSIONS, MAX_PHOTO_BYTES, MAX_PHOTOS, InspectionError, Locked, Photo
from lending.notify import WeChatNotifier
from sunshine import clock
from sunshine.models import InspectionBatch, InspectionPhoto, LineInspection, audit
from webhooks.console import api, bp
from webhooks.console.auth import login_required, passive
from webhooks.console.common import jobs, profile
from webhooks.console.references import FORM_OVERHEAD, upload_form

MODES = {"off_site": "非现场通过", "on_site": "上门核查"}
BATCH_STATUS = {"running": "进行中", "done": "已完成", "failed": "中断"}
SHOWN_BATCHES = 20


def _inspection(inspection_id: int) -> LineInspection:
    found = g.db.get(LineInspection, inspection_id)
    if found is None:
        abort(404, description="没有这条年检记录")
    if not inspection.may_act(g.officer, found):
        audit(g.db, handoffs.actor_of(g.officer), "inspection.refused_other", "line_inspection", found.id)
        g.db.commit()  # a refusal is recorded
        abort(403, description="这是其他客户经理的年检任务，只有主管可以查看和处理")
    return found


@bp.get("/inspections")
@login_required
def inspections() -> ResponseReturnValue:
    """The on-site tasks still open (the officer's own; a supervisor's: everyone's) and the latest batches."""
    everyone = g.officer.role == handoffs.SUPERVISOR
    tasks = inspection.open_tasks(g.db, clock.today(), None if everyone else g.officer.id)
    batches = g.db.scalars(select(InspectionBatch).order_by(InspectionBatch.id.desc()).limit(SHOWN_BATCHES)).all()
    return render_template("console/inspections.html", tasks=tasks, batches=batches, batch_status=BATCH_STATUS)


@bp.get("/inspections/<int:inspection_id>")
@login_required
def inspection_page(inspection_id: int) -> ResponseReturnValue:
    return _page(_inspection(inspection_id))


def _page(found: LineInspection, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "console/inspection.html",
        i=found,
        profile=profile(found.customer),
        income_tag=inspection.default_rules().income_tag,
        modes=MODES,
        conclusions=CONCLUSIONS,
        outcomes=inspection.OUTCOME_LABELS,
        max_photos=MAX_PHOTOS,
        max_mb=MAX_PHOTO_BYTES // 1_000_000,
    ), status


def _amount(text: str) -> int | None:
    text = (text or "").replace(",", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise InspectionError("调减后的额度请填写整数（单位：元）")
    return int(text)


@bp.post("/inspections/<int:inspection_id>")
@upload_form(
    lambda: MAX_PHOTOS * MAX_PHOTO_BYTES + FORM_OVERHEAD,
    f"照片合计太大（每张不超过{MAX_PHOTO_BYTES // 1_000_000}MB），请压缩后再上传",
    lambda inspection_id: url_for("console.inspection_page", inspection_id=inspection_id),
)
@login_required
def inspection_save(inspection_id: int) -> ResponseReturnValue:
    """保存 (keep what is written so far) or 提交 (lock it and apply the conclusion to the line)."""
    found = _inspection(inspection_id)
    action = request.form.get("action")
    if action not in ("save", "submit"):
        abort(400, description="请选择保存或提交")
    photos = [Photo(f.read(), f.filename or "") for f in request.files.getlist("photos") if f.filename]
    try:
        for p in photos:
            inspection.photo_type(p.data)  # the type and size, before the header's pixels are read
        faces.check_uploads([p.data for p in photos])
        args = (
            found.id,
            g.officer,
            request.form.get("findings", ""),
            request.form.get("conclusion") or None,
            _amount(request.form.get("new_amount", "")),
            photos,
        )
        if action == "save":
            inspection.save(g.db, *args)
        else:
            inspection.submit(g.db, *args, notify=WeChatNotifier(jobs()), rules=inspection.default_rules())
    except Locked as exc:
        g.db.commit()  # the refusal is recorded; nothing else was changed
        flash(str(exc), "error")
        return redirect(url_for("console.inspection_page", inspection_id=inspection_id), code=303)
    except (InspectionError, faces.FaceError) as exc:
        g.db.rollback()
        flash(str(exc), "error")
        return _page(g.db.get(LineInspection, inspection_id), 422)
    g.db.commit()
    flash("已提交，年检结果已锁定" if action == "submit" else "已保存（提交前还可以修改）", "ok")
    return redirect(url_for("console.inspection_page", inspection_id=inspection_id), code=303)


@bp.get("/inspections/<int:inspection_id>/photos/<int:photo_id>")
@login_required
def inspection_photo(inspection_id: int, photo_id: int) -> ResponseReturnValue:
    found = _inspection(inspection_id)
    photo = g.db.get(InspectionPhoto, photo_id)
    if photo is None or photo.inspection_id != found.id:
        abort(404, description="没有这张照片")
    return Response(photo.data, mimetype=photo.content_type)


@bp.get("/inspections/batches/<int:batch_id>")
@login_required
def batch_page(batch_id: int) -> ResponseReturnValue:
    """A batch's summary, with a progress bar the page keeps current while it runs."""
    batch = g.db.get(InspectionBatch, batch_id)
    if batch is None:
        abort(404, description="没有这个年检批次")
    sent = select(LineInspection).where(LineInspection.batch_id == batch.id, LineInspection.mode == "on_site")
    if g.officer.role != handoffs.SUPERVISOR:
        sent = sent.where(LineInspection.officer_id == g.officer.id)
    return render_template(
        "console/inspection_batch.html",
        b=batch,
        summary=inspection.batch_summary(g.db, batch.id),
        tasks=g.db.scalars(sent.options(joinedload(LineInspection.customer)).order_by(LineInspection.id)).all(),
        batch_status=BATCH_STATUS,
    )


@api.get("/inspections/batches/<int:batch_id>")
@login_required
@passive
def batch_progress(batch_id: int) -> ResponseReturnValue:
    """A batch's status and counts (the summary page polls it while the batch runs)."""
    batch = g.db.get(InspectionBatch, batch_id)
    if batch is None:
        return {"error": "Not Found", "message": "没有这个年检批次"}, 404
    return jsonify(status=batch.status, **inspection.batch_summary(g.db, batch.id))
