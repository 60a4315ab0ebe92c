"""Disbursed loans (借据): stored from the core's booking, kept in sync with the core, and read
for the customer's questions (which loans, what is due next, what repaying early costs).

The schedule is ours (lending.repayment computes it and it is sent to the core when the
loan account is opened); the core is the record of what was paid and what is overdue.
`sync_loan` copies the core's balances and instalment statuses into `loans` and
`loan_instalments`; `sync_job` runs it in a worker, `sync_loans` for every live loan
(`python -m lending sync-loans`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clients.corebank import CoreBankingClient, CoreBankingError, CoreLoan, Payment
from lending.repayment import METHOD_LABELS, EarlyRepayment, Instalment, InstalmentState, early_repayment
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.jobs import current_settings, per_process
from sunshine.models import Loan, LoanApplication, LoanInstalment

log = logging.getLogger(__name__)
LIVE_STATUSES = ("active", "overdue")
# How customers and officers read a loan's status.
LOAN_STATUS_LABELS = {"active": "正常还款中", "overdue": "已逾期", "closed": "已结清"}


def record_loan(session: Session, application: LoanApplication, booked: CoreLoan, paid: Payment, now: datetime) -> Loan:
    """Store the loan the core booked and paid out, with its schedule."""
    product = application.product
    loan = Loan(
        application_id=application.id,
        customer_id=application.customer_id,
        account_no=booked.loan_no,
        settlement_account=paid.account_no,
        principal_fen=booked.principal_fen,
        annual_rate_bp=product.annual_rate_bp,
        term_months=application.term_months,
        repayment_method=product.repayment_method,
        disbursed_at=now,
        disbursed_on=paid.value_date,
        status="active",
        principal_outstanding_fen=booked.principal_fen,
        overdue_fen=0,
        synced_at=now,
    )
    session.add(loan)
    for i in booked.instalments:
        loan.instalments.append(
            LoanInstalment(
                number=i.number,
                due_date=i.due_date,
                principal_fen=i.principal_fen,
                interest_fen=i.interest_fen,
                paid_fen=0,
                status="scheduled",
            )
        )
    return loan


def apply_core(loan: Loan, core: CoreLoan, now: datetime) -> None:
    """Copy the core's balances and instalment statuses into `loan`."""
    by_number = {i.number: i for i in core.instalments}
    loan.status = core.status if core.status in ("active", "overdue", "closed") else loan.status
    loan.principal_outstanding_fen = core.principal_outstanding_fen
    loan.overdue_fen = core.overdue_fen
    loan.synced_at = now
    for mine in loan.instalments:
        theirs = by_number.get(mine.number)
        if theirs is not None:
            mine.paid_fen, mine.status = theirs.paid_fen, theirs.status


def sync_loan(session: Session, core: CoreBankingClient, loan_id: int) -> Loan:
    """Read the loan from the core and copy it here (CoreBankingError when the core cannot answer)."""
    loan = session.get(Loan, loan_id, with_for_update=True)
    if loan is None:
        raise LookupError(f"no loan {loan_id}")
    apply_core(loan, core.loan(loan.account_no), clock.utcnow())
    return loan


def sync_job(loan_id: int) -> str:
    """The background job: one loan synchronised from the core."""
    settings = current_settings()
    with unit_of_work(settings.database_url) as session:
        return sync_loan(session, per_process(CoreBankingClient.from_settings, settings), loan_id).status


def sync_loans(settings, core: CoreBankingClient | None = None) -> dict[int, str]:
    """Synchronise every live loan from the core: {loan id: status, or the error}."""
    core = core or CoreBankingClient.from_settings(settings)
    with unit_of_work(settings.database_url) as session:
        ids = session.scalars(select(Loan.id).where(Loan.status.in_(LIVE_STATUSES)).order_by(Loan.id)).all()
    out: dict[int, str] = {}
    for loan_id in ids:
        try:
            with unit_of_work(settings.database_url) as session:
                out[loan_id] = sync_loan(session, core, loan_id).status
        except CoreBankingError as exc:
            log.warning("loan %s not synchronised: %s", loan_id, exc)
            out[loan_id] = f"error: {exc}"
    return out


# --- the customer's questions ----------------------------------------------------------------


