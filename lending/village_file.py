"""Import of village credit files (整村授信) from CSV.

Each row is one household: village, household head, ID number, phone,
customer type, pre-granted line, valid-until, family members
(`role:name:id_number:phone`, separated by `;`), tags (`kind=value;...`, each in
the catalogue lending/tags.yml) and, in an optional `officer` column, the user name
of the officer who serves the household (head and members; empty: unchanged).
Rows are validated one by one: a bad row is reported with its line number and
reason (and recorded in the audit log) and the good rows are still imported. An
officer who is unknown or whose account is stopped refuses the whole file instead
(nothing of it is imported; the refusal is recorded). Importing the same file
again changes nothing; a changed line or officer is recorded in the audit log,
a changed line in the line's history too.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from lending.catalog import CUSTOMER_TYPES
from lending.credit_lines import LineChange, record_line_changes
from lending.customers import search_keys
from lending.identity import InvalidIdNumber, normalize_id_number
from lending.inspection import granted_baseline
from lending.tags import Pair, TagRefused, catalogue, tag_map, write_village_tags
from sunshine.models import AuditEntry, CreditLine, Customer, FamilyMember, Officer, audit, utcnow
from sunshine.protect import fingerprint, mask_id_number, mask_phone, mask_text, seal

COLUMNS = (
    "village",
    "household_head",
    "id_number",
    "phone",
    "customer_type",
    "credit_line",
    "valid_until",
    "members",
    "tags",
)
OFFICER_COLUMN = "officer"  # optional: the user name of the household's officer
MEMBER_ROLES = ("spouse", "child", "parent", "sibling")
NAME_LIMIT = 64  # names and villages, as the customers table stores them


class RowError(ValueError):
    """A row that cannot be imported; the message says why (in Chinese)."""


class FileRefused(RowError):
    """A row that refuses the whole file (an unknown or stopped officer)."""

    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"第{line_no}行：{reason}，整个文件未导入")
        self.line_no = line_no


@dataclass
class Person:
    name: str
    id_number: str
    phone: str


@dataclass
class Household:
    line_no: int
    village: str
    head: Person
    customer_type: str
    credit_line: int
    valid_until: date
    members: list[tuple[str, Person]]
    tags: list[Pair]
    officer: str = ""  # the officer's user name, empty when the file leaves it unchanged
    officer_id: int | None = None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    officers_assigned: int = 0  # customers whose officer the file changed
    refused: FileRefused | None = None  # the file was refused: nothing of it was imported


def _phone(raw: str) -> str:
    phone = raw.strip()
    if phone and (len(phone) != 11 or not phone.isdigit() or phone[0] != "1"):
        raise RowError(f"手机号 {mask_phone(phone)} 不是11位手机号")
    return phone


def parse_row(line_no: int, row: dict[str, str]) -> Household:
    """Validate one CSV row; raise RowError with the reason."""

    def need(key: str) -> str:
        value = (row.get(key) or "").strip()
        if not value:
            raise RowError(f"缺少 {key}")
        if len(value) > NAME_LIMIT:
            raise RowError(f"{key} 超过{NAME_LIMIT}个字")
        return value

    try:
        head = Person(need("household_head"), normalize_id_number(need("id_number")), _phone(row.get("phone") or ""))
    except InvalidIdNumber as exc:
        raise RowError(str(exc)) from None
    customer_type = need("customer_type")
    if customer_type not in CUSTOMER_TYPES:
        raise RowError(f"客户类型 {customer_type!r} 应为 {'/'.join(CUSTOMER_TYPES)}")
    try:
        amount = int(need("credit_line"))
    except ValueError:
        raise RowError(f"授信额度 {row.get('credit_line')!r} 不是整数（单位：元）") from None
    if not 0 < amount <= 5_000_000:
        raise RowError(f"授信额度 {amount} 超出范围（1元至500万元）")
    try:
        valid_until = date.fromisoformat(need("valid_until"))
    except ValueError:
        raise RowError(f"有效期 {row.get('valid_until')!r} 应为 YYYY-MM-DD") from None
    members = []
    for part in filter(None, (p.strip() for p in (row.get("members") or "").split(";"))):
        bits = part.split(":")
        if len(bits) != 4 or bits[0] not in MEMBER_ROLES:
            raise RowError(f"家庭成员 {bits[0]!r} 格式应为 角色:姓名:身份证号:手机号")
        name = bits[1].strip()
        if not 0 < len(name) <= NAME_LIMIT:
            raise RowError(f"家庭成员姓名应为1至{NAME_LIMIT}个字")
        try:
            member = Person(name, normalize_id_number(bits[2]), _phone(bits[3]))
        except InvalidIdNumber as exc:
            raise RowError(f"家庭成员{name}：{exc}") from None
        if member.id_number == head.id_number:
            raise RowError(f"家庭成员{name}的身份证号与户主相同")
        members.append((bits[0], member))
    try:
        tags = catalogue().parse(row.get("tags") or "")
    except TagRefused as exc:
        raise RowError(str(exc)) from None
    officer = (row.get(OFFICER_COLUMN) or "").strip()
    return Household(line_no, need("village"), head, customer_type, amount, valid_until, members, tags, officer)


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise RowError(f"文件缺少列：{', '.join(missing)}")
    for row in reader:
        yield reader.line_num, row


BATCH_SIZE = 500  # households written together: a few statements per batch, memory flat in file size


def import_file(
    session: Session,
    secret_key: str,
    path: Path,
    actor: str = "import",
    progress: Callable[[int, int | None], None] | None = None,
) -> ImportReport:
    """Import a village credit file, streamed and written in batches with the session.

    `progress(rows_read, None)` is called after each batch.
    """
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return import_lines(session, secret_key, fh, actor, progress)


def import_lines(
    session: Session,
    secret_key: str,
    lines: Iterable[str],
    actor: str = "import",
    progress: Callable[[int, int | None], None] | None = None,
) -> ImportReport:
    """Import the lines of a village credit file (see `import_file`). A file refused for its
    officer column is rolled back whole and the refusal recorded (`report.refused`)."""
    report = ImportReport()
    officers = {row.username: row for row in session.execute(select(Officer.id, Officer.username, Officer.active))}
    savepoint: SessionTransaction = session.begin_nested()
    try:
        _import_rows(session, secret_key, lines, actor, progress, report, officers)
    except FileRefused as exc:
        savepoint.rollback()
        audit(session, actor, "village_file.refused", "village_file", exc.line_no, reason=str(exc))
        return ImportReport(refused=exc)
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return report


def _officer_id(officers: dict, hh: Household) -> int | None:
    """The id of the household's officer (None: unchanged); FileRefused for an unknown or stopped one."""
    if not hh.officer:
        return None
    officer = officers.get(hh.officer)
    if officer is None:
        raise FileRefused(hh.line_no, f"客户经理用户名 {hh.officer!r} 不存在")
    if not officer.active:
        raise FileRefused(hh.line_no, f"客户经理 {hh.officer} 的账号已停用")
    return officer.id


