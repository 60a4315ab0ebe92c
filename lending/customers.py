"""Finding the bank's customers by WeChat identity or by name and ID number, and the
officers' search by name, masked ID number or phone."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Boolean, case, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from lending.identity import InvalidIdNumber, normalize_id_number
from sunshine.models import Customer, FamilyMember, audit
from sunshine.protect import fingerprint, mask_id_number, unseal

OFFICIAL_ACCOUNT, MINI_PROGRAM = "oa", "mp"  # the bank's two WeChat AppIDs


def openid_field(app: str) -> str:
    """The Customer field holding this AppID's openid."""
    return "mp_openid" if app == MINI_PROGRAM else "wechat_openid"


def by_openid(
    session: Session, openid: str, unionid: str | None = None, app: str = OFFICIAL_ACCOUNT
) -> Customer | None:
    """Who this WeChat user is, the one rule for the chat, the H5 page and the mini-program:
    the customer bound to `openid` in that AppID (the Official Account's or the mini-program's:
    WeChat gives one person a different openid in each), else, when WeChat told the UnionID
    (one person across the AppIDs of the bank's Open Platform account), the customer bound
    to that UnionID through either AppID."""
    found = session.scalar(select(Customer).where(getattr(Customer, openid_field(app)) == openid))
    if found is None and unionid:
        found = session.scalar(select(Customer).where(Customer.unionid == unionid))
    return found


def remember_wechat(session: Session, openid: str, unionid: str | None, app: str = OFFICIAL_ACCOUNT) -> Customer | None:
    """What WeChat just told (web authorization, jscode2session, user info): the customer this
    WeChat user is (by_openid), with the UnionID and this AppID's openid kept on them where they
    were not known yet, so that the person is recognised in the other AppID too."""
    customer = by_openid(session, openid, unionid, app)
    if customer is None:
        return None
    field = openid_field(app)
    if (
        getattr(customer, field) is None
        and session.scalar(select(Customer.id).where(getattr(Customer, field) == openid)) is None
    ):
        setattr(customer, field, openid)
        audit(session, f"wechat:{openid}", "customer.wechat_linked", "customer", customer.id, app=app, by="unionid")
    if unionid and customer.unionid is None and by_unionid(session, unionid) is None:
        customer.unionid = unionid
        audit(session, f"wechat:{openid}", "customer.unionid_kept", "customer", customer.id, app=app)
    return customer


def by_unionid(session: Session, unionid: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.unionid == unionid))


def by_id_number(session: Session, secret_key: str, id_number: str) -> Customer | None:
    return session.scalar(
        select(Customer).where(Customer.id_fingerprint == fingerprint(secret_key, normalize_id_number(id_number)))
    )


def spouse_of(session: Session, customer: Customer) -> Customer | None:
    """The customer's spouse from the household file, recorded from either side."""
    link = session.scalar(
        select(FamilyMember).where(
            FamilyMember.role == "spouse",
            or_(FamilyMember.customer_id == customer.id, FamilyMember.member_id == customer.id),
        )
    )
    if link is None:
        return None
    other_id = link.member_id if link.customer_id == customer.id else link.customer_id
    return session.get(Customer, other_id)


class IdentificationFailed(ValueError):
    """Name and ID number do not identify a customer; the message is for the customer."""


_ID_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_NAME = re.compile(r"[\u4e00-\u9fff·]{2,6}")
_NOT_NAME = re.compile(r"我叫|我是|名字|姓名|叫|是|身份证号码|身份证号|身份证|号码|号|的|我")


def has_id_number(text: str) -> bool:
    """Whether the text carries something written like an 18-digit ID number."""
    return bool(_ID_IN_TEXT.search(text or ""))


def read_name_and_id(text: str) -> tuple[str, str]:
    """The name and the normalized ID number in '张建国 320321198503151234' (in one message, in
    any order, with filler words); IdentificationFailed, saying what is missing, otherwise.
    Nothing is looked up: the answer says nothing about who is a customer."""
    text = text or ""
    ids = _ID_IN_TEXT.findall(text)
    if not ids:
        raise IdentificationFailed("请把姓名和18位身份证号一起发给我，比如：张三 320321199001011234")
    if len(ids) > 1:
        raise IdentificationFailed("一次只发一个人的姓名和身份证号就行")
    try:
        id_number = normalize_id_number(ids[0])
    except InvalidIdNumber as exc:
        raise IdentificationFailed(str(exc)) from None
    names = _NAME.findall(_NOT_NAME.sub(" ", _ID_IN_TEXT.sub(" ", text)))
    if len(names) != 1:
        raise IdentificationFailed("请把姓名也告诉我，和身份证号一起发，比如：张三 320321199001011234")
    return names[0], id_number


def identify(session: Session, secret_key: str, text: str) -> Customer:
    """The customer named by name and ID number in `text` (see read_name_and_id);
    IdentificationFailed otherwise. Both must match the bank's record, so an ID number
    alone identifies nobody. (A WeChat user is bound to a customer by lending.binding,
    which also asks for a code texted to the customer's phone.)"""
    name, id_number = read_name_and_id(text)
    customer = by_id_number(session, secret_key, id_number)
    if customer is None or customer.name != name:
        raise IdentificationFailed(
            f"姓名和身份证号（{mask_id_number(id_number)}）跟我们的记录对不上，"
            "请核对后重发；确认没错的话，回复“转人工”请客户经理帮您查。"
        )
    return customer


