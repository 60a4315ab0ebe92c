"""The customer's repayment facts (lending.loans.facts_of, repayment_facts) and the daily
reminder sweep (lending.reminders): before the due date, on it, overdue, each exactly once,
through the core-banking emulator with its today moved in step with the sweep's date."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest
import requests
from rq import Queue
from sqlalchemy import func, select

from lending.__main__ import main
from lending.loans import facts_of, owed_fen, repayment_facts
from lending.reminders import SweepReport, remind_repayments
from lending.repayment import add_months, schedule
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, queue_name
from sunshine.models import AuditEntry, Customer, Loan, RepaymentReminder
from tests.unit.lending_helpers import Recorder
from tests.unit.loan_helpers import core_today, paid_out
from tests.unit.test_lending_applications import ZHANG


def first_due():
    return add_months(clock.today(), 1)


def sweep(settings, svc, url, on, notify=None):
    """The sweep of `on`, the core's today moved to the same date."""
    core_today(url, on)
    notify = notify if notify is not None else Recorder()
    return remind_repayments(settings, notify, core=svc.core_banking, on=on), notify


# --- the facts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, first_principal",
    [("revolving", 0), ("interest_monthly", 0), ("equal_instalments", None)],
)
def test_the_facts_follow_each_repayment_method(core, method, first_principal):
    settings, svc, _, _, _ = core
    loan_id = paid_out(settings, svc, method)
    on = clock.today() + timedelta(days=10)
    plan = schedule(method, 5_000_000, 435, 12, clock.today())
    with unit_of_work(settings.database_url) as s:
        f = facts_of(s.get(Loan, loan_id), on)
        assert (f.product, f.upcoming.number, f.upcoming.due_date) == ("阳光e贷", 1, first_due())
        assert owed_fen(f.upcoming) == plan[0].amount_fen
        if first_principal is not None:
            assert f.upcoming.principal_fen == first_principal  # interest only until maturity
        else:
            assert len({i.amount_fen for i in plan[:-1]}) == 1 and f.upcoming.principal_fen > 0
        assert f.remaining_fen == sum(i.amount_fen for i in plan) and f.instalments_left == 12
        assert (f.overdue, f.overdue_fen, f.overdue_days) == ([], 0, 0)
        assert f.maturity == add_months(clock.today(), 12)
        # repaying early after 10 days: the principal and 10 days' interest, 5,000,000 × 4.35% × 10 / 360
        assert (f.early.principal_fen, f.early.interest_due_fen, f.early.interest_accrued_fen) == (5_000_000, 0, 6042)
        assert f.early.total_fen == 5_006_042


