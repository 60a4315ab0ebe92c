"""Helpers for the loan tests: 张建国's 阳光e贷 approved, signed and paid out through the
core-banking emulator, and the emulator's today moved."""

from __future__ import annotations

from datetime import date

import requests

from lending.disbursement import disburse
from lending.loans import loan_of_application
from sunshine.db import unit_of_work
from sunshine.models import LoanProduct
from tests.unit.lending_helpers import sign
from tests.unit.test_lending_applications import apply_zhang, zhang_reports


def approved(settings, svc, amount=50_000, signed=True) -> int:
    """张建国's 阳光e贷 application, approved (and signed unless told otherwise): its id."""
    app_id = apply_zhang(settings.database_url, svc, amount=amount)
    with unit_of_work(settings.database_url) as s:
        svc.report_arrived(s, app_id, zhang_reports())
        if signed:
            sign(s, svc, app_id)
    return app_id


def paid_out(settings, svc, method: str = "revolving", amount: int = 50_000, wechat: bool = True) -> int:
    """张建国's loan repaid by `method`, paid out through the core (his WeChat unbound unless `wechat`): its id."""
    with unit_of_work(settings.database_url) as s:
        s.get(LoanProduct, "sunshine_e_loan").repayment_method = method
    app_id = approved(settings, svc, amount)
    assert disburse(settings, app_id, svc) == "paid"
    with unit_of_work(settings.database_url) as s:
        loan = loan_of_application(s, app_id)
        if not wechat:
            loan.application.customer.wechat_openid = None
        return loan.id


def core_today(url: str, day: date | None) -> None:
    """Move the core-banking emulator's today (None: back to the project's clock)."""
    resp = requests.post(f"{url}/_emulator/today", json={"date": day.isoformat() if day else None}, timeout=5)
    resp.raise_for_status()
