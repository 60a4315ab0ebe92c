"""action_repayment (ask_repayment: 我还要还多少 / 哪天还 / 能提前还吗) with trackers as Rasa sends
them, answering from the customer's loans as synchronised from the core-banking emulator."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.actions.applications import ActionRepayment
from lending.loans import sync_loan
from lending.repayment import add_months, yuan_text
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.models import Loan
from tests.unit.bot_trackers import DEMO_OPENID, UNKNOWN_OPENID, make_tracker, run, user_event
from tests.unit.loan_helpers import core_today, paid_out


def ask(text: str, openid: str = DEMO_OPENID) -> str:
    return run(ActionRepayment(), make_tracker(openid, user_event(text, "ask_repayment")))[0]


def test_someone_unknown_is_told_how_to_be_recognised(bank_env):
    text = ask("我还要还多少", UNKNOWN_OPENID)
    assert "没查到您微信绑定的客户信息" in text and "转人工" in text


def test_a_customer_without_a_loan_is_told_there_is_nothing_to_repay_and_what_to_do(bank_env):
    text = ask("哪天还")
    assert text.startswith("您现在没有在还的贷款，不用还款。") and "我要贷款" in text and "转人工" in text


def test_the_next_due_date_and_amount_what_remains_and_repaying_early_today(bank_env, core):
    settings, svc, _, _, _ = core
    loan_id = paid_out(settings, svc)
    with unit_of_work(settings.database_url) as s:
        loan = s.get(Loan, loan_id)
        first, loan_no, account = loan.instalments[0], loan.account_no, loan.settlement_account[-4:]
        remaining = sum(i.principal_fen + i.interest_fen for i in loan.instalments)
    due = add_months(clock.today(), 1)
    for question in ("我还要还多少", "哪天还", "能提前还吗"):
        text = ask(question)
        assert text.startswith(f"阳光e贷（借据号{loan_no}，随借随还，借款50,000.00元）：")
        assert (
            f"下一期：第1期，{due.year}年{due.month}月{due.day}日还，应还{yuan_text(first.interest_fen)}"
            f"（本金0.00元、利息{yuan_text(first.interest_fen)}）。还款日前把钱存进您尾号{account}的账户，到期自动扣款。"
        ) in text
        assert f"还剩12期，按计划一共还要还{yuan_text(remaining)}（剩余本金50,000.00元）" in text
        # repaid the day it was paid out: the principal, no interest yet
        assert "提前还：今天一次还清需要50,000.00元（本金50,000.00元，利息0.00元，利息只算到今天）" in text
        assert "随借随还的贷款随时能还" in text and "逾期" not in text


def test_an_overdue_instalment_is_warned_of_kindly_with_how_to_repay(bank_env, core):
    settings, svc, _, url, _ = core
    loan_id = paid_out(settings, svc, "equal_instalments")
    late = add_months(clock.today(), 1) + timedelta(days=3)
    core_today(url, late)
    with unit_of_work(settings.database_url) as s:
        sync_loan(s, svc.core_banking, loan_id)
        loan = s.get(Loan, loan_id)
        first, account = loan.instalments[0], loan.settlement_account[-4:]
    with clock.travel_to(late):
        text = ask("我还要还多少")
    owed = yuan_text(first.principal_fen + first.interest_fen)
    assert f"注意：第1期起有1期没还上，共{owed}，已逾期3天。请尽快把这笔钱存进您尾号{account}的账户" in text
    assert "手头确实有困难的，回复“转人工”跟客户经理商量" in text
    assert "下一期：第2期" in text and "等额本息" in text
    assert "随借随还" not in text


def test_a_customer_whose_loans_are_repaid_is_told_so(bank_env, core):
    settings, svc, _, _, _ = core
    loan_id = paid_out(settings, svc)
    with unit_of_work(settings.database_url) as s:
        s.scalar(select(Loan).where(Loan.id == loan_id)).status = "closed"
    assert ask("我还要还多少").startswith("您的贷款都已还清")
