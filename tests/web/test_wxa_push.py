"""`/wechat/mp`: the mini-program's message push, as the emulator plays it (XML and JSON,
plaintext and safe mode): subscribe events are recorded, forged or mismatched pushes
refused with nothing recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from emulators.wechat.push import MiniProgramPush
from sunshine.db import unit_of_work
from sunshine.models import WxaSubscription

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_OPENID = "o_mp_lixiuying"
ACCEPT = [{"TemplateId": "sub_a", "SubscribeStatusString": "accept", "PopupScene": "0"}]


def push_to(client, push: MiniProgramPush, event="subscribe_msg_popup_event", items=ACCEPT, **query_changes):
    query, body, content_type = push.request(MP_OPENID, event, items)
    query.update(query_changes)
    return client.post("/wechat/mp", query_string=query, data=body.encode(), content_type=content_type)


def subscriptions(settings):
    with unit_of_work(settings.database_url) as s:
        rows = s.scalars(select(WxaSubscription).order_by(WxaSubscription.template_id)).all()
        return [(r.mp_openid, r.template_id, r.status, r.remaining) for r in rows]


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("aes_key", ["", KEY])
def test_subscribe_events_are_recorded(make_client, demo_settings, fmt, aes_key):
    client = make_client(wxa_push_aes_key=aes_key)
    push = MiniProgramPush("/wechat/mp", demo_settings.wxa_push_token, demo_settings.wxa_appid, aes_key, fmt)
    two = ACCEPT + [{"TemplateId": "sub_b", "SubscribeStatusString": "reject", "PopupScene": "0"}]
    resp = push_to(client, push, items=two)
    assert (resp.status_code, resp.get_data(as_text=True)) == (200, "success")
    assert push_to(client, push).status_code == 200  # accepted again: two messages allowed
    assert subscriptions(demo_settings) == [(MP_OPENID, "sub_a", "accept", 2), (MP_OPENID, "sub_b", "reject", 0)]
    change = [{"TemplateId": "sub_a", "SubscribeStatusString": "reject"}]
    assert push_to(client, push, "subscribe_msg_change_event", change).status_code == 200
    assert subscriptions(demo_settings)[0] == (MP_OPENID, "sub_a", "reject", 0)


def test_the_push_url_is_verified_with_the_push_token(make_client, demo_settings):
    client = make_client()
    query, _, _ = MiniProgramPush("/wechat/mp", demo_settings.wxa_push_token, demo_settings.wxa_appid).request(
        MP_OPENID, "subscribe_msg_popup_event", ACCEPT
    )
    assert client.get("/wechat/mp", query_string=query | {"echostr": "e1"}).get_data(as_text=True) == "e1"
    assert client.get("/wechat/mp", query_string=query | {"echostr": "e1", "signature": "0" * 40}).status_code == 403


@pytest.mark.parametrize(
    ("token", "aes_key", "server_key", "changes", "status"),
    [
        ("wrongtoken", "", "", {}, 403),  # signed with another token
        ("OWN", "", "", {"signature": "0" * 40}, 403),  # forged signature
        ("OWN", KEY, KEY, {"msg_signature": "0" * 40}, 403),  # forged msg_signature
        ("OWN", "", KEY, {}, 400),  # plaintext while the server is in safe mode
        ("OWN", KEY, "", {}, 400),  # encrypted, but the server has no key
        ("OWN", "", "", {"timestamp": "1409735669"}, 403),  # stale (and so no longer signed right)
    ],
)
def test_forged_or_mismatched_pushes_are_refused(
    make_client, demo_settings, token, aes_key, server_key, changes, status
):
    client = make_client(wxa_push_aes_key=server_key)
    push = MiniProgramPush(
        "/wechat/mp", demo_settings.wxa_push_token if token == "OWN" else token, demo_settings.wxa_appid, aes_key
    )
    assert push_to(client, push, **changes).status_code == status
    assert subscriptions(demo_settings) == []


def test_a_replayed_push_is_refused(make_client, demo_settings):
    client = make_client()
    push = MiniProgramPush("/wechat/mp", demo_settings.wxa_push_token, demo_settings.wxa_appid)
    query, body, content_type = push.request(MP_OPENID, "subscribe_msg_popup_event", ACCEPT)
    first = client.post("/wechat/mp", query_string=query, data=body.encode(), content_type=content_type)
    again = client.post("/wechat/mp", query_string=query, data=body.encode(), content_type=content_type)
    assert (first.status_code, again.status_code) == (200, 403)
    assert subscriptions(demo_settings) == [(MP_OPENID, "sub_a", "accept", 1)]


def test_other_events_and_malformed_bodies(make_client, demo_settings):
    client = make_client()
    push = MiniProgramPush("/wechat/mp", demo_settings.wxa_push_token, demo_settings.wxa_appid)
    query, _, _ = push.request(MP_OPENID, "subscribe_msg_popup_event", ACCEPT)
    bad = client.post("/wechat/mp", query_string=query, data=b"<xml><oops", content_type="text/xml")
    assert bad.status_code == 400
    query, _, _ = push.request(MP_OPENID, "subscribe_msg_popup_event", ACCEPT)
    other = (
        b"<xml><FromUserName>o_mp_x</FromUserName><MsgType>event</MsgType><Event>user_enter_tempsession</Event></xml>"
    )
    assert client.post("/wechat/mp", query_string=query, data=other, content_type="text/xml").status_code == 200
    assert subscriptions(demo_settings) == []
