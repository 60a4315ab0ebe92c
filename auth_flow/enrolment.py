"""The reference face of a customer (an ID-card photo, or a photo taken at a service station)
that the face check compares with.

The face's 128-d encoding is kept, sealed (`faces.seal_encoding`), with the photo's SHA-256;
and, for an officer's review of a face check (auth_flow.face_review), a downscaled copy of the
photo sealed with the review key (`faces.seal_review_copy`), dropped when the reference is
replaced. Enrolling again replaces the active reference and keeps the earlier one inactive (who
enrolled which, when: the customer's reference history).

- `check_photo(image)`: refuses what cannot be a reference (not JPEG/PNG, too large, no face,
  several faces) with a message for the officer, before anything is written;
- `enroll_reference(session, secret_key, customer, image, enrolled_by, source)`: check and store;
- `import_references(...)`: a CSV of ID numbers and photo file names (`python -m auth_flow
  enrol-references`, the console's bulk import, the demo's references): one row at a time,
  each committed, a report of the refused rows; rows whose photo is already the active
  reference change nothing (a re-run is idempotent).
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import faces
from lending.customers import by_id_number
from lending.identity import InvalidIdNumber
from sunshine.models import Customer, FaceReference, audit
from sunshine.protect import mask_id_number

MAX_PHOTO_BYTES = 8_000_000
MAX_PHOTO_PIXELS = 50_000_000  # a phone's full-resolution photo of an ID card (JPEGs are decoded reduced)
# Where a reference photo came from, as officers read it.
SOURCES = {
    "id_card": "身份证照片",
    "station_photo": "服务站现场拍照",
    "import": "批量导入",
    "demo": "演示数据",
    "officer": "客户经理登记",
    "credit_file": "信贷档案",
}


class PhotoTooLarge(faces.TooLarge):
    pass


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo fit to be a reference: the encoding of its one face, its SHA-256, and the copy an
    officer's review of a face check shows (`faces.review_copy`)."""

    encoding: np.ndarray
    sha256: str
    copy: bytes = b""


def check_photo(image: bytes) -> CheckedPhoto:
    """Refuse (faces.FaceError, a message for the officer) what cannot be a reference photo."""
    if not image:
        raise faces.NotAnImage("没有收到照片文件")
    if len(image) > MAX_PHOTO_BYTES:
        raise PhotoTooLarge(f"照片太大（超过{MAX_PHOTO_BYTES // 1_000_000}MB），请压缩后或重新拍一张再登记")
    if not any(image.startswith(magic) for magic in faces.FORMATS):
        raise faces.NotAnImage("只能登记JPEG或PNG格式的照片，这个文件不是")
    try:
        encoding = faces.encode(faces.load_image(image, max_pixels=MAX_PHOTO_PIXELS))
    except faces.TooLarge:
        raise PhotoTooLarge(f"照片像素太多（超过{MAX_PHOTO_PIXELS // 10_000}万像素），请缩小后再登记") from None
    except faces.NotAnImage:
        raise faces.NotAnImage("照片文件已损坏，读不出来，请换一张") from None
    except faces.NoFace:
        raise faces.NoFace("照片中没有检测到人脸，请换一张本人正面、清晰的照片") from None
    except faces.SeveralFaces:
        raise faces.SeveralFaces("照片中有多张人脸，登记的照片里只能有本人一张脸") from None
    copy = faces.review_copy(image, max_pixels=MAX_PHOTO_PIXELS)
    return CheckedPhoto(encoding=encoding, sha256=faces.sha256(image), copy=copy)


def reference_of(session: Session, customer_id: int) -> FaceReference | None:
    """The customer's active reference face, if one is enrolled."""
    return session.scalar(
        select(FaceReference)
        .where(FaceReference.customer_id == customer_id, FaceReference.active.is_(True))
        .order_by(FaceReference.id.desc())
    )


def history(session: Session, customer_id: int) -> list[FaceReference]:
    """Every reference the customer has had, newest first (the active one, then those it replaced)."""
    return list(
        session.scalars(
            select(FaceReference).where(FaceReference.customer_id == customer_id).order_by(FaceReference.id.desc())
        )
    )


def store_reference(
    session: Session, secret_key: str, customer: Customer, photo: CheckedPhoto, enrolled_by: str, source: str
) -> FaceReference:
    """Make `photo` the customer's active reference (the earlier one stays, inactive)."""
    if source not in SOURCES:
        raise ValueError(f"unknown reference source {source!r}")
    replaced = []
    for old in session.scalars(
        select(FaceReference).where(FaceReference.customer_id == customer.id, FaceReference.active.is_(True))
    ):
        old.active = False
        old.photo_sealed = None  # its photo was kept for reviews only while it was the reference
        replaced.append(old.id)
    ref = FaceReference(
        customer_id=customer.id,
        encoding_sealed=faces.seal_encoding(secret_key, photo.encoding),
        image_sha256=photo.sha256,
        photo_sealed=faces.seal_review_copy(secret_key, photo.copy) if photo.copy else None,
        source=source,
        enrolled_by=enrolled_by,
        active=True,
    )
    session.add(ref)
    session.flush()
    audit(
        session,
        enrolled_by,
        "face_reference.replaced" if replaced else "face_reference.enrolled",
        "customer",
        customer.id,
        source=source,
        reference_id=ref.id,
        replaced=replaced,
    )
    return ref


def enroll_reference(
    session: Session, secret_key: str, customer: Customer, image: bytes, enrolled_by: str, source: str = "officer"
) -> FaceReference:
    """Enrol `image` as the customer's reference face (it replaces the earlier one); the same
    photo as the active reference changes nothing. Raises faces.FaceError, and writes nothing,
    when the image is not a JPEG/PNG photo of exactly one face."""
    active = reference_of(session, customer.id)
    if active is not None and active.image_sha256 == faces.sha256(image):
        return active
    return store_reference(session, secret_key, customer, check_photo(image), enrolled_by, source)


