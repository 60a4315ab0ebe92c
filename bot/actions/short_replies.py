"""Short replies (对的对的, 嗯嗯, 行, 中, 不是不是, 没有, 不用了) judged by the question they answer,
and the answer when the dialogue policies are unsure (action_default_fallback): the bot always answers.

The actions that end with a yes/no question name it in the `yes_no_question` slot (common.asked);
the reply to the very next message is read against it. A yes or a no with no question waiting
still gets an answer.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.applications import withdraw
from bot.actions.common import BankAction
from bot.actions.hand_off import hand_off, not_understood_before
from bot.actions.loan_application import ASK_ACTIONS

FORM = "loan_application_form"

# One-word replies as farmers type or dictate them (中 and 得 are yes in the Central Plains dialects).
YES = {
    "是",
    "是的",
    "对",
    "对的",
    "嗯",
    "恩",
    "好",
    "好的",
    "行",
    "中",
    "成",
    "得",
    "可以",
    "要",
    "需要",
    "确定",
    "确认",
}
YES |= {"没问题", "同意", "好嘞", "要的", "可以的", "ok", "yes", "嗯呐", "当然"}
NO = {"不", "不是", "不对", "不要", "不用", "不用了", "不需要", "没有", "没", "没得", "算了", "不行", "不中", "不成"}
NO |= {"不了", "别", "不必", "no", "没有的事", "拉倒", "甭", "甭了"}
_PARTICLES = re.compile(r"[啊呀吧呢哈嘛啦了哦噢喔嘞咧哇咯喽撒~～。，,.!！?？\s]+$")
_REPEATS = re.compile(r"^(.{1,3}?)\1+$")
ANYTHING_ELSE = "好的。还有什么要办的，直接说就行，比如“我能贷多少”“我要贷款”。"


def read_yes_no(text: str) -> bool | None:
    """True for a yes, False for a no, None when the text is more than a short yes/no."""
    s = unicodedata.normalize("NFKC", str(text or "")).strip().lower()
    for candidate in (s, _PARTICLES.sub("", s)):
        candidate = _REPEATS.sub(r"\1", candidate)  # 对的对的, 嗯嗯, 不是不是
        if candidate in YES:
            return True
        if candidate in NO:
            return False
    return None


def pending_question(tracker: Tracker) -> str | None:
    """The yes/no question the bot asked in answer to the message before the latest one."""
    users = [i for i, e in enumerate(tracker.events) if e.get("event") == "user"]
    if len(users) < 2:
        return None
    for event in reversed(tracker.events[users[-2] + 1 : users[-1]]):
        if event.get("event") == "slot" and event.get("name") == "yes_no_question":
            return event.get("value")
    return None


def said_yes(tracker: Tracker) -> bool | None:
    """The latest message as a yes or a no: the NLU's affirm/deny, else the words themselves."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent in ("affirm", "deny"):
        return intent == "affirm"
    return read_yes_no(tracker.latest_message.get("text") or "")


def answer_yes_no(dispatcher: CollectingDispatcher, tracker: Tracker, yes: bool) -> list[dict[str, Any]]:
    """Act on a yes or a no to the question waiting (an officer, a withdrawal), if any."""
    question = pending_question(tracker)
    if question == "hand_off_offer" and yes:
        return hand_off(dispatcher, tracker, "customer_request")
    if question == "withdrawal":
        if yes:
            return withdraw(dispatcher, tracker)
        dispatcher.utter_message(response="utter_application_kept")
        return [SlotSet("withdrawal_application", None)]
    if yes:
        dispatcher.utter_message(text=ANYTHING_ELSE)
    else:
        dispatcher.utter_message(response="utter_ok")
    return []


class ActionAnswerYesNo(BankAction):
    """affirm / deny outside the loan form: judged by the question the bot asked last."""

    def name(self) -> str:
        return "action_answer_yes_no"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return answer_yes_no(dispatcher, tracker, bool(said_yes(tracker)))


class ActionDefaultFallback(BankAction):
    """Rasa's fallback when the dialogue policies are not sure what to do (the NLU was sure of
    an intent that does not fit here). A plain yes or no answers the question waiting; in the
    loan form the question asked is asked again; else the customer is asked to rephrase, and the
    second time in a row (after either kind of "not understood") handed to an officer."""

    def name(self) -> str:
        return "action_default_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Answers, then waits for the customer: the policies that were unsure would otherwise
        be asked again with the same message and fall back again, turn after turn."""
        events = super().run(dispatcher, tracker, domain)
        if any(e.get("event") == "followup" for e in events):
            return events
        return [*events, FollowupAction("action_listen")]

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        yes = read_yes_no(tracker.latest_message.get("text") or "")
        asked = tracker.get_slot("requested_slot") if tracker.active_loop_name == FORM else None
        if asked == "application_confirmed" and yes is not None:
            return [SlotSet("application_confirmed", yes), FollowupAction(FORM)]
        if yes is not None and asked is None:
            return answer_yes_no(dispatcher, tracker, yes)
        if not_understood_before(tracker):
            return hand_off(dispatcher, tracker, "not_understood")
        if asked in ASK_ACTIONS:
            dispatcher.utter_message(text="这句我没太明白。")
            return ASK_ACTIONS[asked]().answer(dispatcher, tracker, domain)
        dispatcher.utter_message(response="utter_default")
        return []
