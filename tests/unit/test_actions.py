"""The custom actions against a real, migrated database holding the demo village.

Each test builds a rasa-sdk Tracker the way the action server does (from the
tracker dump Rasa sends) and runs the action with a CollectingDispatcher.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import func, select

import bot.actions
from bot.actions.applications import ActionApplicationStatus
from bot.actions.common import SORRY_BUSY
from bot.actions.credit_line import ActionCreditLine
from bot.actions.hand_off import ActionHandOff
from bot.actions.products import ActionInterestRate, ActionProducts
from bot.actions.short_replies import ActionDefaultFallback
from lending.binding import BindLimits, code_sent
from sunshine.clock import customer_date
from sunshine.db import unit_of_work
from sunshine.demo import demo_valid_until
from sunshine.models import CreditLine, Customer, HandOff, LoanApplication
from tests.unit.bot_trackers import DEMO_OPENID, DOMAIN, UNKNOWN_OPENID, entity, make_tracker, run, user_event


def test_the_action_server_registers_exactly_the_domain_actions():
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("bot.actions")
    assert sorted(executor.actions) == sorted(DOMAIN["actions"])


# --- action_credit_line -----------------------------------------------------


def test_credit_line_answers_with_the_line_from_the_database(bank_env):
    text, events = run(ActionCreditLine(), make_tracker(DEMO_OPENID, user_event("我能贷多少", "ask_credit_line")))

    assert "张**" in text and "张建国" not in text
    assert "黄桥村" in text
    assert "20万元" in text
    assert customer_date(demo_valid_until()) in text
    assert "阳光e贷" in text and "富农担保贷" in text
    assert "商e贷" not in text and "公e贷" not in text  # not for farmers
    assert "3212**********0119" in text  # masked ID
    assert "321283197503120119" not in text
    assert events == [{"event": "slot", "name": "yes_no_question", "value": "hand_off_offer", "timestamp": None}]


def test_credit_line_follows_the_database_not_a_template(bank_env):
    with unit_of_work(bank_env) as session:
        customer = session.scalar(select(Customer).where(Customer.wechat_openid == DEMO_OPENID))
        line = session.scalar(select(CreditLine).where(CreditLine.customer_id == customer.id))
        line.used_amount = 50_000

    text, _ = run(ActionCreditLine(), make_tracker(DEMO_OPENID, user_event("俺还能借多少", "ask_credit_line")))

    assert "已用5万元" in text
    assert "还能用15万元" in text


def test_credit_line_compares_the_amount_asked_for(bank_env):
    within = make_tracker(
        DEMO_OPENID, user_event("我想贷5万", "apply_loan", [entity("amount", "5万")]), slots={"amount": "5万"}
    )
    above = make_tracker(
        DEMO_OPENID, user_event("想借三十万", "apply_loan", [entity("amount", "三十万")]), slots={"amount": "三十万"}
    )
    garbled = make_tracker(
        DEMO_OPENID, user_event("借好多钱", "apply_loan", [entity("amount", "好多钱")]), slots={"amount": "好多钱"}
    )

    assert "您想借5万元，在可用额度以内" in run(ActionCreditLine(), within)[0]
    text, _ = run(ActionCreditLine(), above)
    assert "您想借30万元，超出了可用额度20万元" in text
    assert "没看懂金额" in run(ActionCreditLine(), garbled)[0]


def test_credit_line_reads_an_amount_glued_to_the_next_word(bank_env):
    # jieba may cut 借5万买化肥 as 5 / 万买, so the entity can carry a stray character.
    tracker = make_tracker(
        DEMO_OPENID, user_event("借5万买化肥", "apply_loan", [entity("amount", "5万买")]), slots={"amount": "5万买"}
    )
    assert "您想借5万元，在可用额度以内" in run(ActionCreditLine(), tracker)[0]


def test_credit_line_reads_an_amount_split_into_pieces(bank_env):
    tracker = make_tracker(
        DEMO_OPENID,
        user_event("想借2.5万", "apply_loan", [entity("amount", "2"), entity("amount", "5万")]),
        slots={"amount": "2"},
    )
    assert "您想借2.5万元" in run(ActionCreditLine(), tracker)[0]


def test_credit_line_for_an_unknown_customer_is_honest(bank_env):
    text, _ = run(ActionCreditLine(), make_tracker(UNKNOWN_OPENID, user_event("我能贷多少", "ask_credit_line")))

    assert "没查到您微信绑定的客户信息" in text
    assert "姓名和身份证号一起发给我" in text
    assert "转人工" in text
    assert "万元" not in text  # no line shown, none invented


def test_unknown_customer_giving_only_an_id_number_is_not_looked_up(bank_env):
    tracker = make_tracker(
        UNKNOWN_OPENID, user_event("身份证321283197503120119", "inform", [entity("id_number", "321283197503120119")])
    )
    text, _ = run(ActionCreditLine(), tracker)

    assert "请把姓名也告诉我" in text
    assert "张建国" not in text and "张**" not in text and "20万元" not in text


def test_unknown_customer_giving_name_and_id_number_gets_a_code_then_is_bound_and_told_the_line(bank_env, bank_sms):
    said = "陈立新 321283196802010556"
    text, _ = run(ActionCreditLine(), make_tracker(UNKNOWN_OPENID, user_event(said, "inform")))

    assert text == code_sent(BindLimits())  # no line yet, nothing bound: a code went to his phone
    with unit_of_work(bank_env) as session:
        assert session.scalar(select(Customer).where(Customer.wechat_openid == UNKNOWN_OPENID)) is None
    (sms,) = bank_sms("13912340005")
    code = re.search(r"验证码为(\d{6})", sms).group(1)

    # The NLU may read the code as an amount: it is no amount.
    typed = make_tracker(
        UNKNOWN_OPENID, user_event(f"验证码{code}", "inform", [entity("amount", code)]), slots={"amount": code}
    )
    text, events = run(ActionCreditLine(), typed)

    assert text.startswith("验证码正确，微信已绑定：陈**（身份证3212**********0556）。")
    assert "预授信额度是15万元" in text and "陈立新" not in text and "您想借" not in text
    assert events == [
        {"event": "slot", "timestamp": None, "name": "amount", "value": None},
        {"event": "slot", "timestamp": None, "name": "yes_no_question", "value": "hand_off_offer"},
    ]
    with unit_of_work(bank_env) as session:
        assert session.scalar(select(Customer).where(Customer.wechat_openid == UNKNOWN_OPENID)).name == "陈立新"
    assert "绑定微信" in bank_sms("13912340005", 2)[-1]  # the phone on file is told


def test_someone_elses_name_and_id_number_show_no_line_and_bind_nothing(bank_env, bank_sms):
    for said in ("张建国 321283197503120119", "王五 321283196802010556", "陈立新 321283196802010556"):
        text, _ = run(ActionCreditLine(), make_tracker(UNKNOWN_OPENID, user_event(said, "inform")))
        assert text == code_sent(BindLimits()), said  # the same words whoever it names
    for guess in ("000000", "123456"):
        text, _ = run(ActionCreditLine(), make_tracker(UNKNOWN_OPENID, user_event(guess, "inform")))
        assert "验证码" in text and "万元" not in text
    with unit_of_work(bank_env) as session:
        assert session.scalar(select(Customer).where(Customer.wechat_openid == UNKNOWN_OPENID)) is None
    assert "已绑定其他微信" in bank_sms("13912340001")[0]  # 张建国's phone is told someone tried


def test_unknown_customer_with_a_customer_type_gets_fitting_products(bank_env):
    tracker = make_tracker(
        UNKNOWN_OPENID,
        user_event("我是开店的", "inform", [entity("customer_type", "merchant", "开店")]),
        slots={"customer_type": "merchant"},
    )
    text, _ = run(ActionCreditLine(), tracker)

    assert "个体工商户可以了解：商e贷、富农担保贷" in text


def test_credit_line_when_the_line_has_expired(bank_env):
    with unit_of_work(bank_env) as session:
        customer = session.scalar(select(Customer).where(Customer.wechat_openid == DEMO_OPENID))
        session.scalar(select(CreditLine).where(CreditLine.customer_id == customer.id)).valid_until = date(2020, 1, 1)

    text, _ = run(ActionCreditLine(), make_tracker(DEMO_OPENID, user_event("我的额度", "ask_credit_line")))

    assert "没有有效的预授信额度" in text
    assert "20万元" not in text


# --- action_hand_off ----------------------------------------------------------


def hand_offs(url: str, openid: str) -> list[HandOff]:
    with unit_of_work(url) as session:
        return list(session.scalars(select(HandOff).where(HandOff.openid == openid).order_by(HandOff.id)))


def test_hand_off_is_recorded_once_and_the_customer_told_who_answers(bank_env):
    tracker = make_tracker(
        DEMO_OPENID,
        user_event("我身份证321283197503120119想借钱", "apply_loan"),
        user_event("转人工", "request_human"),
        slots={"amount": "5万"},
    )

    first, _ = run(ActionHandOff(), tracker)
    second, _ = run(ActionHandOff(), tracker)

    rows = hand_offs(bank_env, DEMO_OPENID)
    assert len(rows) == 1
    assert rows[0].reason == "customer_request"
    assert rows[0].officer_id is not None  # the customer's own officer
    assert rows[0].status == "open"
    assert "客户经理李经理" in first and "30分钟内" in first
    assert "已经在帮您联系" in second
    summary = rows[0].summary
    assert summary["last_intent"] == "request_human"
    assert summary["slots"] == {"amount": "5万"}
    assert summary["recent_messages"][-1] == "转人工"
    assert "321283197503120119" not in str(summary)  # personal numbers masked
    assert "3212**********0119" in summary["recent_messages"][0]


def test_hand_off_after_not_understanding(bank_env):
    tracker = make_tracker(UNKNOWN_OPENID, user_event("嗯那个啥俺家那个", "nlu_fallback", confidence=0.3))

    text, _ = run(ActionHandOff(), tracker)

    rows = hand_offs(bank_env, UNKNOWN_OPENID)
    assert [r.reason for r in rows] == ["not_understood"]
    assert rows[0].customer_id is None  # unknown: the branch queue
    assert "没能弄明白" in text and "客户经理" in text


def after(answer: str, *turns: dict):
    """A tracker whose first user turn the bot answered with the action `answer`."""
    tracker = make_tracker(UNKNOWN_OPENID, *turns)
    tracker.events.insert(4, {"event": "action", "name": answer})
    return tracker


def test_the_dialogue_fallback_asks_to_rephrase_first(bank_env):
    first = make_tracker(UNKNOWN_OPENID, user_event("就是那个嘛你懂的", "affirm", confidence=0.67))
    assert "没太听明白" in run(ActionDefaultFallback(), first)[0]
    after_an_answer = after(
        "action_credit_line",
        user_event("我能贷多少", "ask_credit_line"),
        user_event("就是那个嘛你懂的", "affirm", confidence=0.67),
    )
    assert "没太听明白" in run(ActionDefaultFallback(), after_an_answer)[0]
    assert hand_offs(bank_env, UNKNOWN_OPENID) == []


def test_not_understood_twice_in_a_row_of_either_kind_hands_off(bank_env):
    for first_answer in ("utter_default", "action_default_fallback"):
        tracker = after(
            first_answer,
            user_event("嗯那个啥俺家那个", "nlu_fallback", confidence=0.3),
            user_event("就是那个嘛你懂的", "affirm", confidence=0.67),
        )
        text, _ = run(ActionDefaultFallback(), tracker)
        assert "没能弄明白" in text or "已经在帮您联系" in text, first_answer
    assert [r.reason for r in hand_offs(bank_env, UNKNOWN_OPENID)] == ["not_understood"]


def test_an_upset_customer_is_handed_off_first_in_the_queue(bank_env):
    tracker = make_tracker(DEMO_OPENID, user_event("你们这啥破服务", "complain"))

    text, _ = run(ActionHandOff(), tracker)

    rows = hand_offs(bank_env, DEMO_OPENID)
    assert [(r.reason, r.priority) for r in rows] == [("complaint", 2)]
    assert "优先处理" in text and "客户经理李经理" in text


# --- products, rates, application status ---------------------------------------


def test_products_for_a_known_farmer_come_from_the_catalogue(bank_env):
    text, _ = run(ActionProducts(), make_tracker(DEMO_OPENID, user_event("有啥贷款", "ask_products")))

    assert "适合农户的贷款有" in text
    assert "阳光e贷" in text and "4.35%" in text and "30万元" in text
    assert "商e贷" not in text


def test_one_named_product_in_detail(bank_env):
    tracker = make_tracker(
        UNKNOWN_OPENID,
        user_event("富农担保贷要啥条件", "ask_products", [entity("product", "guaranteed_farm_loan", "富农担保贷")]),
    )
    text, _ = run(ActionProducts(), tracker)

    assert text.startswith("富农担保贷：")
    assert "需要一名担保人" in text and "5.20%" in text and "担保人授权" in text


def test_interest_rate_with_the_amount_asked_about(bank_env):
    tracker = make_tracker(
        DEMO_OPENID,
        user_event("借5万利息多少", "ask_interest_rate", [entity("amount", "5万")]),
        slots={"amount": "5万"},
    )
    text, _ = run(ActionInterestRate(), tracker)

    assert "阳光e贷：年利率4.35%" in text
    assert "借5万元，用满一年利息约2175元" in text


def test_application_status(bank_env):
    tracker = make_tracker(DEMO_OPENID, user_event("我的贷款批了没", "check_application_status"))
    assert "没查到您提交过贷款申请" in run(ActionApplicationStatus(), tracker)[0]

    with unit_of_work(bank_env) as session:
        customer = session.scalar(select(Customer).where(Customer.wechat_openid == DEMO_OPENID))
        session.add(
            LoanApplication(
                customer_id=customer.id,
                product_code="sunshine_e_loan",
                amount=50_000,
                term_months=12,
                purpose="买化肥",
                status="submitted",
            )
        )
    text, _ = run(ActionApplicationStatus(), tracker)
    assert "阳光e贷5万元（12个月），目前状态：已提交" in text


def test_application_status_for_an_unknown_customer(bank_env):
    text, _ = run(
        ActionApplicationStatus(), make_tracker(UNKNOWN_OPENID, user_event("批了没", "check_application_status"))
    )
    assert "没查到您微信绑定的客户信息" in text


# --- failures -----------------------------------------------------------------


def test_a_broken_database_gets_an_apology_not_silence(bank_env, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'not-migrated.sqlite'}")
    text, events = run(ActionCreditLine(), make_tracker(DEMO_OPENID, user_event("我能贷多少", "ask_credit_line")))

    assert text == SORRY_BUSY
    assert events == []
    with unit_of_work(bank_env) as session:
        assert session.scalar(select(func.count()).select_from(HandOff)) == 0


def test_the_package_exports_exactly_the_actions_the_domain_names():
    exported = {getattr(bot.actions, name)().name() for name in bot.actions.__all__}
    assert exported == set(DOMAIN["actions"])
