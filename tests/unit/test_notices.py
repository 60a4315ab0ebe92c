"""The notices the bank sends on its own, against the WeChat API emulator: customer-service
message inside the 48-hour window, a subscription message outside it when the person
accepted the template (in the mini-program, pushed through /wechat/mp), else a template
message, else the officer; the channel of each is recorded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import requests
from rq import Queue
from sqlalchemy import select
from wechatpy import parse_message

from conversation import notices, subscriptions
from conversation.inbound import Inbound
from conversation.notices import TemplatesError, deliver_notice, keyword_value, load_templates, mark_inbound
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_emulator
from emulators.wechat.user import WeChatUser
from handoff.service import open_hand_off
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.jobs import per_process, queue_name
from sunshine.models import ConversationMessage, LoanApplication, NoticeDelivery, WxaSubscription
from sunshine.redis import connect
from tests.unit.lending_helpers import service
from webhooks import create_app as web_app

OPENID, MP_OPENID = "o_demo_zhangjianguo", "o_mp_zhangjianguo"
DECISION = {"product": "阳光e贷", "amount": 50000, "status": "审批通过"}
DECISION_TEXT = "好消息！您的阳光e贷申请（5万元，12个月）已审批通过，放款后会再通知您。"


@pytest.fixture
def bank(demo_settings):
    """(settings, emulator URL): the WeChat API emulator, and the web app serving /wechat/mp for
    the mini-program's push; 张建国 has a mini-program openid."""
    per_process.cache_clear()
    with serve_in_thread(wechat_emulator(demo_settings)) as base:
        settings = replace(demo_settings, wechat_api_base=base)
        with serve_in_thread(web_app(settings)) as web:
            push = {"url": f"{web}/wechat/mp", "token": settings.wxa_push_token, "format": "json"}
            requests.post(f"{base}/_emulator/wxa_push", json=push, timeout=5).raise_for_status()
            with unit_of_work(settings.database_url) as s:
                zhang = by_openid(s, OPENID)
                zhang.mp_openid = MP_OPENID
                service()[0].apply(s, zhang.id, "sunshine_e_loan", 50000, 12, "notices", purpose="买化肥")
            yield settings, base
    per_process.cache_clear()


def emulator(base, what, **params):
    return requests.get(f"{base}/_emulator/{what}", params=params, timeout=5).json()


def silent(base, hours=49, touser=OPENID):
    requests.post(f"{base}/_emulator/window", json={"touser": touser, "silent_hours": hours}, timeout=5)


def accept(base, *template_ids, status="accept"):
    """The person answers wx.requestSubscribeMessage in the mini-program (WeChat pushes it to /wechat/mp)."""
    body = {"openid": MP_OPENID, "template_ids": list(template_ids), "status": status}
    answer = requests.post(f"{base}/_emulator/subscriptions", json=body, timeout=5).json()
    assert answer["pushed"] == 200
    return answer


def record(settings, notice_id):
    with unit_of_work(settings.database_url) as s:
        n = s.get(NoticeDelivery, notice_id)
        return n.status, n.channel, [(a["channel"], a["errcode"], a["reason"]) for a in n.attempts]


def application_id(settings):
    with unit_of_work(settings.database_url) as s:
        return s.scalar(select(LoanApplication.id).where(LoanApplication.idempotency_key == "notices"))


def decision(settings, text=DECISION_TEXT):
    return deliver_notice(
        OPENID, text, "application_status", application_id(settings), None, DECISION, settings=settings
    )


def template_id(settings, kind, channel):
    return getattr(notices.notice_kind(settings, kind), channel).template_id


def test_inside_the_window_a_customer_service_message_carries_it(bank):
    settings, base = bank
    mark_inbound(connect(settings.redis_url), OPENID)  # 张建国 wrote a moment ago
    notice_id = decision(settings)
    assert record(settings, notice_id) == ("delivered", "customer_service", [])
    assert [m["content"] for m in emulator(base, "messages", touser=OPENID)] == [DECISION_TEXT]
    assert emulator(base, "template_messages", touser=OPENID) == []