@dataclass(frozen=True)
class LoanSchedule:
    """A loan's schedule as last synchronised, with the next instalment to pay."""

    loan: Loan
    instalments: list[LoanInstalment]
    next_due: LoanInstalment | None

    @property
    def next_due_fen(self) -> int:
        """What the next instalment still asks for (0 when all is paid)."""
        if self.next_due is None:
            return 0
        return self.next_due.principal_fen + self.next_due.interest_fen - self.next_due.paid_fen


def loans_of(session: Session, customer_id: int, live_only: bool = False) -> list[Loan]:
    """The customer's loans, newest first."""
    query = select(Loan).where(Loan.customer_id == customer_id)
    if live_only:
        query = query.where(Loan.status.in_(LIVE_STATUSES))
    return list(session.scalars(query.order_by(Loan.disbursed_at.desc(), Loan.id.desc())))


def loan_of_application(session: Session, application_id: int) -> Loan | None:
    return session.scalar(select(Loan).where(Loan.application_id == application_id))


def schedule_of(loan: Loan) -> LoanSchedule:
    """The loan's instalments and the first one not fully paid."""
    instalments = list(loan.instalments)
    next_due = next((i for i in instalments if i.paid_fen < i.principal_fen + i.interest_fen), None)
    return LoanSchedule(loan, instalments, next_due)


def early_repayment_of(loan: Loan, on: date | None = None) -> EarlyRepayment:
    """What repaying the whole loan on `on` (today in Beijing) costs (lending.repayment.early_repayment)."""
    states = [
        InstalmentState(Instalment(i.number, i.due_date, i.principal_fen, i.interest_fen), i.paid_fen)
        for i in loan.instalments
    ]
    return early_repayment(states, loan.annual_rate_bp, loan.disbursed_on, on or clock.today())


# How customers read an instalment's status (the core's).
INSTALMENT_STATUS_LABELS = {"scheduled": "待还", "paid": "已还清", "overdue": "已逾期"}


def owed_fen(instalment: LoanInstalment) -> int:
    """What an instalment still asks for (principal and interest, less what was paid)."""
    return max(instalment.principal_fen + instalment.interest_fen - instalment.paid_fen, 0)


@dataclass(frozen=True)
class RepaymentFacts:
    """One loan as the customer asks about it (我还要还多少 / 哪天还 / 能提前还吗) on `on`, from the
    loan as last synchronised with the core (`synced_at`)."""

    loan: Loan
    product: str
    method: str  # the repayment method as customers read it
    on: date
    upcoming: LoanInstalment | None  # the first unpaid instalment not yet overdue
    overdue: list[LoanInstalment]  # overdue by the core, oldest first
    overdue_days: int  # since the oldest overdue instalment's due date
    remaining_fen: int  # every unpaid instalment's principal and interest, as scheduled
    instalments_left: int
    early: EarlyRepayment | None  # repaying everything on `on` (None once closed)

    @property
    def overdue_fen(self) -> int:
        return sum(owed_fen(i) for i in self.overdue)

    @property
    def maturity(self) -> date:
        return self.loan.instalments[-1].due_date


def facts_of(loan: Loan, on: date | None = None) -> RepaymentFacts:
    """The facts of one loan on `on` (today in Beijing)."""
    on = on or clock.today()
    unpaid = [i for i in loan.instalments if owed_fen(i)]
    overdue = [i for i in unpaid if i.status == "overdue"]
    upcoming = next((i for i in unpaid if i.status != "overdue"), None)
    return RepaymentFacts(
        loan=loan,
        product=loan.application.product.name,
        method=METHOD_LABELS[loan.repayment_method],
        on=on,
        upcoming=upcoming,
        overdue=overdue,
        overdue_days=(on - overdue[0].due_date).days if overdue else 0,
        remaining_fen=sum(owed_fen(i) for i in unpaid),
        instalments_left=len(unpaid),
        early=early_repayment_of(loan, max(on, loan.disbursed_on)) if unpaid else None,
    )


def repayment_facts(session: Session, customer_id: int, on: date | None = None) -> list[RepaymentFacts]:
    """The facts of each of the customer's live loans (active or overdue), newest first."""
    return [facts_of(loan, on) for loan in loans_of(session, customer_id, live_only=True)]
