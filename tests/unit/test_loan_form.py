"""The loan-application form's actions against the demo village in a real database:
identification, product offer, validation with explanations, confirmation and
submission through the lending service."""

from __future__ import annotations

import asyncio
import re

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.actions.loan_application import (
    ActionAskAmount,
    ActionAskApplicationConfirmed,
    ActionAskCustomerRef,
    ActionAskProduct,
    ActionAskTerm,
    ActionStopLoanApplication,
    ActionSubmitLoanApplication,
)
from bot.actions.loan_form_validation import FORM, ValidateLoanApplicationForm
from lending.binding import BindLimits, code_sent
from lending.customers import IdentificationFailed, by_id_number, identify
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, Customer, LoanApplication
from tests.conftest import TEST_SECRET
from tests.unit.bot_trackers import DEMO_OPENID, DOMAIN, UNKNOWN_OPENID, entity, make_tracker, run, user_event

CHEN_ID = "321283196802010556"  # 陈立新, farmer, 150000 line, no WeChat bound in the demo
ZHANG_ID = "321283197503120119"  # 张建国, bound to DEMO_OPENID
FILLED = {
    "customer_ref": None,
    "product": "sunshine_e_loan",
    "amount": "50000",
    "term": "12",
    "purpose": "买化肥种子",
    "application_confirmed": True,
}


def validate(method: str, value, tracker) -> tuple[dict, str]:
    dispatcher = CollectingDispatcher()
    slots = getattr(ValidateLoanApplicationForm(), f"validate_{method}")(value, dispatcher, tracker, DOMAIN)
    return slots, "\n".join(m.get("text") or "" for m in dispatcher.messages)


def customer_id(url: str, id_number: str) -> int:
    with unit_of_work(url) as session:
        return by_id_number(session, TEST_SECRET, id_number).id


def form_tracker(sender: str, text: str = "好", intent: str = "inform", entities=None, **slots):
    return make_tracker(sender, user_event(text, intent, entities), slots=slots, active_loop=FORM)


# --- who is applying ------------------------------------------------------------


def test_a_bound_wechat_user_is_not_asked_who_they_are(bank_env):
    tracker = form_tracker(DEMO_OPENID)
    extracted = asyncio.run(ValidateLoanApplicationForm().extract_customer_ref(CollectingDispatcher(), tracker, DOMAIN))
    zhang = customer_id(bank_env, ZHANG_ID)
    assert extracted == {"customer_ref": str(zhang)}
    slots, text = validate("customer_ref", str(zhang), tracker)
    assert slots == {"customer_ref": str(zhang), "customer_type": "farmer"} and text == ""


def test_an_unknown_wechat_user_is_not_given_someone_else(bank_env):
    tracker = form_tracker(UNKNOWN_OPENID)
    extracted = asyncio.run(ValidateLoanApplicationForm().extract_customer_ref(CollectingDispatcher(), tracker, DOMAIN))
    assert extracted == {}
    slots, text = validate("customer_ref", str(customer_id(bank_env, ZHANG_ID)), tracker)
    assert slots == {"customer_ref": None} and "身份证号" in text  # a bare customer id identifies nobody


def test_name_and_id_number_then_the_texted_code_bind_the_customer(bank_env, bank_sms):
    slots, text = validate("customer_ref", f"我叫陈立新身份证号{CHEN_ID}", form_tracker(UNKNOWN_OPENID))
    assert slots == {"customer_ref": None} and text == code_sent(BindLimits())
    asked, _ = run(ActionAskCustomerRef(), form_tracker(UNKNOWN_OPENID))
    assert "6位验证码" in asked

    code = re.search(r"验证码为(\d{6})", bank_sms("13912340005")[0]).group(1)
    slots, text = validate("customer_ref", code, form_tracker(UNKNOWN_OPENID, code))

    chen = customer_id(bank_env, CHEN_ID)
    assert slots == {"customer_ref": str(chen), "customer_type": "farmer"}
    assert text == "验证码正确，微信已绑定：陈**（身份证3212**********0556）。"
    with unit_of_work(bank_env) as session:
        assert session.get(Customer, chen).wechat_openid == UNKNOWN_OPENID
        assert session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.wechat_bound")) is not None


