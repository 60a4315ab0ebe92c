"""Repayment reminders and overdue notices (还款提醒、逾期通知), once per instalment and kind.

Each day (a Beijing date, sunshine.clock) `remind_repayments` synchronises from the core
every live loan with an unpaid instalment due within REPAYMENT_REMINDER_DAYS (or past due),
then sends, through the notice policy (lending.notify.WeChatNotifier → conversation.notices:
a customer-service message inside the 48-hour window, else a subscription or template message,
else the officer):

- `before`: from REPAYMENT_REMINDER_DAYS days before the due date until the day before it
  (kind `repayment_due`);
- `due_day`: on the due date (kind `repayment_due`);
- `overdue`: once the core says the instalment is overdue (kind `repayment_overdue`).

Each (instalment, kind) is claimed in `repayment_reminders` (unique) in the transaction that
synchronised the loan, and the notice is queued after that commit: a re-run, or a second
process sweeping at the same time, finds the claim and sends nothing. Should queueing fail,
the claim is taken back and the next round tries again. A loan the core cannot answer for
is skipped this round (nothing is said from stale figures). A customer without a WeChat
openid: an overdue instalment is told to their officer; reminders are recorded, not sent.

`python -m lending remind-repayments [--date YYYY-MM-DD] [--every SECONDS]` runs it; `make run`
keeps it running (a round an hour, sending from REPAYMENT_REMINDER_HOUR Beijing time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clients.corebank import CoreBankingClient, CoreBankingError
from lending.loans import LIVE_STATUSES, owed_fen, sync_loan
from lending.notify import OfficerNotifier, notify_officer
from lending.repayment import yuan_text
from sunshine import clock
from sunshine.clock import customer_date
from sunshine.db import unit_of_work
from sunshine.models import Loan, LoanInstalment, RepaymentReminder
from sunshine.protect import mask_account, mask_name

log = logging.getLogger(__name__)
# Our kinds of reminder and the notice kind (conversation/notice_templates.yml) that carries each.
NOTICE_KINDS = {"before": "repayment_due", "due_day": "repayment_due", "overdue": "repayment_overdue"}


@dataclass(frozen=True)
class Reminder:
    """A reminder claimed, to be sent once the claim is committed."""

    claim_id: int
    kind: str
    openid: str
    application_id: int
    text: str
    fields: dict


@dataclass
class SweepReport:
    """One day's sweep: loans synchronised, those the core could not answer for, notices sent."""

    on: date
    synced: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    sent: list[tuple[int, int, str]] = field(default_factory=list)  # (loan id, instalment number, kind)
    to_officer: list[tuple[int, int, str]] = field(default_factory=list)


def due_loan_ids(session: Session, on: date, days: int) -> list[int]:
    """Live loans with an unpaid instalment due on or before `on` + `days`."""
    query = (
        select(Loan.id)
        .join(LoanInstalment, LoanInstalment.loan_id == Loan.id)
        .where(
            Loan.status.in_(LIVE_STATUSES),
            LoanInstalment.status != "paid",
            LoanInstalment.due_date <= on + timedelta(days=days),
        )
        .distinct()
        .order_by(Loan.id)
    )
    return list(session.scalars(query))


def kind_due(instalment: LoanInstalment, on: date, days: int) -> str | None:
    """Which reminder an unpaid instalment calls for on `on`, if any."""
    if instalment.status == "overdue":
        return "overdue"
    if instalment.due_date == on:
        return "due_day"
    if days and on < instalment.due_date <= on + timedelta(days=days):
        return "before"
    return None


