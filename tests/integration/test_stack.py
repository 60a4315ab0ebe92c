"""Through the real processes: WeChat -> /wechat -> worker -> Rasa -> actions -> database."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import select

from conversation.inbound import PASSED_TO_OFFICER
from emulators.wechat.chat import describe_message
from emulators.wechat.user import WeChatUser
from handoff.service import close_hand_off
from lending.applications import Applications
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.launcher import port_free
from sunshine.models import ConversationMessage, HandOff
from sunshine.settings import ROOT, Settings

CJK = re.compile(r"[\u4e00-\u9fff]")


def converse(stack, openid: str, text: str, quiet_s: float = 1.5, max_wait_s: float = 15) -> list[str]:
    """Send one text as WeChat would; return the passive reply and any customer-service messages
    (each as `make chat` shows it)."""
    s = Settings()
    user = WeChatUser(stack.web + "/wechat", s.wechat_token, s.wechat_appid, openid=openid, timeout=6)
    seen = len(requests.get(stack.wechat_api + "/_emulator/messages", params={"touser": openid}, timeout=5).json())
    reply = user.send_text(text)
    answers = [] if reply.empty else [reply.content]
    deadline, last_change = time.monotonic() + max_wait_s, time.monotonic()
    while time.monotonic() < deadline:
        pushed = requests.get(stack.wechat_api + "/_emulator/messages", params={"touser": openid}, timeout=5).json()
        if len(pushed) > seen:
            answers += [describe_message(m) for m in pushed[seen:]]  # texts, and e.g. the QR image after a link
            seen, last_change = len(pushed), time.monotonic()
        if answers and time.monotonic() - last_change > quiet_s:
            break
        time.sleep(0.2)
    return answers


def test_ready_means_every_dependency_answers(stack):
    body = requests.get(stack.web + "/readyz", timeout=5).json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "rasa": "ok", "action_server": "ok"}


def test_greeting_in_chinese_from_the_bot(stack):
    answers = converse(stack, "o_demo_wangchunhua", "你好")
    assert answers and CJK.search(answers[0])
    assert "系统正在忙" not in "".join(answers)


def test_loan_request_reads_the_pre_granted_line_from_the_database(stack):
    answers = "".join(converse(stack, "o_demo_zhangjianguo", "我想贷款"))
    assert "20万" in answers or "200000" in answers or "200,000" in answers, answers
    # The form now keeps the customer's place; leave it, so the next test on this customer starts anew.
    assert converse(stack, "o_demo_zhangjianguo", "取消")


def test_hand_off_switches_the_customer_to_the_officer_and_back(stack):
    answers = converse(stack, "o_demo_zhaoxiaojun", "我要找人工客服")
    assert answers
    with unit_of_work(stack.env["DATABASE_URL"]) as session:
        hand_off = session.scalar(select(HandOff).where(HandOff.openid == "o_demo_zhaoxiaojun"))
        assert hand_off is not None and hand_off.status == "open"
    # While the officer has the conversation, the customer's words go to the officer, not to Rasa.
    assert converse(stack, "o_demo_zhaoxiaojun", "我想问问30万能批不", max_wait_s=4) == [PASSED_TO_OFFICER]
    with unit_of_work(stack.env["DATABASE_URL"]) as session:
        hand_off = session.get(HandOff, hand_off.id)
        kept = session.scalars(
            select(ConversationMessage.body)
            .where(ConversationMessage.hand_off_id == hand_off.id)
            .order_by(ConversationMessage.id)
        ).all()
        assert kept == ["我想问问30万能批不"]
        close_hand_off(session, hand_off, "officer:officer01")
    answers = converse(stack, "o_demo_zhaoxiaojun", "你好")
    assert answers and PASSED_TO_OFFICER not in answers and CJK.search(answers[0])


def test_authorization_link_and_qr_png(stack):
    with unit_of_work(stack.env["DATABASE_URL"]) as session:  # 钱玉梅 has applied for 公e贷
        qian = by_openid(session, "o_demo_qianyumei")
        Applications(stack.env["SECRET_KEY"], notify=lambda *_, **__: None).apply(
            session, qian.id, "civil_servant_e_loan", 100000, 12, "stack-test", purpose="装修房子"
        )
    answers = "".join(converse(stack, "o_demo_qianyumei", "征信授权怎么弄"))
    token = re.search(r"/auth/([A-Za-z0-9_-]{20,})", answers)
    assert token, answers
    qr = requests.get(f"{stack.web}/api/authorizations/{token.group(1)}/qr.png", timeout=5)
    assert qr.status_code == 200 and qr.headers["Content-Type"] == "image/png" and qr.content[:4] == b"\x89PNG"
    # opened in 钱玉梅's WeChat: through WeChat's web authorization (the emulator) and back
    requests.post(f"{stack.wechat_api}/_emulator/oauth_user", json={"openid": "o_demo_qianyumei"}, timeout=5)
    page = requests.Session().get(f"{stack.web}/auth/{token.group(1)}", timeout=5)
    # before identity the page shows the name masked (what the party types is not on the page)
    assert page.status_code == 200 and "钱*梅" in page.text and "钱玉梅" not in page.text
    assert [r.status_code for r in page.history] == [302, 302, 302]


def test_make_chat_scripted(stack):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulators.wechat.chat",
            "--url",
            stack.web + "/wechat",
            "--api-base",
            stack.wechat_api,
            "--openid",
            "o_demo_zhangjianguo",
        ],
        input="你好\n我想贷款\n",
        capture_output=True,
        text=True,
        env=stack.env,
        cwd=ROOT,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    bank_lines = [line for line in result.stdout.splitlines() if line.startswith("银行") and CJK.search(line)]
    assert len(bank_lines) >= 2, result.stdout
    assert "20万" in result.stdout or "200000" in result.stdout


@pytest.mark.last_on_stack
def test_ctrl_c_leaves_no_process_behind(stack):
    ports = [int(stack.web.rsplit(":", 1)[1]), int(stack.wechat_api.rsplit(":", 1)[1])]
    assert stack.stop() == []
    assert stack.proc.returncode is not None
    assert all(port_free(p) for p in ports)
