"""The WeChat API emulator speaks WeChat's JSON and error codes (Flask test client)."""

from __future__ import annotations

import json
import time

import pytest

from emulators.wechat.api import App, create_app

OA, OA_SECRET = "wx_oa_test_000001", "oa-secret"
WXA, WXA_SECRET = "wx_wxa_test_00001", "wxa-secret"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def app():
    return create_app(
        apps={OA: App(OA, OA_SECRET, "oa"), WXA: App(WXA, WXA_SECRET, "wxa")},
        wxa_pages={"pages/auth/index", "pages/index/index"},
    )


@pytest.fixture
def client(app):
    return app.test_client()


def token(client, appid=OA, secret=OA_SECRET) -> str:
    res = client.get(
        "/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": appid, "secret": secret}
    ).get_json()
    return res["access_token"]


def send(client, tok, body, raw=False):
    data = body if raw else json.dumps(body, ensure_ascii=False).encode()
    return client.post("/cgi-bin/message/custom/send", query_string={"access_token": tok}, data=data).get_json()


def text(openid, content):
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


def test_token_in_wechat_shape(client):
    res = client.get(
        "/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET}
    )
    assert res.status_code == 200
    body = res.get_json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200 and len(body["access_token"]) > 100


@pytest.mark.parametrize(
    "params, errcode",
    [
        ({"grant_type": "client_credential", "appid": "wx_nobody", "secret": OA_SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": OA, "secret": "wrong"}, 40125),
        ({"grant_type": "password", "appid": OA, "secret": OA_SECRET}, 40002),
    ],
)
def test_token_errors(client, params, errcode):
    res = client.get("/cgi-bin/token", query_string=params)
    assert res.status_code == 200  # WeChat answers errors with 200 and a JSON body
    body = res.get_json()
    assert body["errcode"] == errcode and body["errmsg"]


def test_send_records_messages_oldest_first(client):
    tok = token(client)
    assert send(client, tok, text("o_a", "第一条")) == {"errcode": 0, "errmsg": "ok"}
    assert send(client, tok, text("o_b", "别人的"))["errcode"] == 0
    news = {
        "touser": "o_a",
        "msgtype": "news",
        "news": {"articles": [{"title": "授权", "description": "d", "url": "https://x/auth/1", "picurl": ""}]},
    }
    assert send(client, tok, news)["errcode"] == 0
    msgs = client.get("/_emulator/messages", query_string={"touser": "o_a"}).get_json()
    assert [m["msgtype"] for m in msgs] == ["text", "news"]
    assert msgs[0]["content"] == "第一条" and msgs[0]["touser"] == "o_a"
    assert msgs[1]["content"] is None and msgs[1]["payload"]["articles"][0]["title"] == "授权"
    assert msgs[0]["id"] < msgs[1]["id"] and msgs[0]["received_at"]
    newer = client.get("/_emulator/messages", query_string={"touser": "o_a", "since": msgs[0]["id"]}).get_json()
    assert [m["id"] for m in newer] == [msgs[1]["id"]]
    assert len(client.get("/_emulator/messages").get_json()) == 3


def test_utf8_json_body_is_read(client):
    tok = token(client)
    # wechatpy posts UTF-8 bytes without a Content-Type
    assert (
        send(client, tok, '{"touser":"o_a","msgtype":"text","text":{"content":"俺想贷款"}}'.encode(), raw=True)[
            "errcode"
        ]
        == 0
    )
    assert client.get("/_emulator/messages?touser=o_a").get_json()[0]["content"] == "俺想贷款"


def test_text_limit_is_2048_bytes(client):
    tok = token(client)
    assert send(client, tok, text("o_a", "贷" * 682 + "ab"))["errcode"] == 0  # 2048 bytes
    assert send(client, tok, text("o_a", "贷" * 683))["errcode"] == 45002  # 2049 bytes
    assert len(client.get("/_emulator/messages?touser=o_a").get_json()) == 1


@pytest.mark.parametrize(
    "body, errcode",
    [
        ({"touser": "", "msgtype": "text", "text": {"content": "x"}}, 40003),
        ({"touser": "o_a", "msgtype": "fax", "fax": {}}, 40008),
        ({"touser": "o_a", "msgtype": "text"}, 47001),
        ({"touser": "o_a", "msgtype": "image", "image": {}}, 47001),
    ],
)
def test_bad_messages(client, body, errcode):
    assert send(client, token(client), body)["errcode"] == errcode


def test_bad_and_missing_tokens(client):
    assert send(client, "not-a-token", text("o_a", "x"))["errcode"] == 40001
    res = client.post("/cgi-bin/message/custom/send", data=b"{}").get_json()
    assert res["errcode"] == 41001
    assert send(client, token(client), b"", raw=True)["errcode"] == 44002
    assert send(client, token(client), b"{not json", raw=True)["errcode"] == 47001


def test_expire_tokens_gives_42001_until_a_new_token(client):
    tok = token(client)
    assert client.post("/_emulator/expire_tokens").get_json()["expired"] == 1
    assert send(client, tok, text("o_a", "x"))["errcode"] == 42001
    assert send(client, token(client), text("o_a", "x"))["errcode"] == 0


def test_old_token_works_for_the_grace_period_then_40001(app, client):
    old = token(client)
    new = token(client)
    assert old != new
    assert send(client, old, text("o_a", "x"))["errcode"] == 0  # WeChat's 5-minute overlap
    client.post("/_emulator/config", json={"token_grace_s": 0})
    time.sleep(0.01)
    assert send(client, old, text("o_a", "x"))["errcode"] == 40001
    assert send(client, new, text("o_a", "x"))["errcode"] == 0


def test_token_of_the_mini_program_cannot_send_customer_service_messages(client):
    assert send(client, token(client, WXA, WXA_SECRET), text("o_a", "x"))["errcode"] == 48001


@pytest.mark.parametrize("errcode", [40001, 42001, 45015, 45009, 45047])
def test_faults_fail_the_next_n_calls(client, errcode):
    tok = token(client)
    client.post("/_emulator/faults", json={"errcode": errcode, "count": 2})
    assert send(client, tok, text("o_a", "1"))["errcode"] == errcode
    assert token(client)  # the token endpoint is not touched by a fault without a path
    assert send(client, tok, text("o_a", "2"))["errcode"] == errcode
    assert send(client, tok, text("o_a", "3"))["errcode"] == 0
    assert [m["content"] for m in client.get("/_emulator/messages?touser=o_a").get_json()] == ["3"]


def test_fault_on_a_path_delay_and_clear(client):
    tok = token(client)
    client.post("/_emulator/faults", json={"errcode": 45009, "path": "/cgi-bin/qrcode/create"})
    assert send(client, tok, text("o_a", "x"))["errcode"] == 0
    assert client.get("/_emulator/faults").get_json()["pending"][0]["path"] == "/cgi-bin/qrcode/create"
    client.delete("/_emulator/faults")
    assert client.get("/_emulator/faults").get_json()["pending"] == []
    client.post("/_emulator/faults", json={"delay": 0.3})
    started = time.monotonic()
    assert send(client, tok, text("o_a", "slow"))["errcode"] == 0
    assert time.monotonic() - started >= 0.3
    client.post("/_emulator/faults", json={"status": 502})
    assert (
        client.post("/cgi-bin/message/custom/send", query_string={"access_token": tok}, data=b"{}").status_code == 502
    )


def test_calls_are_logged(client):
    tok = token(client)
    send(client, tok, text("o_a", "x"))
    send(client, "bad", text("o_a", "x"))
    calls = client.get("/_emulator/calls").get_json()
    assert [(c["path"], c["errcode"]) for c in calls] == [
        ("/cgi-bin/token", None),
        ("/cgi-bin/message/custom/send", 0),
        ("/cgi-bin/message/custom/send", 40001),
    ]


def test_reset_forgets_everything(client):
    tok = token(client)
    send(client, tok, text("o_a", "x"))
    client.post("/_emulator/faults", json={"errcode": 45015})
    client.post("/_emulator/reset")
    assert client.get("/_emulator/messages").get_json() == []
    assert client.get("/_emulator/faults").get_json()["pending"] == []
    assert send(client, tok, text("o_a", "x"))["errcode"] == 40001


def test_scene_qrcode_and_its_image(client):
    tok = token(client)
    res = client.post(
        "/cgi-bin/qrcode/create",
        query_string={"access_token": tok},
        json={
            "expire_seconds": 1800,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": "auth:abc123"}},
        },
    ).get_json()
    assert set(res) == {"ticket", "expire_seconds", "url"} and res["expire_seconds"] == 1800
    assert res["url"].startswith("http://weixin.qq.com/q/")
    img = client.get("/cgi-bin/showqrcode", query_string={"ticket": res["ticket"]})
    assert img.status_code == 200 and img.content_type == "image/png" and img.data.startswith(PNG)
    assert client.get("/_emulator/qrcodes").get_json()[0]["scene_str"] == "auth:abc123"
    assert client.get("/cgi-bin/showqrcode", query_string={"ticket": "nope"}).status_code == 404
    permanent = client.post(
        "/cgi-bin/qrcode/create",
        query_string={"access_token": tok},
        json={"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 7}}},
    )
    assert "expire_seconds" not in permanent.get_json()
    bad = client.post(
        "/cgi-bin/qrcode/create",
        query_string={"access_token": tok},
        json={"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}},
    )
    assert bad.get_json()["errcode"] == 40053
    assert (
        client.post(
            "/cgi-bin/qrcode/create", query_string={"access_token": tok}, json={"action_name": "QR_FOO"}
        ).get_json()["errcode"]
        == 40052
    )


def test_wxa_code_unlimit(client):
    tok = token(client, WXA, WXA_SECRET)
    ok = client.post(
        "/wxa/getwxacodeunlimit",
        query_string={"access_token": tok},
        json={"scene": "t=abc123", "page": "pages/auth/index", "width": 430},
    )
    assert ok.status_code == 200 and ok.content_type == "image/png" and ok.data.startswith(PNG)
    for page in ("pages/missing/index", "/pages/auth/index", "pages/auth/index?x=1"):
        bad = client.post(
            "/wxa/getwxacodeunlimit", query_string={"access_token": tok}, json={"scene": "t=abc123", "page": page}
        )
        assert bad.content_type.startswith("application/json")
        assert bad.get_json()["errcode"] == 41030, page
    unchecked = client.post(
        "/wxa/getwxacodeunlimit",
        query_string={"access_token": tok},
        json={"scene": "t=1", "page": "pages/new/index", "check_path": False},
    )
    assert unchecked.data.startswith(PNG)
    too_long = client.post("/wxa/getwxacodeunlimit", query_string={"access_token": tok}, json={"scene": "x" * 33})
    assert too_long.get_json()["errcode"] == 40169
    assert client.get("/_emulator/wxacodes").get_json()[0]["scene"] == "t=abc123"
    # the Official Account's token is not the mini-program's
    assert (
        client.post(
            "/wxa/getwxacodeunlimit", query_string={"access_token": token(client)}, json={"scene": "t=1"}
        ).get_json()["errcode"]
        == 48001
    )


def test_jscode2session(client):
    def login(code, appid=WXA, secret=WXA_SECRET):
        return client.get(
            "/sns/jscode2session",
            query_string={"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"},
        ).get_json()

    registered = client.post("/_emulator/jscodes", json={"openid": "o_wxa_lixiuying"}).get_json()
    res = login(registered["code"])
    assert res["openid"] == "o_wxa_lixiuying" and len(res["session_key"]) == 24
    assert login(registered["code"])["errcode"] == 40163  # one-time
    anon = login("061abcDEF")
    assert anon["openid"].startswith("o") and "errcode" not in anon
    assert login("bad-code")["errcode"] == 40029
    assert login("x y")["errcode"] == 40029
    assert login("abc", secret="wrong")["errcode"] == 40125
    assert login("abc", appid="wx_nobody")["errcode"] == 40013


# -- subscription messages, the 48-hour window ------------------------------------------
def subscribe_send(client, tok, data, touser="o_mp_1", template_id="sub_a"):
    body = {"touser": touser, "template_id": template_id, "data": data}
    return client.post(
        "/cgi-bin/message/subscribe/send", query_string={"access_token": tok}, data=json.dumps(body).encode()
    ).get_json()


def test_a_subscription_message_needs_an_acceptance_and_uses_it(client):
    tok = token(client, WXA, WXA_SECRET)
    data = {"thing1": {"value": "一" * 20}}
    assert subscribe_send(client, tok, data)["errcode"] == 43101
    answer = client.post("/_emulator/subscriptions", json={"openid": "o_mp_1", "template_ids": ["sub_a"]})
    assert answer.get_json() == {"openid": "o_mp_1", "left": {"sub_a": 1}, "pushed": None}
    assert subscribe_send(client, tok, {"thing1": {"value": "一" * 21}})["errcode"] == 47003  # over a thing's 20
    assert subscribe_send(client, tok, data)["errcode"] == 0
    assert subscribe_send(client, tok, data)["errcode"] == 43101  # one-time: used up
    sent = client.get("/_emulator/subscribe_messages", query_string={"touser": "o_mp_1"}).get_json()
    assert [(m["template_id"], m["data"]) for m in sent] == [("sub_a", data)]
    assert subscribe_send(client, token(client), data)["errcode"] == 48001  # the Official Account's token


def test_the_window_is_settable_per_user(client):
    tok = token(client)
    client.post("/_emulator/window", json={"touser": "o_1", "silent_hours": 49})
    client.post("/_emulator/window", json={"touser": "o_2", "silent_hours": 47})
    assert send(client, tok, text("o_1", "在吗"))["errcode"] == 45015
    assert send(client, tok, text("o_2", "在吗"))["errcode"] == 0
    assert send(client, tok, text("o_3", "在吗"))["errcode"] == 0  # never set: open
    client.post("/_emulator/window", json={"touser": "o_1", "silent_hours": None})
    assert send(client, tok, text("o_1", "在吗"))["errcode"] == 0
    assert client.post("/_emulator/window", json={"touser": "o_1", "silent_hours": "x"}).status_code == 400
    assert client.post("/_emulator/subscriptions", json={"openid": "o_mp_1"}).status_code == 400


def test_the_chat_console_shows_a_template_message():
    from emulators.wechat.chat import describe_message

    msg = {
        "msgtype": "template",
        "payload": {
            "template_id": "t",
            "data": {"thing1": {"value": "阳光e贷"}, "thing2": {"value": "已通过"}},
            "url": None,
        },
    }
    assert describe_message(msg) == "[模板消息] 阳光e贷；已通过"
