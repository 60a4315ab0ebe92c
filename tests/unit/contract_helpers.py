"""Helpers for the loan-contract tests: an approved application and the signing service's parts."""

from __future__ import annotations

from dataclasses import dataclass, field

from auth_flow.signing import Terms
from lending.contracts import token_for
from lending.customers import by_openid
from sunshine.clock import utcnow
from sunshine.db import unit_of_work
from tests import TEST_SECRET
from tests.unit.lending_helpers import report, service

ZHANG = "o_demo_zhangjianguo"  # farmer, line 20万, spouse 李秀英, phone 13912340001
ZHANG_ID, SPOUSE_ID = "321283197503120119", "321283197706050229"
TERMS = Terms("阳光农村商业银行", TEST_SECRET, 50_000)


@dataclass
class Disbursals:
    """Records the disbursement jobs queued (sunshine.jobs.Jobs.disburse)."""

    queued: list[int] = field(default_factory=list)

    def disburse(self, application_id: int) -> None:
        self.queued.append(application_id)


def approved(db_url, amount: int = 50_000, purpose: str = "买化肥", wechat: bool = True, **service_kwargs):
    """张建国's 阳光e贷 approved automatically (his WeChat unbound unless `wechat`): (service,
    recorder of notices, application id, contract token)."""
    svc, told = service(**{"clock": utcnow, **service_kwargs})
    with unit_of_work(db_url) as s:
        customer = by_openid(s, ZHANG)
        app = svc.apply(s, customer.id, "sunshine_e_loan", amount, 12, idempotency_key=f"c{amount}", purpose=purpose)
        svc.report_arrived(s, app.id, {"applicant": report(ZHANG_ID, "张建国"), "spouse": report(SPOUSE_ID, "李秀英")})
        assert app.status == "approved", app.risk_hits
        if not wechat:
            customer.wechat_openid = None
        app_id = app.id
    return svc, told, app_id, token_for(TEST_SECRET, app_id)
