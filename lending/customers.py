"""Finding the bank's customers by WeChat identity or by name and ID number."""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lending.identity import InvalidIdNumber, normalize_id_number
from sunshine.models import Customer, FamilyMember, audit
from sunshine.protect import fingerprint, mask_id_number


def by_openid(session: Session, openid: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.wechat_openid == openid))


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


def identify(session: Session, secret_key: str, text: str) -> Customer:
    """The customer named by '张建国 320321198503151234' (name and ID number in
    one message, in any order, with filler words); IdentificationFailed otherwise.
    Both must match the bank's record, so an ID number alone identifies nobody."""
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
    customer = by_id_number(session, secret_key, id_number)
    if customer is None or customer.name != names[0]:
        raise IdentificationFailed(
            f"姓名和身份证号（{mask_id_number(id_number)}）跟我们的记录对不上，"
            "请核对后重发；确认没错的话，回复“转人工”请客户经理帮您查。"
        )
    return customer


def identify_wechat_user(session: Session, secret_key: str, text: str, openid: str) -> Customer:
    """The customer named in `text` (see identify), bound to this WeChat user on first
    identification; a customer bound to another WeChat user is refused."""
    customer = identify(session, secret_key, text)
    if customer.wechat_openid and customer.wechat_openid != openid:
        raise IdentificationFailed(
            "这个身份已经绑定了另一个微信号。为了您的资金安全，请用绑定的微信办理，" "或回复“转人工”请客户经理核实。"
        )
    if customer.wechat_openid is None:
        customer.wechat_openid = openid
        audit(session, f"wechat:{openid}", "customer.wechat_bound", "customer", customer.id, how="name_and_id_number")
    return customer