# --- the officers' search ---------------------------------------------------------------

SEARCH_LIMIT = 50
_DOTS = str.maketrans({".": "·", "•": "·", "・": "·", "‧": "·", "･": "·"})
_NUMBER = re.compile(r"[0-9Xx*]+")


class SearchRefused(ValueError):
    """A search the console cannot run; the message tells the officer what to type."""


def normalise_name(name: str) -> str:
    """A name as searched: full-width letters and digits made half-width, spaces dropped,
    the middle dots of minority names made one (·)."""
    return "".join(unicodedata.normalize("NFKC", name).translate(_DOTS).split())


def search_keys(name: str | None = None, id_number: str | None = None, phone: str | None = None) -> dict[str, str]:
    """The customers table's search columns for what is given (name_norm, id_last4, phone_last4)."""
    keys = {}
    if name is not None:
        keys["name_norm"] = normalise_name(name)
    if id_number is not None:
        keys["id_last4"] = id_number.strip().upper()[-4:]
    if phone is not None:
        keys["phone_last4"] = phone.strip()[-4:]
    return keys


@dataclass(frozen=True)
class SearchResult:
    customers: list[Customer]
    more: bool  # more matched than are shown


def _matches(pattern: str, value: str | None) -> bool:
    """'3210**********1234' against a whole number; a pattern without * matches the number's end."""
    if not value:
        return False
    if "*" not in pattern:
        return value.upper().endswith(pattern)
    return len(pattern) == len(value) and all(p in ("*", v) for p, v in zip(pattern, value.upper(), strict=True))


def search(
    session: Session, secret_key: str, query: str, officer_id: int | None, limit: int = SEARCH_LIMIT
) -> SearchResult:
    """Customers by name (or part of it), ID number or phone, whole or masked (3210**********1234,
    139****0001, or their last digits: 1234), or a name and a number together. Only the
    customers of `officer_id` (None: every officer's). SearchRefused says what to type instead."""
    words = [unicodedata.normalize("NFKC", w) for w in (query or "").split()]
    names = [normalise_name(w) for w in words if not _NUMBER.fullmatch(w)]
    numbers = [w.upper() for w in words if _NUMBER.fullmatch(w)]
    if not words:
        raise SearchRefused("请输入姓名、身份证号或手机号（可以只输后4位，或用*代替不知道的数字）")
    if len(numbers) > 1:
        raise SearchRefused("一次只能按一个号码查找")
    stmt = select(Customer.id)  # ids first: a name's part is looked for in the narrow indexes
    if officer_id is not None:
        stmt = stmt.where(Customer.officer_id == officer_id)
    for name in names:
        stmt = stmt.where(Customer.name_norm.contains(name, autoescape=True))
    checked_here = False  # the number's hidden digits are checked below, not in SQL
    if numbers:
        condition, checked_here = _number_filter(secret_key, numbers[0])
        stmt = stmt.where(condition)
    if names:
        stmt = stmt.order_by(
            case(
                (Customer.name_norm == names[0], 0),
                (Customer.name_norm.startswith(names[0], autoescape=True), 1),
                else_=2,
            )
        )
    stmt = stmt.order_by(Customer.name_norm, Customer.id)
    if not checked_here:
        ids = list(session.scalars(stmt.limit(limit + 1)))
    else:  # the few sharing the last four: their sealed numbers opened and compared
        pattern = numbers[0]
        ids = [
            row.id
            for row in session.execute(stmt.add_columns(Customer.id_sealed, Customer.phone_sealed))
            if _matches(pattern, unseal(secret_key, row.id_sealed))
            or (row.phone_sealed is not None and _matches(pattern, unseal(secret_key, row.phone_sealed)))
        ][: limit + 1]
    found = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids[:limit])))}
    return SearchResult([found[i] for i in ids[:limit]], len(ids) > limit)


def _number_filter(secret_key: str, pattern: str) -> tuple[ColumnElement[Boolean], bool]:
    """The SQL condition for a number: a whole ID or phone by its fingerprint, else by its last
    four; and whether the rest of the pattern must still be compared with the sealed numbers."""
    if "*" not in pattern:
        if len(pattern) == 18:
            try:
                return Customer.id_fingerprint == fingerprint(secret_key, normalize_id_number(pattern)), False
            except InvalidIdNumber as exc:
                raise SearchRefused(str(exc)) from None
        if len(pattern) == 11 and pattern.isdigit() and pattern[0] == "1":
            return Customer.phone_fingerprint == fingerprint(secret_key, pattern), False
    tail = pattern.rsplit("*", 1)[-1]
    if len(tail) < 4:
        raise SearchRefused("号码请至少写出最后4位，不知道的数字用*代替，比如 3210**********1234 或 1234")
    if "*" in pattern and len(pattern) not in (11, 18):
        raise SearchRefused("带*号时请写全位数：身份证18位、手机号11位，比如 3210**********1234、139****0001")
    last4 = tail[-4:]
    if "*" in pattern and len(pattern) == 18:
        return Customer.id_last4 == last4, True
    if "*" in pattern:
        return Customer.phone_last4 == last4, True
    return or_(Customer.id_last4 == last4, Customer.phone_last4 == last4), len(pattern) > 4
