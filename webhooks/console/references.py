"""Reference faces: find a customer (ID number or name), see their reference and its
history, enrol a new one from an ID-card photo or a photo taken at the service station,
and import many at once (a CSV of ID numbers and photo names, with the photos in a zip).

The app's request limit (MAX_CONTENT_LENGTH) is for small forms; these uploads are parsed
with limits of their own before the login and CSRF checks read the form (`upload_form`, which
the inspections page uses too). Photos are decoded in memory only (auth_flow.enrolment keeps
the sealed encoding and the SHA-256, never the image)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import parse_form_data

from auth_flow import enrolment, faces
from handoff import service as handoffs
from lending.customers import by_id_number
from lending.identity import InvalidIdNumber
from sunshine.models import Customer, FaceReference, Officer
from sunshine.protect import mask_id_number
from webhooks.console import bp
from webhooks.console.auth import SESSION_KEY, login_required
from webhooks.console.common import settings

P = ParamSpec("P")
OFFICER_SOURCES = ("id_card", "station_photo")  # what an officer uploads a single photo as
FORM_OVERHEAD = 64 * 1024  # the multipart envelope and the small fields around a file
SEARCH_LIMIT = 30


def upload_form(
    limit: Callable[[], int], too_large: str, back: Callable[..., str]
) -> Callable[[Callable[P, ResponseReturnValue]], Callable]:
    """Parse a logged-in officer's multipart upload of up to `limit()` bytes so that
    `login_required`'s CSRF check and the view read it; beyond it nothing is read and the
    officer goes `back(**view_args)` told why."""

    def decorate(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            if not session.get(SESSION_KEY):  # not logged in: read nothing, login_required answers
                return view(*args, **kwargs)
            most = limit()
            try:
                if (request.content_length or 0) > most:
                    raise RequestEntityTooLarge()
                # max_form_memory_size: werkzeug 3.1's decoder holds to it the part of a file it
                # has buffered too, so it is the whole limit (as for the face frames in webhooks.api).
                stream, form, files = parse_form_data(
                    request.environ, max_content_length=most, max_form_memory_size=most
                )
            except RequestEntityTooLarge:
                flash(too_large, "error")
                return redirect(back(**kwargs), code=303)
            # As werkzeug's Request._load_form_data does: the parsed form in the instance dict.
            request.__dict__.update(stream=stream, form=form, files=files)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _may_enrol(customer: Customer) -> bool:
    """An officer: their own customers and those without an officer; a supervisor: everyone."""
    officer: Officer = g.officer
    return officer.role == handoffs.SUPERVISOR or customer.officer_id in (None, officer.id)


def _customer(customer_id: int) -> Customer:
    customer = g.db.get(Customer, customer_id)
    if customer is None:
        abort(404, description="没有这位客户")
    if not _may_enrol(customer):
        abort(403, description="这是其他客户经理的客户，只有主管可以登记他的照片")
    return customer


def _search(query: str) -> tuple[list[Customer], str | None]:
    """Customers by ID number (exact) or by name (part of it); only those the officer may enrol."""
    query = query.strip()
    if not query:
        return [], None
    if any(ch.isdigit() for ch in query):
        try:
            found = by_id_number(g.db, settings().secret_key, query)
        except InvalidIdNumber as exc:
            return [], str(exc)
        matches = [found] if found else []
    else:
        matches = list(
            g.db.scalars(
                select(Customer).where(Customer.name.contains(query[:32])).order_by(Customer.id).limit(SEARCH_LIMIT)
            )
        )
    return [c for c in matches if _may_enrol(c)], None


def _officer_names() -> dict[str, str]:
    return dict(g.db.execute(select(Officer.username, Officer.display_name)).all())


def _who(enrolled_by: str, names: dict[str, str]) -> str:
    username = enrolled_by.split(":", 1)[-1]
    return {"demo": "演示数据"}.get(username) or names.get(username, username)


@bp.get("/references")
@login_required
def references() -> ResponseReturnValue:
    return render_template("console/references.html", q="", found=[], active={}, error=None, searched=False)


@bp.post("/references")
@login_required
def search() -> ResponseReturnValue:
    """A search is POSTed: an ID number never goes into a URL (access logs, history) nor back
    into the page unmasked."""
    query = request.form.get("q", "")
    found, error = _search(query)
    active = {
        r.customer_id: r
        for r in g.db.scalars(
            select(FaceReference).where(
                FaceReference.customer_id.in_([c.id for c in found]), FaceReference.active.is_(True)
            )
        )
    }
    shown = mask_id_number(query.strip()) if any(ch.isdigit() for ch in query) else query.strip()
    return render_template(
        "console/references.html", q=shown, found=found, active=active, error=error, searched=bool(query.strip())
    )


def _page(customer: Customer, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    names = _officer_names()
    return render_template(
        "console/reference.html",
        c=customer,
        history=[
            {"r": r, "who": _who(r.enrolled_by, names), "source": enrolment.SOURCES.get(r.source, r.source)}
            for r in enrolment.history(g.db, customer.id)
        ],
        sources={k: enrolment.SOURCES[k] for k in OFFICER_SOURCES},
        max_mb=enrolment.MAX_PHOTO_BYTES // 1_000_000,
        error=error,
    ), status


@bp.get("/customers/<int:customer_id>/reference")
@login_required
def reference_page(customer_id: int) -> ResponseReturnValue:
    return _page(_customer(customer_id))


@bp.post("/customers/<int:customer_id>/reference")
@upload_form(
    lambda: enrolment.MAX_PHOTO_BYTES + FORM_OVERHEAD,
    f"照片太大（超过{enrolment.MAX_PHOTO_BYTES // 1_000_000}MB），请压缩后或重新拍一张再登记",
    lambda customer_id: url_for("console.reference_page", customer_id=customer_id),
)
@login_required
def enrol(customer_id: int) -> ResponseReturnValue:
    """Enrol the uploaded photo as the customer's reference; a refused photo changes nothing."""
    customer = _customer(customer_id)
    source = request.form.get("source", "")
    if source not in OFFICER_SOURCES:
        return _page(customer, "请选择照片来源（身份证照片或服务站现场拍照）", 400)
    upload = request.files.get("photo")
    image = upload.read() if upload is not None else b""
    before = enrolment.reference_of(g.db, customer.id)
    try:
        ref = enrolment.enroll_reference(
            g.db, settings().secret_key, customer, image, handoffs.actor_of(g.officer), source
        )
    except faces.FaceError as exc:
        g.db.rollback()
        return _page(customer, str(exc), 422)
    g.db.commit()
    if before is not None and ref.id == before.id:
        flash("这张照片就是现在登记的照片，没有改动", "ok")
    else:
        flash(f"已{'更换' if before else '登记'}{customer.name}的照片（加密保存，照片只用于人工核验刷脸）", "ok")
    return redirect(url_for("console.reference_page", customer_id=customer.id), code=303)


