"""Disbursement through core banking (lending.disbursement): exactly once, refusals, retries,
and the loan data it leaves (lending.loans)."""

from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from clients.corebank import CoreBankingClient
from emulators.corebank.api import settlement_account_for
from lending.applications import Applications
from lending.disbursement import NothingToRetry, NotSigned, disburse, idempotency_key, retry
from lending.loans import early_repayment_of, loans_of, schedule_of, sync_loan
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, AuditEntry, Disbursement, Loan, LoanApplication
from tests.unit.loan_helpers import approved
from tests.unit.test_lending_applications import ZHANG, ZHANG_ID


class Officers:
    """An officer notifier that keeps what it was given."""

    def __init__(self):
        self.told: list[tuple[int | None, str]] = []

    def __call__(self, session, officer_id, text):
        self.told.append((officer_id, text))


def events(settings, app_id) -> list[ApplicationEvent]:
    with unit_of_work(settings.database_url) as s:
        rows = s.scalars(
            select(ApplicationEvent).where(ApplicationEvent.application_id == app_id).order_by(ApplicationEvent.id)
        )
        return [(e.action, e.to_status, e.reason, e.detail) for e in rows]


def test_a_signed_loan_is_paid_out_with_its_schedule_and_the_customer_told(core):
    settings, svc, told, url, state = core
    app_id = approved(settings, svc)
    assert disburse(settings, app_id, svc) == "paid"
    assert len(state["disbursements"]) == 1 and state["disbursements"][0]["amount_fen"] == 5_000_000
    with unit_of_work(settings.database_url) as s:
        application = s.get(LoanApplication, app_id)
        (loan,) = loans_of(s, application.customer_id)
        assert (application.status, application.loan_account) == ("disbursed", loan.account_no)
        assert (loan.status, loan.principal_fen, loan.repayment_method) == ("active", 5_000_000, "revolving")
        assert loan.disbursed_on == clock.today() and len(loan.instalments) == 12
        plan = schedule_of(loan)
        first = plan.next_due
        assert first.number == 1 and first.due_date.month == (clock.today().month % 12) + 1
        assert sum(i.principal_fen for i in plan.instalments) == 5_000_000
        account = loan.settlement_account
        assert s.get(Disbursement, 1).status == "paid"
    expected = (
        f"您的阳光e贷贷款5万元已发放到您尾号{account[-4:]}的账户，借据号{loan.account_no}。"
        f"首期还款日{first.due_date.year}年{first.due_date.month}月{first.due_date.day}日，"
        f"应还{first.interest_fen // 100:,}.{first.interest_fen % 100:02d}元（随借随还），请在还款日前把钱存入该账户。"
        "按时还款能保持良好信用。"
    )
    assert told.sent[-1] == (ZHANG, expected)
    action, to_status, reason, detail = events(settings, app_id)[-1]
    assert (action, to_status, reason) == ("disbursed", "disbursed", f"已放款至客户结算账户尾号{account[-4:]}")
    assert detail["loan_account"] == loan.account_no and detail["amount_fen"] == 5_000_000
    # run again (a duplicate job): nothing is paid twice
    assert disburse(settings, app_id, svc) == "already_paid"
    assert len(state["disbursements"]) == 1


