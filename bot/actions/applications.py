"""Where the customer's loan application stands."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.actions.common import BankAction, database, day, openid_of, yuan
from lending.applications import STATUS_LABELS
from lending.customers import by_openid
from sunshine.models import LoanApplication, LoanProduct


class ActionApplicationStatus(BankAction):
    """check_application_status: the customer's latest application."""

    def name(self) -> Text:
        return "action_application_status"

    def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker,
               domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        with database() as session:
            customer = by_openid(session, openid_of(tracker))
            if customer is None:
                dispatcher.utter_message(text=(
                    "我这边还没查到您微信绑定的客户信息，查不了申请进度。"
                    "回复“转人工”，客户经理核实身份后帮您查。"))
                return []
            row = session.execute(
                select(LoanApplication, LoanProduct.name)
                .join(LoanProduct, LoanProduct.code == LoanApplication.product_code)
                .where(LoanApplication.customer_id == customer.id)
                .order_by(LoanApplication.created_at.desc(), LoanApplication.id.desc())
                .limit(1)).first()
            if row is None:
                text = "没查到您提交过贷款申请。想申请的话，回复“我要贷款”。"
            else:
                app, product_name = row
                status = STATUS_LABELS.get(app.status, "正在处理中")
                text = (f"您{day(app.created_at.date())}申请的{product_name}{yuan(app.amount)}"
                        f"（{app.term_months}个月），目前状态：{status}。"
                        "有疑问回复“转人工”找客户经理。")
        dispatcher.utter_message(text=text)
        return []
