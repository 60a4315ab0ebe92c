"""JSON API for the bank's mini-program: the customer's own audience, under /api/mp/.

`POST /api/mp/login` exchanges wx.login's code for a bearer token (sunshine.mp_sessions); the
rest take `Authorization: Bearer <token>`. Who the WeChat user is follows the one rule of
lending.customers.by_openid (the mini-program openid, or the UnionID shared with the Official
Account). Routes parse, call the same services as the bot (binding, credit lines, products,
applications, loans and their repayment, authorizations, hand-offs) and render; every refusal
is JSON with a Chinese `message` and a machine-readable `code`, and changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow.evidence import Client
from auth_flow.qr import authorization_url
from auth_flow.tokens import reissue_for_application
from clients.sms import SmsClient
from clients.wechat import WeChatApi, WeChatApiError
from conversation.scenarios import answer_for
from handoff.service import conversation, customer_hand_off, keep_customer_message
from lending.applications import STATUS_LABELS, Applications, LendingError
from lending.binding import BindingRefused, BindLimits, awaiting_code, background_sms, confirm_code, count_guess
from lending.binding import request_code as binding_request_code
from lending.catalog import products_offered
from lending.contracts import ContractError, contract_number, for_application, signing_url, token_for
from lending.credit_lines import current_line
from lending.customers import MINI_PROGRAM, IdentificationFailed, by_openid, identify, remember_wechat
from lending.loans import (
    INSTALMENT_STATUS_LABELS,
    LOAN_STATUS_LABELS,
    RepaymentFacts,
    facts_of,
    loans_of,
    owed_fen,
)
from lending.parties import LABELS
from sunshine.db import unit_of_work
from sunshine.models import (
    FINAL_APPLICATION_STATUSES,
    ApplicationEvent,
    Authorization,
    Customer,
    Loan,
    LoanApplication,
    LoanProduct,
)
from sunshine.mp_sessions import MpSession, end_session, find_session, open_session
from sunshine.protect import mask_account, mask_name
from sunshine.ratelimit import MP_BAD_SESSIONS, MP_LOGINS, MP_MESSAGES, Limit, Limiter
from sunshine.redis import connect
from webhooks.private import no_store

bp = Blueprint("mp", __name__)
bp.after_request(no_store)  # every answer is about one customer

# The scenario services' topics and their topics in the content file the bot answers from
# (conversation/content/scenarios.yml, the one source).
SERVICES = {
    "hospital-payment": "hospital_payment",
    "housing-lottery": "housing_lottery",
    "hanshan-park": "scenic_ticket",
}
AUTH_STATUS_LABELS = {
    "pending": "待授权",
    "consented": "已授权",
    "refused": "已拒绝",
    "superseded": "已作废",
    "locked": "已锁定",
    "released": "已解锁作废",
}
MESSAGE_MAX = 1000
IDEMPOTENCY_KEY_MAX = 128


class Refused(Exception):
    """An answer other than success: HTTP status, a machine-readable code and Chinese words."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    428: "Precondition Required",
    429: "Too Many Requests",
    502: "Bad Gateway",
}


@bp.app_errorhandler(Refused)  # also the H5 steps' refusal of a bad bearer token
def _refused(exc: Refused):
    headers = {"Retry-After": str(exc.extra.pop("retry_after"))} if "retry_after" in exc.extra else {}
    body = {"error": _NAMES[exc.status], "code": exc.code, "message": exc.message, **exc.extra}
    return jsonify(body), exc.status, headers


def _settings():
    return current_app.config["SETTINGS"]


def _ip() -> str:
    return request.remote_addr or ""


def _limit(limit: Limit, who: str, count: bool = True) -> None:
    limiter = Limiter(_settings().redis_url)
    wait = limiter.hit(limit, who) if count else limiter.retry_after(limit, who)
    if wait:
        raise Refused(429, "rate_limited", limit.message, retry_after=wait)


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "bad_request", "请求内容应为JSON对象")
    return body


def _text(body: dict, field: str, message: str, max_len: int = 200) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise Refused(400, "bad_request", message)
    return value.strip()


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def current_session() -> MpSession | None:
    """The mini-program session of this request's bearer token; None without one; 401 (counted
    per client address, as unknown authorization tokens are) for a forged or expired one."""
    token = _bearer()
    if not token and "Authorization" not in request.headers:
        return None
    found = find_session(connect(_settings().redis_url), token)
    if found is None:
        _limit(MP_BAD_SESSIONS, _ip())  # 429 once over the limit
        raise Refused(401, "session_invalid", "登录已过期，请重新打开小程序")
    return found


