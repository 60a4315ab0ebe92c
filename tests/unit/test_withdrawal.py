"""Withdrawing an application from the chat: offered on 不贷了 outside the form,
withdrawn only on a yes, and the links sent for it stop working."""

from __future__ import annotations

import pytest

from auth_flow.tokens import AuthorizationError, find_by_token
from bot.actions.applications import ActionOfferWithdrawal, ActionWithdrawApplication
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent, LoanApplication
from tests.unit.bot_trackers import DEMO_OPENID, UNKNOWN_OPENID, make_tracker, run, user_event
from tests.unit.test_authorization_action import apply_for_zhang, ask, tokens


def offer(openid: str = DEMO_OPENID) -> tuple[str, list]:
    return run(ActionOfferWithdrawal(), make_tracker(openid, user_event("把之前那笔申请撤了", "cancel")))


def withdraw(offered: str | None, openid: str = DEMO_OPENID) -> str:
    tracker = make_tracker(openid, user_event("确定", "affirm"), slots={"withdrawal_application": offered})
    return run(ActionWithdrawApplication(), tracker)[0]


def status(url: str, application_id: int) -> str:
    with unit_of_work(url) as session:
        return session.get(LoanApplication, application_id).status


def test_an_application_in_progress_is_offered_not_withdrawn(bank_env):
    application_id = apply_for_zhang(bank_env)

    text, events = offer()

    assert "阳光e贷申请（5万元，12个月）在办理" in text and "等待征信授权" in text and "回复“确定”" in text
    assert {
        "event": "slot",
        "name": "withdrawal_application",
        "value": str(application_id),
        "timestamp": None,
    } in events
    assert status(bank_env, application_id) == "awaiting_authorization"


def test_yes_withdraws_it_records_who_and_stops_its_links(bank_env):
    application_id = apply_for_zhang(bank_env)
    links = tokens(ask())

    text = withdraw(str(application_id))

    assert text == "您的阳光e贷申请（5万元，12个月）已撤销，需要时可以随时重新申请。"
    assert status(bank_env, application_id) == "withdrawn"
    with unit_of_work(bank_env) as session:
        last = session.query(ApplicationEvent).filter_by(application_id=application_id).all()[-1]
        assert (last.to_status, last.actor) == ("withdrawn", f"wechat:{DEMO_OPENID}")
        for token in links:
            with pytest.raises(AuthorizationError, match="已经撤销或办结"):
                find_by_token(session, token)
    assert "没有要撤销的申请" in withdraw(str(application_id))  # said twice: nothing more happens


def test_with_nothing_in_progress_there_is_nothing_to_withdraw(bank_env):
    text, events = offer()
    assert text == "好的，有需要随时找我。"
    assert {"event": "slot", "name": "withdrawal_application", "value": None, "timestamp": None} in events
    assert offer(UNKNOWN_OPENID)[0] == "好的，有需要随时找我。"


def test_only_the_application_offered_is_withdrawn(bank_env):
    application_id = apply_for_zhang(bank_env)

    assert "没有要撤销的申请" in withdraw(None)  # a yes to something else
    assert "没有要撤销的申请" in withdraw(str(application_id + 1))
    assert "没有要撤销的申请" in withdraw(str(application_id), openid=UNKNOWN_OPENID)
    assert status(bank_env, application_id) == "awaiting_authorization"
