"""clients.wechat.WeChatApi against a live WeChat API emulator and a real Redis."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import requests

from clients.wechat import BankWeChatClient, WeChatApi, WeChatApiError, WeChatUnavailable
from emulators import serve_in_thread
from emulators.wechat.api import App, create_app
from sunshine.redis import connect
from sunshine.settings import Settings
from tests.conftest import free_port

OA, OA_SECRET = "wx_oa_client_0001", "oa-secret"
WXA, WXA_SECRET = "wx_wxa_client_001", "wxa-secret"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def emulator():
    app = create_app(
        apps={OA: App(OA, OA_SECRET, "oa"), WXA: App(WXA, WXA_SECRET, "wxa")}, wxa_pages={"pages/auth/index"}
    )
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture
def redis_client(redis_url):
    return connect(redis_url)


def make_api(base, redis_client, **kw) -> WeChatApi:
    return WeChatApi(base, OA, OA_SECRET, WXA, WXA_SECRET, redis=redis_client, timeout=kw.pop("timeout", 3), **kw)


@pytest.fixture
def api(emulator, redis_client):
    return make_api(emulator, redis_client)


def messages(base, openid):
    return requests.get(f"{base}/_emulator/messages", params={"touser": openid}, timeout=5).json()


def calls(base, path):
    return [c for c in requests.get(f"{base}/_emulator/calls", timeout=5).json() if c["path"] == path]


def fault(base, **spec):
    requests.post(f"{base}/_emulator/faults", json=spec, timeout=5).raise_for_status()


def test_token_send_and_read_back(emulator, api, redis_client):
    api.send_text("o_demo_zhangjianguo", "您的贷款申请已受理。")
    api.send_text("o_demo_zhangjianguo", "客户经理会在一个工作日内联系您。")
    got = messages(emulator, "o_demo_zhangjianguo")
    assert [m["content"] for m in got] == ["您的贷款申请已受理。", "客户经理会在一个工作日内联系您。"]
    assert len(calls(emulator, "/cgi-bin/token")) == 1
    key = f"sunshine:wechat:{OA}:{OA}_access_token"
    assert redis_client.exists(key)
    assert 0 < redis_client.ttl(key) <= 7200 - 300  # refreshed before WeChat expires it


def test_from_settings(emulator, redis_url):
    settings = replace(
        Settings(),
        wechat_api_base=emulator,
        wechat_appid=OA,
        wechat_secret=OA_SECRET,
        wxa_appid=WXA,
        wxa_secret=WXA_SECRET,
        redis_url=redis_url,
    )
    WeChatApi.from_settings(settings).send_text("o_x", "你好")
    assert messages(emulator, "o_x")[0]["content"] == "你好"


def test_other_processes_reuse_the_cached_token(emulator, redis_client):
    for _ in range(3):
        make_api(emulator, redis_client).send_text("o_x", "hi")
    assert len(calls(emulator, "/cgi-bin/token")) == 1


def test_invalid_token_is_refreshed_once_and_the_send_succeeds(emulator, api):
    api.send_text("o_x", "first")
    fault(emulator, errcode=40001, path="/cgi-bin/message/custom/send")
    api.send_text("o_x", "second")
    assert [m["content"] for m in messages(emulator, "o_x")] == ["first", "second"]
    assert len(calls(emulator, "/cgi-bin/token")) == 2
    assert [c["errcode"] for c in calls(emulator, "/cgi-bin/message/custom/send")] == [0, 40001, 0]


def test_expired_token_42001_is_refreshed(emulator, api):
    api.send_text("o_x", "first")
    requests.post(f"{emulator}/_emulator/expire_tokens", timeout=5)
    api.send_text("o_x", "after expiry")
    assert [c["errcode"] for c in calls(emulator, "/cgi-bin/message/custom/send")] == [0, 42001, 0]
    assert messages(emulator, "o_x")[-1]["content"] == "after expiry"


def test_persistent_40001_gives_up_after_the_bound(emulator, api):
    fault(emulator, errcode=40001, count=10, path="/cgi-bin/message/custom/send")
    with pytest.raises(WeChatApiError) as info:
        api.send_text("o_x", "never")
    assert info.value.errcode == 40001 and info.value.token_error
    assert len(calls(emulator, "/cgi-bin/message/custom/send")) == 3  # first try + 2 refreshes
    assert len(calls(emulator, "/cgi-bin/token")) == 3
    assert messages(emulator, "o_x") == []


@pytest.mark.parametrize(
    "errcode, flag", [(45015, "outside_window"), (45047, "too_many_messages"), (45009, "rate_limited")]
)
def test_wechat_errors_carry_their_code(emulator, api, errcode, flag):
    fault(emulator, errcode=errcode)
    with pytest.raises(WeChatApiError) as info:
        api.send_text("o_x", "late")
    assert info.value.errcode == errcode and getattr(info.value, flag)
    assert str(errcode) in str(info.value)
    assert len(calls(emulator, "/cgi-bin/message/custom/send")) == 1  # not retried
    assert len(calls(emulator, "/cgi-bin/token")) == 1


def test_concurrent_refresh_fetches_one_token(emulator, redis_client):
    apis = [make_api(emulator, redis_client) for _ in range(8)]
    barrier = threading.Barrier(len(apis))
    errors = []

    def run(a):
        try:
            barrier.wait(5)
            a.send_text("o_x", "并发")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in apis]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert len(calls(emulator, "/cgi-bin/token")) == 1
    assert len(messages(emulator, "o_x")) == 8


def test_a_refused_token_already_replaced_by_another_process_is_not_fetched_again(emulator, redis_client):
    a = BankWeChatClient(emulator, OA, OA_SECRET, redis=redis_client)
    b = BankWeChatClient(emulator, OA, OA_SECRET, redis=redis_client)
    old = a.access_token
    new = b.refresh_access_token(rejected=old)
    assert new != old
    assert a.refresh_access_token(rejected=old) == new
    assert len(calls(emulator, "/cgi-bin/token")) == 2


def test_scene_qrcode(emulator, api):
    code = api.create_scene_qrcode("auth:abc123", expire_seconds=1800)
    assert code.expire_seconds == 1800 and code.url.startswith("http://weixin.qq.com/q/")
    img = requests.get(code.image_url, timeout=5)
    assert img.status_code == 200 and img.content.startswith(PNG)
    created = requests.get(f"{emulator}/_emulator/qrcodes", timeout=5).json()
    assert created[0]["scene_str"] == "auth:abc123" and created[0]["action_name"] == "QR_STR_SCENE"
    assert api.create_scene_qrcode("menu", expire_seconds=None).expire_seconds is None


def test_wxa_code_and_login_use_the_mini_program(emulator, api):
    png = api.wxa_code_unlimit("t=abc123", "pages/auth/index")
    assert png.startswith(PNG)
    with pytest.raises(WeChatApiError) as info:
        api.wxa_code_unlimit("t=abc123", "pages/nowhere/index")
    assert info.value.errcode == 41030
    code = requests.post(f"{emulator}/_emulator/jscodes", json={"openid": "o_wxa_li"}, timeout=5).json()["code"]
    session = api.jscode2session(code)
    assert session.openid == "o_wxa_li" and session.session_key
    with pytest.raises(WeChatApiError) as info:
        api.jscode2session("bad-code")
    assert info.value.errcode == 40029
    # login needs no access_token: only the wxa code fetched one, for the mini-program
    assert len(calls(emulator, "/cgi-bin/token")) == 1


def test_unreachable_slow_and_failing_wechat(emulator, redis_client):
    dead = make_api(f"http://127.0.0.1:{free_port()}", redis_client)
    with pytest.raises(WeChatUnavailable):
        dead.send_text("o_x", "x")
    api = make_api(emulator, redis_client, timeout=0.5)
    api.send_text("o_x", "warm up")
    fault(emulator, delay=1.5)
    with pytest.raises(WeChatUnavailable):
        api.send_text("o_x", "slow")
    fault(emulator, status=502)
    with pytest.raises(WeChatUnavailable) as info:
        api.send_text("o_x", "bad gateway")
    assert info.value.errcode is None and "502" in str(info.value)


def test_base_urls_follow_the_setting():
    api = WeChatApi("https://api.weixin.qq.com", OA, OA_SECRET, WXA, WXA_SECRET)
    assert api.oa.API_BASE_URL == "https://api.weixin.qq.com/cgi-bin/"
    assert api.qrcode_image_url("a/b+c=") == "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=a%2Fb%2Bc%3D"
    local = WeChatApi("http://127.0.0.1:8100/", OA, OA_SECRET, WXA, WXA_SECRET)
    assert local.oa.API_BASE_URL == "http://127.0.0.1:8100/cgi-bin/"
    assert local.wxa.wxa.API_BASE_URL == "http://127.0.0.1:8100/"
    assert local.qrcode_image_url("t").startswith("http://127.0.0.1:8100/cgi-bin/showqrcode")
