"""Short replies judged by the question they answer, and the answer when the dialogue
policies are unsure (bot.actions.short_replies), against the demo database."""

from __future__ import annotations

import pytest

from bot.actions.short_replies import ActionAnswerYesNo, ActionDefaultFallback, read_yes_no
from tests.unit.bot_trackers import DEMO_OPENID, make_tracker, run, user_event
from tests.unit.test_actions import hand_offs


@pytest.mark.parametrize(
    ("text", "yes"),
    [
        ("不是不是", False),
        ("没有", False),
        ("不用了", False),
        ("没有的事", False),
        ("不中", False),
        ("对的对的", True),
        ("嗯嗯", True),
        ("行", True),
        ("中", True),
        ("中中中！", True),
        ("好的呀", True),
        ("我想借5万", None),
        ("中国银行", None),
        ("不是我要借", None),
    ],
)
def test_one_word_replies_are_read_as_yes_or_no(text, yes):
    assert read_yes_no(text) is yes


def after_question(question: str | None, reply: str, intent: str, **slots):
    """The customer's `reply` to an answer of the bot that ended with the yes/no `question`."""
    tracker = make_tracker(
        DEMO_OPENID, user_event("我能贷多少", "ask_credit_line"), user_event(reply, intent), slots=slots
    )
    if question:
        tracker.events.insert(4, {"event": "slot", "name": "yes_no_question", "value": question})
    return tracker


def test_a_one_word_yes_to_the_officer_offered_hands_off(bank_env):
    text, _ = run(ActionAnswerYesNo(), after_question("hand_off_offer", "中", "affirm"))
    assert "已经帮您转给客户经理" in text
    assert [r.reason for r in hand_offs(bank_env, DEMO_OPENID)] == ["customer_request"]


def test_a_no_to_the_officer_offered_or_to_nothing_is_answered_and_changes_nothing(bank_env):
    for question in ("hand_off_offer", None):
        text, _ = run(ActionAnswerYesNo(), after_question(question, "不是不是", "deny"))
        assert text == "好的，有需要随时找我。"
    text, _ = run(ActionAnswerYesNo(), after_question(None, "对的对的", "affirm"))
    assert "还有什么要办的" in text
    assert hand_offs(bank_env, DEMO_OPENID) == []


def test_a_no_to_the_withdrawal_offered_keeps_the_application(bank_env):
    text, events = run(ActionAnswerYesNo(), after_question("withdrawal", "不用了", "deny", withdrawal_application="1"))
    assert "申请留着" in text
    assert {"event": "slot", "name": "withdrawal_application", "value": None, "timestamp": None} in events


def test_the_fallback_reads_a_plain_yes_to_the_question_waiting(bank_env):
    text, _ = run(ActionDefaultFallback(), after_question("hand_off_offer", "中嘞", "nlu_fallback"))
    assert "已经帮您转给客户经理" in text


def form_turn(asked: str, reply: str, intent: str = "nlu_fallback"):
    return make_tracker(
        DEMO_OPENID,
        user_event(reply, intent, confidence=0.2),
        slots={"requested_slot": asked, "product": "sunshine_e_loan"},
        active_loop="loan_application_form",
    )


def test_the_fallback_in_the_form_confirms_on_a_plain_yes_and_asks_again_otherwise(bank_env):
    events = ActionDefaultFallback().run(None, form_turn("application_confirmed", "中"), {})
    assert events[0] == {"event": "slot", "name": "application_confirmed", "value": True, "timestamp": None}
    assert events[1]["event"] == "followup" and events[1]["name"] == "loan_application_form"
    text, _ = run(ActionDefaultFallback(), form_turn("term", "那个那个啥"))
    assert text.startswith("这句我没太明白。") and "可以选" in text


def test_the_fallback_always_ends_the_turn_waiting_for_the_customer(bank_env):
    """Without it the unsure policies fall back again on the same message, ten times, and the
    conversation stops answering (seen on the stack in a form that could not use a message)."""
    _, events = run(ActionDefaultFallback(), form_turn("application_confirmed", "在线申请贷款在哪里", "apply_loan"))
    assert events[-1]["event"] == "followup" and events[-1]["name"] == "action_listen"
    _, events = run(ActionDefaultFallback(), after_question(None, "嗯那个啥", "nlu_fallback"))
    assert events[-1]["name"] == "action_listen"