def test_a_closed_window_at_wechat_goes_on_to_the_next_channel_at_once(bank):
    settings, base = bank
    mark_inbound(connect(settings.redis_url), OPENID)
    silent(base)  # WeChat knows better: 45015
    notice_id = decision(settings)
    status, channel, tried = record(settings, notice_id)
    assert (status, channel) == ("delivered", "template")
    assert tried == [("customer_service", 45015, ""), ("subscribe", None, "not_accepted")]


def test_outside_the_window_an_accepted_subscription_carries_it_once(bank):
    settings, base = bank
    sub_id = template_id(settings, "application_status", "subscribe")
    accept(base, sub_id)
    with unit_of_work(settings.database_url) as s:
        assert subscriptions.accepted(s, MP_OPENID, sub_id)

    first = decision(settings)
    assert record(settings, first) == ("delivered", "subscribe", [("customer_service", None, "outside_window")])
    (sent,) = emulator(base, "subscribe_messages", touser=MP_OPENID)
    assert sent["template_id"] == sub_id
    assert sent["page"] == f"pages/applications/detail?id={application_id(settings)}"
    data = {k: v["value"] for k, v in sent["data"].items()}
    assert data["thing1"] == "阳光e贷" and data["amount2"] == "50000元" and data["thing3"] == "审批通过"
    assert len(data["thing4"]) == 20 and data["thing4"].endswith("…")  # the notice, cut to a thing's 20

    # A one-time acceptance is used up by one send: the next notice is a template message.
    second = decision(settings, "您的阳光e贷申请已放款")
    assert record(settings, second)[:2] == ("delivered", "template")
    (tpl,) = emulator(base, "template_messages", touser=OPENID)
    assert tpl["payload"]["template_id"] == template_id(settings, "application_status", "template")
    assert len(emulator(base, "subscribe_messages", touser=MP_OPENID)) == 1


def test_wechat_refusing_a_subscription_marks_it_not_accepted(bank):
    settings, base = bank
    sub_id = template_id(settings, "application_status", "subscribe")
    with unit_of_work(settings.database_url) as s:  # the bank believes it accepted; WeChat does not (43101)
        subscriptions.record_event(
            s, MP_OPENID, "subscribe_msg_popup_event", [{"TemplateId": sub_id, "SubscribeStatusString": "accept"}]
        )
    notice_id = decision(settings)
    assert record(settings, notice_id)[1:] == (
        "template",
        [("customer_service", None, "outside_window"), ("subscribe", 43101, "")],
    )
    with unit_of_work(settings.database_url) as s:
        assert not subscriptions.accepted(s, MP_OPENID, sub_id)


def test_outside_the_window_without_a_subscription_a_template_message_carries_it(bank):
    settings, base = bank
    accept(base, template_id(settings, "application_status", "subscribe"), status="reject")
    link = "http://bank.example/auth/abc"
    fields = {"applicant": "张**", "party": "配偶征信查询授权"}
    notice_id = deliver_notice(OPENID, "请授权", "authorization_request", None, link, fields, settings)
    assert record(settings, notice_id)[:2] == ("delivered", "template")
    (tpl,) = emulator(base, "template_messages", touser=OPENID)
    assert tpl["payload"]["url"] == link
    assert tpl["payload"]["data"]["thing2"] == {"value": "张**"}


def test_when_every_channel_refuses_the_officer_gets_the_notice(bank):
    settings, base = bank
    requests.post(
        f"{base}/_emulator/faults", json={"errcode": 43004, "path": "/cgi-bin/message/template/send"}, timeout=5
    )
    notice_id = decision(settings)
    status, channel, tried = record(settings, notice_id)
    assert (status, channel) == ("to_officer", "officer")
    assert tried[-1] == ("template", 43004, "")
    with unit_of_work(settings.database_url) as s:
        hand_off = open_hand_off(s, OPENID)
        assert hand_off.reason == "message_undelivered"
        kept = s.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.hand_off_id == hand_off.id)
            .order_by(ConversationMessage.id)
        ).all()
        assert [(m.body, m.status, m.errcode) for m in kept] == [(DECISION_TEXT, "undelivered", 43004)]


def test_a_notice_missing_a_template_field_skips_that_template(bank):
    settings, base = bank
    notice_id = deliver_notice(OPENID, "您的申请有新进展", "application_status", settings=settings)
    assert record(settings, notice_id)[:2] == ("to_officer", "officer")
    assert ("template", None, "missing_field") in record(settings, notice_id)[2]