def test_wrong_name_bad_id_or_someone_elses_wechat_bind_nothing_and_tell_nothing(bank_env, bank_sms):
    cases = {
        "123456": "18位身份证号",  # a code when none was asked for
        f"王五 {CHEN_ID}": code_sent(BindLimits()),  # the name does not go with the number
        f"张建国 {ZHANG_ID}": code_sent(BindLimits()),  # bound to DEMO_OPENID already
        "陈立新 321283196802010557": "校验位不对",  # mistyped ID number
        "陈立新": "18位身份证号",  # no number at all
        "654321": "验证码不对",  # a guess at the code of a request that can never bind
    }
    for message, why in cases.items():
        slots, text = validate("customer_ref", message, form_tracker(UNKNOWN_OPENID))
        assert slots == {"customer_ref": None}, message
        assert why in text, (message, text)
        assert CHEN_ID not in text and ZHANG_ID not in text
    with unit_of_work(bank_env) as session:
        assert session.scalar(select(Customer).where(Customer.wechat_openid == UNKNOWN_OPENID)) is None


def test_identify_reads_name_and_number_in_either_order(bank_env):
    with unit_of_work(bank_env) as session:
        assert identify(session, TEST_SECRET, f"{CHEN_ID}，陈立新").name == "陈立新"
        assert identify(session, TEST_SECRET, f"姓名：陈立新 身份证：{CHEN_ID.lower()}").name == "陈立新"
        try:
            identify(session, TEST_SECRET, f"陈立新 {CHEN_ID} {ZHANG_ID}")
        except IdentificationFailed as exc:
            assert "一个人" in str(exc)
        else:
            raise AssertionError("two ID numbers must be refused")


# --- what is offered and asked ------------------------------------------------------


def test_the_products_offered_fit_the_customer_type_with_the_line(bank_env):
    text, _ = run(ActionAskProduct(), form_tracker(DEMO_OPENID))
    assert "张**您好" in text and "黄桥村整村授信" in text and "20万元" in text
    assert "1. 阳光e贷" in text and "2. 富农担保贷" in text
    assert "商e贷" not in text and "公e贷" not in text