def _session() -> MpSession:
    found = current_session()
    if found is None:
        raise Refused(401, "login_required", "请先登录小程序")
    return found


def _me(db: Session, who: MpSession) -> Customer | None:
    return by_openid(db, who.openid, who.unionid, MINI_PROGRAM)


def _bound(db: Session, who: MpSession) -> Customer:
    customer = _me(db, who)
    if customer is None:
        raise Refused(403, "not_bound", "请先绑定银行客户信息：填写姓名和身份证号，再输入手机收到的验证码")
    return customer


# -- login ---------------------------------------------------------------------------


@bp.post("/api/mp/login")
def login():
    """wx.login's code → jscode2session (the session key stays with WeChat) → a bearer token."""
    s = _settings()
    code = _text(_json_body(), "code", "缺少登录凭证code，请重新登录", max_len=128)
    _limit(MP_LOGINS, _ip())
    try:
        wx = WeChatApi.from_settings(s).jscode2session(code)
    except WeChatApiError as exc:
        if exc.errcode is None:
            current_app.logger.warning("jscode2session unavailable: %s", exc)
            raise Refused(502, "wechat_unavailable", "微信服务暂时不可用，请稍后再试") from None
        if exc.errcode == 40163:
            raise Refused(401, "login_code_used", "登录凭证已经用过了，请重新登录") from None
        raise Refused(401, "login_code_invalid", "登录凭证无效或已过期，请重新登录") from None
    with unit_of_work(s.database_url) as db:
        customer = remember_wechat(db, wx.openid, wx.unionid, MINI_PROGRAM)
        bound = customer is not None
    token = open_session(connect(s.redis_url), wx.openid, wx.unionid, s.mp_session_ttl_s)
    return jsonify(token=token, expires_in=s.mp_session_ttl_s, bound=bound)


@bp.post("/api/mp/logout")
def logout():
    _session()
    end_session(connect(_settings().redis_url), _bearer())
    return jsonify(ok=True, message="已退出登录")


# -- who am I, binding ------------------------------------------------------------------


@bp.get("/api/mp/me")
def me():
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _me(db, who)
        if customer is None:
            return jsonify(bound=False, name=None, customer_type=None, awaiting_code=awaiting_code(db, who.openid))
        return jsonify(bound=True, name=mask_name(customer.name), customer_type=customer.customer_type)


def _binding_step(step) -> Any:
    """Run one binding step in a unit of work that commits even when it is refused (what it
    counted stays counted, as in the chat)."""
    s = _settings()
    refused: Refused | None = None
    with unit_of_work(s.database_url) as db:
        try:
            result = step(db, s, BindLimits.from_settings(s), background_sms(SmsClient.from_settings(s)))
        except IdentificationFailed as exc:
            refused = Refused(400, "identification_failed", str(exc))
        except BindingRefused as exc:
            refused = Refused(409, "binding_refused", str(exc))
    if refused is not None:
        raise refused
    return result


@bp.post("/api/mp/binding")
def binding():
    """Name and ID number: a code to the phone on file (lending.binding, the chat's limits)."""
    who, body = _session(), _json_body()
    name = _text(body, "name", "请填写姓名", max_len=32)
    id_number = _text(body, "id_number", "请填写18位身份证号", max_len=32)
    answer = _binding_step(
        lambda db, s, limits, send: binding_request_code(
            db, s.secret_key, who.openid, f"{name} {id_number}", limits, send, who.unionid, MINI_PROGRAM
        )
    )
    return jsonify(ok=True, message=answer)


@bp.post("/api/mp/binding/confirm")
def binding_confirm():
    who = _session()
    code = _text(_json_body(), "code", "请填写短信里的6位验证码", max_len=16)
    name = _binding_step(
        lambda db, s, limits, send: mask_name(
            confirm_code(db, s.secret_key, who.openid, code, limits, send, who.unionid, MINI_PROGRAM).name
        )
    )
    return jsonify(ok=True, message=f"验证码正确，已绑定客户信息：{name}", name=name)