def test_unreachable_wechat_is_tried_again_later(bank):
    settings, base = bank
    requests.post(f"{base}/_emulator/faults", json={"status": 503, "count": 5}, timeout=5)
    notice_id = decision(settings)
    assert record(settings, notice_id)[0] == "queued"
    queue = Queue(queue_name(OPENID, settings.worker_processes), connection=connect(settings.redis_url))
    scheduled = queue.scheduled_job_registry.get_job_ids()
    assert len(scheduled) == 1
    # the last attempt gives up: the officer has it
    assert notices.send_notice(notice_id, attempt=len(notices.DELIVERY_RETRY_DELAYS_S), settings=settings) == "officer"


@pytest.mark.parametrize(
    ("keyword", "value", "expected"),
    [
        ("thing1", "一二三四五六七八九十一二三四五六七八九十", "一二三四五六七八九十一二三四五六七八九十"),
        ("thing1", "一二三四五六七八九十一二三四五六七八九十多", "一二三四五六七八九十一二三四五六七八九…"),
        ("phrase3", "等待征信授权", "等待征信授"),
        ("amount2", 50000, "50000元"),
        ("name2", "欧阳" * 6, "欧阳欧阳欧阳欧阳欧…"),
        ("character_string3", "L" * 40, "L" * 32),
    ],
)
def test_keyword_values_are_cut_to_wechat_limits(keyword, value, expected):
    assert keyword_value(keyword, value) == expected


def test_the_templates_file_is_checked(tmp_path: Path):
    assert "notice" in load_templates(notices.ROOT / "conversation" / "notice_templates.yml")
    bad = tmp_path / "t.yml"
    bad.write_text("kinds:\n  notice:\n    title: x\n    template: {template_id: t, data: {foo1: text}}\n")
    with pytest.raises(TemplatesError, match="foo1 is not a WeChat keyword"):
        load_templates(bad)
    bad.write_text("kinds:\n  other: {title: x}\n")
    with pytest.raises(TemplatesError, match="`notice` kind"):
        load_templates(bad)


def test_subscription_events_add_up_and_a_change_takes_them_back(db_url):
    with unit_of_work(db_url) as s:
        item = {"TemplateId": "sub_x", "SubscribeStatusString": "accept"}
        subscriptions.record_event(s, MP_OPENID, "subscribe_msg_popup_event", [item, item | {"TemplateId": "sub_y"}])
        subscriptions.record_event(s, MP_OPENID, "subscribe_msg_popup_event", [item])
        row = s.scalar(select(WxaSubscription).where(WxaSubscription.template_id == "sub_x"))
        assert (row.status, row.remaining) == ("accept", 2)
        subscriptions.use(s, MP_OPENID, "sub_x")
        assert row.remaining == 1
        subscriptions.record_event(
            s, MP_OPENID, "subscribe_msg_change_event", [{"TemplateId": "sub_x", "SubscribeStatusString": "reject"}]
        )
        assert (row.status, row.remaining) == ("reject", 0)
        subscriptions.record_event(
            s, MP_OPENID, "subscribe_msg_sent_event", [{"TemplateId": "sub_y", "ErrorCode": "0"}]
        )
        assert subscriptions.accepted(s, MP_OPENID, "sub_y")
        subscriptions.record_event(
            s, MP_OPENID, "subscribe_msg_sent_event", [{"TemplateId": "sub_y", "ErrorCode": "43101"}]
        )
        assert not subscriptions.accepted(s, MP_OPENID, "sub_y")


@pytest.mark.parametrize(("event", "opens"), [("CLICK", True), ("unsubscribe", False)])
def test_what_the_person_does_at_wechat_opens_the_window(demo_settings, event, opens):
    r = connect(demo_settings.redis_url)
    user = WeChatUser("http://unused/wechat", demo_settings.wechat_token, demo_settings.wechat_appid, openid=OPENID)
    Inbound(demo_settings, r, jobs=None).handle(parse_message(user.event_xml(event, "NO_SUCH_KEY")))  # type: ignore[arg-type]
    assert notices.within_window(r, OPENID) is opens
