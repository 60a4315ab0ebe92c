"""The officer's working day (今日工作): what waits for them now, group by group, each with
its count, how many are overdue and the most urgent few.

Each group comes from a work source, `source(session, officer, day) -> WorkGroup | None`
(None: not this officer's kind of work, e.g. second approvals for an officer). `SOURCES` are
the hand-off and lending ones; the web app may add others (the annual inspection's).
Everything is counted and limited in SQL, so a busy branch costs a few small queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from handoff.service import REASON_LABELS, SUPERVISOR
from lending.applications import officer_queue
from lending.inspection import due_for_officer
from lending.loans import LIVE_STATUSES
from lending.repayment import yuan_text
from sunshine.clock import in_beijing, utcnow
from sunshine.models import (
    Customer,
    Disbursement,
    HandOff,
    Loan,
    LoanApplication,
    LoanContract,
    LoanInstalment,
    LoanProduct,
    Officer,
)

ROW_LIMIT = 8  # rows shown per group; the count says how many there are


@dataclass(frozen=True)
class WorkDay:
    now: datetime  # naive UTC
    today: date  # in Beijing


@dataclass(frozen=True)
class WorkRow:
    """One piece of work: who, what, by when, and the page it is done on (`page`, `page_id`:
    "hand_off" or "application" and its id; the web app makes the link)."""

    who: str
    what: str
    page: str
    page_id: int
    due: datetime | None = None  # naive UTC
    overdue: bool = False


@dataclass(frozen=True)
class WorkGroup:
    kind: str
    title: str
    count: int
    overdue: int
    rows: tuple[WorkRow, ...]
    empty: str  # what the officer reads when there is nothing


WorkSource = Callable[[Session, Officer, WorkDay], "WorkGroup | None"]


def _count(session: Session, query: Select) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def _hand_offs(session: Session, day: WorkDay, kind: str, title: str, empty: str, owner) -> WorkGroup:
    query = (
        select(HandOff.id, HandOff.reason, HandOff.deadline, Customer.name)
        .outerjoin(Customer, Customer.id == HandOff.customer_id)
        .where(HandOff.status != "closed", owner)
        .order_by(HandOff.priority.desc(), HandOff.deadline, HandOff.id)
    )
    rows = tuple(
        WorkRow(name or "未绑定客户", REASON_LABELS[reason], "hand_off", id_, deadline, deadline < day.now)
        for id_, reason, deadline, name in session.execute(query.limit(ROW_LIMIT))
    )
    overdue = _count(session, query.where(HandOff.deadline < day.now))
    return WorkGroup(kind, title, _count(session, query), overdue, rows, empty)


def my_hand_offs(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """Open hand-offs that are the officer's."""
    return _hand_offs(
        session, day, "hand_offs", "我的转人工会话", "没有等您回复的会话。", HandOff.officer_id == officer.id
    )


