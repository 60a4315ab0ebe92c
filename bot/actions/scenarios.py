"""The scenario services (faq/* retrieval intents): the model recognises the topic, the words come
from the content file (conversation/scenarios.py), worded for the customer when their WeChat is
bound."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import BankAction, database, openid_of, settings
from conversation.scenarios import DepositBalances, answer_for
from lending.customers import by_openid

NOT_IN_CONTENT = "这个问题我暂时答不上来，回复“转人工”请客户经理帮您。"


def topic_of(tracker: Tracker) -> str | None:
    """faq/hospital_payment -> hospital_payment, as the ResponseSelector chose it."""
    selected = (tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    key = (selected.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if key.startswith("faq/") else None


def deposit_balances() -> DepositBalances | None:
    """The core-banking deposit read. None (a stub, named so in the README) until the core-banking
    client exists: the 验资 answer then says what the project requires and what to bring."""
    return None


class ActionFaq(BankAction):
    """Answers a scenario-service question from the content file."""

    def name(self) -> str:
        return "action_faq"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        topic = topic_of(tracker)
        said = tracker.latest_message.get("text") or ""
        with database() as session:
            customer = by_openid(session, openid_of(tracker))
            try:
                answer = answer_for(topic or "", customer, said, deposit_balances())
            except KeyError:
                dispatcher.utter_message(text=NOT_IN_CONTENT)
                return []
            dispatcher.utter_message(text=answer.chat_text(settings().wxa_appid))
        return []
