"""The electronic loan contract (借款合同): its text for an approved application, built from
`contract_template.md`, and its link.

The text is made from the application as it stands (amount, term, the product's rate and
terms, the bank's name): showing it records its SHA-256, and a signature (auth_flow.signing)
must carry the hash of the text the borrower read; when anything changed in between, the hash
differs and the signature is refused. The contract is offered when the application is approved
(`offer`): its link carries a token derived from SECRET_KEY and the application (`token_for`), of
which only the SHA-256 is stored, so the approval notice can always name it and a database
reader cannot use it. An expired link is renewed (`renew`): a new token, the old one dead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from string import Template

from sqlalchemy import select
from sqlalchemy.orm import Session

from sunshine.clock import customer_date, in_beijing, utcnow
from sunshine.models import LoanApplication, LoanContract, LoanProduct

TEMPLATE = Path(__file__).with_name("contract_template.md")
CONTRACT_PATH = "/contract/"  # the signing page: PUBLIC_BASE_URL + CONTRACT_PATH + token
DEFAULT_TTL = timedelta(hours=72)

# How the contract names each repayment method, and what it means.
REPAYMENT_METHODS = {
    "equal_instalments": ("等额本息", "每月偿还相同金额的本金和利息，按月还款，最后一期结清。"),
    "interest_monthly": ("按月付息、到期还本", "每月按实际占用的本金支付利息，借款到期时一次归还本金。"),
    "revolving": ("随借随还", "在额度和期限内可随时借款、随时还款，按实际用款天数计息，每月结息，到期归还本金。"),
}
# Each product's method by code until products carry their own (the core-banking work gives
# LoanProduct a `repayment_method`; this table then goes): a product not listed repays in equal instalments.
PRODUCT_METHODS = {"sunshine_e_loan": "revolving", "merchant_e_loan": "interest_monthly"}

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_BIG_UNITS = ("", "万", "亿")


class ContractError(ValueError):
    """A contract step that cannot be taken; `message` is for the customer, `code` for machines."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ContractText:
    text: str
    sha256: str
    version: str


def amount_in_capitals(yuan: int) -> str:
    """Whole yuan in the capitals a contract writes: 50000 -> 伍万元整, 100500 -> 壹拾万零伍佰元整."""
    if isinstance(yuan, bool) or not isinstance(yuan, int) or not 0 < yuan < 10**12:
        raise ValueError(f"an amount of whole yuan from 1 to 999999999999, got {yuan!r}")
    groups = []  # four digits each, lowest first
    while yuan:
        yuan, group = divmod(yuan, 10_000)
        groups.append(group)
    out, zero = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero = bool(out)
            continue
        if out and (zero or group < 1000):
            out += "零"
        zero, part = False, ""
        for position in range(3, -1, -1):
            digit = group // 10**position % 10
            if digit:
                part += _DIGITS[digit] + _SMALL_UNITS[position]
                zero = False
            elif part and not zero and group % 10**position:
                part += "零"
                zero = True
        out += part + _BIG_UNITS[index]
        zero = False
    return out + "元整"


def repayment_method(product: LoanProduct) -> str:
    """The product's repayment method: equal_instalments, interest_monthly or revolving."""
    return getattr(product, "repayment_method", None) or PRODUCT_METHODS.get(product.code, "equal_instalments")


def _template() -> tuple[str, Template]:
    first, body = TEMPLATE.read_text(encoding="utf-8").split("\n", 1)
    if not first.startswith("version: "):
        raise ValueError(f"{TEMPLATE.name} must start with a 'version: ...' line")
    return first.removeprefix("version: ").strip(), Template(body)


def _product_terms(product: LoanProduct, application: LoanApplication) -> str:
    terms = [f"{product.name}：{product.description}".rstrip("。") + "。"]
    if product.needs_guarantor and application.guarantor is not None:
        terms.append(f"本借款由{application.guarantor.name}提供连带责任保证，保证合同另行签订。")
    if product.needs_collateral:
        terms.append("本借款需提供抵押担保，抵押合同另行签订。")
    terms.append(f"本产品期限可选{'、'.join(f'{t}个月' for t in product.terms_months)}。")
    return "".join(terms)


def contract_text(application: LoanApplication, bank: str, offered_at: datetime) -> ContractText:
    """The contract as the borrower reads it, its SHA-256 and the template's version."""
    version, template = _template()
    product, borrower = application.product, application.customer
    method_name, method_explained = REPAYMENT_METHODS[repayment_method(product)]
    text = template.substitute(
        contract_number=contract_number(application),
        version=version,
        bank=bank,
        borrower=borrower.name,
        borrower_id=borrower.id_masked,
        product=product.name,
        amount_figures=f"{application.amount:,}.00",
        amount_capitals=amount_in_capitals(application.amount),
        purpose=application.purpose.strip().rstrip("。") or "个人生产经营及消费",
        term_months=application.term_months,
        annual_rate=f"{product.annual_rate_bp / 100:.2f}%",
        repayment_method=method_name,
        repayment_explained=method_explained,
        settlement_account=(
            "甲方将借款发放至乙方在甲方开立的本人结算账户，乙方授权甲方在每个还款日从该账户扣收应还本息；"
            "账号以放款后的借款借据为准。"
        ),
        product_terms=_product_terms(product, application),
        offered_date=customer_date(in_beijing(offered_at).date()),
    )
    return ContractText(text, hashlib.sha256(text.encode()).hexdigest(), version)


