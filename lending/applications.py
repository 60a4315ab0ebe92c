"""Loan applications: checks of what is asked, the status machine, risk rules
and decisions, with every step recorded in `application_events`.

    draft -> submitted -> awaiting_authorization -> under_review -> approved -> signed -> disbursed
                 |                                      |  (auto or officer)   (contract) (core banking,
                 +-> rejected (a rejecting rule)         +-> rejected                   lending.disbursement)
    any live status up to approved -> withdrawn (the customer changes their mind)

Approval offers the loan contract (lending.contracts): the approval notice carries its link;
the borrower's signature (auth_flow.signing) moves the application to `signed`, and the
disbursement follows (lending.disbursement pays it out through core banking, exactly once).

At submission the risk rules run: a rejecting hit ends the application,
otherwise it waits for the credit-report authorizations. When the reports
arrive (`report_arrived`) the rules run again: an application within its
product's automatic-approval limit and without hits is decided on the spot;
one above the limit or with a review hit goes to the officers' queue with a
deadline, and `escalate_overdue` flags those whose deadline passed.

Four eyes (四眼原则): an officer's approval above the product's
`second_approval_above` does not approve; it is recorded (`first_approval`)
and the application waits (待复核, still under review) for a supervisor who
is not that officer to approve or reject it.

The customer is told of each change of state through the `notify(openid,
text)` callable, once the transaction commits (a rolled-back change tells no
one); when one commit moves an application several steps, the last is told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clients.bureau import CreditReport
from clients.corebank import CoreBankingClient, CoreLoan, Payment
from lending.amounts import format_amount
from lending.catalog import products_offered
from lending.contracts import DEFAULT_TTL, offer, signing_url, token_for
from lending.credit_lines import current_line, valid_line
from lending.identity import birth_date
from lending.loans import loan_of_application, record_loan, schedule_of
from lending.notify import WeChatNotifier
from lending.parties import LABELS
from lending.repayment import METHOD_LABELS, yuan_text
from lending.reports import parties
from lending.risk import RiskContext, RuleBook, RuleHit
from sunshine.clock import customer_date, customer_time
from sunshine.jobs import Jobs, after_commit
from sunshine.models import (
    FINAL_APPLICATION_STATUSES,
    ApplicationEvent,
    Customer,
    LoanApplication,
    LoanProduct,
    Officer,
    utcnow,
)
from sunshine.protect import mask_account, mask_name, unseal

log = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"submitted", "withdrawn"}),
    "submitted": frozenset({"awaiting_authorization", "rejected", "withdrawn"}),
    "awaiting_authorization": frozenset({"under_review", "withdrawn"}),
    "under_review": frozenset({"approved", "rejected", "withdrawn"}),
    "approved": frozenset({"signed", "withdrawn"}),
    "signed": frozenset({"disbursed"}),
    **{status: frozenset() for status in FINAL_APPLICATION_STATUSES},
}
# How the customer and the officer read each status.
STATUS_LABELS = {
    "draft": "还没提交",
    "submitted": "已提交",
    "awaiting_authorization": "等待征信授权",
    "under_review": "审核中",
    "approved": "审批通过",
    "signed": "已签约",
    "rejected": "没有通过",
    "withdrawn": "已撤销",
    "disbursed": "已放款",
}
DEFAULT_REVIEW_WITHIN = timedelta(hours=24)
# How officers read an application whose officer's approval waits for a supervisor's.
AWAITING_SECOND_APPROVAL = "待复核"
# The officers' role that may give the second approval (handoff.service.SUPERVISOR).
SUPERVISOR_ROLE = "supervisor"


def named_parties(people: Mapping[str, Customer], roles) -> str:
    """本人张**、配偶李**: parties as the customer's messages name them (names masked, as in the rest of the chat)."""
    return "、".join(LABELS[role] + mask_name(people[role].name) for role in roles)


