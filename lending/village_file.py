"""Import of village credit files (整村授信) from CSV.

Each row is one household: village, household head, ID number, phone,
customer type, pre-granted line, valid-until, family members
(`role:name:id_number:phone`, separated by `;`) and tags (`key=value;...`).
Rows are validated one by one: a bad row is reported with its line number
and reason and the good rows are still imported. Importing the same file
again changes nothing; a changed line is recorded in the audit log.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from lending.identity import InvalidIdNumber, normalize_id_number
from sunshine.models import CreditLine, Customer, FamilyMember, audit
from sunshine.protect import fingerprint, mask_id_number, mask_phone, seal

COLUMNS = ("village", "household_head", "id_number", "phone", "customer_type", "credit_line",
           "valid_until", "members", "tags")
CUSTOMER_TYPES = ("farmer", "merchant", "civil_servant")
MEMBER_ROLES = ("spouse", "child", "parent", "sibling")


class RowError(ValueError):
    """A row that cannot be imported; the message says why (in Chinese)."""


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
    tags: dict[str, str]


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


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
        try:
            members.append((bits[0], Person(bits[1].strip(), normalize_id_number(bits[2]), _phone(bits[3]))))
        except InvalidIdNumber as exc:
            raise RowError(f"家庭成员{bits[1]}：{exc}") from None
    tags = {}
    for part in filter(None, (p.strip() for p in (row.get("tags") or "").split(";"))):
        key, sep, value = part.partition("=")
        if not sep:
            raise RowError(f"标签 {part!r} 应为 键=值")
        tags[key.strip()] = value.strip()
    return Household(line_no, need("village"), head, customer_type, amount, valid_until, members, tags)


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise RowError(f"文件缺少列：{', '.join(missing)}")
    for row in reader:
        yield reader.line_num, row


def _upsert_person(session: Session, key: str, person: Person, village: str, customer_type: str) -> Customer:
    fp = fingerprint(key, person.id_number)
    customer = session.scalar(select(Customer).where(Customer.id_fingerprint == fp))
    if customer is None:
        customer = Customer(name=person.name, id_fingerprint=fp, id_sealed=seal(key, person.id_number),
                            id_masked=mask_id_number(person.id_number), village=village,
                            customer_type=customer_type)
        session.add(customer)
    customer.name = person.name
    customer.village = village
    customer.customer_type = customer_type
    if person.phone:
        phone_fp = fingerprint(key, person.phone)
        if customer.phone_fingerprint != phone_fp:
            customer.phone_fingerprint = phone_fp
            customer.phone_sealed = seal(key, person.phone)
            customer.phone_masked = mask_phone(person.phone)
    session.flush()
    return customer


def apply_household(session: Session, secret_key: str, hh: Household, actor: str) -> str:
    """Write one household; returns 'created', 'updated' or 'unchanged'."""
    head = _upsert_person(session, secret_key, hh.head, hh.village, hh.customer_type)
    for role, person in hh.members:
        member = _upsert_person(session, secret_key, person, hh.village, hh.customer_type)
        link = session.scalar(select(FamilyMember).where(
            FamilyMember.customer_id == head.id, FamilyMember.member_id == member.id))
        if link is None:
            session.add(FamilyMember(customer_id=head.id, member_id=member.id, role=role))
    line = session.scalar(select(CreditLine).where(CreditLine.customer_id == head.id,
                                                   CreditLine.source == "whole_village"))
    if line is None:
        session.add(CreditLine(customer_id=head.id, amount=hh.credit_line, valid_until=hh.valid_until,
                               tags=hh.tags))
        audit(session, actor, "credit_line.granted", "customer", head.id, amount=hh.credit_line,
              line_no=hh.line_no)
        return "created"
    if (line.amount, line.valid_until, line.tags) == (hh.credit_line, hh.valid_until, hh.tags):
        return "unchanged"
    if line.amount != hh.credit_line:
        # 增持减退: a raised or lowered line is kept in the audit log.
        audit(session, actor, "credit_line.raised" if hh.credit_line > line.amount else "credit_line.lowered",
              "customer", head.id, old=line.amount, new=hh.credit_line, line_no=hh.line_no)
    line.amount, line.valid_until, line.tags = hh.credit_line, hh.valid_until, hh.tags
    return "updated"


def import_file(session: Session, secret_key: str, path: Path, actor: str = "import") -> ImportReport:
    """Import a village credit file; each good row is committed with the session."""
    report = ImportReport()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line_no, row in read_rows(fh):
            try:
                hh = parse_row(line_no, row)
            except RowError as exc:
                report.errors.append((line_no, str(exc)))
                continue
            with session.begin_nested():
                outcome = apply_household(session, secret_key, hh, actor)
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report
