"""The SMS gateway's client against its emulator, and WeChat's web authorization
(clients.wechat over the WeChat API emulator): refusals and one-time codes."""

from __future__ import annotations

import pytest
import requests

from clients.sms import SmsClient, SmsError
from clients.wechat import WebUser, WeChatApi, WeChatApiError
from emulators import serve_in_thread
from emulators.sms.api import create_app as sms_app
from emulators.wechat.api import create_app as wechat_app
from sunshine.settings import Settings


def test_the_sms_gateway_takes_a_text_and_refuses_bad_ones():
    with serve_in_thread(sms_app(api_key="k1")) as url:
        client = SmsClient(url, "k1")
        assert client.send("13912340002", "验证码123456")
        for bad, code in ((SmsClient(url, "wrong"), "unauthorized"), (client, "invalid_phone")):
            with pytest.raises(SmsError, match=code):
                bad.send("1391234000" if bad is client else "13912340002", "x")
        requests.post(f"{url}/_emulator/faults", json={"count": 1, "status": 503})
        with pytest.raises(SmsError, match="503"):
            client.send("13912340002", "again")
        assert [
            m["content"] for m in requests.get(f"{url}/_emulator/messages", params={"phone": "13912340002"}).json()
        ] == ["验证码123456"]
        assert requests.get(f"{url}/_emulator/messages", params={"phone": "13900000000"}).json() == []
    with pytest.raises(SmsError, match="unreachable"):
        client.send("13912340002", "nobody listens")


def test_wechat_web_authorization_codes_work_once_for_the_right_account():
    s = Settings()
    with serve_in_thread(wechat_app(s)) as url:
        api = WeChatApi(url, s.wechat_appid, s.wechat_secret, open_base=url)
        authorize = api.oauth_authorize_url("https://bank.example/auth/wechat-callback", "st")
        requests.post(f"{url}/_emulator/oauth_user", json={"openid": "o_demo_zhangjianguo"})

        def code():
            back = requests.get(authorize, allow_redirects=False).headers["Location"]
            assert back.startswith("https://bank.example/auth/wechat-callback?code=") and back.endswith("&state=st")
            return back.split("code=")[1].split("&")[0]

        first = code()
        assert api.oauth_user(first) == WebUser("o_demo_zhangjianguo", None)
        with pytest.raises(WeChatApiError) as used:
            api.oauth_user(first)
        assert used.value.errcode == 40163
        with pytest.raises(WeChatApiError) as unknown:
            api.oauth_user("made-up")
        assert unknown.value.errcode == 40029
        with pytest.raises(WeChatApiError) as secret:
            WeChatApi(url, s.wechat_appid, "wrong-secret", open_base=url).oauth_user(code())
        assert secret.value.errcode == 40125
        # under the bank's Open Platform account WeChat tells the UnionID too
        requests.post(f"{url}/_emulator/oauth_user", json={"openid": "o_x", "unionid": "u_demo_lixiuying"})
        assert api.oauth_user(code()) == WebUser("o_x", "u_demo_lixiuying")
        mini = WeChatApi(url, s.wxa_appid, s.wxa_secret, open_base=url)  # not an Official Account
        assert requests.get(mini.oauth_authorize_url("https://bank.example/cb", "st")).json()["errcode"] == 40013
