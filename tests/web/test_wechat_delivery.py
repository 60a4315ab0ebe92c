"""Exactly once and in time, over real HTTP: WeChat's retries, a slow bot, and
the answer arriving through the WeChat API emulator."""

import threading
import time

import requests


def delivered(base, openid):
    return [
        m["content"] for m in requests.get(f"{base}/_emulator/messages", params={"touser": openid}, timeout=5).json()
    ]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_one_message_delivered_four_times_5s_apart_is_answered_once(emulated, serve_webhook):
    settings, base, slow_bot = emulated
    bot = slow_bot(delay=7.0)  # slower than the 4 s budget: the answer must go through the API
    user = serve_webhook(wechat_api_base=base, jobs=bot)
    body = user.text_xml("我能贷多少")
    replies = []

    def deliver_at(offset):
        time.sleep(offset)
        replies.append(user.deliver(body, retries=False))  # fresh timestamp and nonce, as WeChat's retries

    threads = [threading.Thread(target=deliver_at, args=(5.0 * n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.join()
    assert bot.asked == ["我能贷多少"]
    assert all(r.empty for r in replies) and max(r.elapsed_s for r in replies) < 4.5
    assert delivered(base, user.openid) == ["您的额度是20万元"]


def test_a_burst_of_concurrent_deliveries_reaches_the_bot_once(emulated, serve_webhook):
    settings, base, slow_bot = emulated
    bot = slow_bot(delay=0.3)
    user = serve_webhook(wechat_api_base=base, jobs=bot)
    body = user.text_xml("利息咋算")
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(user.deliver(body, retries=False))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.join()
    assert bot.asked == ["利息咋算"]
    # WeChat reads only the newest of its connections: every one carries the same answer.
    assert [r.content for r in replies] == ["您的额度是20万元"] * 4
    assert delivered(base, user.openid) == []


def test_slow_bot_gets_success_at_once_and_the_answer_through_the_api(emulated, serve_webhook):
    settings, base, slow_bot = emulated
    bot = slow_bot(delay=2.5)
    user = serve_webhook(wechat_api_base=base, wechat_reply_budget_s=1.0, jobs=bot)
    reply = user.send_text("我想贷款")
    assert reply.empty and reply.attempts == 1 and reply.elapsed_s < 2.0
    assert delivered(base, user.openid) == []
    assert wait_for(lambda: delivered(base, user.openid) == ["您的额度是20万元"])
