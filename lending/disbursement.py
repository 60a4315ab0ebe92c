"""Paying out a signed loan through core banking, exactly once (放款).

Signing the contract enqueues `disburse_job` (sunshine.jobs.Jobs.disburse) after its
commit; a worker runs `disburse`:

1. In one transaction, with the application locked: it must be `signed` (an approved
   application not yet signed is refused; a disbursed one is done). The application's
   `disbursements` row is made (or taken up again): its Idempotency-Key is derived from
   the application (`sunshine-disburse-<id>`), and the schedule computed then
   (lending.repayment, first due date a month after today in Beijing) is kept in it.
   This commits before the core is called.
2. The core is called outside any transaction: the customer's settlement account,
   the loan account opened with the schedule (key `...:open`), the principal paid in
   (the key). Every retry — the job re-run after its worker was killed mid-call, a
   retry after a timeout, the officer's 重新放款 — sends the same keys and the same
   schedule, and the core carries each key out once: the money is paid once.
3. In a second transaction `Applications.disburse` records the loan: `signed ->
   disbursed`, the loan and its instalments stored, the credit line used, the customer
   told in WeChat (amount, masked account, first due date and amount), the history.

A refusal by the core (e.g. the settlement account frozen) is not retried: the
disbursement is `failed`, the history records the core's reason, the officer is told
(lending.notify.notify_officer), the application stays `signed`. The core not
answering is retried by enqueueing the job again after 2, 4, ... s, up to
DISBURSEMENT_ATTEMPTS; then the same as a refusal. The officer's 重新放款 in the
console (`retry`) takes a failed disbursement up again and enqueues the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clients.corebank import CoreBankingError, CoreBankingRejected, CoreLoan, Payment
from lending.amounts import format_amount
from lending.applications import ApplicationNotFound, Applications, IllegalTransition, LendingError, note
from lending.notify import OfficerNotifier, notify_officer
from lending.repayment import schedule
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, after_commit, current_settings, per_process
from sunshine.models import Disbursement, LoanApplication, audit
from sunshine.protect import mask_name, unseal

log = logging.getLogger(__name__)
RETRY_BASE_S = 2.0


class NotSigned(IllegalTransition):
    """An application that is not signed cannot be paid out."""


class NothingToRetry(LendingError):
    """重新放款 of an application whose disbursement has not failed."""


def idempotency_key(application_id: int) -> str:
    """The core's Idempotency-Key of an application's disbursement: the same on every retry."""
    return f"sunshine-disburse-{application_id}"


@dataclass(frozen=True)
class Order:
    """What the core is asked for, as committed before the call."""

    application_id: int
    key: str
    attempt: int
    contract_no: str
    id_number: str
    name: str
    product_code: str
    principal_fen: int
    annual_rate_bp: int
    term_months: int
    repayment_method: str
    schedule: list[dict]


def disburse(
    settings,
    application_id: int,
    applications: Applications,
    retry_later: Callable[[int, float], None] | None = None,
    notify: OfficerNotifier = notify_officer,
) -> str:
    """Pay out a signed application once; "paid", "already_paid", "failed" or "retrying".
    NotSigned when it is not signed. `retry_later(application_id, delay_s)` runs this again
    (default: the job, enqueued)."""
    order = _take_order(settings.database_url, application_id, applications.secret_key)
    if order is None:
        return "already_paid"
    core = applications.core_banking
    if core is None:
        raise RuntimeError("Applications was made without a core-banking client (core_banking=...)")
    try:
        account = core.settlement_account(order.id_number, order.name)
        booked = core.open_loan(
            order.contract_no,
            order.id_number,
            order.name,
            order.product_code,
            order.principal_fen,
            order.annual_rate_bp,
            order.term_months,
            order.repayment_method,
            account.account_no,
            order.schedule,
            order.key + ":open",
        )
        paid = core.disburse(booked.loan_no, order.principal_fen, account.account_no, order.key)
    except CoreBankingRejected as exc:
        _fail(settings.database_url, order, exc.code, f"核心系统拒绝放款：{exc.message}（{exc.code}）", notify)
        return "failed"
    except CoreBankingError as exc:
        log.warning("disbursement of application %s, attempt %d: %s", application_id, order.attempt, exc)
        if order.attempt < settings.disbursement_attempts:
            delay_s = RETRY_BASE_S * 2 ** (order.attempt - 1)
            (retry_later or Jobs(current_settings()).disburse)(application_id, delay_s)
            return "retrying"
        reason = f"核心系统无应答（已尝试{order.attempt}次）"
        _fail(settings.database_url, order, "unavailable", reason, notify)
        return "failed"
    _record(settings.database_url, order, applications, booked, paid)
    return "paid"


def disburse_job(application_id: int) -> str:
    """The background job enqueued when the contract is signed (and by 重新放款): `disburse` in a worker."""
    settings = current_settings()
    applications = per_process(Applications.from_settings, settings)
    try:
        outcome = disburse(settings, application_id, applications)
    except LendingError as exc:  # not signed, or no such application: nothing to pay, nothing to retry
        log.warning("disbursement of application %s refused: %s", application_id, exc)
        return "refused"
    log.info("disbursement of application %s: %s", application_id, outcome)
    return outcome


def retry(session: Session, application_id: int, actor: str, jobs: Jobs) -> Disbursement:
    """The officer's 重新放款: take a failed disbursement up again, the job enqueued after the commit."""
    application = session.get(LoanApplication, application_id, with_for_update=True)
    if application is None:
        raise ApplicationNotFound("没有找到这笔贷款申请")
    record = record_of(session, application_id)
    if application.status != "signed" or record is None or record.status != "failed":
        raise NothingToRetry("这笔申请没有失败的放款，不能重新放款")
    record.status, record.attempts = "pending", 0
    note(session, application_id, actor, "disbursement_retried", "重新放款", idempotency_key=record.idempotency_key)
    audit(session, actor, "disbursement.retried", "loan_application", application_id)
    after_commit(session, lambda: jobs.disburse(application_id))
    return record


