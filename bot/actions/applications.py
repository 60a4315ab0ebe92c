"""Where the customer's loan application stands."""

from __future__ import annotations

from datetime import date
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
    percent,
    say_result,
    yuan,
)
from lending.applications import STATUS_LABELS, LendingError
from sunshine.models import FINAL_APPLICATION_STATUSES, ApplicationEvent, Customer, LoanApplication, LoanProduct


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


def _add_months(d: date, months: int) -> date:
    year, month = divmod(d.month - 1 + months, 12)
    return date(d.year + year, month + 1, min(d.day, 28))


class ActionRepayment(BankAction):
    """ask_repayment: the customer's disbursed loans with their due dates, and how to repay."""

    def name(self) -> str:
        return "action_repayment"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        loans = []
        with database() as session:
            customer = applicant(session, tracker)
            if customer is not None:
                rows = session.execute(
                    select(LoanApplication, LoanProduct, ApplicationEvent.at)
                    .join(LoanProduct, LoanProduct.code == LoanApplication.product_code)
                    .join(
                        ApplicationEvent,
                        (ApplicationEvent.application_id == LoanApplication.id)
                        & (ApplicationEvent.to_status == "disbursed"),
                    )
                    .where(LoanApplication.customer_id == customer.id, LoanApplication.status == "disbursed")
                    .order_by(ApplicationEvent.at)
                ).all()
                for app, product, disbursed_at in rows:
                    due = _add_months(disbursed_at.date(), app.term_months)
                    loans.append(
                        f"· {product.name}{yuan(app.amount)}（借据号{app.loan_account}），"
                        f"年利率{percent(product.annual_rate_bp)}，{day(due)}到期。"
                    )
        how = (
            "还款方法：到期日前把钱存进贷款绑定的那张卡，系统自动扣款；"
            "想提前还，在手机银行或到网点都能办，利息按实际天数算。千万别逾期，逾期要多收罚息、"
            "影响征信；手头紧的话，提前回复“转人工”跟客户经理商量。"
        )
        if loans:
            text = "您在用的贷款：\n" + "\n".join(loans) + "\n" + how
        elif customer is not None:
            text = "您现在没有要还的贷款。" + how
        else:
            text = how
        dispatcher.utter_message(text=text)
        return []


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
