"""The officer console in a real browser (Debian's Chromium driven by Playwright)
against the whole stack: a customer's 转人工 through `/wechat` appears on the
officer's queue without reloading, the officer's reply reaches the WeChat API
emulator for that customer, and after the officer closes the conversation the
bot answers the customer again."""

from __future__ import annotations

import time

import requests
from sqlalchemy import func, select

from conversation.inbound import PASSED_TO_OFFICER
from emulators.wechat.user import WeChatUser
from handoff.service import CLOSING_NOTE, open_hand_off
from sunshine.db import unit_of_work
from sunshine.models import HandOff
from sunshine.settings import Settings
from tests.integration.test_stack import converse

OPENID = "o_browser_console"
REPLY = "您好，我是李经理。您想贷多少、做什么用？"


def pushed(stack, openid=OPENID) -> list[str]:
    return [
        m["content"]
        for m in requests.get(stack.wechat_api + "/_emulator/messages", params={"touser": openid}, timeout=5).json()
    ]


def wait_for(check, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not true after {timeout_s} s: {check}")


def test_officer_answers_a_hand_off_in_the_browser_and_hands_back_to_the_bot(stack, launch_chromium):
    page = launch_chromium().new_page()
    page.goto(stack.web + "/console")
    assert "/console/login" in page.url
    page.fill("input[name=username]", "officer01")
    page.fill("input[name=password]", "sunshine-demo")
    page.click("button[type=submit]")
    page.wait_for_selector("#queue")

    answers = converse(stack, OPENID, "转人工")
    assert any("客户经理" in a for a in answers), answers
    with unit_of_work(stack.env["DATABASE_URL"]) as s:
        hand_off_id = open_hand_off(s, OPENID).id
    # the queue page, loaded before the hand-off existed, shows it without a reload
    page.wait_for_selector(f'tr[data-hand-off="{hand_off_id}"]', timeout=10_000)
    page.click(f'tr[data-hand-off="{hand_off_id}"] a')
    page.wait_for_selector("#reply")

    # 转人工 again: the officer gets the message, the customer still has one hand-off
    assert converse(stack, OPENID, "转人工") == [PASSED_TO_OFFICER]
    s = Settings()
    user = WeChatUser(stack.web + "/wechat", s.wechat_token, s.wechat_appid, openid=OPENID, timeout=6)
    assert user.send_text("<b>谢谢</b>").empty  # acknowledged once already
    with unit_of_work(stack.env["DATABASE_URL"]) as db:
        assert db.scalar(select(func.count()).select_from(HandOff).where(HandOff.openid == OPENID)) == 1
    page.wait_for_selector('#messages li:has-text("<b>谢谢</b>")', timeout=10_000)
    assert page.locator("#messages b").count() == 0  # shown as text, not markup

    page.fill("#reply textarea", REPLY)
    page.click("#reply button[type=submit]")
    wait_for(lambda: REPLY in pushed(stack))
    page.wait_for_selector('#messages li:has-text("已送达")', timeout=10_000)
    assert "处理中" in page.inner_text("#hand-off-status")

    page.click("text=结束会话，交回机器人")
    page.wait_for_selector("text=会话已结束")
    wait_for(lambda: CLOSING_NOTE in pushed(stack))

    answers = converse(stack, OPENID, "我能贷多少")
    assert answers and PASSED_TO_OFFICER not in answers and CLOSING_NOTE not in answers, answers
    tracker = stack.rasa_http().get(f"{stack.rasa}/conversations/{OPENID}/tracker", timeout=5).json()
    assert tracker["latest_message"]["text"] == "我能贷多少"
    # the bot's state is the one before the hand-off: 转人工 is in its history, the officer's words are not
    said = [e.get("text") for e in tracker["events"] if e.get("event") == "user"]
    assert said == ["转人工", "我能贷多少"]
