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
from lending.purposes import MAX_PURPOSE, find_purpose
from lending.terms import TermError, format_term, parse_term
from sunshine.models import Customer, LoanProduct
from sunshine.protect import mask_text

FORM = "loan_application_form"
# The answers a customer may give before they are asked for, kept and acknowledged.
OUT_OF_TURN = ("product", "amount", "term", "purpose")
LABELS = {"product": "产品", "amount": "金额", "term": "期限", "purpose": "用途"}
# The intents a purpose is read from when it comes with other words ("借5万买化肥").
PURPOSE_INTENTS = ("apply_loan", "inform")


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
    if customer is None or product is None:  # kept; acknowledged with what else was said
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

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Validates as rasa-sdk does, then acknowledges the answers given out of turn ("好的，5万元
        记下了。"), so that the question that follows asks only for what is missing."""
        asked, before = tracker.get_slot("requested_slot"), _slots_before_message(tracker)
        given = set(tracker.slots_to_validate())
        events = await super().run(dispatcher, tracker, domain)
        after = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
        given |= set(after)
        kept = [s for s in OUT_OF_TURN if s != asked and s in given and after.get(s, tracker.get_slot(s)) is not None]
        required = await self.required_slots(self.domain_slots(domain), dispatcher, tracker, domain)
        straight_to_confirmation = asked is None and all(
            tracker.get_slot(s) is not None for s in required if s != "application_confirmed"
        )
        if kept and not straight_to_confirmation:
            with database() as session:
                said = {s: _spoken(session, s, str(tracker.get_slot(s))) for s in kept}
            dispatcher.utter_message(text=acknowledgement(said, {s: before.get(s) for s in kept}, tracker))
        return events

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

    async def extract_purpose(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A purpose said with other answers or before it is asked ("借5万一年买化肥") is kept."""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if tracker.get_slot("requested_slot") == "purpose" or intent not in PURPOSE_INTENTS:
            return {}
        found = purpose_in_message(tracker)
        return {"purpose": found} if found and found != tracker.get_slot("purpose") else {}

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
        if _answers_another_question(tracker, "product"):
            return {"product": None}
        with database() as session:
            customer = applicant(session, tracker)
            if customer is None:  # not identified yet: keep the choice, it is checked once we know them
                return {"product": value if session.get(LoanProduct, str(value)) else None}
            choices = product_choices(session, customer)
            product = _choose(session, choices, str(value or ""))
            if product is None:
                if not _answers_another_question(tracker, "product"):  # the question that follows lists them
                    dispatcher.utter_message(text="没对上您要的产品。")
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
        if _answers_another_question(tracker, "purpose"):  # "借5万买化肥": the purpose in it, if any
            return {"purpose": purpose_in_message(tracker)}
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
    """The message gives another answer ("金额改成3万" while the term is asked, "买化肥" while
    the product is) and says nothing for `slot`: its whole text is not this slot's answer."""
    given = {e.get("entity") for e in tracker.latest_message.get("entities") or []}
    if slot != "purpose" and purpose_in_message(tracker):
        given.add("purpose")
    return slot not in given and bool(given & ({"amount", "term", "product", "purpose"} - {slot}))


def purpose_in_message(tracker: Tracker) -> str | None:
    """The purpose said in the latest message, its amounts, terms and products left out."""
    text = tracker.latest_message.get("text") or ""
    marked = [
        (e["start"], e["end"])
        for e in tracker.latest_message.get("entities") or []
        if e.get("entity") in ("amount", "term", "product") and isinstance(e.get("start"), int)
    ]
    found = find_purpose(text, marked)
    return mask_text(found) if found else None


def _slots_before_message(tracker: Tracker) -> dict[str, Any]:
    """The slot values as they were before the latest user message."""
    users = [i for i, e in enumerate(tracker.events) if e.get("event") == "user"]
    values: dict[str, Any] = {}
    for e in tracker.events[: users[-1] if users else 0]:
        if e.get("event") == "slot":
            values[e.get("name")] = e.get("value")
    return values


def _spoken(session: Session, slot: str, value: str) -> str:
    """A kept answer as the chat says it: 阳光e贷, 5万元, 12个月, “买化肥”."""
    if slot == "product":
        product = session.get(LoanProduct, value)
        return product.name if product else value
    if slot == "amount" and value.isdigit():
        return yuan(int(value))
    if slot == "term" and value.isdigit():
        return format_term(int(value))
    return f"“{value}”"


def acknowledgement(said: dict[str, str], before: dict[str, Any], tracker: Tracker) -> str:
    """好的，5万元记下了。 / 好的，金额改成3万元了。 / 好的，5万元已经记下了。"""
    changed = [f"{LABELS[s]}改成{text}" for s, text in said.items() if before.get(s) not in (None, tracker.get_slot(s))]
    same = [text for s, text in said.items() if before.get(s) == tracker.get_slot(s)]
    new = [text if s != "purpose" else f"用途{text}" for s, text in said.items() if before.get(s) is None]
    parts = []
    if changed:
        parts.append("，".join(changed) + "了")
    if new:
        parts.append("、".join(new) + ("都" if len(new) > 1 else "") + "记下了")
    if same:
        parts.append("、".join(same) + "已经记下了")
    return "好的，" + "；".join(parts) + "。"


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
