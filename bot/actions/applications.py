"""Where the customer's loan application stands."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.actions.common import (
    BankAction,
    applicant,
    asked,
    database,
    day,
    lending_told_here,
    openid_of,
    say_result,
    yuan,
)
from lending.applications import STATUS_LABELS, LendingError
from lending.loans import RepaymentFacts, loans_of, owed_fen, repayment_facts
from lending.repayment import yuan_text
from sunshine.clock import customer_time
from sunshine.models import FINAL_APPLICATION_STATUSES, Customer, LoanApplication, LoanProduct
from sunshine.protect import mask_account


class ActionApplicationStatus(BankAction):
    """check_application_status: the customer's latest application."""

    def name(self) -> str:
        return "action_application_status"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        with database() as session:
            customer = applicant(session, tracker)
            if customer is None:
                dispatcher.utter_message(
                    text=(
                        "我这边还没查到您微信绑定的客户信息，查不了申请进度。"
                        "回复“转人工”，客户经理核实身份后帮您查。"
                    )
                )
                return []
            row = session.execute(
                select(LoanApplication, LoanProduct.name)
                .join(LoanProduct, LoanProduct.code == LoanApplication.product_code)
                .where(LoanApplication.customer_id == customer.id)
                .order_by(LoanApplication.created_at.desc(), LoanApplication.id.desc())
                .limit(1)
            ).first()
            if row is None:
                text = "没查到您提交过贷款申请。想申请的话，回复“我要贷款”。"
            else:
                app, product_name = row
                status = STATUS_LABELS.get(app.status, "正在处理中")
                text = (
                    f"您{day(app.created_at.date())}申请的{product_name}{yuan(app.amount)}"
                    f"（{app.term_months}个月），目前状态：{status}。"
                    "有疑问回复“转人工”找客户经理。"
                )
        dispatcher.utter_message(text=text)
        return []


class ActionRepayment(BankAction):
    """ask_repayment (我还要还多少 / 哪天还 / 能提前还吗): each live loan's next due date and amount, what
    remains, anything overdue, and what repaying early costs today (lending.loans.repayment_facts)."""

    def name(self) -> str:
        return "action_repayment"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        with database() as session:
            customer = applicant(session, tracker)
            if customer is None:
                text = (
                    "我这边还没查到您微信绑定的客户信息，查不了您的贷款。"
                    "发送“姓名+身份证号”绑定后再问我，或者回复“转人工”让客户经理帮您查。"
                )
            else:
                loans = repayment_facts(session, customer.id)
                text = "\n\n".join(_loan_answer(f) for f in loans) if loans else _no_loan(session, customer.id)
        dispatcher.utter_message(text=text)
        return []


def _no_loan(session: Session, customer_id: int) -> str:
    if loans_of(session, customer_id):
        return "您的贷款都已还清，现在没有要还的钱。想再借，回复“我要贷款”。"
    return (
        "您现在没有在还的贷款，不用还款。想申请贷款，回复“我要贷款”；"
        "申请已经批了还没到账的，回复“我的申请到哪了”查进度，有疑问回复“转人工”找客户经理。"
    )