def _import_rows(
    session: Session,
    secret_key: str,
    lines: Iterable[str],
    actor: str,
    progress: Callable[[int, int | None], None] | None,
    report: ImportReport,
    officers: dict,
) -> None:
    batch: dict[str, Household] = {}  # by the head's ID number
    refused: list[dict] = []  # audit rows of the rows refused
    rows = 0
    for line_no, row in read_rows(lines):
        rows += 1
        try:
            hh = parse_row(line_no, row)
        except RowError as exc:
            report.errors.append((line_no, mask_text(str(exc))))
            refused.append(
                _audit_row(actor, "village_file.row_refused", line_no, "village_file", reason=report.errors[-1][1])
            )
            continue
        hh.officer_id = _officer_id(officers, hh)
        if hh.head.id_number in batch or len(batch) >= BATCH_SIZE:
            # A household seen again is written after the first, as if row by row.
            _write_batch(session, secret_key, list(batch.values()), actor, report)
            batch.clear()
            if progress:
                progress(rows - 1, None)
        batch[hh.head.id_number] = hh
    _write_batch(session, secret_key, list(batch.values()), actor, report)
    if refused:
        session.execute(insert(AuditEntry.__table__), refused)
    if progress:
        progress(rows, None)


def _write_batch(session: Session, key: str, households: list[Household], actor: str, report: ImportReport) -> None:
    if not households:
        return
    ids = _write_people(session, key, households)
    _write_family_links(session, households, ids)
    _write_officers(session, households, ids, actor, report)
    heads = [ids[hh.head.id_number] for hh in households]
    retagged = write_village_tags(session, dict(zip(heads, (hh.tags for hh in households), strict=True)), actor)
    table = CreditLine.__table__
    lines = {
        row.customer_id: row
        for row in session.execute(
            select(table.c.id, table.c.customer_id, table.c.amount, table.c.valid_until).where(
                table.c.customer_id.in_(heads), table.c.source == "whole_village"
            )
        )
    }
    granted: dict[int, Household] = {}  # by the head's customer id
    changed_lines, entries, changes = [], [], []
    for hh, head_id in zip(households, heads, strict=True):
        line = lines.get(head_id)
        if line is None:
            granted[head_id] = hh
            entries.append(_audit_row(actor, "credit_line.granted", head_id, amount=hh.credit_line, line_no=hh.line_no))
            report.created += 1
        elif (line.amount, line.valid_until) == (hh.credit_line, hh.valid_until):
            if head_id in retagged:
                report.updated += 1
            else:
                report.unchanged += 1
        else:
            if line.amount != hh.credit_line:
                # 增持减退: a raised or lowered line is kept in the audit log.
                entries.append(
                    _audit_row(
                        actor,
                        "credit_line.raised" if hh.credit_line > line.amount else "credit_line.lowered",
                        head_id,
                        old=line.amount,
                        new=hh.credit_line,
                        line_no=hh.line_no,
                    )
                )
            changes.append(
                LineChange(
                    line.id,
                    head_id,
                    line.amount,
                    hh.credit_line,
                    line.valid_until,
                    hh.valid_until,
                    "village_file",
                    actor,
                    f"第{hh.line_no}行",
                )
            )
            changed_lines.append({"b_id": line.id, "amount": hh.credit_line, "valid_until": hh.valid_until})
            report.updated += 1
    if granted:
        session.execute(
            insert(table),
            [
                {
                    "customer_id": head_id,
                    "amount": hh.credit_line,
                    "valid_until": hh.valid_until,
                    "source": "whole_village",
                    "used_amount": 0,
                    "baseline": granted_baseline(hh.credit_line, tag_map(hh.tags)),
                }
                for head_id, hh in granted.items()
            ],
        )
        for row in session.execute(
            select(table.c.customer_id, table.c.id).where(
                table.c.customer_id.in_(granted), table.c.source == "whole_village"
            )
        ):
            hh = granted[row.customer_id]
            changes.append(
                LineChange(
                    row.id,
                    row.customer_id,
                    None,
                    hh.credit_line,
                    None,
                    hh.valid_until,
                    "village_file",
                    actor,
                    f"第{hh.line_no}行",
                )
            )
    if changed_lines:
        session.execute(update(table).where(table.c.id == bindparam("b_id")), changed_lines)
    record_line_changes(session, changes)
    if entries:
        session.execute(insert(AuditEntry.__table__), entries)


