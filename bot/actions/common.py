"""What every custom action shares: settings and database (read lazily, on
each run, so tests and operators can change the environment), the customer
behind a WeChat openid, and customer-facing wording.

The WeChat openid is the Rasa sender id. Business rules live in the domain
packages (lending, handoff, auth_flow); the actions only ask them and word
the answer.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from clients.sms import SmsClient
from lending.amounts import AmountError, amount_around, find_amount, format_amount, parse_amount
from lending.applications import Applications
from lending.binding import (
    BindingRefused,
    BindLimits,
    awaiting_code,
    background_sms,
    confirm_code,
    read_code,
    request_code,
)
from lending.catalog import products_offered
from lending.customers import IdentificationFailed, by_openid, has_id_number
from sunshine.clock import customer_date
from sunshine.db import unit_of_work
from sunshine.models import Customer, LoanProduct
from sunshine.protect import mask_name, mask_text
from sunshine.settings import Settings, load

logger = logging.getLogger(__name__)

SORRY_BUSY = "不好意思，系统有点忙，没查到结果。请过一会儿再发一次，或者回复“转人工”找客户经理。"


def settings() -> Settings:
    """The current settings (environment and .env), read at call time."""
    return load()


@contextmanager
def database(cfg: Settings | None = None) -> Iterator[Session]:
    """A unit of work on the configured database."""
    cfg = cfg or settings()
    with unit_of_work(cfg.database_url) as session:
        yield session


def openid_of(tracker: Tracker) -> str:
    return tracker.sender_id


def applicant(session: Session, tracker: Tracker) -> Customer | None:
    """The customer the conversation is about: the one identified in the loan
    form (customer_ref), else the one whose WeChat is bound to this openid."""
    ref = tracker.get_slot("customer_ref")
    if ref and str(ref).isdigit():
        return session.get(Customer, int(ref))
    return by_openid(session, openid_of(tracker))


def chosen_product(session: Session, tracker: Tracker) -> LoanProduct | None:
    """The product chosen in the loan form (the `product` slot), or None."""
    code = tracker.get_slot("product")
    return session.get(LoanProduct, code) if code else None


def product_choices(session: Session, customer: Customer) -> list[LoanProduct]:
    """The products offered to this customer, in the order the bot numbers them."""
    return products_offered(session, customer)


def lending_told_here() -> tuple[Applications, list[str]]:
    """The lending service, with the notices it words for the customer kept for this chat
    to say (instead of sent to WeChat a second time), and the list they are kept in."""
    notices: list[str] = []
    return Applications.from_settings(settings(), notify=lambda openid, text, **_: notices.append(text)), notices


def bind_by_message(
    session: Session, tracker: Tracker, text: str, insist: bool = False
) -> tuple[Customer | None, str | None]:
    """A WeChat user not bound yet: a message with name and ID number asks for a code texted to
    the customer's phone, a 6-digit code then binds (lending.binding). Returns the customer once
    bound and what to say; (None, None) when the message is neither (unless `insist`: then it
    is read as a name+ID and the answer says what is missing)."""
    cfg, openid = settings(), openid_of(tracker)
    limits, send = BindLimits.from_settings(cfg), background_sms(SmsClient.from_settings(cfg))
    try:
        code = None if has_id_number(text) else read_code(text)
        if code is not None and awaiting_code(session, openid):
            customer = confirm_code(session, cfg.secret_key, openid, code, limits, send)
            return customer, f"验证码正确，微信已绑定：{named(customer)}。"
        if insist or has_id_number(text):
            return None, request_code(session, cfg.secret_key, openid, text, limits, send)
    except (IdentificationFailed, BindingRefused) as exc:
        return None, str(exc)
    return None, None


def say_result(dispatcher: CollectingDispatcher, notices: list[str], current: str | None) -> None:
    """The lending service's own words for what just happened, else for where things stand."""
    for text in [t for t in notices or [current] if t]:
        dispatcher.utter_message(text=text)


def named(customer: Customer) -> str:
    """陈**（身份证3212**********0556）: a customer as the chat names them."""
    return f"{mask_name(customer.name)}（身份证{customer.id_masked}）"