# -- credit line, products -----------------------------------------------------------------


@bp.get("/api/mp/credit-line")
def credit_line():
    """The pre-granted line from lending.credit_lines.current_line, as the bot's action reads it."""
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _bound(db, who)
        line = current_line(db, customer)
        if line is None:
            products = [p.name for p in products_offered(db, customer)]
            return jsonify(has_line=False, message="您目前没有有效的预授信额度", products=products)
        return jsonify(
            has_line=True,
            amount=line.amount,
            used=line.used,
            held=line.pending,
            left=line.available,
            valid_until=line.valid_until.isoformat(),
            village=line.village,
            products=list(line.products),
        )


def _product(p: LoanProduct) -> dict:
    return {
        "code": p.code,
        "name": p.name,
        "description": p.description,
        "min_amount": p.min_amount,
        "max_amount": p.max_amount,
        "terms_months": sorted(p.terms_months),
        "annual_rate_bp": p.annual_rate_bp,
        "needs_guarantor": p.needs_guarantor,
        "authorizing_parties": [LABELS[r] for r in p.authorizing_parties],
    }


@bp.get("/api/mp/products")
def products():
    """The products offered to me (lending.catalog.products_offered, the bot's rule); all
    products for a WeChat user not bound yet."""
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _me(db, who)
        if customer is not None:
            found = products_offered(db, customer)
        else:
            found = list(db.scalars(select(LoanProduct).order_by(LoanProduct.min_amount, LoanProduct.code)))
        return jsonify(products=[_product(p) for p in found])


# -- applications ---------------------------------------------------------------------------


def _application(db: Session, application: LoanApplication) -> dict:
    events = db.scalars(
        select(ApplicationEvent)
        .where(ApplicationEvent.application_id == application.id)
        .order_by(ApplicationEvent.at, ApplicationEvent.id)
    )
    return {
        "id": application.id,
        "product": application.product.name,
        "product_code": application.product_code,
        "amount": application.amount,
        "term_months": application.term_months,
        "purpose": application.purpose,
        "status": application.status,
        "status_label": STATUS_LABELS.get(application.status, "正在处理中"),
        "created_at": application.created_at.isoformat(),
        "timeline": [
            {"at": e.at.isoformat(), "status": e.to_status, "label": STATUS_LABELS.get(e.to_status, e.to_status)}
            for e in events
            if e.from_status != e.to_status  # status changes; officers' notes stay with officers
        ],
    }


def _stored_key(customer_id: int, key: str) -> str:
    """The key the application is stored under: the customer's own (no one else's key can meet it)."""
    return "mp:" + hashlib.sha256(f"{customer_id}:{key}".encode()).hexdigest()[:48]


def _same_request(application: LoanApplication, asked: dict) -> bool:
    return (
        application.product_code == asked["product"]
        and application.amount == asked["amount"]
        and application.term_months == asked["term_months"]
        and application.purpose == asked["purpose"][:200]
        and (asked["guarantor"] is None or application.guarantor_id is not None)
    )


def _apply_body() -> dict:
    body = _json_body()
    product, amount, term, purpose = (
        body.get("product"),
        body.get("amount"),
        body.get("term_months"),
        body.get("purpose"),
    )
    guarantor = body.get("guarantor")
    if not isinstance(product, str) or not product or len(product) > 32:
        raise Refused(400, "bad_request", "请选择贷款产品")
    for value, what in ((amount, "金额"), (term, "期限（月）")):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 10**9:
            raise Refused(400, "bad_request", f"请填写{what}，应为正整数")
    if purpose is not None and (not isinstance(purpose, str) or len(purpose) > 200):
        raise Refused(400, "bad_request", "用途最多200字")
    if guarantor is not None and (
        not isinstance(guarantor, dict)
        or not all(isinstance(guarantor.get(k), str) and 0 < len(guarantor[k]) <= 32 for k in ("name", "id_number"))
    ):
        raise Refused(400, "bad_request", "担保人请填写姓名和身份证号")
    return {"product": product, "amount": amount, "term_months": term, "purpose": purpose or "", "guarantor": guarantor}