def remind_repayments(
    settings,
    notify,
    core: CoreBankingClient | None = None,
    on: date | None = None,
    tell_officer: OfficerNotifier = notify_officer,
) -> SweepReport:
    """One day's sweep (the module docstring); `notify(openid, text, kind=, application_id=, fields=)`."""
    core = core or CoreBankingClient.from_settings(settings)
    report = SweepReport(on or clock.today())
    days = settings.repayment_reminder_days
    with unit_of_work(settings.database_url) as session:
        ids = due_loan_ids(session, report.on, days)
    for loan_id in ids:
        try:
            with unit_of_work(settings.database_url) as session:
                loan = sync_loan(session, core, loan_id)
                claimed = _claim(session, loan, report, days, tell_officer)
        except CoreBankingError as exc:
            log.warning("loan %s not synchronised, no reminders this round: %s", loan_id, exc)
            report.failed[loan_id] = str(exc)
            continue
        except IntegrityError:  # another process claimed the same reminders first: it sends them
            log.info("loan %s: reminders claimed by another process", loan_id)
            continue
        report.synced += 1
        for reminder, number in claimed:
            try:
                notify(
                    reminder.openid,
                    reminder.text,
                    kind=NOTICE_KINDS[reminder.kind],
                    application_id=reminder.application_id,
                    fields=reminder.fields,
                )
            except Exception:
                log.exception("reminder for loan %s not queued; the next round tries again", loan_id)
                with unit_of_work(settings.database_url) as session:
                    session.execute(delete(RepaymentReminder).where(RepaymentReminder.id == reminder.claim_id))
                continue
            report.sent.append((loan_id, number, reminder.kind))
    return report


def _claim(
    session: Session, loan: Loan, report: SweepReport, days: int, tell_officer: OfficerNotifier
) -> list[tuple[Reminder, int]]:
    """Claim the loan's reminders due on the report's date that no sweep has claimed yet."""
    done = {
        (r.instalment_id, r.kind)
        for r in session.scalars(select(RepaymentReminder).where(RepaymentReminder.loan_id == loan.id))
    }
    customer = loan.application.customer
    out = []
    for instalment in loan.instalments:
        owed = owed_fen(instalment)
        kind = kind_due(instalment, report.on, days) if owed else None
        if kind is None or (instalment.id, kind) in done:
            continue
        text = reminder_text(loan, instalment, kind, report.on)
        openid = customer.wechat_openid
        channel = "wechat" if openid else ("officer" if kind == "overdue" else "none")
        claim = RepaymentReminder(
            loan_id=loan.id,
            instalment_id=instalment.id,
            kind=kind,
            sent_on=report.on,
            amount_fen=owed,
            channel=channel,
        )
        session.add(claim)
        session.flush()
        if openid:
            fields = {
                "product": loan.application.product.name,
                "amount": yuan_text(owed).replace(",", ""),
                "due_date": customer_date(instalment.due_date),
                "loan_account": loan.account_no,
                "remark": REMARKS[kind],
            }
            out.append((Reminder(claim.id, kind, openid, loan.application_id, text, fields), instalment.number))
        elif kind == "overdue":
            tell_officer(
                session,
                customer.officer_id,
                f"客户{mask_name(customer.name)}（借据号{loan.account_no}）第{instalment.number}期"
                f"{yuan_text(owed)}已逾期，客户没有绑定微信，收不到逾期通知，请电话联系。",
            )
            report.to_officer.append((loan.id, instalment.number, kind))
    return out


# The short remark a template or subscription message carries (a `thing`: at most 20 characters).
REMARKS = {
    "before": "请在还款日前存入结算账户",
    "due_day": "今天是还款日，请存入结算账户",
    "overdue": "已逾期，请尽快存入结算账户还款",
}


def reminder_text(loan: Loan, instalment: LoanInstalment, kind: str, on: date) -> str:
    """The customer's notice: which loan and instalment, how much, when, and what to do."""
    product, account = loan.application.product.name, mask_account(loan.settlement_account)
    owed, due = yuan_text(owed_fen(instalment)), customer_date(instalment.due_date)
    what = f"您的{product}（借据号{loan.account_no}）第{instalment.number}期"
    if kind == "before":
        left = (instalment.due_date - on).days
        return (
            f"还款提醒：{what}将于{due}到期（还有{left}天），应还{owed}。"
            f"请在还款日前把钱存入您{account}的账户，到期自动扣款。按时还款能保持良好信用。"
        )
    if kind == "due_day":
        return (
            f"还款提醒：今天（{due}）是{what}的还款日，应还{owed}。"
            f"请今天把钱存入您{account}的账户，银行自动扣款；已经存好的请忽略本提醒。"
        )
    return (
        f"逾期提醒：{what}应在{due}还款，还有{owed}没还上，已逾期{(on - instalment.due_date).days}天。"
        f"请尽快把钱存入您{account}的账户，银行会自动扣款。逾期会记入征信，越早还上影响越小；"
        "如果手头确实有困难，回复“转人工”跟客户经理商量。已经还上的请忽略本提醒。"
    )
