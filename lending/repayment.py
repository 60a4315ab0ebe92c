"""Repayment schedules and the early-repayment amount, exact to the fen (分). Pure functions.

Three repayment methods (a product's `repayment_method`, lending/products.yml):

- `equal_instalments` (等额本息): the same payment every month,
  P·r·(1+r)^n / ((1+r)^n − 1) with the monthly rate r = annual rate / 12, rounded
  to the fen; each month's interest is the outstanding principal × r, the rest of
  the payment is principal, and the last instalment takes the principal left (so
  the principal sums exactly to what was lent).
- `interest_monthly` (按月付息、到期还本): each month the interest on the whole
  principal (principal × annual rate / 12), the principal with the last instalment.
- `revolving` (随借随还): interest each month on what is drawn, for the days it was
  drawn (actual days × annual rate / 360), and the principal at maturity at the
  latest; it may be repaid, whole or in part, any day without a fee.

Due dates are monthly from the disbursement date (a Beijing date, sunshine.clock):
the first a month after it, on the same day of the month, or the month's last day
when it has no such day (31 January → 28 February).

Interest accrues daily (the bank's day count, actual/360): the interest accrued on
a day is the principal outstanding × annual rate / 360. Repaying early on a date
costs the principal outstanding, the interest of instalments already due and not
paid, and the interest accrued on the principal outstanding from the last due date
(or the disbursement) to that date; no interest is charged for the days after.
Amounts round half up to the fen.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

METHODS = ("equal_instalments", "interest_monthly", "revolving")
# How customers and officers read each method.
METHOD_LABELS = {
    "equal_instalments": "等额本息",
    "interest_monthly": "按月付息、到期还本",
    "revolving": "随借随还",
}
DAYS_PER_YEAR = 360
BASIS_POINTS = Decimal(10000)


@dataclass(frozen=True)
class Instalment:
    """One instalment as scheduled: its number (from 1), due date, principal and interest in fen."""

    number: int
    due_date: date
    principal_fen: int
    interest_fen: int

    @property
    def amount_fen(self) -> int:
        return self.principal_fen + self.interest_fen

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "due_date": self.due_date.isoformat(),
            "principal_fen": self.principal_fen,
            "interest_fen": self.interest_fen,
        }


@dataclass(frozen=True)
class InstalmentState:
    """An instalment with what was paid on it (payments go to interest first, then principal)."""

    instalment: Instalment
    paid_fen: int = 0

    @property
    def interest_unpaid_fen(self) -> int:
        return max(self.instalment.interest_fen - self.paid_fen, 0)

    @property
    def principal_unpaid_fen(self) -> int:
        paid_on_principal = max(self.paid_fen - self.instalment.interest_fen, 0)
        return max(self.instalment.principal_fen - paid_on_principal, 0)


@dataclass(frozen=True)
class EarlyRepayment:
    """What repaying the whole loan on `on` costs, in fen."""

    on: date
    principal_fen: int
    interest_due_fen: int  # interest of instalments already due, not paid
    interest_accrued_fen: int  # accrued since the last due date (or the disbursement)

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.interest_due_fen + self.interest_accrued_fen


def fen(x: Decimal) -> int:
    """A Decimal amount of fen, rounded half up to a whole fen."""
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def add_months(start: date, months: int) -> date:
    """The same day `months` months later, or that month's last day when it has none."""
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_dates(disbursed_on: date, term_months: int) -> list[date]:
    """The monthly due dates, the first a month after the disbursement."""
    return [add_months(disbursed_on, k) for k in range(1, term_months + 1)]


def schedule(
    method: str, principal_fen: int, annual_rate_bp: int, term_months: int, disbursed_on: date
) -> list[Instalment]:
    """The instalments of a loan of `principal_fen` at `annual_rate_bp` (435 = 4.35% a year)."""
    if method not in METHODS:
        raise ValueError(f"repayment method must be one of {', '.join(METHODS)}, not {method!r}")
    if principal_fen <= 0 or term_months <= 0 or annual_rate_bp < 0:
        raise ValueError("principal and term must be positive, the rate not negative")
    dates = due_dates(disbursed_on, term_months)
    annual = Decimal(annual_rate_bp) / BASIS_POINTS
    monthly = annual / 12
    if method == "equal_instalments":
        return _equal_instalments(principal_fen, monthly, dates)
    out = []
    previous = disbursed_on
    for number, due in enumerate(dates, 1):
        if method == "interest_monthly":
            interest = fen(principal_fen * monthly)
        else:  # revolving: actual days drawn
            interest = fen(principal_fen * annual * (due - previous).days / DAYS_PER_YEAR)
        out.append(Instalment(number, due, principal_fen if number == term_months else 0, interest))
        previous = due
    return out


def _equal_instalments(principal_fen: int, monthly: Decimal, dates: list[date]) -> list[Instalment]:
    n = len(dates)
    if monthly == 0:
        payment = Decimal(principal_fen) / n
    else:
        growth = (1 + monthly) ** n
        payment = principal_fen * monthly * growth / (growth - 1)
    payment_fen = fen(payment)
    out, outstanding = [], principal_fen
    for number, due in enumerate(dates, 1):
        interest = fen(outstanding * monthly)
        principal = outstanding if number == n else min(payment_fen - interest, outstanding)
        out.append(Instalment(number, due, principal, interest))
        outstanding -= principal
    return out


def next_due(states: Sequence[InstalmentState]) -> InstalmentState | None:
    """The first instalment not fully paid (the one the customer must pay next), if any."""
    return next((s for s in states if s.interest_unpaid_fen or s.principal_unpaid_fen), None)


def early_repayment(
    states: Sequence[InstalmentState], annual_rate_bp: int, disbursed_on: date, on: date
) -> EarlyRepayment:
    """What repaying everything on `on` costs (the rule in the module docstring)."""
    if on < disbursed_on:
        raise ValueError("cannot repay before the disbursement")
    principal = sum(s.principal_unpaid_fen for s in states)
    due_interest = sum(s.interest_unpaid_fen for s in states if s.instalment.due_date <= on)
    since = max((s.instalment.due_date for s in states if s.instalment.due_date <= on), default=disbursed_on)
    annual = Decimal(annual_rate_bp) / BASIS_POINTS
    accrued = fen(principal * annual * (on - since).days / DAYS_PER_YEAR) if principal else 0
    return EarlyRepayment(on, principal, due_interest, accrued)


def yuan_text(amount_fen: int) -> str:
    """1,234.56元: an amount in fen as a customer's message says it."""
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}元"
