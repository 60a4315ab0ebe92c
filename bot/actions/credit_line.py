"""How much can I borrow, and is my line still valid: the pre-granted line (整村授信) from the
database, with its validity and its annual inspection (年检) status."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import (
    BankAction,
    amount_asked,
    asked,
    bind_by_message,
    database,
    day,
    openid_of,
    slot_or_entity,
    yuan,
)
from lending.binding import read_code
from lending.catalog import CUSTOMER_TYPE_LABELS, products_for, products_offered
from lending.credit_lines import CreditLineView, current_line
from lending.customers import by_openid
from lending.inspection import status_of
from sunshine import clock
from sunshine.protect import mask_name

OFFER_OFFICER = "需要客户经理帮您办理吗？回复“好的”或“不用”。"


def _requested_amount(tracker: Tracker, line: CreditLineView | None) -> str | None:
    """A sentence about the amount the customer asked for, if any."""
    wanted, problem = amount_asked(tracker)
    if wanted is None:
        return problem
    if line is None:
        return f"您想借{yuan(wanted)}，我记下了。"
    if wanted <= line.available:
        return f"您想借{yuan(wanted)}，在可用额度以内。"
    return f"您想借{yuan(wanted)}，超出了可用额度{yuan(line.available)}，" "超出部分要客户经理评估后才能定。"


class ActionCreditLine(BankAction):
    """Answers apply_loan / ask_credit_line / inform with the customer's line; a WeChat user
    not yet bound is bound by name and ID number and the code then texted to the customer's
    phone, as in the loan form."""

    def name(self) -> str:
        return "action_credit_line"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        events: list[dict[str, Any]] = []
        amount_given = True
        with database() as session:
            customer = by_openid(session, openid_of(tracker))
            if customer is None:
                customer, said = bind_by_message(session, tracker, text)
                if said and read_code(text):  # a code is no amount, though the NLU may mark it as one
                    events, amount_given = [SlotSet("amount", None)], False
                if said:
                    dispatcher.utter_message(text=said)
                if said and customer is None:
                    return events
            if customer is None:
                dispatcher.utter_message(text=self._unknown_customer(session, tracker))
                return []
            line = current_line(session, customer)
            inspection = status_of(session, customer.id, clock.today())
            if line is None:
                parts = [
                    f"{mask_name(customer.name)}您好，您目前没有有效的预授信额度（可能已到期，或者还没评定）。",
                    f"年检状态：{inspection}。" if inspection != "未到年检时间" else "",
                    "客户经理可以帮您看看能不能申请。",
                ]
                products = [p.name for p in products_offered(session, customer)]
                if products:
                    parts.append(f"适合您的产品有：{'、'.join(products)}。")
                parts.append(OFFER_OFFICER)
                dispatcher.utter_message(text="".join(parts))
                return [*events, asked("hand_off_offer")]
            answer = self._line_text(customer.id_masked, line, inspection, tracker, amount_given)
        dispatcher.utter_message(text=answer)
        return [*events, asked("hand_off_offer")]

    @staticmethod
    def _line_text(
        id_masked: str, line: CreditLineView, inspection: str, tracker: Tracker, amount_given: bool = True
    ) -> str:
        where = f"在{line.village}整村授信中" if line.village else ""
        parts = [
            f"{mask_name(line.customer_name)}您好（身份证{id_masked}），您{where}的预授信额度是{yuan(line.amount)}，"
            f"已用{yuan(line.used)}，还能用{yuan(line.available)}，有效期到{day(line.valid_until)}"
            f"（年检状态：{inspection}）。",
        ]
        if line.products:
            parts.append(f"适合您的产品：{'、'.join(line.products)}。")
        wanted = _requested_amount(tracker, line) if amount_given else None
        if wanted:
            parts.append(wanted)
        parts.append(OFFER_OFFICER)
        return "".join(parts)

    @staticmethod
    def _unknown_customer(session, tracker: Tracker) -> str:
        parts = [
            "我这边还没查到您微信绑定的客户信息。请把您的姓名和身份证号一起发给我，比如："
            "张三 320321199001011234，再把银行发到您预留手机上的验证码发给我，核对后马上告诉您额度"
            "（只用于核对，聊天里不会显示完整号码）。"
        ]
        customer_type = slot_or_entity(tracker, "customer_type")
        if customer_type in CUSTOMER_TYPE_LABELS:
            products = [p.name for p in products_for(session, customer_type)]
            if products:
                parts.append(f"{CUSTOMER_TYPE_LABELS[customer_type]}可以了解：{'、'.join(products)}。")
        wanted = _requested_amount(tracker, None)
        if wanted:
            parts.append(wanted)
        parts.append("也可以回复“转人工”请客户经理帮您查。")
        return "".join(parts)