def test_an_unsigned_application_is_refused_and_the_core_not_called(core):
    settings, svc, _, _, state = core
    app_id = approved(settings, svc, signed=False)
    with pytest.raises(NotSigned, match="还没有签订借款合同"):
        disburse(settings, app_id, svc)
    assert state["requests"] == []
    with unit_of_work(settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "approved"
        assert s.scalar(select(func.count()).select_from(Disbursement)) == 0


def test_a_refusal_goes_to_the_officer_and_the_application_stays_signed(core):
    settings, svc, told, url, state = core
    app_id = approved(settings, svc)
    requests.post(f"{url}/_emulator/faults", json={"mode": "refuse", "path": "disbursements"}, timeout=5)
    officers = Officers()
    assert disburse(settings, app_id, svc, notify=officers) == "failed"
    assert state["disbursements"] == []
    with unit_of_work(settings.database_url) as s:
        application = s.get(LoanApplication, app_id)
        assert application.status == "signed" and application.loan_account is None
        assert s.scalar(select(func.count()).select_from(Loan)) == 0
        record = s.scalar(select(Disbursement))
        assert (record.status, record.error_code) == ("failed", "E0202")
        officer_id = application.customer.officer_id
    reason = "核心系统拒绝放款：结算账户状态异常（冻结），不能入账（E0202）"
    assert events(settings, app_id)[-1][:3] == ("disbursement_failed", "signed", reason)
    assert officers.told == [
        (officer_id, f"申请{app_id}（张**，阳光e贷5万元）放款失败：{reason}。请核实后在控制台点“重新放款”。")
    ]
    assert "发放" not in told.sent[-1][1]
    # a duplicate job does not try again by itself: only the officer's retry does
    with pytest.raises(NothingToRetry):
        disburse(settings, app_id, svc, notify=officers)


def test_the_officers_retry_pays_after_a_refusal(core):
    settings, svc, _, url, state = core
    app_id = approved(settings, svc)
    requests.post(f"{url}/_emulator/faults", json={"mode": "refuse", "path": "disbursements"}, timeout=5)
    assert disburse(settings, app_id, svc, notify=Officers()) == "failed"

    class Enqueued:
        def __init__(self):
            self.ids: list[int] = []

        def disburse(self, application_id):
            self.ids.append(application_id)

    jobs = Enqueued()
    with unit_of_work(settings.database_url) as s:
        retry(s, app_id, "officer:officer01", jobs)
        assert jobs.ids == []  # after the commit only
    assert jobs.ids == [app_id]
    with unit_of_work(settings.database_url) as s:
        assert s.scalar(select(Disbursement.status)) == "pending"
        with pytest.raises(NothingToRetry, match="没有失败的放款"):
            retry(s, app_id, "officer:officer01", jobs)
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "disbursement.retried"))
    assert events(settings, app_id)[-1][:2] == ("disbursement_retried", "signed")
    assert disburse(settings, app_id, svc) == "paid"
    assert len(state["disbursements"]) == 1


def test_a_lost_answer_is_retried_under_the_same_key_and_pays_once(core):
    """The crash between our record and the core's answer: the core booked and paid, we never heard."""
    settings, svc, told, url, state = core
    app_id = approved(settings, svc)
    requests.post(f"{url}/_emulator/faults", json={"mode": "slow", "delay": 1.0, "path": "disbursements"}, timeout=5)
    client = svc.core_banking
    impatient = Applications(
        svc.secret_key,
        svc.notify,
        clock=svc.clock,
        core_banking=CoreBankingClient(url, client.channel_id, client.secret, timeout=0.3),
    )
    later: list[tuple[int, float]] = []
    assert disburse(settings, app_id, impatient, retry_later=lambda *a: later.append(a)) == "retrying"
    assert later == [(app_id, 2.0)]
    with unit_of_work(settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "signed"
        assert s.scalar(select(Disbursement.attempts)) == 1
    assert disburse(settings, app_id, svc) == "paid"  # the job again, as the worker would
    assert len(state["disbursements"]) == 1
    keys = [r["key"] for r in state["requests"] if "disbursements" in r["path"]]
    assert keys == [idempotency_key(app_id)] * 2
    with unit_of_work(settings.database_url) as s:
        (loan,) = s.scalars(select(Loan).order_by(Loan.id)).all()
        assert s.get(LoanApplication, app_id).status == "disbursed"
    opening = settlement_account_for(ZHANG_ID)[1]
    assert client.deposit_account(loan.settlement_account).balance_fen == opening + 5_000_000


def test_a_core_that_never_answers_fails_after_the_attempts(core):
    settings, svc, _, url, state = core
    settings = replace(settings, disbursement_attempts=2)
    app_id = approved(settings, svc)
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "count": 5, "path": "loans"}, timeout=5)
    officers, later = Officers(), []
    assert disburse(settings, app_id, svc, retry_later=lambda *a: later.append(a), notify=officers) == "retrying"
    assert disburse(settings, app_id, svc, retry_later=lambda *a: later.append(a), notify=officers) == "failed"
    assert later == [(app_id, 2.0)]
    assert events(settings, app_id)[-1][:3] == ("disbursement_failed", "signed", "核心系统无应答（已尝试2次）")
    assert len(officers.told) == 1 and state["disbursements"] == []