def branch_queue(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """Open hand-offs nobody has yet (the branch queue every officer sees)."""
    return _hand_offs(
        session, day, "branch_queue", "支行队列（未分派）", "支行队列是空的。", HandOff.officer_id.is_(None)
    )


def _applications(session: Session, day: WorkDay, kind: str, title: str, empty: str, *where) -> WorkGroup:
    query = officer_queue().join(Customer, Customer.id == LoanApplication.customer_id).where(*where)
    rows = tuple(
        WorkRow(
            name,
            f"{product} {amount:,}元",
            "application",
            id_,
            deadline,
            deadline is not None and deadline < day.now,
        )
        for id_, name, product, amount, deadline in session.execute(
            query.with_only_columns(
                LoanApplication.id,
                Customer.name,
                LoanProduct.name,
                LoanApplication.amount,
                LoanApplication.review_deadline,
            )
            .join(LoanProduct, LoanProduct.code == LoanApplication.product_code)
            .limit(ROW_LIMIT)
        )
    )
    overdue = _count(session, query.where(LoanApplication.review_deadline < day.now))
    return WorkGroup(kind, title, _count(session, query), overdue, rows, empty)


def decisions(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """Applications of the officer's customers waiting for their decision."""
    return _applications(
        session,
        day,
        "decisions",
        "待审批的贷款申请",
        "没有等您审批的申请。",
        Customer.officer_id == officer.id,
        LoanApplication.first_approved_by.is_(None),
    )


def second_approvals(session: Session, officer: Officer, day: WorkDay) -> WorkGroup | None:
    """Supervisors: approvals waiting for a second approval (待复核) they may give (not their own)."""
    if officer.role != SUPERVISOR:
        return None
    return _applications(
        session,
        day,
        "second_approvals",
        "待复核的贷款申请",
        "没有待复核的申请。",
        LoanApplication.first_approved_by.is_not(None),
        LoanApplication.first_approved_by != officer.id,
    )


def overdue_loans(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """Live loans of the officer's customers with an instalment the core calls overdue: what is
    owed and since when (as last synchronised from the core)."""
    owed = LoanInstalment.principal_fen + LoanInstalment.interest_fen - LoanInstalment.paid_fen
    late = (
        select(
            LoanInstalment.loan_id,
            func.min(LoanInstalment.due_date).label("since"),
            func.sum(owed).label("owed"),
        )
        .where(LoanInstalment.status == "overdue")
        .group_by(LoanInstalment.loan_id)
        .subquery()
    )
    query = (
        select(Loan.application_id, Customer.name, late.c.since, late.c.owed)
        .join(late, late.c.loan_id == Loan.id)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(Customer.officer_id == officer.id, Loan.status.in_(LIVE_STATUSES))
        .order_by(late.c.since, Loan.id)
    )
    rows = tuple(
        WorkRow(name, f"逾期{yuan_text(owed)}，已{(day.today - since).days}天", "application", app_id, overdue=True)
        for app_id, name, since, owed in session.execute(query.limit(ROW_LIMIT))
    )
    count = _count(session, query)
    return WorkGroup("overdue_loans", "客户逾期的贷款", count, count, rows, "您的客户没有逾期的贷款。")


CONTRACT_STATES = {"offered": "待客户签署", "locked": "签署已锁定，需重发链接"}


def contracts_waiting(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """Approved applications of the officer's customers whose contract is not signed yet (the
    link expired or locked ones are overdue: the officer sends a new link)."""
    query = (
        select(LoanContract.application_id, Customer.name, LoanContract.status, LoanContract.expires_at)
        .join(LoanApplication, LoanApplication.id == LoanContract.application_id)
        .join(Customer, Customer.id == LoanApplication.customer_id)
        .where(
            Customer.officer_id == officer.id,
            LoanApplication.status == "approved",
            LoanContract.status.in_(CONTRACT_STATES),
        )
        .order_by(LoanContract.expires_at, LoanContract.id)
    )
    stuck = (LoanContract.status == "locked") | (LoanContract.expires_at < day.now)
    rows = tuple(
        WorkRow(
            name,
            "签署链接已过期，需重发链接" if status == "offered" and expires < day.now else CONTRACT_STATES[status],
            "application",
            app_id,
            expires if status == "offered" else None,
            status == "locked" or expires < day.now,
        )
        for app_id, name, status, expires in session.execute(query.limit(ROW_LIMIT))
    )
    return WorkGroup(
        "contracts",
        "等待签署的合同",
        _count(session, query),
        _count(session, query.where(stuck)),
        rows,
        "没有等待签署的合同。",
    )


def refused_disbursements(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """Signed applications of the officer's customers whose disbursement the core refused (or
    never answered): 重新放款 on the application page."""
    query = (
        select(Disbursement.application_id, Customer.name, Disbursement.error_code, Disbursement.error)
        .join(LoanApplication, LoanApplication.id == Disbursement.application_id)
        .join(Customer, Customer.id == LoanApplication.customer_id)
        .where(Customer.officer_id == officer.id, Disbursement.status == "failed", LoanApplication.status == "signed")
        .order_by(Disbursement.updated_at, Disbursement.id)
    )
    rows = tuple(
        WorkRow(name, f"放款失败：{error or code or '核心系统未应答'}", "application", app_id, overdue=True)
        for app_id, name, code, error in session.execute(query.limit(ROW_LIMIT))
    )
    count = _count(session, query)
    return WorkGroup("disbursements", "放款失败待处理", count, count, rows, "没有放款失败的申请。")


def inspections_due(session: Session, officer: Officer, day: WorkDay) -> WorkGroup:
    """The officer's on-site annual inspections not yet submitted (lending.inspection), by deadline."""
    due = due_for_officer(session, officer.id, day.today)
    rows = tuple(
        WorkRow(
            d.inspection.customer.name,
            f"年检上门核查，{d.deadline_text}",
            "inspection",
            d.inspection.id,
            overdue=d.overdue,
        )
        for d in due[:ROW_LIMIT]
    )
    return WorkGroup("inspections", "待上门年检", len(due), sum(d.overdue for d in due), rows, "没有待上门核查的年检。")


SOURCES: tuple[WorkSource, ...] = (
    my_hand_offs,
    branch_queue,
    decisions,
    second_approvals,
    overdue_loans,
    inspections_due,
    contracts_waiting,
    refused_disbursements,
)


def today_work(
    session: Session, officer: Officer, sources: Sequence[WorkSource] = SOURCES, now: datetime | None = None
) -> list[WorkGroup]:
    """The officer's work now, one group per source that applies to them, in the sources' order."""
    moment = now or utcnow()
    day = WorkDay(moment, in_beijing(moment).date())
    return [group for group in (source(session, officer, day) for source in sources) if group is not None]
