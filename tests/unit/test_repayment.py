"""Repayment schedules and the early-repayment amount (lending.repayment): exact to the fen."""

from datetime import date

import pytest

from lending.repayment import (
    METHODS,
    InstalmentState,
    add_months,
    due_dates,
    early_repayment,
    next_due,
    schedule,
    yuan_text,
)

DISBURSED = date(2026, 12, 6)


def test_due_dates_are_monthly_and_keep_to_the_month_end():
    assert due_dates(DISBURSED, 3) == [date(2027, 1, 6), date(2027, 2, 6), date(2027, 3, 6)]
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert [d.day for d in due_dates(date(2027, 1, 31), 3)] == [28, 31, 30]


def test_equal_instalments_pay_the_same_each_month_and_the_principal_exactly():
    # 50,000 yuan, 4.35% a year, 12 months: 50,000 × r(1+r)^12 / ((1+r)^12 − 1) = 4,265.495... yuan
    plan = schedule("equal_instalments", 5_000_000, 435, 12, DISBURSED)
    assert len(plan) == 12 and plan[0].due_date == date(2027, 1, 6)
    assert {i.amount_fen for i in plan[:-1]} == {426_550}
    assert abs(plan[-1].amount_fen - 426_550) <= len(plan)  # the last takes the rounding (under a fen a month)
    assert sum(i.principal_fen for i in plan) == 5_000_000
    assert plan[0].interest_fen == 18_125  # 5,000,000 × 0.0435 / 12 = 18,125.0
    assert [i.interest_fen for i in plan] == sorted((i.interest_fen for i in plan), reverse=True)
    assert sum(i.interest_fen for i in plan) == 118_594


def test_interest_monthly_repays_the_principal_at_maturity():
    plan = schedule("interest_monthly", 10_000_000, 520, 12, DISBURSED)
    assert [i.principal_fen for i in plan] == [0] * 11 + [10_000_000]
    assert {i.interest_fen for i in plan} == {43_333}  # 100,000 × 5.2% / 12 = 433.333... yuan, rounded


def test_revolving_charges_the_days_drawn():
    plan = schedule("revolving", 5_000_000, 435, 3, DISBURSED)
    # 31, 31 and 28 days: 5,000,000 × 0.0435 × days / 360
    assert [i.interest_fen for i in plan] == [18_729, 18_729, 16_917]
    assert [i.principal_fen for i in plan] == [0, 0, 5_000_000]


def test_rounding_is_half_up_to_the_fen():
    # 1,000.01 yuan at 3.6%: 100,001 × 0.003 = 300.003 fen -> 300; 3 fen at 10% / 12 = 0.025 -> 0
    assert schedule("interest_monthly", 100_001, 360, 1, DISBURSED)[0].interest_fen == 300
    assert schedule("interest_monthly", 150, 400, 1, DISBURSED)[0].interest_fen == 1  # 0.5 fen rounds up
    odd = schedule("equal_instalments", 100_000, 435, 7, DISBURSED)
    assert sum(i.principal_fen for i in odd) == 100_000 and all(i.principal_fen > 0 for i in odd)


def test_a_rate_of_zero_and_bad_input():
    assert [i.amount_fen for i in schedule("equal_instalments", 1000, 0, 3, DISBURSED)] == [333, 333, 334]
    with pytest.raises(ValueError, match="repayment method"):
        schedule("balloon", 1000, 435, 3, DISBURSED)
    with pytest.raises(ValueError, match="positive"):
        schedule("revolving", 0, 435, 3, DISBURSED)


def test_early_repayment_is_the_principal_plus_the_interest_to_that_day():
    plan = schedule("equal_instalments", 5_000_000, 435, 12, DISBURSED)
    first_paid = [InstalmentState(i, i.amount_fen if i.number == 1 else 0) for i in plan]
    on = date(2027, 1, 16)  # ten days after the first due date
    early = early_repayment(first_paid, 435, DISBURSED, on)
    outstanding = 5_000_000 - plan[0].principal_fen
    assert early.principal_fen == outstanding
    assert early.interest_due_fen == 0
    assert early.interest_accrued_fen == round(outstanding * 0.0435 * 10 / 360)
    assert early.total_fen == early.principal_fen + early.interest_accrued_fen
    assert next_due(first_paid).instalment.number == 2


def test_early_repayment_includes_the_unpaid_interest_already_due_and_nothing_on_the_day():
    plan = schedule("interest_monthly", 1_000_000, 360, 6, DISBURSED)
    nothing_paid = [InstalmentState(i) for i in plan]
    assert early_repayment(nothing_paid, 360, DISBURSED, DISBURSED).total_fen == 1_000_000
    late = early_repayment(nothing_paid, 360, DISBURSED, date(2027, 2, 10))  # two instalments due, unpaid
    assert late.interest_due_fen == 2 * 3_000
    assert late.interest_accrued_fen == 400  # 1,000,000 × 3.6% × 4 days / 360
    with pytest.raises(ValueError, match="before the disbursement"):
        early_repayment(nothing_paid, 360, DISBURSED, date(2026, 12, 1))


def test_paid_in_full_leaves_nothing():
    plan = schedule("revolving", 100_000, 435, 2, DISBURSED)
    paid = [InstalmentState(i, i.amount_fen) for i in plan]
    assert next_due(paid) is None
    assert early_repayment(paid, 435, DISBURSED, date(2027, 3, 1)).total_fen == 0
    assert yuan_text(426_581) == "4,265.81元"


def test_each_product_has_a_known_repayment_method(tmp_path):
    from lending.catalog import PRODUCTS_FILE, ProductFileError, read_products

    methods = {p["code"]: p["repayment_method"] for p in read_products()}
    assert methods["sunshine_e_loan"] == "revolving" and set(methods.values()) <= set(METHODS)
    bad = tmp_path / "products.yml"
    source = PRODUCTS_FILE.read_text(encoding="utf-8")
    bad.write_text(source.replace("repayment_method: revolving", "repayment_method: balloon"), encoding="utf-8")
    with pytest.raises(ProductFileError, match="sunshine_e_loan: repayment_method must be one of"):
        read_products(bad)