# --- inside ------------------------------------------------------------------------------


def record_of(session: Session, application_id: int) -> Disbursement | None:
    """The application's disbursement record, if the job has run."""
    return session.scalar(select(Disbursement).where(Disbursement.application_id == application_id))


def _take_order(database_url: str, application_id: int, secret_key: str) -> Order | None:
    """Step 1: check the application and commit the disbursement record before the core is called."""
    with unit_of_work(database_url) as session:
        application = session.get(LoanApplication, application_id, with_for_update=True)
        if application is None:
            raise ApplicationNotFound("没有找到这笔贷款申请")
        if application.status == "disbursed":
            return None
        if application.status != "signed":
            raise NotSigned(f"申请{application_id}还没有签订借款合同，不能放款")
        product = application.product
        record = record_of(session, application_id)
        if record is None:
            plan = schedule(
                product.repayment_method,
                application.amount * 100,
                product.annual_rate_bp,
                application.term_months,
                clock.today(),
            )
            record = Disbursement(
                application_id=application_id,
                idempotency_key=idempotency_key(application_id),
                status="pending",
                attempts=0,
                schedule=[i.as_dict() for i in plan],
            )
            session.add(record)
        elif record.status == "failed":
            raise NothingToRetry(f"申请{application_id}的放款已失败，需客户经理在控制台重新放款")
        record.attempts += 1
        customer = application.customer
        return Order(
            application_id=application_id,
            key=record.idempotency_key,
            attempt=record.attempts,
            contract_no=f"SUN-{application_id:010d}",
            id_number=unseal(secret_key, customer.id_sealed),
            name=customer.name,
            product_code=product.code,
            principal_fen=application.amount * 100,
            annual_rate_bp=product.annual_rate_bp,
            term_months=application.term_months,
            repayment_method=product.repayment_method,
            schedule=list(record.schedule),
        )


def _record(database_url: str, order: Order, applications: Applications, booked: CoreLoan, paid: Payment) -> None:
    """Step 3: the loan recorded, the application disbursed, the customer told."""
    with unit_of_work(database_url) as session:
        record = record_of(session, order.application_id)
        application = session.get(LoanApplication, order.application_id, with_for_update=True)
        if application is None or record is None:
            raise ApplicationNotFound("没有找到这笔贷款申请")
        if application.status == "disbursed":  # a racing run recorded it first
            return
        applications.disburse(session, order.application_id, booked, paid)
        record.status, record.error_code, record.error = "paid", None, None
        audit(session, "system", "loan.disbursed", "loan_application", order.application_id, loan_no=booked.loan_no)


def _fail(database_url: str, order: Order, code: str, reason: str, notify: OfficerNotifier) -> None:
    """The core refused, or never answered: recorded in the history, the officer told."""
    with unit_of_work(database_url) as session:
        record = record_of(session, order.application_id)
        application = session.get(LoanApplication, order.application_id)
        if record is None or application is None:
            raise ApplicationNotFound("没有找到这笔贷款申请")
        record.status, record.error_code, record.error = "failed", code, reason
        note(
            session,
            order.application_id,
            "core_banking",
            "disbursement_failed",
            reason,
            code=code,
            attempts=record.attempts,
            idempotency_key=record.idempotency_key,
        )
        customer = application.customer
        text = (
            f"申请{application.id}（{mask_name(customer.name)}，{application.product.name}"
            f"{format_amount(application.amount)}）放款失败：{reason}。请核实后在控制台点“重新放款”。"
        )
        notify(session, customer.officer_id, text)