def _import_limit() -> int:
    return settings().reference_import_max_bytes


@bp.post("/references/import")
@upload_form(_import_limit, "上传的文件太大，请分成几批导入", lambda: url_for("console.references"))
@login_required
def import_references() -> ResponseReturnValue:
    """A CSV (id_number, photo) and a zip of the photos: every row the officer may enrol, with a
    report of the refused rows (line, file, why)."""
    csv_file, photos = request.files.get("csv"), request.files.get("photos")
    if csv_file is None or photos is None or not csv_file.filename or not photos.filename:
        flash("请同时选择CSV名单和照片压缩包（zip）", "error")
        return redirect(url_for("console.references"), code=303)
    try:
        text = csv_file.read().decode("utf-8-sig")
        archive = zipfile.ZipFile(io.BytesIO(photos.read()))
    except UnicodeDecodeError:
        flash("CSV名单要用UTF-8编码保存", "error")
        return redirect(url_for("console.references"), code=303)
    except zipfile.BadZipFile:
        flash("照片压缩包不是zip文件", "error")
        return redirect(url_for("console.references"), code=303)
    try:
        report = enrolment.import_references(
            g.db,
            settings().secret_key,
            io.StringIO(text),
            enrolment.photos_in_zip(archive),
            handoffs.actor_of(g.officer),
            allowed=_may_enrol,
        )
    except enrolment.BadImportFile as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.references"), code=303)
    return render_template("console/reference_import.html", report=report)
