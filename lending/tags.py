"""Customer tags as data: the catalogue of kinds and values (lending/tags.yml), checked when
loaded, and each customer's tags with their source (village_file | officer), who set them and when.

The village file's tags of a household replace the tags the file gave it before; a tag an
officer set stays, and where an officer set a one-value kind, the officer's value stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from sunshine.models import CustomerTag, audit, utcnow
from sunshine.yaml_files import read_yaml

TAGS_FILE = Path(__file__).with_name("tags.yml")
VILLAGE_FILE, OFFICER = "village_file", "officer"
SOURCE_LABELS = {VILLAGE_FILE: "授信档案", OFFICER: "客户经理"}
VALUE_LIMIT = 64  # as customer_tags.value stores it


class TagFileError(ValueError):
    """tags.yml cannot be used; the message names the kind and what is wrong."""


class TagRefused(ValueError):
    """A tag the catalogue does not have (or a malformed one); the message is for officers."""


Pair = tuple[str, str]  # (kind, value)


@dataclass(frozen=True)
class TagKind:
    code: str
    label: str
    values: tuple[str, ...]
    multiple: bool = False


@dataclass(frozen=True)
class Catalogue:
    kinds: dict[str, TagKind]

    def check(self, kind: str, value: str) -> Pair:
        """The tag, if the catalogue has it; TagRefused saying what it does have otherwise."""
        found = self.kinds.get(kind)
        if found is None:
            known = "、".join(f"{k.code}（{k.label}）" for k in self.kinds.values())
            raise TagRefused(f"没有“{kind}”这类标签，可用的有：{known}")
        if value not in found.values:
            raise TagRefused(f"标签“{found.label}”没有“{value}”这个值，可选：{'、'.join(found.values)}")
        return kind, value

    def parse(self, text: str) -> list[Pair]:
        """`kind=value;kind=value` (the village file's column), each checked; one value per
        kind unless the kind is multiple."""
        pairs: list[Pair] = []
        for part in filter(None, (p.strip() for p in (text or "").split(";"))):
            kind, sep, value = part.partition("=")
            if not sep:
                raise TagRefused(f"标签 {part!r} 应为 类别=值")
            pair = self.check(kind.strip(), value.strip())
            if not self.kinds[pair[0]].multiple and any(k == pair[0] for k, _ in pairs):
                raise TagRefused(f"标签“{self.kinds[pair[0]].label}”只能有一个值")
            if pair not in pairs:
                pairs.append(pair)
        return pairs

    def label(self, kind: str) -> str:
        found = self.kinds.get(kind)
        return found.label if found else kind

    def order(self, pair: Pair) -> tuple[int, int]:
        """Where a tag sorts: by kind, then value, as the file lists them (unknown ones last)."""
        kinds = list(self.kinds)
        kind = self.kinds.get(pair[0])
        if kind is None:
            return len(kinds), 0
        return kinds.index(pair[0]), kind.values.index(pair[1]) if pair[1] in kind.values else len(kind.values)


def read_catalogue(path: Path = TAGS_FILE) -> Catalogue:
    """The catalogue in the file, checked; TagFileError naming what is wrong."""
    try:
        data = read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise TagFileError(f"{path.name}: cannot be read: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise TagFileError(f"{path.name}: expected kinds, each with a label and values")
    kinds = {}
    for code, spec in data.items():
        if not isinstance(code, str) or not code.isidentifier() or len(code) > 32:
            raise TagFileError(f"{path.name}: kind {code!r} must be a short identifier (letters, digits, _)")
        if not isinstance(spec, dict) or set(spec) - {"label", "values", "multiple"}:
            raise TagFileError(f"kind {code}: only label, values and multiple are allowed")
        label, values = spec.get("label"), spec.get("values")
        if not isinstance(label, str) or not label.strip():
            raise TagFileError(f"kind {code}: needs a label")
        if not isinstance(values, list) or not values:
            raise TagFileError(f"kind {code}: needs a list of values")
        for value in values:
            if not isinstance(value, str) or not value.strip() or len(value) > VALUE_LIMIT or set(value) & set(";="):
                raise TagFileError(
                    f"kind {code}: value {value!r} must be text of 1 to {VALUE_LIMIT} characters without ; or ="
                )
        if len(set(values)) != len(values):
            raise TagFileError(f"kind {code}: values repeat")
        if not isinstance(spec.get("multiple", False), bool):
            raise TagFileError(f"kind {code}: multiple must be true or false")
        kinds[code] = TagKind(code, label, tuple(values), spec.get("multiple", False))
    return Catalogue(kinds)


@cache
def catalogue() -> Catalogue:
    """The catalogue in force (tags.yml, read once per process)."""
    return read_catalogue()


def check_tag_map(where: str, tags: object) -> None:
    """A `{kind: [values]}` another data file names (products' offered_to_tags, a rule's
    params), every value in the catalogue; TagFileError naming `where` otherwise."""
    if not isinstance(tags, dict) or not all(isinstance(v, list) and v for v in tags.values()):
        raise TagFileError(f"{where}: expected {{kind: [values]}}")
    for kind, values in tags.items():
        for value in values:
            try:
                catalogue().check(kind, value)
            except TagRefused:
                raise TagFileError(f"{where}: tag {kind}={value} is not in {TAGS_FILE.name}") from None


def tags_of(session: Session, customer_id: int) -> list[CustomerTag]:
    """The customer's tags, in the catalogue's order."""
    rows = session.scalars(select(CustomerTag).where(CustomerTag.customer_id == customer_id)).all()
    return sorted(rows, key=lambda t: catalogue().order((t.kind, t.value)))


def pairs_of(session: Session, customer_id: int) -> set[Pair]:
    return {
        (k, v)
        for k, v in session.execute(
            select(CustomerTag.kind, CustomerTag.value).where(CustomerTag.customer_id == customer_id)
        )
    }


def labelled(session: Session, customer_id: int) -> list[str]:
    """The customer's tags as officers read them: 职业：水稻种植."""
    return [f"{catalogue().label(t.kind)}：{t.value}" for t in tags_of(session, customer_id)]


def set_tag(session: Session, customer_id: int, kind: str, value: str, actor: str) -> CustomerTag:
    """An officer tags the customer (a one-value kind's old value goes); TagRefused, with nothing
    changed, for a tag outside the catalogue."""
    kind, value = catalogue().check(kind.strip(), value.strip())
    present = session.scalars(
        select(CustomerTag).where(CustomerTag.customer_id == customer_id, CustomerTag.kind == kind)
    ).all()
    for tag in present:
        if tag.value == value:
            return tag
    if not catalogue().kinds[kind].multiple:
        for tag in present:
            session.delete(tag)
            audit(
                session,
                actor,
                "customer_tag.removed",
                "customer",
                customer_id,
                kind=kind,
                value=tag.value,
                replaced=True,
            )
        session.flush()
    tag = CustomerTag(customer_id=customer_id, kind=kind, value=value, source=OFFICER, set_by=actor, set_at=utcnow())
    session.add(tag)
    audit(session, actor, "customer_tag.set", "customer", customer_id, kind=kind, value=value)
    return tag


def remove_tag(session: Session, customer_id: int, kind: str, value: str, actor: str) -> bool:
    """Remove one of the customer's tags; False when the customer does not have it."""
    tag = session.scalar(
        select(CustomerTag).where(
            CustomerTag.customer_id == customer_id, CustomerTag.kind == kind, CustomerTag.value == value
        )
    )
    if tag is None:
        return False
    session.delete(tag)
    audit(session, actor, "customer_tag.removed", "customer", customer_id, kind=kind, value=value, source=tag.source)
    return True


def refuse(session: Session, actor: str, customer_id: int, kind: str, value: str, reason: str) -> None:
    """Record a refused tag (nothing else changes)."""
    audit(
        session,
        actor,
        "customer_tag.refused",
        "customer",
        customer_id,
        kind=kind[:32],
        value=value[:VALUE_LIMIT],
        reason=reason,
    )


def _multiple(kind: str) -> bool:
    found = catalogue().kinds.get(kind)
    return found is not None and found.multiple


def write_village_tags(session: Session, wanted: dict[int, list[Pair]], actor: str) -> set[int]:
    """The village file's tags of these customers (bulk): the file's earlier tags that it no longer
    names go, new ones come, officers' tags stay (and their value of a one-value kind stands).
    Returns the customers whose tags changed."""
    if not wanted:
        return set()
    table = CustomerTag.__table__
    present: dict[int, list] = {cid: [] for cid in wanted}
    for row in session.execute(
        select(table.c.id, table.c.customer_id, table.c.kind, table.c.value, table.c.source).where(
            table.c.customer_id.in_(wanted)
        )
    ):
        present[row.customer_id].append(row)
    gone, new, changed = [], [], set()
    now = utcnow()
    for cid, pairs in wanted.items():
        rows = present[cid]
        officers_kinds = {r.kind for r in rows if r.source == OFFICER and not _multiple(r.kind)}
        keep = {(k, v) for k, v in pairs if k not in officers_kinds}
        for r in rows:
            if r.source == VILLAGE_FILE and (r.kind, r.value) not in keep:
                gone.append(r.id)
                changed.add(cid)
        have = {(r.kind, r.value) for r in rows}
        for kind, value in pairs:
            if (kind, value) in keep and (kind, value) not in have:
                new.append(
                    {
                        "customer_id": cid,
                        "kind": kind,
                        "value": value,
                        "source": VILLAGE_FILE,
                        "set_by": actor,
                        "set_at": now,
                    }
                )
                changed.add(cid)
    if gone:
        session.execute(delete(table).where(table.c.id.in_(gone)))
    if new:
        session.execute(insert(table), new)
    return changed


def tag_map(pairs) -> dict[str, str]:
    """Tags as `{kind: value}` (the values of a multiple kind joined with 、), as snapshots keep them."""
    out: dict[str, list[str]] = {}
    for kind, value in pairs:
        out.setdefault(kind, []).append(value)
    return {kind: "、".join(values) for kind, values in out.items()}