def _write_people(session: Session, key: str, households: list[Household]) -> dict[str, int]:
    """Insert or update every head and member; returns customer ids by ID number."""
    people: dict[str, tuple[Person, str, str]] = {}  # the last mention wins, as row by row
    for hh in households:
        for person in (hh.head, *(p for _, p in hh.members)):
            people[person.id_number] = (person, hh.village, hh.customer_type)
    fps = {id_number: fingerprint(key, id_number) for id_number in people}
    table = Customer.__table__
    stored = {
        row.id_fingerprint: row
        for row in session.execute(
            select(
                table.c.id,
                table.c.id_fingerprint,
                table.c.name,
                table.c.village,
                table.c.customer_type,
                table.c.phone_fingerprint,
            ).where(table.c.id_fingerprint.in_(fps.values()))
        )
    }
    new, changed, phones = [], [], []
    for id_number, (person, village, customer_type) in people.items():
        row = stored.get(fps[id_number])
        phone_fp = fingerprint(key, person.phone) if person.phone else None
        phone = (
            {
                "phone_fingerprint": phone_fp,
                "phone_sealed": seal(key, person.phone),
                "phone_masked": mask_phone(person.phone),
                "phone_last4": search_keys(phone=person.phone)["phone_last4"],
            }
            if phone_fp
            else {}
        )
        if row is None:
            new.append(
                {
                    "name": person.name,
                    "id_fingerprint": fps[id_number],
                    "id_sealed": seal(key, id_number),
                    "id_masked": mask_id_number(id_number),
                    "village": village,
                    "customer_type": customer_type,
                    "phone_fingerprint": None,
                    "phone_sealed": None,
                    "phone_masked": None,
                    "phone_last4": None,
                    **search_keys(person.name, id_number),
                    **phone,
                }
            )
            continue
        if (row.name, row.village, row.customer_type) != (person.name, village, customer_type):
            changed.append(
                {
                    "b_id": row.id,
                    "name": person.name,
                    "name_norm": search_keys(person.name)["name_norm"],
                    "village": village,
                    "customer_type": customer_type,
                }
            )
        if phone_fp and phone_fp != row.phone_fingerprint:
            phones.append({"b_id": row.id, **phone})
    if new:
        session.execute(insert(table), new)
    for rows in (changed, phones):
        if rows:
            session.execute(update(table).where(table.c.id == bindparam("b_id")), rows)
    ids = {row.id_fingerprint: row.id for row in stored.values()}
    if new:
        inserted = session.execute(
            select(table.c.id_fingerprint, table.c.id).where(
                table.c.id_fingerprint.in_([r["id_fingerprint"] for r in new])
            )
        )
        ids.update({row.id_fingerprint: row.id for row in inserted})
    return {id_number: ids[fp] for id_number, fp in fps.items()}