def test_the_product_is_chosen_by_number_name_or_entity(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    for said in ("1", "第一个", "阳光e贷", "sunshine_e_loan"):
        slots, _ = validate("product", said, form_tracker(DEMO_OPENID, said, customer_ref=zhang))
        assert slots["product"] == "sunshine_e_loan", said
    slots, text = validate("product", "merchant_e_loan", form_tracker(DEMO_OPENID, customer_ref=zhang))
    assert slots == {"product": None} and "不面向您这类客户" in text
    slots, text = validate("product", "随便", form_tracker(DEMO_OPENID, customer_ref=zhang))
    assert slots == {"product": None} and text == "没对上您要的产品。"  # the short question that follows lists them


def test_amounts_are_read_as_customers_say_them(bank_env):
    tracker = form_tracker(DEMO_OPENID, product="sunshine_e_loan")
    assert validate("amount", "5万", tracker)[0] == {"amount": "50000"}
    assert validate("amount", "三万五", tracker)[0] == {"amount": "35000"}
    assert validate("amount", "借50000元吧", tracker)[0] == {"amount": "50000"}
    slots, text = validate("amount", "好多钱", tracker)
    assert slots == {"amount": None} and "没看懂金额" in text


def test_an_amount_above_the_line_is_explained_not_refused(bank_env):
    slots, text = validate("amount", "25万", form_tracker(DEMO_OPENID, product="sunshine_e_loan"))
    assert slots == {"amount": "250000"}
    assert "超过了您还能用的预授信额度20万元" in text and "客户经理审核" in text and "24小时内" in text


def test_an_amount_before_identification_claims_nothing_about_a_line(bank_env):
    slots, text = validate("amount", "十万", form_tracker(UNKNOWN_OPENID, product="sunshine_e_loan"))
    assert slots == {"amount": "100000"}
    assert text == ""  # acknowledged with the rest of the message (test_a_value_given_out_of_turn_...)


def identified_as_chen(texts_to, **slots) -> tuple[dict, str]:
    """陈立新 (a farmer with a 150000 line) identifies himself in the form: name and ID number,
    then the code texted to his phone. The validation of the code message."""
    validate("customer_ref", f"陈立新 {CHEN_ID}", form_tracker(UNKNOWN_OPENID, **slots))
    code = re.search(r"验证码为(\d{6})", texts_to("13912340005")[0]).group(1)
    return validate("customer_ref", code, form_tracker(UNKNOWN_OPENID, code, **slots))


def test_product_and_amount_given_before_identification_are_checked_once_known(bank_env, bank_sms):
    slots, text = identified_as_chen(bank_sms, product="sunshine_e_loan", amount="200000")
    assert slots["customer_ref"] == str(customer_id(bank_env, CHEN_ID)) and "amount" not in slots
    assert "微信已绑定" in text and "超过了您还能用的预授信额度15万元" in text


def test_a_product_not_for_the_customer_found_out_at_identification_is_asked_again(bank_env, bank_sms):
    slots, text = identified_as_chen(bank_sms, product="merchant_e_loan", amount="100000")
    assert slots["product"] is None and "amount" not in slots
    assert "商e贷不面向您这类客户，适合您的是：阳光e贷、富农担保贷" in text


def test_an_amount_outside_the_product_found_out_at_identification_is_asked_again(bank_env, bank_sms):
    slots, text = identified_as_chen(bank_sms, product="sunshine_e_loan", amount="500")
    assert slots["amount"] is None and "最少借1000元" in text


def test_an_amount_cut_in_pieces_by_the_tokenizer_is_read_whole(bank_env):
    tracker = form_tracker(
        DEMO_OPENID, "算了二十五万吧", entities=[entity("amount", "十五万")], product="sunshine_e_loan"
    )
    slots, text = validate("amount", "十五万", tracker)
    assert slots == {"amount": "250000"} and "您要借25万元，超过了" in text


def test_changing_the_amount_while_the_term_is_asked_is_no_bad_term(bank_env):
    tracker = form_tracker(
        DEMO_OPENID, "金额改成8万", entities=[entity("amount", "8万")], product="sunshine_e_loan", requested_slot="term"
    )
    assert validate("term", "金额改成8万", tracker) == ({"term": None}, "")
    assert validate("amount", "8万", tracker)[0] == {"amount": "80000"}


def test_amounts_outside_the_product_are_refused_with_the_range(bank_env):
    slots, text = validate("amount", "500", form_tracker(DEMO_OPENID, product="sunshine_e_loan"))
    assert slots == {"amount": None} and "最少借1000元" in text
    slots, text = validate("amount", "50万", form_tracker(DEMO_OPENID, product="sunshine_e_loan"))
    assert slots == {"amount": None} and "最多能借30万元" in text


def test_terms_are_read_and_checked_against_the_product(bank_env):
    tracker = form_tracker(DEMO_OPENID, product="sunshine_e_loan")
    assert validate("term", "一年", tracker)[0] == {"term": "12"}
    assert validate("term", "两年", tracker)[0] == {"term": "24"}
    slots, text = validate("term", "5个月", tracker)
    assert slots == {"term": None} and "6个月、12个月（1年）、24个月（2年）、36个月（3年）" in text
    text, _ = run(ActionAskTerm(), tracker)
    assert "阳光e贷可以选" in text


def test_the_purpose_must_say_what_the_money_is_for(bank_env):
    assert validate("purpose", "买化肥种子", form_tracker(DEMO_OPENID))[0] == {"purpose": "买化肥种子"}
    for not_a_purpose in ("5万", "一年", "嗯"):
        slots, text = validate("purpose", not_a_purpose, form_tracker(DEMO_OPENID))
        assert slots == {"purpose": None} and "做什么" in text, not_a_purpose
    # "金额改成3万" while the purpose is asked changes the amount, it is not the purpose.
    change = form_tracker(DEMO_OPENID, "金额改成3万", entities=[entity("amount", "3万")])
    assert validate("purpose", "金额改成3万", change)[0] == {"purpose": None}


def test_a_guarantor_is_asked_only_for_products_that_need_one(bank_env):
    slots = list(DOMAIN["forms"][FORM]["required_slots"])
    form = ValidateLoanApplicationForm()
    plain = asyncio.run(
        form.required_slots(slots, CollectingDispatcher(), form_tracker(DEMO_OPENID, product="sunshine_e_loan"), DOMAIN)
    )
    guaranteed = asyncio.run(
        form.required_slots(
            slots, CollectingDispatcher(), form_tracker(DEMO_OPENID, product="guaranteed_farm_loan"), DOMAIN
        )
    )
    assert "guarantor_ref" not in plain and "guarantor_ref" in guaranteed
    zhang = str(customer_id(bank_env, ZHANG_ID))
    slots, text = validate("guarantor_ref", f"陈立新 {CHEN_ID}", form_tracker(DEMO_OPENID, customer_ref=zhang))
    assert slots == {"guarantor_ref": str(customer_id(bank_env, CHEN_ID))} and "担保人核对成功：陈**" in text
    slots, text = validate("guarantor_ref", f"张建国 {ZHANG_ID}", form_tracker(DEMO_OPENID, customer_ref=zhang))
    assert slots == {"guarantor_ref": None} and "不能是您本人" in text


def test_naming_guarantors_is_limited_like_binding_guesses(bank_env):
    """Whether a name+ID is a customer's shows in the guarantor's answer: an applicant may test
    only BIND_GUESSES_PER_DAY of them, shared with binding guesses; a malformed one is no guess."""
    zhang = str(customer_id(bank_env, ZHANG_ID))
    tracker = form_tracker(DEMO_OPENID, customer_ref=zhang)
    assert "18位" in validate("guarantor_ref", "陈立新 12345", tracker)[1]
    for _ in range(5):
        slots, text = validate("guarantor_ref", f"陈立新 {CHEN_ID}", tracker)
        assert slots == {"guarantor_ref": str(customer_id(bank_env, CHEN_ID))}
    slots, text = validate("guarantor_ref", f"陈立新 {CHEN_ID}", tracker)
    assert slots == {"guarantor_ref": None} and "次数已经用完" in text


def test_the_confirmation_shows_every_answer_masked(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    text, _ = run(ActionAskApplicationConfirmed(), form_tracker(DEMO_OPENID, **{**FILLED, "customer_ref": zhang}))
    for part in (
        "张**（身份证3212**********0119）",
        "阳光e贷，年利率4.35%",
        "5万元",
        "12个月（1年）",
        "买化肥种子",
        "回复“确认”",
        "金额改成3万",
        "取消",
    ):
        assert part in text, part
    assert ZHANG_ID not in text
    text, _ = run(ActionAskAmount(), form_tracker(DEMO_OPENID, product="sunshine_e_loan", customer_ref=zhang))
    assert "1000元到30万元" in text and "还能用20万元" in text


# --- submission -------------------------------------------------------------------------


def applications(url: str) -> list[LoanApplication]:
    with unit_of_work(url) as session:
        return list(session.scalars(select(LoanApplication).order_by(LoanApplication.id)))


def test_a_confirmed_form_is_submitted_once_and_the_result_told(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    tracker = form_tracker(DEMO_OPENID, "确认", "affirm", **{**FILLED, "customer_ref": zhang})
    tracker.events.insert(2, {"event": "active_loop", "name": FORM, "timestamp": 1700000000.5})

    text, events = run(ActionSubmitLoanApplication(), tracker)
    again, _ = run(ActionSubmitLoanApplication(), tracker)  # Rasa retrying the action

    rows = applications(bank_env)
    assert len(rows) == 1
    app = rows[0]
    assert (app.product_code, app.amount, app.term_months, app.purpose, app.status) == (
        "sunshine_e_loan",
        50000,
        12,
        "买化肥种子",
        "awaiting_authorization",
    )
    assert "已提交" in text and "征信查询授权" in text and "配偶" in text
    assert text == again
    assert {
        "event": "slot",
        "name": "application_status",
        "value": "awaiting_authorization",
        "timestamp": None,
    } in events
    assert {"event": "slot", "name": "amount", "value": None, "timestamp": None} in events


def test_a_declined_confirmation_submits_nothing(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    tracker = form_tracker(
        DEMO_OPENID, "不了", "deny", **{**FILLED, "customer_ref": zhang, "application_confirmed": False}
    )
    text, events = run(ActionSubmitLoanApplication(), tracker)
    assert applications(bank_env) == [] and "先不提交" in text
    assert {"event": "slot", "name": "application_status", "value": "not_submitted", "timestamp": None} in events


def test_a_refusal_by_the_lending_service_is_told_and_nothing_is_kept(bank_env):
    zhang = str(customer_id(bank_env, ZHANG_ID))
    # The bound customer applies for a product not meant for farmers (changed behind the form's back).
    tracker = form_tracker(
        DEMO_OPENID, "确认", "affirm", **{**FILLED, "customer_ref": zhang, "product": "civil_servant_e_loan"}
    )
    text, events = run(ActionSubmitLoanApplication(), tracker)
    assert applications(bank_env) == []
    assert text.startswith("申请没能提交：公e贷不面向您这类客户")
    assert {"event": "slot", "name": "application_status", "value": "not_submitted", "timestamp": None} in events


def test_stopping_the_form_clears_the_answers(bank_env):
    text, events = run(ActionStopLoanApplication(), form_tracker(DEMO_OPENID, "算了不贷了", "cancel", **FILLED))
    assert "什么都没有提交" in text
    assert {e["name"] for e in events if e["value"] is None} >= {"product", "amount", "term", "purpose"}
    assert applications(bank_env) == []
