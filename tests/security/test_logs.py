"""What the web process writes to its log (its own handler and MaskingFormatter, at DEBUG,
libraries included) while customers, parties and officers go through their flows: no secret,
key, password or token, and no whole ID number, phone number or customer name."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from auth_flow.tokens import issue
from emulators import serve_in_thread
from emulators.wechat.user import WeChatUser
from lending.customers import by_openid
from sunshine.db import unit_of_work
from webhooks import create_app

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ID_NUMBER, PHONE, NAME = "321283197503120119", "13912340001", "张建国"


@pytest.fixture
def settings_with_secrets(demo_settings):
    return replace(
        demo_settings,
        log_level="DEBUG",
        secret_key="sk-9f8e7d6c5b4a",
        wechat_token="tokenQ7w8e9",
        wechat_secret="appsecret-1a2b3c",
        wechat_aes_key=AES_KEY,
        wxa_secret="wxasecret-4d5e6f",
        wecom_secret="wecomsecret-7a8b9c",
        sms_api_key="smskey-0d1e2f",
        wechat_api_base="http://127.0.0.1:9",
        wechat_open_base="http://127.0.0.1:9",
    )


def secrets_of(s) -> list[str]:
    return [
        s.secret_key,
        s.wechat_token,
        s.wechat_secret,
        s.wechat_aes_key,
        s.wxa_secret,
        s.wecom_secret,
        s.sms_api_key,
    ]


def test_flows_log_no_secret_token_or_personal_data(settings_with_secrets, bot, capsys):
    s = settings_with_secrets
    capsys.readouterr()
    with unit_of_work(s.database_url) as db:
        customer = by_openid(db, "o_demo_zhangjianguo")
        token = issue(db, customer, customer, "applicant", "bot", timedelta(minutes=30)).token
    app = create_app(s, bot)  # its log handler writes to the (captured) standard error
    client = app.test_client()
    # an officer logs in, once with a wrong password
    from tests.security.test_access import csrf_of

    for password in ("wrong-password-x", "sunshine-demo"):
        client.post(
            "/console/login",
            data={"username": "officer01", "password": password, "csrf": csrf_of(client.get("/console/login").data)},
        )
    # a customer writes their ID number and phone in safe (AES) mode; a forged request is refused
    with serve_in_thread(app) as url:
        user = WeChatUser(
            f"{url}/wechat", s.wechat_token, s.wechat_appid, AES_KEY, openid="o_demo_zhangjianguo", mode="safe"
        )
        assert user.send_text(f"我叫{NAME}，身份证{ID_NUMBER}，手机{PHONE}").content.startswith("已收到")
        import requests

        assert (
            requests.post(f"{url}/wechat?signature=x&timestamp=1&nonce=2", data=b"<xml/>", timeout=10).status_code
            == 403
        )
        # a party opens the authorization link and fails the identity step; WeChat is unreachable
        assert requests.get(f"{url}/auth/{token}", allow_redirects=False, timeout=10).status_code == 302
        assert requests.get(f"{url}/api/authorizations/{token}/wechat-code.png", timeout=30).status_code == 502
    resp = client.post(f"/api/authorizations/{token}/identity", json={"name": NAME, "id_digits": "000000"})
    assert resp.status_code == 409
    log = capsys.readouterr().err
    assert "wechat request refused (403): bad signature" in log and "WeChat code for an authorization failed" in log
    assert "/auth/" in log and "DEBUG" in log  # the request lines and library debug output are there
    leaked = [
        v for v in [*secrets_of(s), "sunshine-demo", "wrong-password-x", token, ID_NUMBER, PHONE, NAME] if v in log
    ]
    assert leaked == [], log[-3000:]