def yuan(amount: int) -> str:
    """20万元, 3.5万元, 800元."""
    return format_amount(amount)


def day(d: date) -> str:
    """2027年12月31日."""
    return customer_date(d)


def percent(rate_bp: int) -> str:
    """435 basis points -> '4.35%'."""
    return f"{rate_bp / 100:.2f}%"


def asked(question: str) -> dict[str, Any]:
    """The yes/no question this answer ends with (hand_off_offer, withdrawal): a short reply
    to it ("中", "不用了") is judged by it (bot.actions.short_replies)."""
    return SlotSet("yes_no_question", question)


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    """The entity's value in the latest user message (after synonym mapping)."""
    return next(tracker.get_latest_entity_values(entity), None)


def slot_or_entity(tracker: Tracker, name: str) -> str | None:
    """The value the customer just said, else the one remembered in the slot."""
    return latest_entity(tracker, name) or tracker.get_slot(name)


def amount_in_message(tracker: Tracker) -> int | None:
    """The amount the NLU marked in the latest message, read whole from the message's
    own words: the mark may cover only a piece of it (十五万 of 三十五万, 2 of 2.5万)."""
    text = tracker.latest_message.get("text") or ""
    for e in tracker.latest_message.get("entities") or []:
        if not (isinstance(e.get("start"), int) and isinstance(e.get("end"), int)):
            continue
        # A mark ending in a money unit is an amount whatever entity the NLU named it (a model
        # has marked 3000元 as a phone number: no phone number ends in 元 or 块).
        money = str(e.get("value") or "").endswith(("元", "块", "万"))
        if e.get("entity") == "amount" or money:
            found = amount_around(text, e["start"], e["end"])
            if found is not None:
                return found
    return None


def amount_asked(tracker: Tracker) -> tuple[int | None, str | None]:
    """(yuan, None) for the amount the customer gave, (None, why) when it cannot
    be read, (None, None) when none was given."""
    raw = slot_or_entity(tracker, "amount")
    return read_amount(tracker, raw) if raw else (None, None)


def read_amount(tracker: Tracker, raw: str) -> tuple[int | None, str | None]:
    """(yuan, None) for the amount marked in the latest message, else the one in `raw`
    (a slot's or entity's text); (None, why) when it cannot be read."""
    found = amount_in_message(tracker)
    if found is not None:
        return found, None
    try:
        return parse_amount(raw), None
    except AmountError as exc:
        # The tokenizer may glue a word to the amount (5万买): look inside.
        found = find_amount(raw)
        return (found, None) if found is not None else (None, str(exc))


def recent_user_messages(tracker: Tracker, limit: int = 5) -> list[str]:
    """The last user messages, oldest first, ID and phone numbers masked."""
    texts = [e.get("text") or "" for e in tracker.events if e.get("event") == "user"]
    return [mask_text(t) for t in texts[-limit:] if t]


def conversation_summary(tracker: Tracker) -> dict[str, Any]:
    """What an officer needs to pick up the conversation (no raw personal numbers)."""
    intent = tracker.latest_message.get("intent") or {}
    ranking = tracker.latest_message.get("intent_ranking") or []
    slots = {
        k: mask_text(str(v))
        for k, v in (tracker.slots or {}).items()
        if v not in (None, "", []) and not k.startswith("requested_")
    }
    return {
        "last_intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0.0), 3),
        "candidates": [r.get("name") for r in ranking[:3] if r.get("name")],
        "slots": slots,
        "recent_messages": recent_user_messages(tracker),
    }


class BankAction(Action, metaclass=abc.ABCMeta):
    """An action that answers from the bank's records.

    Abstract, so that the action server's registry (which registers every
    concrete Action subclass it finds) skips this base class.

    Subclasses implement `answer`; a failure of the database or a service is
    logged and the customer gets a short apology instead of silence.
    """

    @abc.abstractmethod
    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Reply to the customer; return the events to apply."""

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return self.answer(dispatcher, tracker, domain) or []
        except Exception:  # the customer must get an answer; the log gets the cause
            logger.exception("action %s failed for sender %s", self.name(), tracker.sender_id)
            dispatcher.utter_message(text=SORRY_BUSY)
            return []