def _loan_answer(f: RepaymentFacts) -> str:
    """One loan's answer: next due, overdue (kindly, with what to do), what remains, repaying early."""
    loan, account = f.loan, mask_account(f.loan.settlement_account)
    lines = [f"{f.product}（借据号{loan.account_no}，{f.method}，借款{yuan_text(loan.principal_fen)}）："]
    if f.overdue:
        first = f.overdue[0]
        lines.append(
            f"注意：第{first.number}期起有{len(f.overdue)}期没还上，共{yuan_text(f.overdue_fen)}，"
            f"已逾期{f.overdue_days}天。请尽快把这笔钱存进您{account}的账户，银行会自动扣款。"
            "逾期会记入征信，拖得越久影响越大；手头确实有困难的，回复“转人工”跟客户经理商量，一起想办法。"
            f"（数据截至{customer_time(loan.synced_at)}，如果您刚存上，以银行扣款为准。）"
        )
    nxt = f.upcoming
    if nxt is not None:
        when = "今天就是还款日" if nxt.due_date == f.on else f"{day(nxt.due_date)}还"
        lines.append(
            f"下一期：第{nxt.number}期，{when}，应还{yuan_text(owed_fen(nxt))}"
            f"（本金{yuan_text(nxt.principal_fen)}、利息{yuan_text(nxt.interest_fen)}"
            + (f"，已还{yuan_text(nxt.paid_fen)}" if nxt.paid_fen else "")
            + f"）。还款日前把钱存进您{account}的账户，到期自动扣款。"
        )
    lines.append(
        f"还剩{f.instalments_left}期，按计划一共还要还{yuan_text(f.remaining_fen)}"
        f"（剩余本金{yuan_text(loan.principal_outstanding_fen)}），{day(f.maturity)}到期。"
    )
    if f.early is not None:
        interest = f.early.interest_due_fen + f.early.interest_accrued_fen
        saved = f.remaining_fen - f.early.total_fen
        lines.append(
            f"提前还：今天一次还清需要{yuan_text(f.early.total_fen)}（本金{yuan_text(f.early.principal_fen)}，"
            f"利息{yuan_text(interest)}，利息只算到今天）"
            + (f"，比按计划还省{yuan_text(saved)}。" if saved > 0 else "。")
            + ("随借随还的贷款随时能还，还一部分也行，不收手续费。" if loan.repayment_method == "revolving" else "")
            + f"把钱存进{account}的账户后，回复“转人工”请客户经理办理，也可以到网点办。"
        )
    return "\n".join(lines)


def _live_application(session: Session, customer: Customer | None) -> LoanApplication | None:
    """The customer's latest application that is still being processed."""
    if customer is None:
        return None
    return session.scalars(
        select(LoanApplication)
        .where(LoanApplication.customer_id == customer.id, LoanApplication.status.not_in(FINAL_APPLICATION_STATUSES))
        .order_by(LoanApplication.created_at.desc(), LoanApplication.id.desc())
        .limit(1)
    ).first()


class ActionOfferWithdrawal(BankAction):
    """cancel outside the form: an application still in progress is offered for withdrawal
    (withdrawn only on a yes); with none, nothing to do."""

    def name(self) -> str:
        return "action_offer_withdrawal"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        with database() as session:
            application = _live_application(session, applicant(session, tracker))
            if application is None:
                dispatcher.utter_message(response="utter_ok")
                return [SlotSet("withdrawal_application", None)]
            dispatcher.utter_message(
                text=(
                    f"您还有一笔{application.product.name}申请（{yuan(application.amount)}，"
                    f"{application.term_months}个月）在办理，目前状态：{STATUS_LABELS.get(application.status)}。"
                    "要撤销这笔申请吗？回复“确定”就撤销，回复“不用”就留着。"
                )
            )
            return [SlotSet("withdrawal_application", str(application.id)), asked("withdrawal")]


class ActionWithdrawApplication(BankAction):
    """The customer said yes to withdrawing the application offered by action_offer_withdrawal."""

    def name(self) -> str:
        return "action_withdraw_application"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return withdraw(dispatcher, tracker)


def withdraw(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
    """Withdraw the application action_offer_withdrawal offered, if it is still in progress."""
    cleared = [SlotSet("withdrawal_application", None)]
    offered = str(tracker.get_slot("withdrawal_application") or "")
    service, notices = lending_told_here()
    try:
        with database() as session:
            application = _live_application(session, applicant(session, tracker))
            if application is None or str(application.id) != offered:
                dispatcher.utter_message(text="没有要撤销的申请了。想查申请进度，回复“我的申请到哪了”。")
                return cleared
            service.withdraw(session, application.id, actor=f"wechat:{openid_of(tracker)}", reason="客户在微信里撤销")
            current = service.notice(session, application)
    except LendingError as exc:
        dispatcher.utter_message(text=f"没能撤销：{exc}")
        return cleared
    say_result(dispatcher, notices, current)
    return cleared
