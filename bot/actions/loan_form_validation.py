"""Validation of the loan-application form: each answer is read, checked
against the bank's records and products, and explained when it cannot be used.

Slot values after validation: customer_ref / guarantor_ref hold the customer
id, product the product code, amount whole yuan, term whole months (as text).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from bot.actions.common import (
    applicant,
    bind_by_message,
    chosen_product,
    database,
    named,
    openid_of,
    product_choices,
    read_amount,
    settings,
    yuan,
)
from lending.amounts import AmountError, parse_amount
from lending.binding import BindingRefused, BindLimits, count_guess
from lending.credit_lines import current_line
from lending.customers import IdentificationFailed, by_openid, identify, read_name_and_id
from lending.terms import TermError, format_term, parse_term
from sunshine.models import Customer, LoanProduct
from sunshine.protect import mask_text

FORM = "loan_application_form"
MAX_PURPOSE = 200


def amount_problem(product: LoanProduct, amount: int) -> str | None:
    """Why this amount cannot be asked for under this product, or None."""
    if amount < product.min_amount:
        return f"{product.name}最少借{yuan(product.min_amount)}，您说的{yuan(amount)}不够起借金额，请重新说个金额。"
    if amount > product.max_amount:
        return (
            f"{product.name}最多能借{yuan(product.max_amount)}，{yuan(amount)}超出了产品上限。"
            f"请说个{yuan(product.max_amount)}以内的金额；需要更多的话，回复“转人工”请客户经理帮您看看。"
        )
    return None


def judge_amount(
    session: Session, customer: Customer | None, product: LoanProduct | None, amount: int
) -> tuple[bool, str | None]:
    """Whether the amount can stand, and what to tell the customer about it: the product's
    range, then the pre-granted line once both the customer and the product are known."""
    problem = amount_problem(product, amount) if product is not None else None
    if problem:
        return False, problem
    if customer is None:
        return True, f"好的，借{yuan(amount)}，我记下了。"
    if product is None:
        return True, None
    line = current_line(session, customer)
    hours = settings().loan_review_hours
    if line is None:
        return True, (
            f"好的，借{yuan(amount)}。您目前没有有效的预授信额度，这笔申请会由客户经理审核，" f"一般{hours}小时内答复。"
        )
    if amount > line.available:
        return True, (
            f"您要借{yuan(amount)}，超过了您还能用的预授信额度{yuan(line.available)}。可以照样申请，"
            f"超出额度的要客户经理审核，一般{hours}小时内答复；想快点批，"
            f"可以改成{yuan(line.available)}以内，直接回复新金额就行。"
        )
    return True, None


def _slot_amount(tracker: Tracker) -> int | None:
    amount = tracker.get_slot("amount")
    return int(amount) if amount and str(amount).isdigit() else None


class ValidateLoanApplicationForm(FormValidationAction):
    """validate_loan_application_form."""

    def name(self) -> str:
        return "validate_loan_application_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        """The guarantor is asked for only when the chosen product needs one."""
        with database() as session:
            product = chosen_product(session, tracker)
            needs_guarantor = bool(product and product.needs_guarantor)
        return [s for s in domain_slots if s != "guarantor_ref" or needs_guarantor]

    async def extract_customer_ref(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A customer whose WeChat is bound to their record is not asked who they are."""
        if tracker.get_slot("customer_ref"):
            return {}
        with database() as session:
            customer = by_openid(session, openid_of(tracker))
            return {"customer_ref": str(customer.id)} if customer else {}

    def validate_customer_ref(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        with database() as session:
            bound = by_openid(session, openid_of(tracker))
            if bound is not None and str(value) == str(bound.id):
                return {"customer_ref": str(bound.id), "customer_type": bound.customer_type}
            customer, said = bind_by_message(session, tracker, str(value or ""), insist=True)
            if said:
                dispatcher.utter_message(text=said)
            if customer is None:
                return {"customer_ref": None}
            slots: dict[str, Any] = {"customer_ref": str(customer.id), "customer_type": customer.customer_type}
            return {**slots, **_recheck_for(session, customer, dispatcher, tracker)}

    def validate_product(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        with database() as session:
            customer = applicant(session, tracker)
            if customer is None:  # not identified yet: keep the choice, it is checked once we know them
                return {"product": value if session.get(LoanProduct, str(value)) else None}
            choices = product_choices(session, customer)
            product = _choose(session, choices, str(value or ""))
            if product is None:
                names = "、".join(f"{i}. {p.name}" for i, p in enumerate(choices, 1))
                dispatcher.utter_message(text=f"没对上您要的产品。适合您的有：{names}。回复序号或产品名称就行。")
                return {"product": None}
            if product not in choices:
                dispatcher.utter_message(text=_not_offered(product, choices))
                return {"product": None}
            slots: dict[str, Any] = {"product": product.code}
            amount = _slot_amount(tracker)
            if amount is not None:
                keep, message = judge_amount(session, customer, product, amount)
                if message:
                    dispatcher.utter_message(text=message)
                if not keep:
                    slots["amount"] = None
            term = tracker.get_slot("term")
            if term and str(term).isdigit() and int(term) not in product.terms_months:
                slots["term"] = None
            return slots

    def validate_amount(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _answers_another_question(tracker, "amount"):
            return {"amount": None}
        amount, problem = read_amount(tracker, str(value or ""))
        if amount is None:
            dispatcher.utter_message(text=problem)
            return {"amount": None}
        with database() as session:
            keep, message = judge_amount(session, applicant(session, tracker), chosen_product(session, tracker), amount)
        if message:
            dispatcher.utter_message(text=message)
        return {"amount": str(amount) if keep else None}

    def validate_term(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _answers_another_question(tracker, "term"):
            return {"term": None}
        try:
            months = parse_term(str(value or ""))
        except TermError as exc:
            dispatcher.utter_message(text=str(exc))
            return {"term": None}
        with database() as session:
            product = chosen_product(session, tracker)
            if product is not None and months not in product.terms_months:
                offered = "、".join(format_term(m) for m in sorted(product.terms_months))
                dispatcher.utter_message(text=f"{product.name}的期限可以选：{offered}，请从中选一个。")
                return {"term": None}
        return {"term": str(months)}

    def validate_purpose(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _answers_another_question(tracker, "purpose"):
            return {"purpose": None}
        text = mask_text(str(value or "").strip())
        if len(text) < 2 or _is_number_only(text):
            dispatcher.utter_message(text="请说说这笔钱拿去做什么，比如：买化肥、进货、盖大棚、孩子上学。")
            return {"purpose": None}
        return {"purpose": text[:MAX_PURPOSE]}

    def validate_guarantor_ref(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        with database() as session:
            try:
                read_name_and_id(str(value or ""))  # a malformed name+ID is no guess
                count_guess(session, openid_of(tracker), BindLimits.from_settings(settings()))
                guarantor = identify(session, settings().secret_key, str(value or ""))
            except (BindingRefused, IdentificationFailed) as exc:
                dispatcher.utter_message(text=str(exc))
                return {"guarantor_ref": None}
            if str(guarantor.id) == str(tracker.get_slot("customer_ref")):
                dispatcher.utter_message(text="担保人不能是您本人，请发担保人的姓名和身份证号。")
                return {"guarantor_ref": None}
            dispatcher.utter_message(text=f"担保人核对成功：{named(guarantor)}。")
            return {"guarantor_ref": str(guarantor.id)}


def _answers_another_question(tracker: Tracker, slot: str) -> bool:
    """The message changes another answer ("金额改成3万" while the term is asked) and
    says nothing for `slot`: its whole text is not this slot's answer."""
    given = {e.get("entity") for e in tracker.latest_message.get("entities") or []}
    return slot not in given and bool(given & ({"amount", "term", "product"} - {slot}))


def _not_offered(product: LoanProduct, choices: list[LoanProduct]) -> str:
    return f"{product.name}不面向您这类客户，适合您的是：{'、'.join(p.name for p in choices)}。"


def _recheck_for(
    session: Session, customer: Customer, dispatcher: CollectingDispatcher, tracker: Tracker
) -> dict[str, Any]:
    """Product and amount given before the customer was identified, checked now that we know them."""
    product = chosen_product(session, tracker)
    choices = product_choices(session, customer)
    if product is not None and product not in choices:
        dispatcher.utter_message(text=_not_offered(product, choices))
        return {"product": None}  # the amount is judged again when they choose
    amount = _slot_amount(tracker)
    if amount is None:
        return {}
    keep, message = judge_amount(session, customer, product, amount)
    if message:
        dispatcher.utter_message(text=message)
    return {} if keep else {"amount": None}


def _choose(session: Session, choices: list[LoanProduct], text: str) -> LoanProduct | None:
    """The product meant by a code (from the NLU), a number in the list offered, or a name in the text."""
    text = text.strip()
    product = session.get(LoanProduct, text)
    if product is not None:
        return product
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) <= 2 and 1 <= int(digits) <= len(choices):
        return choices[int(digits) - 1]
    for product in choices:
        if product.name.lower() in text.lower():
            return product
    for word, n in {"第一": 1, "第二": 2, "第三": 3, "第四": 4}.items():
        if word in text and n <= len(choices):
            return choices[n - 1]
    return None


def _is_number_only(text: str) -> bool:
    """'5万' or '一年': an amount or a term given where the purpose was asked."""
    try:
        parse_amount(text)
        return True
    except AmountError:
        pass
    try:
        parse_term(text)
        return len(text) <= 4
    except TermError:
        return False
