"""An application an officer enters (lending.applications with the officer as actor and the
console as channel) and each party's request sent to their WeChat (auth_flow.notices.send_requests,
the path the chat uses too): only after the commit, only to parties with WeChat."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from auth_flow.notices import send_requests
from auth_flow.tokens import find_by_token, reissue_for_application
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import ApplicationEvent
from tests.unit.lending_helpers import Recorder, service

TTL = timedelta(minutes=30)
BASE = "https://bank.example"


def test_an_entered_application_keeps_who_entered_it_and_how_and_is_made_once(demo_db_url):
    svc, _ = service()
    with unit_of_work(demo_db_url) as s:
        zhang = by_openid(s, "o_demo_zhangjianguo")
        entered = dict(actor="officer:officer01", channel="console", purpose="买化肥")
        first = svc.apply(s, zhang.id, "sunshine_e_loan", 50_000, 12, "console:k1", **entered)
        again = svc.apply(s, zhang.id, "sunshine_e_loan", 50_000, 12, "console:k1", **entered)
        assert again.id == first.id and first.status == "awaiting_authorization"
        events = s.scalars(
            select(ApplicationEvent).where(ApplicationEvent.application_id == first.id).order_by(ApplicationEvent.id)
        ).all()
    assert [(e.action, e.actor) for e in events] == [
        ("created", "officer:officer01"),
        ("submitted", "officer:officer01"),
        ("authorization_requested", "system"),
    ]
    assert events[0].detail == {"channel": "console"}


def test_each_party_with_wechat_gets_their_own_link_once_committed(demo_db_url):
    svc, _ = service()
    told = Recorder()
    with unit_of_work(demo_db_url) as s:
        zhang, wang = by_openid(s, "o_demo_zhangjianguo"), by_openid(s, "o_demo_wangchunhua")
        app = svc.apply(s, zhang.id, "guaranteed_farm_loan", 100_000, 24, "k2", guarantor_id=wang.id)
        issued = reissue_for_application(s, app, "officer:officer01", TTL).issued
        sent = send_requests(s, app, issued, told, BASE, TTL)
        assert told.sent == []  # nothing before the commit
        tokens = {i.authorization.party_role: i.token for i in issued}
        app_id = app.id
    assert sent == ["applicant", "guarantor"]  # the spouse 李秀英 has no WeChat bound: her QR code only
    (to_zhang, own), (to_wang, theirs) = told.sent
    assert to_zhang == "o_demo_zhangjianguo" and own.endswith(f"{BASE}/auth/{tokens['applicant']}")
    assert "需要您本人授权查询征信" in own and "30分钟内有效" in own
    assert to_wang == "o_demo_wangchunhua" and theirs.startswith("张**申请贷款，需要您授权查询征信（担保人）")
    assert theirs.endswith(f"{BASE}/auth/{tokens['guarantor']}")
    assert told.details[1] == {
        "kind": "authorization_request",
        "application_id": app_id,
        "link": f"{BASE}/auth/{tokens['guarantor']}",
        "fields": {"applicant": "张**", "party": "担保人征信查询授权"},
    }
    with unit_of_work(demo_db_url) as s:
        assert find_by_token(s, tokens["guarantor"]).requested_by == "officer:officer01"


def test_nothing_is_sent_when_the_transaction_rolls_back(demo_db_url):
    svc, _ = service()
    told = Recorder()
    with unit_of_work(demo_db_url) as s:
        zhang = by_openid(s, "o_demo_zhangjianguo")
        app = svc.apply(s, zhang.id, "sunshine_e_loan", 50_000, 12, "k3")
        send_requests(s, app, reissue_for_application(s, app, "officer:officer01", TTL).issued, told, BASE, TTL)
        s.rollback()
        s.commit()
    assert told.sent == []