# --- bulk import ---------------------------------------------------------------------

ImportOutcome = str  # "enrolled" | "replaced" | "unchanged" | "refused"
COLUMNS = ("id_number", "photo")


class BadImportFile(ValueError):
    """The CSV itself cannot be read (no header, columns missing); the message is for the officer."""


@dataclass(frozen=True)
class RefusedRow:
    line: int  # the CSV's line number (the header is line 1)
    photo: str
    id_masked: str
    reason: str


@dataclass
class ImportReport:
    enrolled: int = 0
    replaced: int = 0
    unchanged: int = 0
    refused: list[RefusedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.enrolled + self.replaced + self.unchanged + len(self.refused)

    def summary(self) -> str:
        return (
            f"{self.rows} rows: {self.enrolled} enrolled, {self.replaced} replaced, "
            f"{self.unchanged} unchanged, {len(self.refused)} refused"
        )


class RowRefused(ValueError):
    """A row of an import that cannot be enrolled; the message is for the officer."""


class PhotoMissing(RowRefused):
    pass


PhotoReader = Callable[[str], bytes]


def _checked_name(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts:
        raise PhotoMissing("照片文件名不对（只能是照片文件夹里的文件名）")
    return str(path)


def photos_in_folder(folder: Path) -> PhotoReader:
    """Photos by file name in `folder` (never outside it); a file over the size limit is not read."""
    root = folder.resolve()

    def read(name: str) -> bytes:
        path = (root / _checked_name(name)).resolve()
        if root not in path.parents or not path.is_file():
            raise PhotoMissing("照片文件不存在")
        if path.stat().st_size > MAX_PHOTO_BYTES:
            raise PhotoTooLarge(f"照片太大（超过{MAX_PHOTO_BYTES // 1_000_000}MB），请压缩后或重新拍一张再登记")
        return path.read_bytes()

    return read


def photos_in_zip(archive: zipfile.ZipFile) -> PhotoReader:
    """Photos by file name in a zip archive (a name with or without its folder inside the zip)."""
    members = {i.filename: i for i in archive.infolist() if not i.is_dir()}
    by_base = {PurePosixPath(n).name: i for n, i in members.items()}

    def read(name: str) -> bytes:
        checked = _checked_name(name)
        info = members.get(checked) or by_base.get(checked)
        if info is None:
            raise PhotoMissing("压缩包里没有这个照片文件")
        if info.file_size > MAX_PHOTO_BYTES:
            raise PhotoTooLarge(f"照片太大（超过{MAX_PHOTO_BYTES // 1_000_000}MB），请压缩后或重新拍一张再登记")
        return archive.read(info)

    return read


def read_rows(csv_text: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with the columns id_number and photo."""
    reader = csv.DictReader(csv_text)
    header = [(h or "").strip().lstrip("\ufeff") for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise BadImportFile(f"CSV文件第一行要有列名 id_number,photo（缺少：{', '.join(missing)}）")
    reader.fieldnames = header
    return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]


def import_references(
    session: Session,
    secret_key: str,
    csv_text: Iterable[str],
    read_photo: PhotoReader,
    enrolled_by: str,
    source: str = "import",
    progress: Callable[[int, int, int, str, str], None] | None = None,
    allowed: Callable[[Customer], bool] | None = None,
) -> ImportReport:
    """Enrol the reference photo of each CSV row (id_number, photo), committing row by row
    (the slow face encoding runs outside any write). A refused row is reported (its line,
    file and why) and changes nothing; a row whose photo is already the customer's active
    reference is `unchanged`. The session's earlier work is committed first.
    `progress(done, total, line, masked_id, outcome)` after each row; a customer for whom
    `allowed(customer)` is false is refused."""
    rows = read_rows(csv_text)
    session.commit()  # the caller's earlier work is kept: a refused row rolls back only itself
    report = ImportReport()
    for done, (line, row) in enumerate(rows, 1):
        masked = mask_id_number(row.get("id_number", ""))
        try:
            outcome = _import_row(session, secret_key, row, read_photo, enrolled_by, source, allowed)
        except (faces.FaceError, RowRefused, InvalidIdNumber) as exc:
            session.rollback()
            report.refused.append(RefusedRow(line, row.get("photo", ""), masked, _reason(exc)))
            outcome = "refused"
        else:
            session.commit()
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress is not None:
            progress(done, len(rows), line, masked, outcome)
    return report


def _reason(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _import_row(
    session: Session,
    secret_key: str,
    row: dict[str, str],
    read_photo: PhotoReader,
    enrolled_by: str,
    source: str,
    allowed: Callable[[Customer], bool] | None,
) -> ImportOutcome:
    if not row.get("id_number"):
        raise RowRefused("没有填身份证号")
    if not row.get("photo"):
        raise PhotoMissing("没有填照片文件名")
    customer = by_id_number(session, secret_key, row["id_number"])
    if customer is None:
        raise RowRefused("银行没有这个身份证号的客户")
    if allowed is not None and not allowed(customer):
        raise RowRefused("这是其他客户经理的客户，只有主管可以登记他的照片")
    image = read_photo(row["photo"])
    active = reference_of(session, customer.id)
    if active is not None and active.image_sha256 == faces.sha256(image):
        return "unchanged"
    session.rollback()  # end the read before the slow encoding: no transaction stays open meanwhile
    photo = check_photo(image)
    customer = session.get(Customer, customer.id) or customer
    store_reference(session, secret_key, customer, photo, enrolled_by, source)
    return "replaced" if active is not None else "enrolled"