@bp.post("/api/mp/applications")
def apply():
    """Apply (lending.applications: the bot's form rules); the `Idempotency-Key` header makes one
    application: the same key again answers that application, with another request 409. The
    parties' credit-report requests are issued at once: each finds theirs in the mini-program."""
    who, s = _session(), _settings()
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise Refused(428, "idempotency_key_required", "缺少Idempotency-Key请求头，请重新提交")
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise Refused(400, "bad_request", f"Idempotency-Key最长{IDEMPOTENCY_KEY_MAX}个字符")
    asked = _apply_body()
    refused: Refused | None = None
    with unit_of_work(s.database_url) as db:
        customer = _bound(db, who)
        stored_key = _stored_key(customer.id, key)
        existing = db.scalar(select(LoanApplication).where(LoanApplication.idempotency_key == stored_key))
        if existing is not None:
            if not _same_request(existing, asked):
                raise Refused(409, "idempotency_key_reused", "这个申请编号已用于另一笔不同的申请，请重新发起申请")
            return jsonify(_application(db, existing)), 200
        guarantor_id = None
        try:
            if asked["guarantor"] is not None:
                count_guess(db, who.openid, BindLimits.from_settings(s))  # as the chat counts naming a guarantor
                text = f"{asked['guarantor']['name']} {asked['guarantor']['id_number']}"
                guarantor_id = identify(db, s.secret_key, text).id
            application = Applications.from_settings(s).apply(
                db,
                customer.id,
                asked["product"],
                asked["amount"],
                asked["term_months"],
                idempotency_key=stored_key,
                purpose=asked["purpose"],
                guarantor_id=guarantor_id,
            )
        except (BindingRefused, IdentificationFailed) as exc:  # the guess stays counted
            refused = Refused(422, "guarantor_not_identified", str(exc))
        except LendingError as exc:  # refused before anything was added; a guess stays counted
            refused = Refused(422, "application_refused", str(exc))
        if refused is None and application.status == "awaiting_authorization":
            reissue_for_application(
                db, application, "mp", timedelta(seconds=s.authorization_ttl_s), client=Client(_ip())
            )
        view = None if refused is not None else _application(db, application)
    if refused is not None:
        raise refused
    return jsonify(view), 201


@bp.get("/api/mp/applications")
def applications():
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _bound(db, who)
        mine = db.scalars(
            select(LoanApplication)
            .where(LoanApplication.customer_id == customer.id)
            .order_by(LoanApplication.created_at.desc(), LoanApplication.id.desc())
        )
        return jsonify(applications=[_application(db, a) for a in mine])


def _mine(db: Session, customer: Customer, model, row_id: int, whose) -> Any:
    row = db.get(model, row_id)
    if row is None:
        raise Refused(404, "not_found", "没有找到这条记录")
    if whose(row) != customer.id:
        raise Refused(403, "not_yours", "这不是您的记录，无权查看或操作")
    return row


@bp.post("/api/mp/applications/<int:application_id>/withdraw")
def withdraw(application_id: int):
    who, s = _session(), _settings()
    with unit_of_work(s.database_url) as db:
        customer = _bound(db, who)
        application = _mine(db, customer, LoanApplication, application_id, lambda a: a.customer_id)
        try:
            Applications.from_settings(s).withdraw(
                db, application.id, actor=f"mp:{who.openid}"[:64], reason="客户在小程序里撤销"
            )
        except LendingError as exc:
            db.rollback()
            raise Refused(409, "not_withdrawable", f"没能撤销：{exc}") from None
        return jsonify(_application(db, application))


@bp.get("/api/mp/applications/<int:application_id>/contract")
def contract(application_id: int):
    """My application's loan contract (lending.contracts): its state and the link into the
    contract's own page and API (/contract/<token>, /api/contracts/<token>), where it is signed."""
    who, s = _session(), _settings()
    with unit_of_work(s.database_url) as db:
        customer = _bound(db, who)
        application = _mine(db, customer, LoanApplication, application_id, lambda a: a.customer_id)
        try:
            found = for_application(db, application.id)
        except ContractError as exc:
            raise Refused(404, exc.code, exc.message) from None
        token = token_for(s.secret_key, application.id, found.renewals)  # the link as last renewed
        return jsonify(
            contract_number=contract_number(application),
            status=found.status,
            status_label={"signed": "已签署", "locked": "已锁定"}.get(found.status, "待签署"),
            offered_at=found.offered_at.isoformat(),
            expires_at=found.expires_at.isoformat(),
            signed_at=found.signed_at.isoformat() if found.signed_at else None,
            page=signing_url(s.public_base_url, token),
            api=f"/api/contracts/{token}",
        )


