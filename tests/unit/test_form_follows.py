"""The form follows the customer: answers given out of turn are kept and acknowledged, only
what is missing is asked, a question asked again is short, then comes with an example, then
with the offer of an officer (the validation action's run, and the questions)."""

from __future__ import annotations

import asyncio

from rasa_sdk.executor import CollectingDispatcher

from bot.actions.loan_application import ActionAskProduct, ActionAskPurpose, times_missed
from bot.actions.loan_form_validation import FORM, ValidateLoanApplicationForm
from lending.purposes import find_purpose
from tests.unit.bot_trackers import DEMO_OPENID, DOMAIN, entity, make_tracker, run, user_event
from tests.unit.test_loan_form import ZHANG_ID, customer_id


def slot(name: str, value) -> dict:
    return {"event": "slot", "name": name, "value": value}


def turn(text: str, intent: str = "inform", entities=None, asked=None, now=None, **before):
    """The tracker the form's validation gets: the answers kept `before` this message, the
    question `asked`, and what the slot mappings took from the message (`now`)."""
    kept = {**before, "requested_slot": asked}
    tracker = make_tracker(
        DEMO_OPENID, user_event(text, intent, entities), slots={**kept, **(now or {})}, active_loop=FORM
    )
    tracker.events[2:2] = [slot(k, v) for k, v in kept.items()]
    tracker.events.extend(slot(k, v) for k, v in (now or {}).items())
    return tracker


def validate_turn(tracker) -> tuple[dict, str]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidateLoanApplicationForm().run(dispatcher, tracker, DOMAIN))
    return {e["name"]: e["value"] for e in events}, "\n".join(m.get("text") or "" for m in dispatcher.messages)


def test_an_amount_while_the_product_is_asked_is_kept_and_acknowledged(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    tracker = turn(
        "5万",
        entities=[entity("amount", "5万")],
        asked="product",
        now={"amount": "5万", "product": "5万"},
        customer_ref=zhang,
    )
    slots, text = validate_turn(tracker)
    assert slots["amount"] == "50000" and slots["product"] is None
    assert text == "好的，5万元记下了。"


def test_a_purpose_while_the_product_is_asked_is_kept_and_acknowledged(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    tracker = turn("买化肥和种子", asked="product", now={"product": "买化肥和种子"}, customer_ref=zhang)
    slots, text = validate_turn(tracker)
    assert slots["purpose"] == "买化肥和种子" and slots["product"] is None
    assert text == "好的，用途“买化肥和种子”记下了。"


def test_a_new_amount_while_the_purpose_is_asked_changes_it_and_says_so(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    kept = {"customer_ref": zhang, "product": "sunshine_e_loan", "amount": "30000", "term": "12"}
    tracker = turn(
        "借5万", "apply_loan", [entity("amount", "5万")], "purpose", {"amount": "5万", "purpose": "借5万"}, **kept
    )
    slots, text = validate_turn(tracker)
    assert slots["amount"] == "50000" and slots["purpose"] is None
    assert text == "好的，金额改成5万元了。"
    same = turn(
        "借5万", "apply_loan", [entity("amount", "5万")], "purpose", {"amount": "5万"}, **{**kept, "amount": "50000"}
    )
    assert validate_turn(same)[1] == "好的，5万元已经记下了。"


def test_everything_said_at_once_goes_straight_to_the_confirmation(bank_env):
    text = "我想用阳光e贷借5万一年买化肥"
    entities = [entity("product", "sunshine_e_loan", "阳光e贷"), entity("amount", "5万"), entity("term", "一年")]
    now = {"product": "sunshine_e_loan", "amount": "5万", "term": "一年"}
    slots, said = validate_turn(turn(text, "apply_loan", entities, now=now))
    assert slots["customer_ref"] and slots["product"] == "sunshine_e_loan"
    assert (slots["amount"], slots["term"], slots["purpose"]) == ("50000", "12", "买化肥")
    assert slots["requested_slot"] == "application_confirmed"
    assert said == ""  # the confirmation lists it all


def test_a_purpose_said_when_applying_is_kept_and_acknowledged(bank_env):
    slots, text = validate_turn(turn("俺想贷点款买化肥", "apply_loan"))
    assert slots["purpose"] == "买化肥" and slots["requested_slot"] == "product"
    assert text == "好的，用途“买化肥”记下了。"


def test_purposes_are_found_inside_longer_messages():
    assert find_purpose("我想用阳光e贷借5万一年买化肥", [(3, 7), (8, 10), (10, 12)]) == "买化肥"
    assert find_purpose("借3万盖大棚用的") == "盖大棚"
    assert find_purpose("我想买个大棚贷款") == "买个大棚"
    assert find_purpose("俺是种地的 想借5万买种子化肥", [(8, 10)]) == "买种子化肥"
    assert find_purpose("养猪想扩大规模 能贷款吗") == "养猪想扩大规模"
    for none in ("我要贷款", "借5万", "一年", "寒山公园门票咋买", "我想办个贷款"):
        assert find_purpose(none) is None, none


def asked_again(slot_name: str, *answers: str):
    """A tracker in which the form asked for `slot_name` and got `answers` it could not use."""
    events = [{"event": "active_loop", "name": FORM}]
    for text in answers:
        events += [slot("requested_slot", slot_name), {"event": "action", "name": "action_listen"}]
        events.append(user_event(text, "inform"))
    tracker = make_tracker(
        DEMO_OPENID, user_event("我要贷款", "apply_loan"), active_loop=FORM, slots={"requested_slot": slot_name}
    )
    tracker.events.extend(events)
    return tracker


def test_a_question_asked_again_is_short_then_has_an_example_then_offers_an_officer(bank_env):
    assert [times_missed(asked_again("product", *["嗯"] * n), "product") for n in range(4)] == [0, 1, 2, 3]
    first, _ = run(ActionAskProduct(), asked_again("product"))
    second, _ = run(ActionAskProduct(), asked_again("product", "随便"))
    third, _ = run(ActionAskProduct(), asked_again("product", "随便", "都行"))
    fourth, _ = run(ActionAskProduct(), asked_again("product", "随便", "都行", "你定"))
    assert "预授信额度" in first and "年利率" in first
    assert second == "您想办哪个产品？回复序号或名称：1. 阳光e贷、2. 富农担保贷。"
    assert third.startswith(second) and "比如回复“1”" in third and "转人工" not in third
    assert fourth.startswith(third) and "转人工" in fourth
    purpose, _ = run(ActionAskPurpose(), asked_again("purpose", "嗯", "啊"))
    assert purpose.startswith("这笔钱用来做什么？") and "比如" in purpose
