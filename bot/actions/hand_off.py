"""Hand the conversation to a loan officer through the hand-off service."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import BankAction, conversation_summary, database, openid_of
from handoff.service import request_hand_off

REASON_BY_INTENT = {"nlu_fallback": "not_understood", "complain": "complaint"}


NOT_UNDERSTOOD = ("utter_default", "action_default_fallback")


def _reason(tracker: Tracker) -> str:
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    return REASON_BY_INTENT.get(intent, "customer_request")


def not_understood_before(tracker: Tracker) -> bool:
    """The bot's answer to the message before this one was "not understood"."""
    users = [i for i, e in enumerate(tracker.events) if e.get("event") == "user"]
    if len(users) < 2:
        return False
    between = tracker.events[users[-2] + 1 : users[-1]]
    return any(e.get("event") == "action" and e.get("name") in NOT_UNDERSTOOD for e in between)


class ActionHandOff(BankAction):
    """Records a hand-off (one open per customer) and tells the customer who will answer."""

    def name(self) -> str:
        return "action_hand_off"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return hand_off(dispatcher, tracker, _reason(tracker))


def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> list[dict[str, Any]]:
    """Record the hand-off (one open per customer) and tell the customer who answers, and when."""
    with database() as session:
        record, created = request_hand_off(session, openid_of(tracker), reason, conversation_summary(tracker))
        officer = record.officer.display_name if record.officer else None
        minutes = max(1, round((record.deadline - record.created_at).total_seconds() / 60))
    who = f"客户经理{officer}" if officer else "客户经理"
    if not created:
        text = f"已经在帮您联系{who}了，请稍等，回复会直接发到这里。"
    elif reason == "complaint":
        text = f"您的情况我已经转给{who}，会优先处理，一般{minutes}分钟内在这里回复您。" "给您添麻烦了，请多包涵。"
    elif reason == "not_understood":
        text = f"不好意思，我没能弄明白您的意思，已经请{who}来帮您，" f"一般{minutes}分钟内会在这里回复您，请留意消息。"
    else:
        text = f"好的，已经帮您转给{who}，一般{minutes}分钟内会在这里回复您，请留意消息。"
    dispatcher.utter_message(text=text)
    return []
