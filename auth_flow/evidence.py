"""The consent-evidence chain: every step of every authorization, and the signing of every loan
contract (`contract_id`), each record sealed together with the one before it, so that changing or
deleting a record breaks every later seal.

`record_hash = HMAC-SHA256(key, prev_hash + canonical JSON of the record and its key id)`,
the key being the EVIDENCE_KEYS secret named by EVIDENCE_KEY_ID when the record was written
(the record keeps that `key_id`; rotating keys leaves old records verifiable with the old
key). The key is not in the database: whoever can write the table but does not hold the key
cannot rewrite the chain and seal it again. The first record's `prev_hash` is GENESIS.
A contract's record seals its `contract_id` too; an authorization's content is as it always was.
`prev_hash` is unique, so two writers cannot fork the chain: the loser's insert fails and it
appends again after the winner.

Records from before keys were introduced keep their plain SHA-256 (`key_id` "legacy-sha256")
and are accepted only at the start of the chain, before the first keyed record, and no more
of them than a signed checkpoint recorded.

A chain cut at its tail is still a valid chain: signed checkpoints of the head ({count, head
hash, time, key id, HMAC}), kept outside the database, catch that (`checkpoint`,
`verify_chain(..., checkpoints=...)`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sunshine.clock import utcnow
from sunshine.models import Authorization, ConsentEvidence, LoanContract
from sunshine.settings import Settings, load

GENESIS = "0" * 64
LEGACY = "legacy-sha256"
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
CHECKPOINT_FIELDS = ("count", "head", "head_id", "legacy_records", "at", "key_id")
_CHECKPOINT_DOMAIN = b"sunshine consent-evidence checkpoint\n"  # a checkpoint's MAC never equals a record's


@dataclass(frozen=True)
class Client:
    """Where a step came from: the client's address and device."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Keys:
    """Every evidence key by id (old ones verify old records), and the one that seals now."""

    secrets: Mapping[str, bytes]
    current: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        return cls(settings.evidence_keyring(), settings.evidence_key_id)


def configured_keys() -> Keys:
    """The keys EVIDENCE_KEYS / EVIDENCE_KEY_ID name now (the environment and `.env`)."""
    return Keys.from_settings(load())


def _canonical(content: Mapping) -> str:
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def seal(prev_hash: str, content: Mapping, key_id: str, keys: Keys) -> str:
    """The record's hash: HMAC under `key_id`, or plain SHA-256 for a legacy record.
    KeyError when `keys` does not hold `key_id`."""
    if key_id == LEGACY:
        return hashlib.sha256((prev_hash + _canonical(content)).encode()).hexdigest()
    message = prev_hash + _canonical({**content, "key_id": key_id})
    return hmac.new(keys.secrets[key_id], message.encode(), hashlib.sha256).hexdigest()


def _content(record: ConsentEvidence) -> dict:
    out = {name: getattr(record, name) for name in FIELDS}
    out["at"] = record.at.isoformat()
    if record.contract_id is not None:
        out["contract_id"] = record.contract_id
    return out


def _sealed(rec: Mapping) -> dict:
    """What an exported record's hash seals (exports from before contracts have no contract_id)."""
    content = {name: rec[name] for name in FIELDS}
    if rec.get("contract_id") is not None:
        content["contract_id"] = rec["contract_id"]
    return content


def _last_hash(session: Session) -> str:
    last = session.scalar(select(ConsentEvidence.record_hash).order_by(ConsentEvidence.id.desc()).limit(1))
    return last or GENESIS


def append(
    session: Session,
    subject: Authorization | LoanContract,
    event: str,
    client: Client,
    consent_text: str = "",
    face: dict | None = None,
    image_sha256: list[str] | None = None,
    **detail,
) -> ConsentEvidence:
    """Add one step of an authorization or a contract to the chain (in the session's
    transaction), sealed with the current key."""
    keys = configured_keys()
    contract = isinstance(subject, LoanContract)
    for _ in range(5):
        record = ConsentEvidence(
            authorization_id=None if contract else subject.id,
            contract_id=subject.id if contract else None,
            at=utcnow(),
            event=event,
            party_role=subject.party_role,
            party_name=subject.party_name,
            party_id_masked=subject.party_id_masked,
            consent_text=consent_text,
            face=face or {},
            image_sha256=image_sha256 or [],
            client_ip=client.ip[:64],
            user_agent=client.user_agent[:300],
            detail=detail,
            key_id=keys.current,
        )
        record.prev_hash = _last_hash(session)
        record.record_hash = seal(record.prev_hash, _content(record), keys.current, keys)
        try:
            with session.begin_nested():
                session.add(record)
            return record
        except IntegrityError:  # another writer appended first: chain after theirs
            continue
    raise RuntimeError("could not append to the consent-evidence chain")


def export(session: Session) -> Iterator[dict]:
    """Every record, oldest first, as the auditor receives it (JSON-ready)."""
    query = select(ConsentEvidence).order_by(ConsentEvidence.id).execution_options(yield_per=1000)
    for record in session.scalars(query):
        yield {
            "id": record.id,
            "contract_id": None,
            **_content(record),
            "key_id": record.key_id,
            "prev_hash": record.prev_hash,
            "record_hash": record.record_hash,
        }


# -- checkpoints: the signed head, kept outside the database --


