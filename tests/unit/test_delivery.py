"""Delivery through the customer-service message API, against the WeChat API
emulator: refused and failed messages are kept for the officer, never lost or
sent twice."""

from dataclasses import replace

import pytest
import requests
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from conversation import tasks
from conversation.relay import _keys, decide_async
from emulators import serve_in_thread
from emulators.wechat.api import create_app
from handoff.service import open_hand_off
from sunshine.db import unit_of_work
from sunshine.jobs import per_process, queue_name
from sunshine.models import ConversationMessage
from sunshine.redis import connect

OPENID = "o_demo_zhangjianguo"


@pytest.fixture
def wechat(demo_settings):
    """Settings pointing at a live WeChat API emulator; yields (settings, emulator URL)."""
    per_process.cache_clear()
    with serve_in_thread(create_app(demo_settings)) as base:
        yield replace(demo_settings, wechat_api_base=base), base
    per_process.cache_clear()


def delivered(base, openid=OPENID):
    return [
        m["content"] for m in requests.get(f"{base}/_emulator/messages", params={"touser": openid}, timeout=5).json()
    ]


def fault(base, **kw):
    requests.post(f"{base}/_emulator/faults", json=kw, timeout=5).raise_for_status()


def kept(settings):
    with unit_of_work(settings.database_url) as s:
        hand_off = open_hand_off(s, OPENID)
        rows = s.execute(
            select(ConversationMessage.body, ConversationMessage.status, ConversationMessage.errcode).order_by(
                ConversationMessage.id
            )
        ).all()
        return (hand_off.reason, hand_off.officer.username if hand_off.officer else None) if hand_off else None, rows


def test_texts_are_delivered_in_order(wechat):
    settings, base = wechat
    tasks.deliver_texts(OPENID, ["第一条", "第二条", "第三条"], settings=settings)
    assert delivered(base) == ["第一条", "第二条", "第三条"]
    assert kept(settings) == (None, [])


@pytest.mark.parametrize("errcode", [45015, 45047])
def test_refused_texts_are_kept_and_the_officer_is_told(wechat, errcode):
    settings, base = wechat
    tasks.deliver_texts(OPENID, ["已送达"], settings=settings)
    fault(base, errcode=errcode, count=1, path="/cgi-bin/message/custom/send")
    tasks.deliver_texts(OPENID, ["您的贷款已批准", "请按时还款"], settings=settings)
    assert delivered(base) == ["已送达"]
    hand_off, rows = kept(settings)
    assert hand_off == ("message_undelivered", "officer01")
    assert rows == [("您的贷款已批准", "undelivered", errcode), ("请按时还款", "undelivered", errcode)]


def test_unreachable_wechat_is_retried_later_then_kept(wechat):
    settings, base = wechat
    fault(base, status=503, count=1, path="/cgi-bin/message/custom/send")
    tasks.deliver_texts(OPENID, ["一", "二"], settings=settings)
    assert delivered(base) == []
    queue = Queue(queue_name(OPENID, settings.worker_processes), connection=connect(settings.redis_url))
    scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert len(scheduled) == 1
    job = queue.fetch_job(scheduled[0])
    assert job.args == (OPENID, ["一", "二"], 1)
    # The last attempt that fails keeps the texts for the officer.
    fault(base, status=503, count=1, path="/cgi-bin/message/custom/send")
    tasks.deliver_texts(OPENID, ["一", "二"], attempt=len(tasks.DELIVERY_RETRY_DELAYS_S), settings=settings)
    assert kept(settings)[1] == [("一", "undelivered", None), ("二", "undelivered", None)]


def test_rasa_down_gives_an_apology_and_hands_the_message_to_the_officer(demo_settings):
    settings = replace(demo_settings, rasa_url="http://127.0.0.1:9")
    tasks.answer_message(OPENID, "我想贷款", "m-rasa-down", settings=settings)
    r = connect(settings.redis_url)
    assert r.lrange(_keys("m-rasa-down")["result"], 0, -1) == [f'["{tasks.BOT_UNAVAILABLE}"]'.encode()]
    hand_off, rows = kept(settings)
    assert hand_off == ("bot_unavailable", "officer01") and rows == [("我想贷款", "received", None)]


def test_a_reply_job_run_again_after_its_worker_died_answers_once(wechat):
    """The worker is killed after asking the bot (or after sending part of the answer): RQ's job runs
    again on the restarted worker; the bot is not asked again and nothing is sent twice."""
    settings, base = wechat
    settings = replace(settings, rasa_url="http://127.0.0.1:9")  # the bot is down: apology and hand-off
    r = connect(settings.redis_url)
    decide_async(r, "m-again")  # the web request gave up waiting: the API carries the answer
    for _ in range(3):
        tasks.answer_message(OPENID, "我想贷款", "m-again", settings=settings)
    assert delivered(base) == [tasks.BOT_UNAVAILABLE]
    hand_off, rows = kept(settings)
    assert hand_off == ("bot_unavailable", "officer01") and rows == [("我想贷款", "received", None)]


def test_a_second_run_sends_only_the_chunks_not_sent_yet(wechat):
    settings, base = wechat
    r = connect(settings.redis_url)
    r.set("progress-test", 1)  # the first run sent one chunk, then its worker died
    tasks.deliver_texts(OPENID, ["一", "二", "三"], settings=settings, progress_key="progress-test")
    tasks.deliver_texts(OPENID, ["一", "二", "三"], settings=settings, progress_key="progress-test")
    assert delivered(base) == ["二", "三"] and int(r.get("progress-test")) == 3


def test_a_passive_answer_is_not_sent_again_by_a_second_run(demo_settings):
    settings = replace(demo_settings, rasa_url="http://127.0.0.1:9")
    for _ in range(2):
        tasks.answer_message(OPENID, "你好", "m-passive-again", settings=settings)
    r = connect(settings.redis_url)
    assert r.lrange(_keys("m-passive-again")["result"], 0, -1) == [f'["{tasks.BOT_UNAVAILABLE}"]'.encode()]