def _write_family_links(session: Session, households: list[Household], ids: dict[str, int]) -> None:
    wanted = {(ids[hh.head.id_number], ids[p.id_number]): role for hh in households for role, p in hh.members}
    if not wanted:
        return
    table = FamilyMember.__table__
    present = set(
        session.execute(
            select(table.c.customer_id, table.c.member_id).where(table.c.customer_id.in_({head for head, _ in wanted}))
        ).all()
    )
    missing = [
        {"customer_id": head, "member_id": member, "role": role}
        for (head, member), role in wanted.items()
        if (head, member) not in present
    ]
    if missing:
        session.execute(insert(table), missing)


def _write_officers(
    session: Session, households: list[Household], ids: dict[str, int], actor: str, report: ImportReport
) -> None:
    """Give each household's head and members to the officer its row names (when it names one)."""
    wanted = {
        ids[person.id_number]: hh
        for hh in households
        if hh.officer_id is not None
        for person in (hh.head, *(p for _, p in hh.members))
    }
    if not wanted:
        return
    table = Customer.__table__
    changing = [
        (row.id, row.officer_id)
        for row in session.execute(select(table.c.id, table.c.officer_id).where(table.c.id.in_(wanted)))
        if row.officer_id != wanted[row.id].officer_id
    ]
    if not changing:
        return
    session.execute(
        update(table).where(table.c.id == bindparam("b_id")),
        [{"b_id": customer_id, "officer_id": wanted[customer_id].officer_id} for customer_id, _ in changing],
    )
    names = {officer_id: name for officer_id, name in session.execute(select(Officer.id, Officer.username))}
    session.execute(
        insert(AuditEntry.__table__),
        [
            _audit_row(
                actor,
                "customer.officer_assigned",
                customer_id,
                before=names.get(before),
                after=wanted[customer_id].officer,
                line_no=wanted[customer_id].line_no,
            )
            for customer_id, before in changing
        ],
    )
    report.officers_assigned += len(changing)


def _audit_row(actor: str, action: str, subject_id: int, subject_type: str = "customer", **detail) -> dict:
    """An audit_log row for a bulk insert (sunshine.models.audit, for many at once)."""
    return {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "detail": detail,
    }
