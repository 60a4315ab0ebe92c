"""The consent-evidence chain: every step of every authorization, each record hashed
with the one before it, so that changing or deleting a record breaks every later hash.

`record_hash = SHA-256(prev_hash + canonical JSON of the record)`; the first record's
`prev_hash` is GENESIS. `prev_hash` is unique, so two writers cannot fork the chain:
the loser's insert fails and it appends again after the winner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sunshine.clock import utcnow
from sunshine.models import Authorization, ConsentEvidence

GENESIS = "0" * 64
FIELDS = (
    "authorization_id",
    "at",
    "event",
    "party_role",
    "party_name",
    "party_id_masked",
    "consent_text",
    "face",
    "image_sha256",
    "client_ip",
    "user_agent",
    "detail",
)


@dataclass(frozen=True)
class Client:
    """Where a step came from: the client's address and device."""

    ip: str = ""
    user_agent: str = ""


def _content(record: ConsentEvidence) -> dict:
    out = {name: getattr(record, name) for name in FIELDS}
    out["at"] = record.at.isoformat()
    return out


def record_hash(prev_hash: str, content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _last_hash(session: Session) -> str:
    last = session.scalar(select(ConsentEvidence.record_hash).order_by(ConsentEvidence.id.desc()).limit(1))
    return last or GENESIS


def append(
    session: Session,
    auth: Authorization,
    event: str,
    client: Client,
    consent_text: str = "",
    face: dict | None = None,
    image_sha256: list[str] | None = None,
    **detail,
) -> ConsentEvidence:
    """Add one step to the chain (in the session's transaction)."""
    for _ in range(5):
        record = ConsentEvidence(
            authorization_id=auth.id,
            at=utcnow(),
            event=event,
            party_role=auth.party_role,
            party_name=auth.party_name,
            party_id_masked=auth.party_id_masked,
            consent_text=consent_text,
            face=face or {},
            image_sha256=image_sha256 or [],
            client_ip=client.ip[:64],
            user_agent=client.user_agent[:300],
            detail=detail,
        )
        record.prev_hash = _last_hash(session)
        record.record_hash = record_hash(record.prev_hash, _content(record))
        try:
            with session.begin_nested():
                session.add(record)
            return record
        except IntegrityError:  # another writer appended first: chain after theirs
            continue
    raise RuntimeError("could not append to the consent-evidence chain")


def export(session: Session) -> Iterator[dict]:
    """Every record, oldest first, as the auditor receives it (JSON-ready)."""
    for record in session.scalars(select(ConsentEvidence).order_by(ConsentEvidence.id)):
        yield {"id": record.id, **_content(record), "prev_hash": record.prev_hash, "record_hash": record.record_hash}


def verify_chain(records: list[dict]) -> list[str]:
    """Problems found in an exported chain (empty: intact). Works on the export alone."""
    problems, prev = [], GENESIS
    for rec in records:
        content = {name: rec[name] for name in FIELDS}
        if rec["prev_hash"] != prev:
            problems.append(f"record {rec['id']}: does not follow the record before it")
        if record_hash(rec["prev_hash"], content) != rec["record_hash"]:
            problems.append(f"record {rec['id']}: content does not match its hash")
        prev = rec["record_hash"]
    return problems
