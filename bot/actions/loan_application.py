"""The loan-application form's questions, the confirmation, and the submission
through the lending service (validation is in loan_form_validation)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.common import (
    BankAction,
    applicant,
    chosen_product,
    database,
    day,
    lending_told_here,
    named,
    openid_of,
    percent,
    product_choices,
    say_result,
    yuan,
)
from lending.applications import LendingError
from lending.binding import awaiting_code
from lending.catalog import CUSTOMER_TYPE_LABELS
from lending.credit_lines import current_line
from lending.purposes import EXAMPLES
from lending.terms import format_term
from sunshine.models import Customer
from sunshine.protect import mask_name

FORM_SLOTS = ("product", "amount", "term", "purpose", "guarantor_ref", "application_confirmed")
CHANGE_HINT = "要改哪一项直接说，比如“金额改成3万”“期限改成两年”；不办了回复“取消”。"
AMOUNT_EXAMPLE = "直接回复金额，比如“5万”。"
OFFER_HUMAN = "说不清楚的话，回复“转人工”，客户经理来帮您办。"


def times_missed(tracker: Tracker, slot: str) -> int:
    """How many answers in a row the form could not use for `slot` (0 when it is asked for the
    first time): the user messages that came after `slot` was asked, since it was first asked."""
    missed, pending = 0, 0
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            pending += 1
        elif kind == "slot" and event.get("name") == "requested_slot":
            if event.get("value") != slot:
                break
            missed, pending = missed + pending, 0
        elif kind == "active_loop":
            break  # the form started (or stopped) here
    return missed


def ask(dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, question: str, short: str, example: str) -> None:
    """The question the first time; asked again, only its short form; the second miss adds an
    example, the third also offers an officer."""
    missed = times_missed(tracker, slot)
    if missed == 0:
        dispatcher.utter_message(text=question)
        return
    dispatcher.utter_message(text=short + (example if missed >= 2 else "") + (OFFER_HUMAN if missed >= 3 else ""))


def _line_sentence(session: Session, customer: Customer) -> str:
    line = current_line(session, customer)
    if line is None:
        return "您目前没有有效的预授信额度，申请会由客户经理审核。"
    where = f"在{line.village}整村授信中" if line.village else ""
    return (
        f"您{where}的预授信额度是{yuan(line.amount)}，还能用{yuan(line.available)}，"
        f"有效期到{day(line.valid_until)}。"
    )


class ActionAskCustomerRef(BankAction):
    """Asks for name and ID number when the WeChat user is not bound to a customer, and then
    for the code texted to the customer's phone."""

    def name(self) -> str:
        return "action_ask_customer_ref"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            waiting = awaiting_code(session, openid_of(tracker))
        if waiting:
            dispatcher.utter_message(text="请把手机短信里的6位验证码发给我；没收到的话，可以重新发姓名和身份证号。")
            return []
        ask(
            dispatcher,
            tracker,
            "customer_ref",
            "申请贷款要先核对身份。请把您的姓名和身份证号一起发给我，比如：张三 320321199001011234，"
            "我们会给您在银行预留的手机发验证码。只用于核对，聊天里不会显示完整号码。",
            "申请贷款要先核对身份，请把您的姓名和身份证号一起发给我。",
            "比如：张三 320321199001011234。",
        )
        return []


class ActionAskProduct(BankAction):
    """Offers the products that fit the customer's type, numbered, with their line."""

    def name(self) -> str:
        return "action_ask_product"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            customer = applicant(session, tracker)
            choices = product_choices(session, customer)
            if not choices:
                dispatcher.utter_message(text="暂时没有适合您在线办理的贷款产品，回复“转人工”问问客户经理。")
                return []
            offers = "\n".join(
                f"{i}. {p.name}：{p.description}额度{yuan(p.min_amount)}到{yuan(p.max_amount)}，"
                f"年利率{percent(p.annual_rate_bp)}。"
                for i, p in enumerate(choices, 1)
            )
            kind = CUSTOMER_TYPE_LABELS.get(customer.customer_type, "")
            question = (
                f"{mask_name(customer.name)}您好，{_line_sentence(session, customer)}\n"
                f"适合{kind}的贷款有：\n{offers}\n回复序号或产品名称，选一个。"
            )
            names = "、".join(f"{i}. {p.name}" for i, p in enumerate(choices, 1))
            example = f"比如回复“1”，就是办{choices[0].name}。"
        ask(dispatcher, tracker, "product", question, f"您想办哪个产品？回复序号或名称：{names}。", example)
        return []


class ActionAskAmount(BankAction):
    """Asks how much, with the product's range and what is left of the line."""

    def name(self) -> str:
        return "action_ask_amount"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            product = chosen_product(session, tracker)
            customer = applicant(session, tracker)
            span = f"{yuan(product.min_amount)}到{yuan(product.max_amount)}"
            question = (
                f"办{product.name}，能借{span}。{_line_sentence(session, customer)}想借多少？直接回复金额，比如“5万”。"
            )
        ask(
            dispatcher,
            tracker,
            "amount",
            question,
            f"想借多少？{product.name}能借{span}。",
            "直接回复金额，比如“5万”。",
        )
        return []


class ActionAskTerm(BankAction):
    """Asks how long, listing the terms the product offers."""

    def name(self) -> str:
        return "action_ask_term"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            product = chosen_product(session, tracker)
            terms = sorted(product.terms_months)
            offered = "、".join(format_term(m) for m in terms)
            ask(
                dispatcher,
                tracker,
                "term",
                f"打算借多久？{product.name}可以选：{offered}。",
                f"借多久？可以选：{offered}。",
                f"比如回复“{format_term(terms[0])}”。",
            )
        return []


