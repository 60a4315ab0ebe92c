"""The scenario services (faq/* retrieval intents): the model recognises the topic, the words come
from the content file (conversation/scenarios.py), worded for the customer when their WeChat is
bound."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import BankAction, database, openid_of, settings
from clients.corebank import CoreBankingClient
from conversation.scenarios import DepositBalances, answer_for
from lending.customers import by_openid
from lending.deposits import CoreDeposits
from sunshine.jobs import per_process

NOT_IN_CONTENT = "这个问题我暂时答不上来，回复“转人工”请客户经理帮您。"


def topic_of(tracker: Tracker) -> str | None:
    """faq/hospital_payment -> hospital_payment, as the ResponseSelector chose it."""
    selected = (tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    key = (selected.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if key.startswith("faq/") else None


def deposit_balances() -> DepositBalances:
    """The customer's deposits, read from core banking by this process's client."""
    s = settings()
    return CoreDeposits(per_process(CoreBankingClient.from_settings, s), s.secret_key)


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