class Notifier(Protocol):
    def __call__(
        self,
        openid: str,
        text: str,
        *,
        kind: str = "notice",
        application_id: int | None = None,
        link: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Tell the customer `text`; the details as lending.notify.WeChatNotifier takes them."""


class LendingError(ValueError):
    """A request the bank cannot carry out; the message is clear Chinese the bot can show."""


class CustomerNotFound(LendingError):
    pass


class UnknownProduct(LendingError):
    pass


class ProductNotForCustomer(LendingError):
    pass


class AmountOutOfRange(LendingError):
    pass


class TermNotOffered(LendingError):
    pass


class GuarantorRequired(LendingError):
    pass


class ApplicationExists(LendingError):
    """The customer already has a live application for this product."""


class ApplicationNotFound(LendingError):
    pass


class IllegalTransition(LendingError):
    """The application's status does not allow this step."""


class DecisionError(LendingError):
    """An officer's decision that cannot be taken (no reason given, inactive officer)."""


class SecondApprovalRequired(DecisionError):
    """An application waiting for a supervisor's second approval, decided by someone who may not."""


class ReportsIncomplete(LendingError):
    """A party who must authorize has no credit report yet."""


@dataclass
class BatchReport:
    approved: list[int] = field(default_factory=list)
    over_limit: list[int] = field(default_factory=list)  # above the limit, or needing a second approval


def _review_deadline(application: LoanApplication) -> datetime:
    """By when the officer must decide: set whenever an application is queued for an officer."""
    if application.review_deadline is None:
        raise ValueError(f"application {application.id} is under officer review without a deadline")
    return application.review_deadline


class Applications:
    """The application service. `secret_key` reads the sealed ID numbers (age) and makes the
    contract links (under `public_base_url`, valid `contract_ttl`); `notify(openid, text)` tells
    the customer; `review_within` is the officers' deadline; `core_banking` is the core the
    disbursement pays through (lending.disbursement)."""

    def __init__(
        self,
        secret_key: str,
        notify: Notifier,
        rules: RuleBook | None = None,
        review_within: timedelta = DEFAULT_REVIEW_WITHIN,
        core_banking: CoreBankingClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        public_base_url: str = "",
        contract_ttl: timedelta = DEFAULT_TTL,
    ):
        self.secret_key = secret_key
        self.public_base_url = public_base_url
        self.contract_ttl = contract_ttl
        self.notify = notify
        self.rules = rules or RuleBook.load()
        self.review_within = review_within
        self.core_banking = core_banking
        self.clock = clock

    @classmethod
    def from_settings(cls, settings, notify: Notifier | None = None, **kwargs) -> Applications:
        """The service as the processes use it: customers told in WeChat, LOAN_REVIEW_HOURS for officers,
        the core at CORE_BANKING_URL."""
        if notify is None:
            notify = WeChatNotifier(Jobs(settings))
        kwargs.setdefault("core_banking", CoreBankingClient.from_settings(settings))
        return cls(
            settings.secret_key,
            notify,
            review_within=timedelta(hours=settings.loan_review_hours),
            public_base_url=settings.public_base_url,
            contract_ttl=timedelta(hours=settings.contract_ttl_hours),
            **kwargs,
        )

    # --- asking ------------------------------------------------------------------

    def draft(
        self,
        session: Session,
        customer_id: int,
        product_code: str,
        amount: int,
        term_months: int,
        purpose: str = "",
        guarantor_id: int | None = None,
        idempotency_key: str | None = None,
        actor: str = "customer",
        channel: str | None = None,
    ) -> LoanApplication:
        """A checked application in draft; the one already made under `idempotency_key`, if any.
        `actor` made it, through `channel` when not the customer's own (e.g. "console": an officer
        entered it), both kept in its history."""
        if idempotency_key:
            existing = self._by_key(session, customer_id, idempotency_key)
            if existing is not None:
                return existing
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise CustomerNotFound("没有找到您的客户信息，请联系客户经理核实身份后再申请")
        product = session.get(LoanProduct, product_code)
        if product is None:
            raise UnknownProduct("没有这个贷款产品，请从阳光e贷、商e贷、公e贷等产品中选择")
        if product not in products_offered(session, customer):
            raise ProductNotForCustomer(f"{product.name}不面向您这类客户，可以问我“有哪些贷款产品”看看适合您的")
        _check_amount(product, amount)
        if term_months not in product.terms_months:
            terms = "、".join(f"{t}个月" for t in product.terms_months)
            raise TermNotOffered(f"{product.name}的期限只有{terms}，请从中选一个")
        if product.needs_guarantor:
            guarantor = session.get(Customer, guarantor_id) if guarantor_id else None
            if guarantor is None or guarantor.id == customer.id:
                raise GuarantorRequired(f"{product.name}需要一名担保人（不能是本人），请先告诉我们担保人是谁")
        live = session.scalar(
            select(LoanApplication).where(
                LoanApplication.customer_id == customer.id,
                LoanApplication.product_code == product.code,
                LoanApplication.status.not_in(FINAL_APPLICATION_STATUSES),
            )
        )
        if live is not None:
            raise _already_applying(product, live)
        application = LoanApplication(
            customer_id=customer.id,
            product_code=product.code,
            amount=amount,
            term_months=term_months,
            purpose=purpose[:200],
            guarantor_id=guarantor_id,
            idempotency_key=idempotency_key,
            status="draft",
            risk_hits=[],
            created_at=self.clock(),
        )
        try:
            with session.begin_nested():
                session.add(application)
        except IntegrityError:
            # Another request with the same key, or for the same product, won the race.
            existing = self._by_key(session, customer_id, idempotency_key) if idempotency_key else None
            if existing:
                return existing
            raise _already_applying(product, None) from None
        self._record(session, application, None, "draft", actor, "created", **({"channel": channel} if channel else {}))
        return application

    def submit(self, session: Session, application_id: int, actor: str = "customer") -> LoanApplication:
        """Submit a draft: the risk rules run, then it waits for the credit-report authorizations."""
        application = self._get(session, application_id)
        self._move(session, application, "submitted", actor, "submitted")
        hits = self._evaluate(session, application, None)
        if any(h.outcome == "reject" for h in hits):
            self._reject_by_rules(session, application, hits)
        else:
            self._move(session, application, "awaiting_authorization", "system", "authorization_requested")
        return application

    def apply(
        self,
        session: Session,
        customer_id: int,
        product_code: str,
        amount: int,
        term_months: int,
        idempotency_key: str,
        purpose: str = "",
        guarantor_id: int | None = None,
        actor: str = "customer",
        channel: str | None = None,
    ) -> LoanApplication:
        """Draft and submit in one step (the bot's confirmation, the mini-program, an officer's entry
        in the console: `actor` and `channel` as for `draft`). The same key again returns the same
        application."""
        application = self.draft(
            session,
            customer_id,
            product_code,
            amount,
            term_months,
            purpose=purpose,
            guarantor_id=guarantor_id,
            idempotency_key=idempotency_key,
            actor=actor,
            channel=channel,
        )
        return self.submit(session, application.id, actor) if application.status == "draft" else application

    # --- deciding ----------------------------------------------------------------

    def report_arrived(
        self, session: Session, application_id: int, reports: Mapping[str, CreditReport]
    ) -> LoanApplication:
        """The credit reports (by party role) are in: run the rules again and decide, or queue for an officer."""
        application = self._get(session, application_id, lock=True)
        _require(application, "under_review")
        missing = [role for role in parties(session, application) if role not in reports]
        if missing:
            raise ReportsIncomplete(f"还缺{'、'.join(LABELS[r] for r in missing)}的征信报告")
        hits = self._evaluate(session, application, reports)
        product = application.product
        to_officer = not any(h.outcome == "reject" for h in hits) and (
            hits or application.amount > product.auto_approval_limit
        )
        application.review_mode = "officer" if to_officer else "auto"
        if to_officer:
            application.review_deadline = self.clock() + self.review_within
        self._move(
            session,
            application,
            "under_review",
            "system",
            "reports_arrived",
            reports={role: r.report_id for role, r in reports.items()},
            review_mode=application.review_mode,
        )
        if to_officer:
            return application
        if hits:
            self._reject_by_rules(session, application, hits)
        else:
            self._move(
                session,
                application,
                "approved",
                "auto",
                "approved",
                f"{format_amount(product.auto_approval_limit)}以内且未触发风险规则，自动审批通过",
            )
        return application

    def approve(self, session: Session, application_id: int, officer: Officer, reason: str) -> LoanApplication:
        """An officer approves an application under review."""
        return self._decide(session, application_id, officer, reason, "approved")

    def reject(self, session: Session, application_id: int, officer: Officer, reason: str) -> LoanApplication:
        """An officer rejects an application under review."""
        return self._decide(session, application_id, officer, reason, "rejected")

    def withdraw(
        self, session: Session, application_id: int, actor: str = "customer", reason: str = "客户撤销申请"
    ) -> LoanApplication:
        application = self._get(session, application_id, lock=True)
        self._move(session, application, "withdrawn", actor, "withdrawn", reason)
        return application

    def disburse(self, session: Session, application_id: int, booked: CoreLoan, paid: Payment) -> LoanApplication:
        """Record a signed loan the core booked and paid out (lending.disbursement calls the core):
        the loan and its schedule are stored and the amount counts as used on the credit line."""
        application = self._get(session, application_id, lock=True)
        _require(application, "disbursed")
        application.loan_account = booked.loan_no
        record_loan(session, application, booked, paid, self.clock())
        line = valid_line(session, application.customer_id, self.clock().date())
        if line is not None:
            line.used_amount += application.amount
        session.flush()
        self._move(
            session,
            application,
            "disbursed",
            "core_banking",
            "disbursed",
            f"已放款至客户结算账户{mask_account(paid.account_no)}",
            loan_account=booked.loan_no,
            serial_no=paid.serial_no,
            amount_fen=paid.amount_fen,
            value_date=paid.value_date.isoformat(),
        )
        return application

    def sign(self, session: Session, application_id: int, contract_id: int) -> LoanApplication:
        """The borrower signed the loan contract (auth_flow.signing): the disbursement follows."""
        application = self._get(session, application_id, lock=True)
        self._move(session, application, "signed", "customer", "contract_signed", contract_id=contract_id)
        return application

    def escalate_overdue(self, session: Session, now: datetime | None = None) -> list[LoanApplication]:
        """Flag every application whose officer deadline has passed (once each); returns them."""
        now = now or self.clock()
        overdue = session.scalars(
            officer_queue()
            .where(LoanApplication.review_deadline < now, LoanApplication.escalated_at.is_(None))
            .with_for_update(skip_locked=True)
        ).all()
        for application in overdue:
            application.escalated_at = now
            self._record(
                session,
                application,
                "under_review",
                "under_review",
                "system",
                "escalated",
                f"超过审批时限（{customer_time(_review_deadline(application))}）仍未处理，已升级给主管",
                deadline=_review_deadline(application).isoformat(),
            )
        return overdue

    def approve_village(
        self,
        session: Session,
        village: str,
        officer: Officer,
        reason: str,
        max_amount: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchReport:
        """Approve a village's small applications waiting for an officer (整村批量审批).

        Small: up to `max_amount`, or else up to each product's automatic-approval limit.
        `progress(done, total)` is called after each application.
        """
        report = BatchReport()
        queued = session.scalars(
            officer_queue()
            .join(Customer, Customer.id == LoanApplication.customer_id)
            .where(Customer.village == village)
        ).all()
        for done, application in enumerate(queued, 1):
            limit = max_amount if max_amount is not None else application.product.auto_approval_limit
            if application.amount <= limit and not needs_second_approval(application):
                self._decide(session, application.id, officer, reason, "approved")
                report.approved.append(application.id)
            else:
                report.over_limit.append(application.id)
            if progress:
                progress(done, len(queued))
        return report

    # --- inside ------------------------------------------------------------------

    @staticmethod
    def _by_key(session: Session, customer_id: int, key: str) -> LoanApplication | None:
        existing = session.scalar(select(LoanApplication).where(LoanApplication.idempotency_key == key))
        if existing is not None and existing.customer_id != customer_id:
            raise LendingError("申请编号重复，请重新发起申请")
        return existing

    @staticmethod
    def _get(session: Session, application_id: int, lock: bool = False) -> LoanApplication:
        application = session.get(LoanApplication, application_id, with_for_update=True if lock else None)
        if application is None:
            raise ApplicationNotFound("没有找到这笔贷款申请")
        return application

    def _decide(
        self, session: Session, application_id: int, officer: Officer, reason: str, outcome: str
    ) -> LoanApplication:
        if not officer.active:
            raise DecisionError("该客户经理账号已停用，不能审批")
        if not reason.strip():
            raise DecisionError("请填写审批意见")
        application = self._get(session, application_id, lock=True)
        actor, reason = f"officer:{officer.username}", reason.strip()
        first = session.get(Officer, application.first_approved_by or 0)
        if first is not None and application.status == "under_review":
            if officer.role != SUPERVISOR_ROLE:
                raise SecondApprovalRequired(f"这笔申请{AWAITING_SECOND_APPROVAL}：需要主管复核，客户经理不能再审批")
            if officer.id == first.id:
                raise SecondApprovalRequired("复核人不能是审批人本人，请由另一位主管复核")
            self._move(session, application, outcome, actor, outcome, reason, first_approver=first.username)
        elif outcome == "approved" and needs_second_approval(application):
            _require(application, outcome)
            application.first_approved_by, application.first_approved_at = officer.id, self.clock()
            self._record(
                session,
                application,
                application.status,
                application.status,
                actor,
                "first_approval",
                reason,
                second_approval_above=application.product.second_approval_above,
            )
        else:
            self._move(session, application, outcome, actor, outcome, reason)
        return application

    def _evaluate(
        self, session: Session, application: LoanApplication, reports: Mapping[str, CreditReport] | None
    ) -> list[RuleHit]:
        now = self.clock()
        customer = application.customer
        line = current_line(session, customer, today=now.date(), excluding_application=application.id)
        ctx = RiskContext(
            session=session,
            application=application,
            customer=customer,
            now=now,
            reports=reports,
            birth_date=birth_date(unseal(self.secret_key, customer.id_sealed)),
            available=line.available if line else 0,
        )
        hits = self.rules.evaluate(ctx, "report" if reports is not None else "submission")
        application.risk_hits = [h.as_dict() for h in hits]
        return hits

    def _reject_by_rules(self, session: Session, application: LoanApplication, hits: list[RuleHit]) -> None:
        rejecting = [h for h in hits if h.outcome == "reject"]
        self._move(
            session,
            application,
            "rejected",
            "risk_rules",
            "rejected",
            "；".join(f"{h.code} {h.description}" for h in rejecting),
            rules=[h.code for h in rejecting],
        )

    def _move(
        self,
        session: Session,
        application: LoanApplication,
        to_status: str,
        actor: str,
        action: str,
        reason: str = "",
        **detail,
    ) -> None:
        _require(application, to_status)
        self._record(session, application, application.status, to_status, actor, action, reason, **detail)
        application.status = to_status
        if to_status == "approved":
            offer(session, application, self.secret_key, self.clock(), self.contract_ttl)
        text = self.notice(session, application)
        openid = application.customer.wechat_openid
        if text and openid:
            # The customer hears the last change of each application, once it is committed.
            details = {
                "kind": "disbursement" if to_status == "disbursed" else "application_status",
                "application_id": application.id,
                # A template message opens the contract's signing page (the approval notice's link).
                "link": self.contract_link(application) if to_status == "approved" else None,
                "fields": {
                    "product": application.product.name,
                    "amount": application.amount,
                    "status": STATUS_LABELS[to_status],
                    "loan_account": application.loan_account,
                },
            }
            after_commit(session, partial(self.notify, openid, text, **details), key=("lending.notice", application.id))

    def _record(
        self,
        session: Session,
        application: LoanApplication,
        from_status: str | None,
        to_status: str,
        actor: str,
        action: str,
        reason: str = "",
        **detail,
    ) -> None:
        session.add(
            ApplicationEvent(
                application_id=application.id,
                at=self.clock(),
                actor=actor,
                action=action,
                from_status=from_status,
                to_status=to_status,
                reason=reason,
                detail=detail,
            )
        )

    def contract_link(self, application: LoanApplication, renewals: int = 0) -> str:
        """The signing page of the application's loan contract (lending.contracts; `renewals`: its
        link renewed so many times)."""
        return signing_url(self.public_base_url, token_for(self.secret_key, application.id, renewals))

    def send_contract_link(self, session: Session, application: LoanApplication, renewals: int) -> str:
        """The contract's link was renewed: the borrower is told the new one in WeChat (once
        committed). Returns the link."""
        link = self.contract_link(application, renewals)
        openid = application.customer.wechat_openid
        if openid:
            text = f"您的借款合同签署链接已更新（之前的链接已失效），请点击签署：{link}"
            details = {
                "kind": "application_status",
                "application_id": application.id,
                "link": link,
                "fields": {
                    "product": application.product.name,
                    "amount": application.amount,
                    "status": STATUS_LABELS[application.status],
                    "loan_account": application.loan_account,
                },
            }
            key = ("lending.contract_link", application.id)
            after_commit(session, partial(self.notify, openid, text, **details), key=key)
        return link

    def notice(self, session: Session, application: LoanApplication) -> str | None:
        """What the customer is told when the application reaches its current status."""
        product = application.product.name
        what = f"{product}申请（{format_amount(application.amount)}，{application.term_months}个月）"
        status = application.status
        if status == "submitted":
            return f"您的{what}已提交，正在审核。"
        if status == "awaiting_authorization":
            people = parties(session, application)
            who = named_parties(people, people)
            return f"您的{what}已提交。请完成征信查询授权（需要授权：{who}），授权后马上为您审批。"
        if status == "under_review" and application.review_mode == "officer":
            return f"您的{what}已转给客户经理审核，会在{customer_time(_review_deadline(application))}前给您答复。"
        if status == "under_review":
            return f"您的{what}正在自动审批，请稍候。"
        if status == "approved":
            return f"好消息！您的{what}已审批通过，请点击签署借款合同：{self.contract_link(application)}"
        if status == "signed":
            return f"您的{what}借款合同已签署，正在为您放款，到账后会在微信里通知您。"
        if status == "rejected":
            return f"很抱歉，您的{what}这次没有通过审批。想了解原因或重新申请，请回复“转人工”联系客户经理。"
        if status == "withdrawn":
            return f"您的{what}已撤销，需要时可以随时重新申请。"
        if status == "disbursed":
            return disbursed_notice(session, application)
        return None


def disbursed_notice(session: Session, application: LoanApplication) -> str:
    """The customer's notice of the money paid out: amount, account (masked), first due date and amount."""
    text = f"您的{application.product.name}贷款{format_amount(application.amount)}已发放"
    loan = loan_of_application(session, application.id)
    if loan is None:
        return f"{text}，借据号{application.loan_account}。"
    first = schedule_of(loan).next_due
    text += f"到您{mask_account(loan.settlement_account)}的账户，借据号{loan.account_no}。"
    if first is not None:
        text += (
            f"首期还款日{customer_date(first.due_date)}，应还{yuan_text(first.principal_fen + first.interest_fen)}"
            f"（{METHOD_LABELS[loan.repayment_method]}），请在还款日前把钱存入该账户。"
        )
    return text + "按时还款能保持良好信用。"


def note(
    session: Session, application_id: int, actor: str, action: str, reason: str = "", **detail
) -> ApplicationEvent:
    """Record in an application's history a step that does not change its status
    (a party's credit-report consent, the reports' arrival, a failed query)."""
    application = session.get(LoanApplication, application_id)
    if application is None:
        raise ApplicationNotFound("没有找到这笔贷款申请")
    event_ = ApplicationEvent(
        application_id=application_id,
        actor=actor,
        action=action,
        from_status=application.status,
        to_status=application.status,
        reason=reason,
        detail=detail,
    )
    session.add(event_)
    return event_


def officer_queue():
    """Applications waiting for an officer: escalated first, then by deadline."""
    return (
        select(LoanApplication)
        .where(LoanApplication.status == "under_review", LoanApplication.review_mode == "officer")
        .order_by(LoanApplication.escalated_at.is_(None), LoanApplication.review_deadline, LoanApplication.id)
    )


def needs_second_approval(application: LoanApplication) -> bool:
    """Whether an officer's approval of this application waits for a supervisor's (四眼原则)."""
    return application.amount > application.product.second_approval_above


def awaiting_second_approval(application: LoanApplication) -> Officer | None:
    """The officer whose approval waits for a supervisor's second approval (待复核), if any."""
    if application.status != "under_review" or application.first_approved_by is None:
        return None
    return application.first_approver


def _require(application: LoanApplication, to_status: str) -> None:
    if to_status not in TRANSITIONS[application.status]:
        raise IllegalTransition(
            f"这笔申请目前{STATUS_LABELS[application.status]}，" f"不能改为“{STATUS_LABELS[to_status]}”"
        )


def _check_amount(product: LoanProduct, amount) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise AmountOutOfRange("贷款金额要是整数元，比如 50000 或 5万")
    if amount <= 0:
        raise AmountOutOfRange("贷款金额要大于0")
    if not product.min_amount <= amount <= product.max_amount:
        raise AmountOutOfRange(
            f"{product.name}可以贷{format_amount(product.min_amount)}到"
            f"{format_amount(product.max_amount)}，您申请的{format_amount(amount)}不在这个范围内"
        )


def _already_applying(product: LoanProduct, live: LoanApplication | None) -> ApplicationExists:
    where = f"（{STATUS_LABELS[live.status]}）" if live is not None else ""
    return ApplicationExists(f"您已经有一笔{product.name}申请正在办理{where}，办完或撤销后才能再申请")