# -- loans and repayment -----------------------------------------------------------------------


def _loan(f: RepaymentFacts) -> dict:
    """A loan as its list shows it: status, balances, the next instalment (lending.loans.facts_of)."""
    loan, nxt = f.loan, f.upcoming
    return {
        "id": loan.id,
        "application_id": loan.application_id,
        "product": f.product,
        "loan_account": loan.account_no,
        "settlement_account": mask_account(loan.settlement_account),
        "repayment_method": loan.repayment_method,
        "repayment_method_label": f.method,
        "principal_fen": loan.principal_fen,
        "annual_rate_bp": loan.annual_rate_bp,
        "term_months": loan.term_months,
        "disbursed_on": loan.disbursed_on.isoformat(),
        "maturity": f.maturity.isoformat(),
        "status": loan.status,
        "status_label": LOAN_STATUS_LABELS.get(loan.status, loan.status),
        "principal_outstanding_fen": loan.principal_outstanding_fen,
        "remaining_fen": f.remaining_fen,
        "instalments_left": f.instalments_left,
        "overdue_fen": f.overdue_fen,
        "overdue_days": f.overdue_days,
        "next_due": (
            {"number": nxt.number, "due_date": nxt.due_date.isoformat(), "amount_fen": owed_fen(nxt)}
            if nxt is not None
            else None
        ),
        "synced_at": loan.synced_at.isoformat(),
    }


@bp.get("/api/mp/loans")
def loans():
    """My loans (借据), newest first, as last synchronised with core banking."""
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _bound(db, who)
        return jsonify(loans=[_loan(facts_of(loan)) for loan in loans_of(db, customer.id)])


@bp.get("/api/mp/loans/<int:loan_id>")
def loan(loan_id: int):
    """My loan's schedule, each instalment with its status, and what repaying it all today costs."""
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _bound(db, who)
        found = _mine(db, customer, Loan, loan_id, lambda row: row.customer_id)
        f = facts_of(found)
        early = f.early
        return jsonify(
            **_loan(f),
            instalments=[
                {
                    "number": i.number,
                    "due_date": i.due_date.isoformat(),
                    "principal_fen": i.principal_fen,
                    "interest_fen": i.interest_fen,
                    "paid_fen": i.paid_fen,
                    "owed_fen": owed_fen(i),
                    "status": i.status,
                    "status_label": INSTALMENT_STATUS_LABELS.get(i.status, i.status),
                }
                for i in found.instalments
            ],
            early_repayment=(
                {
                    "on": early.on.isoformat(),
                    "principal_fen": early.principal_fen,
                    "interest_due_fen": early.interest_due_fen,
                    "interest_accrued_fen": early.interest_accrued_fen,
                    "total_fen": early.total_fen,
                }
                if early is not None
                else None
            ),
        )


# -- credit-report authorizations -------------------------------------------------------------


def _authorization(db: Session, auth: Authorization) -> dict:
    applicant = db.get(Customer, auth.customer_id)
    application = db.get(LoanApplication, auth.application_id) if auth.application_id else None
    can_open = (
        auth.status == "pending" and application is not None and application.status not in FINAL_APPLICATION_STATUSES
    )
    return {
        "id": auth.id,
        "role": auth.party_role,
        "role_label": LABELS[auth.party_role],
        "purpose": auth.purpose,
        "asked_by": f"申请人{mask_name(applicant.name)}" if applicant is not None else "",
        "application_id": auth.application_id,
        "status": auth.status,
        "status_label": "申请已办结" if auth.status == "pending" and not can_open else AUTH_STATUS_LABELS[auth.status],
        "expires_at": auth.expires_at.isoformat(),
        "open": f"/api/mp/authorizations/{auth.id}/open" if can_open else None,
    }


@bp.get("/api/mp/authorizations")
def authorizations():
    """The credit-report requests where I am the party (applicant, spouse or guarantor)."""
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        customer = _bound(db, who)
        mine = db.scalars(
            select(Authorization)
            .where(Authorization.party_customer_id == customer.id)
            .order_by(Authorization.created_at.desc(), Authorization.id.desc())
        )
        return jsonify(authorizations=[_authorization(db, a) for a in mine])