class ActionAskPurpose(BankAction):
    """Asks what the money is for, with examples that fit the customer's type."""

    def name(self) -> str:
        return "action_ask_purpose"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            customer = applicant(session, tracker)
            examples = "、".join(EXAMPLES.get(customer.customer_type, EXAMPLES["farmer"]))
        ask(
            dispatcher,
            tracker,
            "purpose",
            f"这笔钱打算用来做什么？比如：{examples}。",
            "这笔钱用来做什么？",
            f"说个大概就行，比如：{examples}。",
        )
        return []


class ActionAskGuarantorRef(BankAction):
    """Asks who guarantees, for products that need a guarantor."""

    def name(self) -> str:
        return "action_ask_guarantor_ref"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            product = chosen_product(session, tracker)
            ask(
                dispatcher,
                tracker,
                "guarantor_ref",
                f"{product.name}需要一名担保人（不能是您本人）。请把担保人的姓名和身份证号发给我，"
                "比如：李四 320321198001011234。之后担保人也要自己刷脸授权查征信。",
                "请把担保人的姓名和身份证号发给我。",
                "比如：李四 320321198001011234。",
            )
        return []


class ActionAskApplicationConfirmed(BankAction):
    """Shows everything the customer gave and asks them to confirm."""

    def name(self) -> str:
        return "action_ask_application_confirmed"

    def answer(self, dispatcher, tracker, domain):
        with database() as session:
            product = chosen_product(session, tracker)
            customer = applicant(session, tracker)
            amount, months = int(tracker.get_slot("amount")), int(tracker.get_slot("term"))
            lines = [
                "请核对您的申请：",
                f"· 申请人：{named(customer)}",
                f"· 产品：{product.name}，年利率{percent(product.annual_rate_bp)}",
                f"· 金额：{yuan(amount)}",
                f"· 期限：{format_term(months)}",
                f"· 用途：{tracker.get_slot('purpose')}",
            ]
            guarantor_ref = tracker.get_slot("guarantor_ref")
            if guarantor_ref:
                guarantor = session.get(Customer, int(guarantor_ref))
                lines.append(f"· 担保人：{named(guarantor)}")
        lines.append(f"没问题回复“确认”提交。{CHANGE_HINT}")
        if times_missed(tracker, "application_confirmed") >= 3:
            lines.append(OFFER_HUMAN)
        dispatcher.utter_message(text="\n".join(lines))
        return []


def _idempotency_key(tracker: Tracker) -> str:
    """One key per filled form: Rasa retrying the submission gets the same application."""
    started = [
        e.get("timestamp")
        for e in tracker.events
        if e.get("event") == "active_loop" and e.get("name") == "loan_application_form"
    ]
    return f"wx:{openid_of(tracker)}:{int((started[-1] if started else 0) * 1000)}"[:64]


def _clear_form() -> list[dict[str, Any]]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


class ActionSubmitLoanApplication(BankAction):
    """Submits the confirmed form through the lending service and tells the result.

    Sets application_status: awaiting_authorization when the credit-report
    authorization comes next, not_submitted otherwise.
    """

    def name(self) -> str:
        return "action_submit_loan_application"

    def answer(self, dispatcher, tracker, domain):
        not_submitted = [*_clear_form(), SlotSet("application_status", "not_submitted")]
        if not tracker.get_slot("application_confirmed"):
            dispatcher.utter_message(text="好的，这次先不提交。想办的时候说一声“我要贷款”就行。")
            return not_submitted
        service, notices = lending_told_here()
        guarantor_ref = tracker.get_slot("guarantor_ref")
        try:
            with database() as session:
                customer = applicant(session, tracker)
                application = service.apply(
                    session,
                    customer.id,
                    tracker.get_slot("product"),
                    int(tracker.get_slot("amount")),
                    int(tracker.get_slot("term")),
                    idempotency_key=_idempotency_key(tracker),
                    purpose=tracker.get_slot("purpose") or "",
                    guarantor_id=int(guarantor_ref) if guarantor_ref else None,
                )
                status = application.status
                # A retried submission changes nothing: tell where the application stands.
                current = service.notice(session, application)
        except LendingError as exc:
            dispatcher.utter_message(text=f"申请没能提交：{exc}")
            return not_submitted
        say_result(dispatcher, notices, current)  # the lending service's words, read here, not twice
        outcome = "awaiting_authorization" if status == "awaiting_authorization" else "not_submitted"
        return [*_clear_form(), SlotSet("application_status", outcome)]


class ActionStopLoanApplication(BankAction):
    """The customer stopped the form: nothing is submitted, nothing kept."""

    def name(self) -> str:
        return "action_stop_loan_application"

    def answer(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="好的，申请先停下了，什么都没有提交。想办的时候说一声“我要贷款”就行。")
        return [*_clear_form(), SlotSet("requested_slot", None)]


# The question the form asks for each slot, for asking again after a message not understood.
ASK_ACTIONS: dict[str, type[BankAction]] = {
    "customer_ref": ActionAskCustomerRef,
    "product": ActionAskProduct,
    "amount": ActionAskAmount,
    "term": ActionAskTerm,
    "purpose": ActionAskPurpose,
    "guarantor_ref": ActionAskGuarantorRef,
    "application_confirmed": ActionAskApplicationConfirmed,
}