def test_an_overdue_instalment_is_counted_from_its_due_date(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    late = first_due() + timedelta(days=5)
    sweep(settings, svc, url, late)  # synchronises the loan from the core
    with unit_of_work(settings.database_url) as s:
        (f,) = repayment_facts(s, s.get(Loan, loan_id).customer_id, late)
        assert [i.number for i in f.overdue] == [1] and f.overdue_days == 5
        assert f.overdue_fen == owed_fen(f.overdue[0]) == f.loan.overdue_fen > 0
        assert f.upcoming.number == 2 and f.loan.status == "overdue"
        assert f.early.interest_due_fen == f.overdue[0].interest_fen


def test_a_customer_without_a_loan_has_no_facts_and_a_closed_loan_none_to_pay(core):
    settings, svc, _, _, _ = core
    with unit_of_work(settings.database_url) as s:
        zhang = s.scalar(select(Customer).where(Customer.wechat_openid == ZHANG))
        assert repayment_facts(s, zhang.id) == []
    loan_id = paid_out(settings, svc)
    with unit_of_work(settings.database_url) as s:
        loan = s.get(Loan, loan_id)
        for i in loan.instalments:
            i.paid_fen, i.status = i.principal_fen + i.interest_fen, "paid"
        loan.status = "closed"
        s.flush()
        assert repayment_facts(s, loan.customer_id) == []
        f = facts_of(loan)
        assert (f.upcoming, f.early, f.remaining_fen) == (None, None, 0)


# --- the sweep -----------------------------------------------------------------------------------


def reminders(settings) -> list[tuple[int, str, str]]:
    with unit_of_work(settings.database_url) as s:
        rows = s.scalars(select(RepaymentReminder).order_by(RepaymentReminder.id))
        return [(r.instalment_id, r.kind, r.channel) for r in rows]


def test_reminders_go_days_before_on_the_day_and_when_overdue_each_once(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    due = first_due()
    with unit_of_work(settings.database_url) as s:
        loan = s.get(Loan, loan_id)
        account, loan_no, owed = loan.settlement_account[-4:], loan.account_no, owed_fen(loan.instalments[0])
    owed_text = f"{owed // 100:,}.{owed % 100:02d}元"
    due_text = f"{due.year}年{due.month}月{due.day}日"

    report, told = sweep(settings, svc, url, due - timedelta(days=4))
    assert report.sent == [] and told.sent == []  # more than REPAYMENT_REMINDER_DAYS (3) ahead
    report, told = sweep(settings, svc, url, due - timedelta(days=3))
    assert report.sent == [(loan_id, 1, "before")] and report.synced == 1
    assert told.sent == [
        (
            ZHANG,
            f"还款提醒：您的阳光e贷（借据号{loan_no}）第1期将于{due_text}到期（还有3天），应还{owed_text}。"
            f"请在还款日前把钱存入您尾号{account}的账户，到期自动扣款。按时还款能保持良好信用。",
        )
    ]
    details = told.details[0]
    assert (details["kind"], details["fields"]["due_date"], details["fields"]["amount"]) == (
        "repayment_due",
        due_text,
        owed_text.replace(",", ""),
    )
    # a re-run the same day, and the days after: the reminder before the due date went once
    for day in (due - timedelta(days=3), due - timedelta(days=2), due - timedelta(days=1)):
        assert sweep(settings, svc, url, day)[0].sent == []
    report, told = sweep(settings, svc, url, due)
    assert report.sent == [(loan_id, 1, "due_day")] and told.details[0]["kind"] == "repayment_due"
    assert told.sent[0][1].startswith(f"还款提醒：今天（{due_text}）是您的阳光e贷（借据号{loan_no}）第1期的还款日")
    assert sweep(settings, svc, url, due)[0].sent == []
    report, told = sweep(settings, svc, url, due + timedelta(days=1))
    assert report.sent == [(loan_id, 1, "overdue")] and told.details[0]["kind"] == "repayment_overdue"
    assert "还有" + owed_text + "没还上，已逾期1天" in told.sent[0][1] and "转人工" in told.sent[0][1]
    assert sweep(settings, svc, url, due + timedelta(days=2))[0].sent == []
    assert [(kind, channel) for _, kind, channel in reminders(settings)] == [
        ("before", "wechat"),
        ("due_day", "wechat"),
        ("overdue", "wechat"),
    ]


def test_an_instalment_paid_at_the_core_gets_no_more_reminders(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    due = first_due()
    assert sweep(settings, svc, url, due - timedelta(days=3))[0].sent == [(loan_id, 1, "before")]
    with unit_of_work(settings.database_url) as s:
        loan = s.get(Loan, loan_id)
        loan_no, owed = loan.account_no, owed_fen(loan.instalments[0])
    svc.core_banking.repay(loan_no, owed, "repay-first")
    for day in (due, due + timedelta(days=1)):
        assert sweep(settings, svc, url, day)[0].sent == []
    with unit_of_work(settings.database_url) as s:
        assert s.get(Loan, loan_id).instalments[0].status == "paid"


def test_the_sweep_takes_the_date_from_the_clock(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    before = first_due() - timedelta(days=2)
    core_today(url, before)
    told = Recorder()
    with clock.travel_to(before):
        report = remind_repayments(settings, told, core=svc.core_banking)
    assert report.on == before and report.sent == [(loan_id, 1, "before")]
    assert "（还有2天）" in told.sent[0][1]


def test_a_core_that_cannot_answer_sends_nothing_until_it_can(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    late = first_due() + timedelta(days=1)
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "path": "loans"}, timeout=5)
    report, told = sweep(settings, svc, url, late)
    assert list(report.failed) == [loan_id] and told.sent == [] and reminders(settings) == []
    report, told = sweep(settings, svc, url, late)
    assert report.sent == [(loan_id, 1, "overdue")]


def test_a_notice_that_could_not_be_queued_is_tried_again_next_round(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    due = first_due()

    def broken(*args, **kwargs):
        raise ConnectionError("Redis down")

    report, _ = sweep(settings, svc, url, due, notify=broken)
    assert report.sent == [] and reminders(settings) == []
    assert sweep(settings, svc, url, due)[0].sent == [(loan_id, 1, "due_day")]


def test_a_customer_without_wechat_gets_the_officer_told_of_an_overdue_instalment(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc, wechat=False)
    due = first_due()
    report, told = sweep(settings, svc, url, due)
    assert report.sent == [] and told.sent == []
    report, told = sweep(settings, svc, url, due + timedelta(days=1))
    assert report.to_officer == [(loan_id, 1, "overdue")] and told.sent == []
    assert [(kind, channel) for _, kind, channel in reminders(settings)] == [
        ("due_day", "none"),
        ("overdue", "officer"),
    ]
    with unit_of_work(settings.database_url) as s:
        (text,) = s.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "officer.notified").order_by(AuditEntry.id)
        ).all()
        assert "张**" in text["text"] and "第1期" in text["text"] and "请电话联系" in text["text"]
    assert sweep(settings, svc, url, due + timedelta(days=2))[0].to_officer == []


def test_no_reminder_before_the_due_date_when_the_setting_is_zero(core):
    settings, svc, _, url, _ = core
    settings = replace(settings, repayment_reminder_days=0)
    loan_id = paid_out(settings, svc)
    due = first_due()
    assert sweep(settings, svc, url, due - timedelta(days=1))[0].sent == []
    assert sweep(settings, svc, url, due)[0].sent == [(loan_id, 1, "due_day")]


def test_the_command_queues_the_notices_through_the_notice_policy(core, capsys):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    due = first_due()
    core_today(url, due)
    assert main(["remind-repayments", "--date", due.isoformat()], settings=settings) == 0
    out = capsys.readouterr().out
    assert f"{due.year}年{due.month}月{due.day}日还款提醒：同步贷款1笔，发出提醒1条" in out
    jobs = Jobs(settings)
    (job,) = Queue(queue_name(ZHANG, settings.worker_processes), connection=jobs.connection).jobs
    assert job.func_name == "conversation.notices.deliver_notice" and job.args[0] == ZHANG
    assert job.args[2] == "repayment_due" and "第1期的还款日" in job.args[1]
    assert main(["remind-repayments", "--date", due.isoformat()], settings=settings) == 0
    assert "发出提醒0条" in capsys.readouterr().out
    with unit_of_work(settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(RepaymentReminder)) == 1
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "path": "loans"}, timeout=5)
    assert main(["remind-repayments", "--date", due.isoformat()], settings=settings) == 1
    assert f"贷款{loan_id}：" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["remind-repayments", "--date", "2027-13-01"], settings=settings)
    assert exit_.value.code == 2 and "日期格式应为YYYY-MM-DD" in capsys.readouterr().err


