"""The hand-off's background jobs against the WeChat and WeCom emulators over
real HTTP: officers' replies delivered, 45015 kept and sent as a template,
WeCom notices delivered, lost jobs queued again."""

from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from rq import Queue
from sqlalchemy import select

from clients.wecom import WeCom, WeComError
from conversation import tasks
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_emulator
from emulators.wecom.api import create_app as wecom_emulator
from handoff import jobs
from handoff import service as h
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, per_process, queue_name
from sunshine.models import ConversationMessage, Officer, OfficerNotice
from sunshine.redis import connect

OPENID = "o_demo_zhangjianguo"


@pytest.fixture
def emulators(demo_settings, monkeypatch):
    """Settings pointing at live WeChat and WeCom emulators (the jobs' settings too, as a
    worker reads them); yields (settings, wechat URL, wecom URL)."""
    per_process.cache_clear()
    with (
        serve_in_thread(wechat_emulator(demo_settings)) as wechat,
        serve_in_thread(wecom_emulator(demo_settings, members={"li.jingli", "zhou.zhuren"})) as wecom,
    ):
        settings = replace(demo_settings, wechat_api_base=wechat, wecom_api_base=wecom)
        monkeypatch.setattr(jobs, "current_settings", lambda: settings)
        yield settings, wechat, wecom
    per_process.cache_clear()


def received(base, touser):
    return requests.get(f"{base}/_emulator/messages", params={"touser": touser}, timeout=5).json()


def reply(settings, text="您好，我是李经理"):
    with unit_of_work(settings.database_url) as s:
        hand_off, _ = h.request_hand_off(s, OPENID, "customer_request")
        li = s.scalar(select(Officer).where(Officer.username == "officer01"))
        return h.officer_reply(s, hand_off, li, text).id


def message(settings, message_id):
    with unit_of_work(settings.database_url) as s:
        m = s.get(ConversationMessage, message_id)
        return m.status, m.errcode


def test_reply_reaches_the_customer_once(emulators):
    settings, wechat, _ = emulators
    message_id = reply(settings)
    jobs.send_message(message_id, settings=settings)
    jobs.send_message(message_id, settings=settings)  # a job run twice sends once
    assert [m["content"] for m in received(wechat, OPENID)] == ["您好，我是李经理"]
    assert message(settings, message_id) == ("sent", None)


def test_outside_the_window_the_reply_is_kept_and_sent_as_a_template(emulators):
    settings, wechat, _ = emulators
    message_id = reply(settings, "您的材料已收到")
    requests.post(
        f"{wechat}/_emulator/faults", json={"errcode": 45015, "path": "/cgi-bin/message/custom/send"}, timeout=5
    ).raise_for_status()
    jobs.send_message(message_id, settings=settings)
    assert message(settings, message_id) == ("undelivered", 45015) and received(wechat, OPENID) == []
    with unit_of_work(settings.database_url) as s:
        li = s.scalar(select(Officer).where(Officer.username == "officer01"))
        assert h.resend(s, s.get(ConversationMessage, message_id), li) == "template_queued"
    jobs.send_as_template(message_id, settings=settings)
    [template] = received(wechat, OPENID)
    assert template["msgtype"] == "template"
    assert template["payload"]["template_id"] == settings.wechat_reply_template_id
    assert template["payload"]["data"]["keyword1"]["value"] == "您的材料已收到"
    assert message(settings, message_id) == ("template_sent", None)


def test_template_send_refuses_a_malformed_body(emulators):
    settings, wechat, _ = emulators
    api = tasks.wechat_api(settings)
    with pytest.raises(Exception) as exc:
        api.send_template(OPENID, "tpl", {"keyword1": "not an object"})
    assert getattr(exc.value, "errcode", None) == 47001


def test_notices_are_dispatched_and_reach_the_officer_in_wecom(emulators):
    settings, _, wecom = emulators
    with unit_of_work(settings.database_url) as s:
        h.request_hand_off(s, OPENID, "customer_request")
    queue = Queue(queue_name(OPENID, settings.worker_processes), connection=connect(settings.redis_url))
    assert jobs.dispatch(settings) == 1 and jobs.dispatch(settings) == 0
    [job] = queue.jobs
    job.perform()
    [notice] = received(wecom, "li.jingli")
    assert "张建国" in notice["content"] and "客户要求转人工" in notice["content"]
    with unit_of_work(settings.database_url) as s:
        assert s.scalar(select(OfficerNotice.status)) == "sent"


def test_an_officer_unknown_to_wecom_is_recorded_as_failed(emulators):
    settings, _, wecom = emulators
    with unit_of_work(settings.database_url) as s:
        s.scalar(select(Officer).where(Officer.username == "officer01")).wecom_userid = "left.the.bank"
        h.request_hand_off(s, OPENID, "customer_request")
        notice_id = s.scalar(select(OfficerNotice.id))
    jobs.send_notice(notice_id, settings=settings)
    with unit_of_work(settings.database_url) as s:
        notice = s.get(OfficerNotice, notice_id)
        assert (notice.status, notice.errcode) == ("failed", 81013)


def test_wecom_token_expiry_is_refreshed_once(emulators):
    settings, _, wecom = emulators
    client = WeCom.from_settings(settings)
    client.send_text(["zhou.zhuren"], "第一条")
    requests.post(f"{wecom}/_emulator/expire_tokens", timeout=5).raise_for_status()
    client.send_text(["zhou.zhuren"], "第二条")
    assert [m["content"] for m in received(wecom, "zhou.zhuren")] == ["第一条", "第二条"]
    with pytest.raises(WeComError) as exc:
        WeCom(wecom, settings.wecom_corpid, "wrong-secret", settings.wecom_agentid).send_text(["zhou.zhuren"], "x")
    assert exc.value.errcode == 40001


def test_a_reply_whose_job_was_lost_is_queued_again(emulators, monkeypatch):
    settings, wechat, _ = emulators
    message_id = reply(settings)
    queue = Queue(queue_name(OPENID, settings.worker_processes), connection=connect(settings.redis_url))
    queue.empty()
    assert jobs.dispatch(settings) == 1  # only the notice: the reply is recent
    monkeypatch.setattr(jobs, "REQUEUE_AFTER", timedelta(seconds=-1))
    assert jobs.dispatch(settings) == 1
    for job in queue.jobs:
        job.perform()
    assert [m["content"] for m in received(wechat, OPENID)] == ["您好，我是李经理"]
    assert message(settings, message_id) == ("sent", None)


def test_the_watcher_reminds_the_officer_of_a_deadline_about_to_pass(emulators):
    from handoff.__main__ import watch_once

    settings, _, wecom = emulators
    with unit_of_work(settings.database_url) as s:
        h.request_hand_off(s, OPENID, "customer_request", deadline=timedelta(minutes=2))
    queue = Queue(queue_name(OPENID, settings.worker_processes), connection=connect(settings.redis_url))
    assert watch_once(settings, Jobs(settings)) == 2  # the new hand-off, and its deadline
    for job in queue.jobs:
        job.perform()
    texts = [m["content"] for m in received(wecom, "li.jingli")]
    assert len(texts) == 2 and texts[0].startswith("新的转人工会话") and texts[1].startswith("转人工会话快到时限了")
    assert watch_once(settings, Jobs(settings)) == 0