@bp.post("/api/mp/authorizations/<int:authorization_id>/open")
def open_authorization(authorization_id: int):
    """A fresh link for my request (the earlier link of that request stops working, as when the
    bot sends a new one; AUTH_REISSUES_PER_DAY as for the bot): the token opens the H5 page's
    steps, /api/authorizations/<token>/..., whose identity step takes this bearer session as
    the second factor."""
    who, s = _session(), _settings()
    refused: Refused | None = None
    with unit_of_work(s.database_url) as db:
        customer = _bound(db, who)
        auth = _mine(db, customer, Authorization, authorization_id, lambda a: a.party_customer_id)
        application = db.get(LoanApplication, auth.application_id) if auth.application_id else None
        if application is None or not _authorization(db, auth)["open"]:
            raise Refused(409, "not_open", "这个授权已办结或作废，不需要再授权")
        out = reissue_for_application(
            db,
            application,
            f"mp:{customer.id}",
            timedelta(seconds=s.authorization_ttl_s),
            daily_limit=s.auth_reissues_per_day,
            client=Client(_ip(), request.headers.get("User-Agent", "")),
            roles={auth.party_role},
        )
        issued = next((i for i in out.issued if i.authorization.party_customer_id == customer.id), None)
        if issued is None:
            refused = Refused(409, "not_open", out.held[0].message if out.held else "这个授权不需要再办理了")
    if refused is not None or issued is None:
        raise refused or Refused(409, "not_open", "这个授权不需要再办理了")
    return jsonify(
        authorization_id=issued.authorization.id,
        token=issued.token,
        page=authorization_url(s.public_base_url, issued.token),
        steps=f"/api/authorizations/{issued.token}",
    )


# -- hand-off ------------------------------------------------------------------------------------


def _author(author: str) -> str:
    if author == "customer":
        return "我"
    return "客户经理" if author.startswith("officer") else "智能助手"


@bp.get("/api/mp/hand-off")
def hand_off():
    """My conversation with my officer (handoff.service, as the chat keeps it)."""
    who = _session()
    with unit_of_work(_settings().database_url) as db:
        found = customer_hand_off(db, _bound(db, who))
        if found is None:
            return jsonify(open=False, status=None, messages=[])
        messages = [
            {"id": m.id, "at": m.created_at.isoformat(), "author": _author(m.author), "body": m.body}
            for m in conversation(db, found.openid)
            if m.hand_off_id == found.id
        ]
        return jsonify(open=found.status != "closed", status=found.status, messages=messages)


@bp.post("/api/mp/hand-off/messages")
def hand_off_message():
    """Write to my officer while my hand-off is open; an `Idempotency-Key` header makes a retried
    message one message."""
    who = _session()
    text = _text(_json_body(), "text", f"请填写消息内容（{MESSAGE_MAX}字以内）", max_len=MESSAGE_MAX)
    _limit(MP_MESSAGES, who.openid)
    retry_key = request.headers.get("Idempotency-Key", "").strip()[:IDEMPOTENCY_KEY_MAX]
    with unit_of_work(_settings().database_url) as db:
        found = customer_hand_off(db, _bound(db, who))
        if found is None or found.status == "closed":
            raise Refused(
                409, "hand_off_closed", "现在没有进行中的人工服务，消息没有发出；需要人工请在公众号回复“转人工”"
            )
        message_key = "mp:" + (
            hashlib.sha256(f"{who.openid}:{retry_key}".encode()).hexdigest()[:64]
            if retry_key
            else secrets.token_hex(24)
        )
        stored = keep_customer_message(db, found, text, message_key)
    return jsonify(ok=True, duplicate=not stored, message="已发给客户经理"), 201 if stored else 200


# -- scenario services -----------------------------------------------------------------------


@bp.get("/api/mp/services/<topic>")
def service(topic: str):
    """Hospital payment, housing lottery, Hanshan park tickets: the bot's own answers, from the
    content file (conversation.scenarios): text, links, mini-program page and the one offer."""
    if topic not in SERVICES:
        raise Refused(404, "unknown_topic", "没有这项服务，可选：医院缴费、摇号验资、寒山公园门票")
    return jsonify(answer_for(SERVICES[topic]).as_dict() | {"topic": topic})
