"""What a customer can borrow: the pre-granted line, what is used, what is
promised to applications still in progress, what is left, and which products fit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lending.catalog import products_for
from sunshine import clock
from sunshine.models import CreditLine, Customer, LoanApplication

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
        products=tuple(p.name for p in products_for(session, customer.customer_type) if p.min_amount <= view.available),
    )
