"""Finding the bank's customers by WeChat identity or by name and ID number."""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lending.identity import InvalidIdNumber, normalize_id_number
from sunshine.models import Customer, FamilyMember, audit
from sunshine.protect import fingerprint, mask_id_number

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
