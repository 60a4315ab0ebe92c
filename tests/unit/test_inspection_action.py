"""action_credit_line answering 我的额度还有效吗 with trackers as Rasa sends them: the line's
validity and its annual inspection status (未到年检时间 / 待年检 / 已通过 / 待客户经理上门 / 已收回)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.actions.credit_line import ActionCreditLine
from lending import inspection
from lending.inspection import Photo
from lending.repayment import add_months
from lending.risk import watch
from sunshine import clock
from sunshine.clock import customer_date
from sunshine.db import unit_of_work
from sunshine.models import LineInspection, Officer
from tests import TEST_SECRET
from tests.unit.bot_trackers import DEMO_OPENID, make_tracker, run, user_event
from tests.unit.test_inspection import RULES, ZHANG_ID, jpeg, make_due
from tests.unit.test_inspection import run as run_batch


def ask() -> str:
    return run(ActionCreditLine(), make_tracker(DEMO_OPENID, user_event("我的额度还有效吗", "ask_credit_line")))[0]


def test_a_line_not_yet_due_says_so(bank_env):
    assert "（年检状态：未到年检时间）" in ask()


def test_a_line_due_is_awaiting_its_inspection(bank_env):
    make_due(bank_env, ZHANG_ID, {"income_band": "10-20万"})
    text = ask()
    assert (
        f"有效期到{customer_date(clock.today() + timedelta(days=10))}（年检状态：待年检（到期前银行会自动核查））"
        in text
    )


def test_a_line_passed_off_site_is_valid_a_year_longer(bank_env, demo_settings):
    make_due(bank_env, ZHANG_ID, {"income_band": "10-20万"})
    run_batch(demo_settings)
    valid_until = add_months(clock.today() + timedelta(days=10), 12)
    text = ask()
    assert "预授信额度是20万元" in text
    assert f"有效期到{customer_date(valid_until)}（年检状态：已通过（非现场年检，额度维持））" in text


def test_a_household_sent_on_site_is_told_the_officer_will_visit_then_a_withdrawn_line(bank_env, demo_settings):
    make_due(bank_env, ZHANG_ID, {"income_band": "10-20万"})
    with unit_of_work(bank_env) as s:
        watch(s, TEST_SECRET, ZHANG_ID, "核实经营情况", "officer01")
    run_batch(demo_settings)
    deadline = clock.today() + timedelta(days=RULES.deadline_days)
    assert f"（年检状态：待客户经理上门核查（{customer_date(deadline)}前））" in ask()
    with unit_of_work(bank_env) as s:
        task = s.scalar(select(LineInspection.id))
        officer = s.scalar(select(Officer).where(Officer.username == "officer01"))
        inspection.submit(s, task, officer, "人已外出", "withdraw", None, [Photo(jpeg())], rules=RULES)
    text = ask()
    assert "没有有效的预授信额度" in text and "年检状态：客户经理上门年检后额度已收回。" in text