def test_the_kept_running_rounds_send_from_the_reminder_hour_in_beijing(core, monkeypatch):
    settings, svc, _, url, _ = core
    paid_out(settings, svc)
    due = first_due()
    core_today(url, due)
    rounds = []
    # one round of `--every`, as sunshine.periodic.run_rounds runs it
    monkeypatch.setattr("lending.__main__.run_rounds", lambda one_round, every_s, what, duty: one_round(False) or 0)
    monkeypatch.setattr("lending.reminders.remind_repayments", lambda *a, **k: rounds.append(k) or SweepReport(due))
    with clock.travel_to(datetime.combine(due - timedelta(days=1), time(23, 30))):  # 07:30 in Beijing
        assert main(["remind-repayments", "--every", "3600"], settings=settings) == 0
    assert rounds == []
    with clock.travel_to(datetime.combine(due, time(1, 0))):  # 09:00 in Beijing (REPAYMENT_REMINDER_HOUR)
        assert main(["remind-repayments", "--every", "3600"], settings=settings) == 0
    assert len(rounds) == 1


def test_two_processes_sweeping_at_once_send_each_reminder_once(core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc)
    due = first_due()
    core_today(url, due)
    told, reports = Recorder(), []
    sweeps = [
        threading.Thread(
            target=lambda: reports.append(remind_repayments(settings, told, core=svc.core_banking, on=due))
        )
        for _ in range(2)
    ]
    for t in sweeps:
        t.start()
    for t in sweeps:
        t.join(30)
    assert len(reports) == 2 and sorted(len(r.sent) for r in reports) == [0, 1]
    assert len(told.sent) == 1 and reminders(settings)[0][1] == "due_day"
    assert [r.sent for r in reports if r.sent] == [[(loan_id, 1, "due_day")]]