def _checkpoint_mac(body: Mapping, secret: bytes) -> str:
    message = _CHECKPOINT_DOMAIN + _canonical({name: body[name] for name in CHECKPOINT_FIELDS}).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def checkpoint(session: Session, keys: Keys) -> dict:
    """The chain's head now, signed with the current key: {count, head, head_id, legacy_records,
    at, key_id, mac}. `count` is the head's position (records up to and including it)."""
    last = session.execute(
        select(ConsentEvidence.id, ConsentEvidence.record_hash).order_by(ConsentEvidence.id.desc()).limit(1)
    ).first()
    count, legacy = 0, 0
    if last is not None:  # records below a committed head never commit later (prev_hash is unique)
        upto = select(func.count()).select_from(ConsentEvidence).where(ConsentEvidence.id <= last.id)
        count = session.scalar(upto) or 0
        legacy = session.scalar(upto.where(ConsentEvidence.key_id == LEGACY)) or 0
    body = {
        "count": count,
        "head": last.record_hash if last is not None else GENESIS,
        "head_id": last.id if last is not None else None,
        "legacy_records": legacy,
        "at": utcnow().isoformat(timespec="seconds") + "Z",
        "key_id": keys.current,
    }
    return {**body, "mac": _checkpoint_mac(body, keys.secrets[keys.current])}


def write_checkpoint(point: dict, folder: Path) -> Path:
    """Write a checkpoint as a new file in `folder` (never overwriting one); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = point["at"].replace("-", "").replace(":", "")
    tmp = folder / f".evidence-checkpoint-{os.getpid()}.tmp"
    tmp.write_text(json.dumps(point, sort_keys=True) + "\n", encoding="utf-8")
    try:
        for n in range(1, 100):
            path = folder / f"evidence-checkpoint-{stamp}-{point['count']}{'' if n == 1 else f'-{n}'}.json"
            try:
                os.link(tmp, path)  # fails if the file exists: a checkpoint is never replaced
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"too many checkpoints named {path.name} in {folder}")
    finally:
        tmp.unlink()


def read_checkpoints(where: Path) -> list[dict]:
    """The checkpoints in a folder (every `*.json`), or one file; each with `file` set to its name.
    An unreadable one comes back as {"file": ..., "unreadable": why}."""
    paths = sorted(where.glob("*.json")) if where.is_dir() else [where]
    out = []
    for path in paths:
        try:
            point = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(point, dict) or any(name not in point for name in (*CHECKPOINT_FIELDS, "mac")):
                raise ValueError("not a checkpoint")
            if not isinstance(point["count"], int) or not all(
                isinstance(point[name], str) for name in ("head", "at", "key_id", "mac")
            ):
                raise ValueError("a field of the wrong type")
        except (OSError, ValueError) as exc:
            out.append({"file": path.name, "unreadable": str(exc)})
            continue
        out.append({**point, "file": path.name})
    return out


def _name(point: Mapping) -> str:
    return str(point.get("file") or f"of {point.get('at')}")


def check_checkpoint(point: Mapping, keys: Keys) -> str | None:
    """Why a checkpoint cannot be believed, or None."""
    name = _name(point)
    if "unreadable" in point:
        return f"checkpoint {name}: unreadable ({point['unreadable']})"
    if point["key_id"] not in keys.secrets:
        return f"checkpoint {name}: signed with key {point['key_id']!r}, which EVIDENCE_KEYS does not hold"
    if not hmac.compare_digest(_checkpoint_mac(point, keys.secrets[point["key_id"]]), str(point["mac"])):
        return f"checkpoint {name}: its signature does not verify (forged or altered)"
    return None


# -- verification --


def verify_chain(records: Iterable[dict], keys: Keys | None = None, checkpoints: Sequence[Mapping] = ()) -> list[str]:
    """Problems found in an exported chain (empty: intact). Works on the export alone (records
    oldest first; read once, so a generator is fine), the keys, and the checkpoints: each of
    those must verify, and the chain must hold its head at its position (else the chain was
    rewritten, or cut at its tail) with no more legacy records than it recorded."""
    keys = keys or configured_keys()
    problems: list[str] = []
    trusted = []
    for point in checkpoints:
        why = check_checkpoint(point, keys)
        if why:
            problems.append(why)
        else:
            trusted.append(point)
    heads = {int(p["count"]): p for p in trusted}
    legacy_allowed = min((int(p["legacy_records"]) for p in trusted), default=None)
    prev, position, legacy, keyed = GENESIS, 0, 0, False
    for rec in records:
        position += 1
        rid, key_id = rec["id"], rec.get("key_id", LEGACY)  # exports from before keys have no key_id
        content = _sealed(rec)
        if rec["prev_hash"] != prev:
            problems.append(f"record {rid}: does not follow the record before it")
        if key_id == LEGACY:
            legacy += 1
            if keyed:
                problems.append(f"record {rid}: unkeyed ({LEGACY}) after keyed records")
            elif legacy_allowed is not None and legacy > legacy_allowed:
                problems.append(
                    f"record {rid}: unkeyed ({LEGACY}) beyond the {legacy_allowed} legacy records a checkpoint recorded"
                )
        else:
            keyed = True
        try:
            if not hmac.compare_digest(seal(rec["prev_hash"], content, key_id, keys), rec["record_hash"]):
                problems.append(f"record {rid}: content does not match its hash")
        except KeyError:
            problems.append(f"record {rid}: sealed with key {key_id!r}, which EVIDENCE_KEYS does not hold")
        signed = heads.get(position)
        if signed is not None and rec["record_hash"] != signed["head"]:
            problems.append(
                f"checkpoint {_name(signed)}: record {position} of the chain is not the head it signed "
                "(the chain was rewritten)"
            )
        prev = rec["record_hash"]
    for point in trusted:
        if int(point["count"]) > position:
            problems.append(
                f"checkpoint {_name(point)}: it counted {point['count']} records at {point['at']}, the chain has "
                f"{position}: {int(point['count']) - position} cut from its tail"
            )
    return problems
