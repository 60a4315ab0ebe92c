"""The console's 重新放款 after a failed disbursement: shown, CSRF-protected, audited, enqueued."""

from dataclasses import replace

import requests
from sqlalchemy import select

from lending.disbursement import disburse
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, AuditEntry, Disbursement
from tests.unit.lending_helpers import service, sign
from tests.unit.test_lending_applications import apply_zhang, zhang_reports
from tests.web.test_console_and_api import csrf_of, login


class Enqueued:
    """The jobs the web app enqueues (only the disbursement is expected here)."""

    def __init__(self):
        self.disbursed: list[int] = []

    def disburse(self, application_id: int) -> None:
        self.disbursed.append(application_id)


def failed_disbursement(demo_settings, corebank) -> int:
    client, url, _ = corebank
    svc, _ = service(core_banking=client)
    app_id = apply_zhang(demo_settings.database_url, svc)
    with unit_of_work(demo_settings.database_url) as s:
        svc.report_arrived(s, app_id, zhang_reports())
        sign(s, svc, app_id)
    requests.post(f"{url}/_emulator/faults", json={"mode": "refuse", "path": "disbursements"}, timeout=5)
    settings = replace(demo_settings, core_banking_url=url)
    assert disburse(settings, app_id, svc, notify=lambda *a: None) == "failed"
    return app_id


def test_the_officer_retries_a_failed_disbursement(make_client, demo_settings, corebank):
    app_id = failed_disbursement(demo_settings, corebank)
    jobs = Enqueued()
    client = make_client(jobs=jobs)
    login(client)
    page = client.get(f"/console/applications/{app_id}")
    text = page.data.decode()
    assert "放款失败" in text and "重新放款" in text and "结算账户状态异常（冻结）" in text and "已签约" in text
    # no CSRF token: refused, nothing enqueued
    refused = client.post(f"/console/applications/{app_id}/disbursement")
    assert refused.status_code == 400 and jobs.disbursed == []
    done = client.post(f"/console/applications/{app_id}/disbursement", data={"csrf": csrf_of(page.data)})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/console/applications/{app_id}")
    assert jobs.disbursed == [app_id]
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(Disbursement.status)) == "pending"
        retried = s.scalar(select(ApplicationEvent).where(ApplicationEvent.action == "disbursement_retried"))
        assert retried.actor == "officer:officer01"
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "disbursement.retried")) == retried.actor
    after = client.get(f"/console/applications/{app_id}").data.decode()
    assert "已重新提交放款" in after and 'id="disbursement"' not in after
    # again, with nothing failed: a clear refusal, nothing enqueued
    again = client.post(f"/console/applications/{app_id}/disbursement", data={"csrf": csrf_of(page.data)})
    assert again.status_code == 302 and jobs.disbursed == [app_id]
    assert "没有失败的放款" in client.get(f"/console/applications/{app_id}").data.decode()


def test_a_disbursed_application_shows_its_loan(make_client, demo_settings, corebank):
    client, url, _ = corebank
    svc, _ = service(core_banking=client)
    app_id = apply_zhang(demo_settings.database_url, svc)
    with unit_of_work(demo_settings.database_url) as s:
        svc.report_arrived(s, app_id, zhang_reports())
        sign(s, svc, app_id)
    assert disburse(replace(demo_settings, core_banking_url=url), app_id, svc) == "paid"
    web = make_client(jobs=Enqueued())
    login(web)
    page = web.get(f"/console/applications/{app_id}").data.decode()
    assert 'id="loan"' in page and "正常还款中" in page and "50,000.00元" in page and "随借随还" in page
    assert "第1期" in page and "核心系统" in page and 'id="disbursement"' not in page
