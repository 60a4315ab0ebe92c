"""What a customer can borrow: the pre-granted line, what is used, what is
promised to applications still in progress, what is left, and which products fit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from lending.catalog import products_offered
from sunshine import clock
from sunshine.models import CreditLine, CreditLineChange, Customer, LoanApplication, utcnow

# Applications whose amount is held against the line until they are disbursed or end.
RESERVING_STATUSES = ("submitted", "awaiting_authorization", "under_review", "approved")


@dataclass(frozen=True)
class CreditLineView:
    customer_name: str
    village: str | None
    amount: int
    used: int
    valid_until: date
    products: tuple[str, ...]
    pending: int = 0  # applied for, not yet disbursed

    @property
    def available(self) -> int:
        return max(self.amount - self.used - self.pending, 0)


def pending_amount(session: Session, customer_id: int, excluding_application: int | None = None) -> int:
    """The amounts of the customer's applications in progress (submitted to approved)."""
    query = select(func.coalesce(func.sum(LoanApplication.amount), 0)).where(
        LoanApplication.customer_id == customer_id, LoanApplication.status.in_(RESERVING_STATUSES)
    )
    if excluding_application is not None:
        query = query.where(LoanApplication.id != excluding_application)
    return session.scalar(query)


def valid_line(session: Session, customer_id: int, today: date) -> CreditLine | None:
    """The customer's pre-granted line that is valid today (the latest-ending one)."""
    return session.scalar(
        select(CreditLine)
        .where(CreditLine.customer_id == customer_id, CreditLine.valid_until >= today)
        .order_by(CreditLine.valid_until.desc())
    )


def current_line(
    session: Session, customer: Customer, today: date | None = None, excluding_application: int | None = None
) -> CreditLineView | None:
    """The customer's valid pre-granted line, or None when there is none.

    `products` are those that serve the customer's type and whose smallest
    amount fits in what is left (the answer to 我能贷多少).
    """
    line = valid_line(session, customer.id, today or clock.today())
    if line is None:
        return None
    view = CreditLineView(
        customer_name=customer.name,
        village=customer.village,
        amount=line.amount,
        used=line.used_amount,
        valid_until=line.valid_until,
        products=(),
        pending=pending_amount(session, customer.id, excluding_application),
    )
    return replace(
        view,
        products=tuple(p.name for p in products_offered(session, customer) if p.min_amount <= view.available),
    )


# Where a line's change came from, as officers read it.
CHANGE_SOURCES = {"village_file": "整村授信档案", "inspection": "年检", "migration": "迁移前已有"}


@dataclass(frozen=True)
class LineChange:
    """One change of a credit line; old_amount None: granted."""

    credit_line_id: int
    customer_id: int
    old_amount: int | None
    new_amount: int
    old_valid_until: date | None
    new_valid_until: date
    source: str
    actor: str
    reason: str = ""
    at: datetime | None = None


def record_line_changes(session: Session, changes: Iterable[LineChange]) -> int:
    """The one writer of a line's history (credit_line_changes), many at once; returns how many."""
    now = utcnow()
    rows = [{**asdict(c), "at": c.at or now} for c in changes]
    for row in rows:
        if row["source"] not in CHANGE_SOURCES:
            raise ValueError(f"unknown credit-line change source {row['source']!r}")
    if rows:
        session.execute(insert(CreditLineChange.__table__), rows)
    return len(rows)


def change_line(
    session: Session, line: CreditLine, amount: int, valid_until: date, source: str, actor: str, reason: str = ""
) -> bool:
    """Set a line's amount and validity (增持减退, renewal) and record the change; False when
    nothing changes."""
    if (line.amount, line.valid_until) == (amount, valid_until):
        return False
    change = LineChange(
        line.id, line.customer_id, line.amount, amount, line.valid_until, valid_until, source, actor, reason
    )
    line.amount, line.valid_until = amount, valid_until
    session.flush()
    record_line_changes(session, [change])
    return True


def line_history(session: Session, customer_id: int) -> list[CreditLineChange]:
    """Every change of the customer's lines, newest first."""
    return list(
        session.scalars(
            select(CreditLineChange)
            .where(CreditLineChange.customer_id == customer_id)
            .order_by(CreditLineChange.at.desc(), CreditLineChange.id.desc())
        )
    )