def test_the_loan_follows_the_core_repayments_overdue_and_early_repayment(core):
    settings, svc, _, url, _ = core
    app_id = approved(settings, svc)
    disburse(settings, app_id, svc)
    client = svc.core_banking
    with unit_of_work(settings.database_url) as s:
        loan = s.scalar(select(Loan))
        first = schedule_of(loan).next_due
        client.repay(loan.account_no, first.interest_fen, "repay-1")
        later = first.due_date + timedelta(days=40)
        requests.post(f"{url}/_emulator/today", json={"date": later.isoformat()}, timeout=5)
        sync_loan(s, client, loan.id)
        plan = schedule_of(loan)
        assert (loan.status, plan.instalments[0].status, plan.instalments[1].status) == ("overdue", "paid", "overdue")
        assert loan.overdue_fen == plan.instalments[1].interest_fen and plan.next_due.number == 2
        early = early_repayment_of(loan, later)
        days = (later - plan.instalments[1].due_date).days
        assert early.principal_fen == 5_000_000 and early.interest_due_fen == plan.instalments[1].interest_fen
        assert days == 9 and early.interest_accrued_fen == 5438  # 5,000,000 × 4.35% × 9 / 360 = 5,437.5, half up
        assert early.total_fen == 5_000_000 + plan.instalments[1].interest_fen + 5438


def test_sync_loans_copies_every_live_loan_and_the_command_says_so(core, capsys):
    from lending.__main__ import main

    settings, svc, _, url, _ = core
    app_id = approved(settings, svc)
    disburse(settings, app_id, svc)
    past_maturity = clock.today() + timedelta(days=400)
    requests.post(f"{url}/_emulator/today", json={"date": past_maturity.isoformat()}, timeout=5)
    assert main(["sync-loans"], settings=settings) == 0
    assert "已与核心系统同步贷款1笔，失败0笔" in capsys.readouterr().out
    with unit_of_work(settings.database_url) as s:
        loan = s.scalar(select(Loan))
        assert loan.status == "overdue" and loan.overdue_fen == sum(
            i.principal_fen + i.interest_fen for i in loan.instalments
        )
        assert all(i.status == "overdue" for i in loan.instalments)
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "path": "loans"}, timeout=5)
    assert main(["sync-loans"], settings=settings) == 1
    assert "失败1笔" in capsys.readouterr().out


def test_the_sync_job_is_enqueued_on_the_loan_s_queue_and_runs_with_the_process_settings(core, monkeypatch):
    from rq import Queue

    from lending.loans import sync_job
    from sunshine.jobs import Jobs, current_settings, per_process, queue_name

    settings, svc, _, url, _ = core
    app_id = approved(settings, svc)
    disburse(settings, app_id, svc)
    with unit_of_work(settings.database_url) as s:
        loan_id = s.scalar(select(Loan.id))
    jobs = Jobs(settings)
    jobs.sync_loan(loan_id)
    (job,) = Queue(queue_name(f"loan:{loan_id}", settings.worker_processes), connection=jobs.connection).jobs
    assert (job.func_name, job.args) == ("lending.loans.sync_job", (loan_id,))
    for name, value in (("DATABASE_URL", settings.database_url), ("CORE_BANKING_URL", url)):
        monkeypatch.setenv(name, value)
    current_settings.cache_clear()
    per_process.cache_clear()
    try:
        requests.post(
            f"{url}/_emulator/today", json={"date": (clock.today() + timedelta(days=45)).isoformat()}, timeout=5
        )
        assert sync_job(loan_id) == "overdue"
    finally:
        current_settings.cache_clear()
        per_process.cache_clear()
