"""The reference face of a customer (an ID-photo-like image) that the face check compares with."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow import faces
from sunshine.models import Customer, FaceReference, audit


def enroll_reference(
    session: Session, secret_key: str, customer: Customer, image: bytes, enrolled_by: str, source: str = "officer"
) -> FaceReference:
    """Enrol an ID-photo-like reference face for `customer` (it replaces the earlier one).
    Raises faces.FaceError when the image does not hold exactly one face."""
    encoding = faces.encode(faces.load_image(image))
    for old in session.scalars(
        select(FaceReference).where(FaceReference.customer_id == customer.id, FaceReference.active.is_(True))
    ):
        old.active = False
    ref = FaceReference(
        customer_id=customer.id,
        encoding_sealed=faces.seal_encoding(secret_key, encoding),
        image_sha256=faces.sha256(image),
        source=source,
        enrolled_by=enrolled_by,
        active=True,
    )
    session.add(ref)
    session.flush()
    audit(session, enrolled_by, "face_reference.enrolled", "customer", customer.id, source=source)
    return ref


def reference_of(session: Session, customer_id: int) -> FaceReference | None:
    """The customer's active reference face, if one is enrolled."""
    return session.scalar(
        select(FaceReference).where(FaceReference.customer_id == customer_id, FaceReference.active.is_(True))
    )