def contract_number(application: LoanApplication) -> str:
    return f"YGJK{application.id:08d}"


def token_for(secret_key: str, application_id: int, renewals: int = 0) -> str:
    """The contract link's token: a keyed hash of the application and how many times its link was
    renewed (32 URL-safe characters; each renewal a new token, the old one stops working)."""
    message = f"loan-contract:{application_id}" + (f":{renewals}" if renewals else "")
    mac = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:32]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signing_url(public_base_url: str, token: str) -> str:
    return public_base_url.rstrip("/") + CONTRACT_PATH + token


def offer(
    session: Session, application: LoanApplication, secret_key: str, now: datetime, ttl: timedelta = DEFAULT_TTL
) -> LoanContract:
    """The application was approved (at `now`): its contract is offered (once; the link stays the same)."""
    contract = contract_of(session, application.id)
    if contract is not None:
        return contract
    borrower = application.customer
    contract = LoanContract(
        application_id=application.id,
        token_hash=token_hash(token_for(secret_key, application.id)),
        status="offered",
        version=_template()[0],
        party_name=borrower.name,
        party_id_masked=borrower.id_masked,
        offered_at=now,
        expires_at=now + ttl,
        proof={},
        sms_sends=0,
    )
    session.add(contract)
    session.flush()
    return contract


LOCKED = "刷脸核验失败次数过多，合同签署已锁定。客户经理已收到通知，会联系您处理"
EXPIRED = "合同签署链接已过期，请点“重新获取签署链接”，或联系客户经理重新发送"

_CLOSED = {
    "withdrawn": ("withdrawn", "这笔贷款申请已撤销，合同不能再签署"),
    "rejected": ("not_approved", "这笔贷款申请没有通过审批，没有可签署的合同"),
}


def find_by_token(session: Session, token: str, lock: bool = False) -> LoanContract:
    """The contract this link opens (offered or signed); ContractError otherwise."""
    query = select(LoanContract).where(LoanContract.token_hash == token_hash(token))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    contract = session.scalar(query)
    if contract is None:
        raise ContractError("unknown_token", "合同链接无效，请从微信里收到的消息重新打开")
    return contract


def contract_of(session: Session, application_id: int, lock: bool = False) -> LoanContract | None:
    """The contract of an application, if it was offered."""
    query = select(LoanContract).where(LoanContract.application_id == application_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def for_application(session: Session, application_id: int, lock: bool = False) -> LoanContract:
    """The contract of an application (the mini-program finds it by the customer's application)."""
    contract = contract_of(session, application_id, lock)
    if contract is None:
        raise ContractError("no_contract", "这笔贷款申请还没有借款合同（审批通过后才有）")
    return contract


def check_signable(contract: LoanContract) -> None:
    """Raise ContractError unless the contract can be signed now."""
    if contract.status == "signed":
        raise ContractError("already_signed", "这份借款合同已经签署过了，不需要重复签署")
    status = contract.application.status
    if status in _CLOSED:
        raise ContractError(*_CLOSED[status])
    if status != "approved":
        raise ContractError("not_approved", "这笔贷款申请还没有审批通过，暂时不能签署合同")
    if contract.status == "locked":
        raise ContractError("locked", LOCKED)
    if contract.expires_at < utcnow():
        raise ContractError("expired", EXPIRED)


def check_renewable(contract: LoanContract, by_officer: bool) -> None:
    """Raise ContractError unless the link may be renewed now: the contract is not signed, the
    application is approved; the borrower renews an expired link only, an officer also a link
    still valid or locked (a lock's release: the face attempts start again)."""
    if contract.status == "signed":
        raise ContractError("already_signed", "这份借款合同已经签署过了，不需要新的签署链接")
    status = contract.application.status
    if status in _CLOSED:
        raise ContractError(*_CLOSED[status])
    if status != "approved":
        raise ContractError("not_approved", "这笔贷款申请还没有审批通过，暂时不能签署合同")
    if by_officer:
        return
    if contract.status == "locked":
        raise ContractError("locked", LOCKED)
    if contract.expires_at >= utcnow():
        raise ContractError("not_expired", "合同签署链接仍在有效期内，请直接用它签署，不需要重新获取")


def renew(contract: LoanContract, secret_key: str, now: datetime, ttl: timedelta = DEFAULT_TTL) -> str:
    """A new link for the contract (the old one stops working), valid `ttl` from `now`; a locked
    contract is offered again with its face attempts reset. Returns the new token."""
    contract.renewals += 1
    token = token_for(secret_key, contract.application_id, contract.renewals)
    contract.token_hash = token_hash(token)
    contract.expires_at = now + ttl
    contract.status, contract.attempts, contract.sms_code_hash = "offered", 0, None
    return token


def pdf_intact(contract: LoanContract) -> bytes:
    """The signed contract's PDF, checked against its stored SHA-256 (ContractError when not)."""
    if contract.status != "signed" or contract.pdf is None:
        raise ContractError("not_signed", "合同还没有签署，签署后才能下载PDF")
    if hashlib.sha256(contract.pdf).hexdigest() != contract.pdf_sha256:
        raise ContractError("pdf_altered", "合同文件校验未通过，请联系客户经理")
    return contract.pdf
