"""What a customer can borrow: the pre-granted line, what is used, what is left."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from lending.catalog import products_for
from sunshine.models import CreditLine, Customer


@dataclass(frozen=True)
class CreditLineView:
    customer_name: str
    village: str | None
    amount: int
    used: int
    valid_until: date
    products: tuple[str, ...]

    @property
    def available(self) -> int:
        return max(self.amount - self.used, 0)


def current_line(session: Session, customer: Customer, today: date | None = None) -> CreditLineView | None:
    """The customer's valid pre-granted line, or None when there is none."""
    today = today or date.today()
    line = session.scalar(
        select(CreditLine)
        .where(CreditLine.customer_id == customer.id, CreditLine.valid_until >= today)
        .order_by(CreditLine.valid_until.desc()))
    if line is None:
        return None
    return CreditLineView(
        customer_name=customer.name, village=customer.village, amount=line.amount, used=line.used_amount,
        valid_until=line.valid_until,
        products=tuple(p.name for p in products_for(session, customer.customer_type)))
