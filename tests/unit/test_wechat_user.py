"""WeChat's side of the webhook (emulators.wechat.user) and the `make chat` console,
checked against WeChat's published vectors (shared/testdata/wechat/vectors.md)
and a stand-in webhook built on wechatpy's server-side API."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from flask import Flask, Response, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from emulators import serve_in_thread
from emulators.wechat.api import App, create_app
from emulators.wechat.chat import ChatConsole
from emulators.wechat.user import (
    BadReply,
    DeliveryError,
    WebhookUnreachable,
    WeChatUser,
    account_id_for,
    next_msgid,
    signature,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# vectors.md section B: Tencent's Official Account sample
TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx2c2769f8efd9abc2"
OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
B3_REPLY = """<xml>
<Encrypt><![CDATA[3kKZ++U5ocvIF8dAHPct7xvUqEv6vplhuzA8Vwj7OnVcBu9fdmbbI41zclSfKqP6/bdYAxuE3x8jse43ImHaV07siJF473TsXhl8Yt8task0n9KC7BDA73mFTwlhYvuCIFnU6wFlzOkHyM5Bh2qpOHYk5nSMRyUG4BwmXpxq8TvLgJV1jj2DXdGW4qdknGLfJgDH5sCPJeBzNC8j8KtrJFxmG7qIwKHn3H5sqBf6UqhXFdbLuTWL3jwE7yMLhzOmiHi/MX/ZsVQ7sMuBiV6bW0wkgielESC3yNUPo4q/RMAFEH0fRLr76BR5Ct0nUbf9PdClc0RdlYcztyOs54X/KLbYRNCQ2kXxmJYL6ekdNe70PCAReIEfXEp+pGpry4ss8bD6LKAtNvBJUwHshZe6sbf+fOiDiuKEqp1wdQLmgN+8nX62LklySWr8QrNCpsmKClxco0kbVYNX/QVh5yd0UA1sAqIn6baZ9G+Z/OXG+Q4n9lUuzLprLhDBPaCvXm4N14oqXNcw7tqU2xfhYNIDaD72djyIc/4eyAi2ZsJ+3hb+jgiISR5WVveRWYYqGZGTW3u+27JiXEo0fs3DQDbGVIcYxaMgU/RRIDdXzZSFcf6Z1azjzCDyV9FFEsicghHn]]></Encrypt>
<MsgSignature><![CDATA[096d8cda45e4678ca23460f6b8cd281b3faf1fc3]]></MsgSignature>
<TimeStamp>1415979516</TimeStamp>
<Nonce><![CDATA[1320562132]]></Nonce>
</xml>"""


def sample_crypto() -> WeChatCrypto:
    return WeChatCrypto(TOKEN, AES_KEY, APPID)


# -- signatures and message format ---------------------------------------------


def test_plain_signature_vector_b2():
    assert signature("spamtest", "1409735669", "1320562132") == "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
    user = WeChatUser("http://unused/wechat", TOKEN, APPID, openid=OPENID)
    query = user.query("<xml/>", timestamp="1409735669", nonce="1320562132")
    assert query == {
        "signature": "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a",
        "timestamp": "1409735669",
        "nonce": "1320562132",
        "openid": OPENID,
    }


def test_plaintext_text_message_is_wechats_xml():
    user = WeChatUser("http://unused/wechat", TOKEN, APPID, openid=OPENID, account_id="gh_10f6c3c3ac5a")
    xml = user.text_xml("俺想贷5万")
    assert xml.startswith(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>"
    )
    assert "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[俺想贷5万]]></Content><MsgId>" in xml
    msg = parse_message(xml)
    assert msg.type == "text" and msg.content == "俺想贷5万"
    assert msg.source == OPENID and msg.target == "gh_10f6c3c3ac5a"
    assert abs(msg.create_time.timestamp() - time.time()) < 5
    assert user.wire_body(xml) == xml


def test_cdata_terminator_in_text_survives():
    user = WeChatUser("http://unused/wechat", TOKEN, APPID)
    assert parse_message(user.text_xml("a]]>b<c>&")).content == "a]]>b<c>&"


def test_safe_mode_round_trip_with_wechatpy_and_the_sample_keys():
    user = WeChatUser("http://unused/wechat", TOKEN, APPID, AES_KEY, openid=OPENID)
    assert user.mode == "safe"
    xml = user.text_xml("abcdteT")
    body = user.wire_body(xml)
    assert body.startswith(f"<xml><ToUserName><![CDATA[{account_id_for(APPID)}]]></ToUserName><Encrypt><![CDATA[")
    assert "<Content>" not in body
    query = user.query(body)
    assert set(query) == {"signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature"}
    assert query["encrypt_type"] == "aes"
    check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
    plain = sample_crypto().decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
    assert plain == xml
    msg = parse_message(plain)
    assert msg.content == "abcdteT" and msg.source == OPENID


def test_compat_mode_sends_plaintext_and_encrypt():
    user = WeChatUser("http://unused/wechat", TOKEN, APPID, AES_KEY, openid=OPENID, mode="compat")
    xml = user.text_xml("兼容模式")
    body = user.wire_body(xml)
    assert parse_message(body).content == "兼容模式"  # like vectors.md B1
    query = user.query(body)
    assert (
        parse_message(
            sample_crypto().decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
        ).content
        == "兼容模式"
    )


def test_voice_and_events_parse_as_wechatpy_expects():
    user = WeChatUser("http://unused/wechat", TOKEN, APPID, openid=OPENID)
    voice = parse_message(user.voice_xml("我想贷款"))
    assert voice.type == "voice" and voice.recognition == "我想贷款" and voice.format == "amr" and voice.media_id
    sub = parse_message(user.event_xml("subscribe"))
    assert sub.event == "subscribe" and sub.id == 0
    qr = parse_message(user.event_xml("subscribe", "auth:abc123", ticket="TICKET"))
    assert qr.event == "subscribe_scan" and qr.scene_id == "auth:abc123" and qr.ticket == "TICKET"
    scan = parse_message(user.event_xml("SCAN", "auth:abc123", ticket="TICKET"))
    assert scan.event == "scan" and scan.scene_id == "auth:abc123"
    click = parse_message(user.event_xml("CLICK", "MENU_LOAN"))
    assert click.event == "click" and click.key == "MENU_LOAN"


def test_msgids_are_unique_increasing_64_bit():
    ids = [next_msgid() for _ in range(2000)]
    assert ids == sorted(set(ids)) and all(0 < i < 2**63 for i in ids)
    user = WeChatUser("http://unused/wechat", TOKEN, APPID)
    a, b = parse_message(user.text_xml("1")).id, parse_message(user.text_xml("2")).id
    assert b > a > ids[-1]


def test_encrypted_reply_vector_b3_is_decrypted():
    user = WeChatUser("http://unused/wechat", TOKEN, APPID, AES_KEY, openid="oia2TjjewbmiOUlr6X-1crbLOvLw")
    reply = user.read_reply(B3_REPLY)
    assert reply.encrypted and not reply.empty
    assert reply.msg_type == "video" and reply.content is None
    assert reply.fields["FromUserName"] == "gh_7f083739789a"
    assert reply.fields["Video"]["MediaId"].startswith("eYJ1MbwPRJtOvIEabaxHs7TX2D")
    tampered = B3_REPLY.replace("096d8cda45e4678ca23460f6b8cd281b3faf1fc3", "0" * 40)
    with pytest.raises(BadReply):
        user.read_reply(tampered)
    with pytest.raises(BadReply):  # addressed to someone else
        WeChatUser("http://unused/wechat", TOKEN, APPID, AES_KEY, openid=OPENID).read_reply(B3_REPLY)


@pytest.mark.parametrize("body", ["", "success", "  success\n"])
def test_empty_replies(body):
    reply = WeChatUser("http://unused/wechat", TOKEN, APPID, AES_KEY).read_reply(body)
    assert reply.empty and reply.msg_type is None and reply.content is None


# -- delivering to a webhook -------------------------------------------------------


class StubWebhook:
    """A webhook as the bank writes it with wechatpy: checks, decrypts, answers."""

    def __init__(self, token=TOKEN, appid=APPID, aes_key=AES_KEY, answer=None, delay_first=0, delay=0.0):
        self.token, self.appid, self.aes_key = token, appid, aes_key
        self.answer = answer or (lambda msg: f"收到：{getattr(msg, 'content', '') or msg.type}")
        self.delay_first, self.delay = delay_first, delay
        self.requests: list[tuple[dict, object]] = []
        self.lock = threading.Lock()
        self.app = Flask("stub_webhook")
        self.app.add_url_rule("/wechat", "wechat", view_func=self.view, methods=["GET", "POST"])

    def view(self):
        args = request.args
        try:
            check_signature(self.token, args["signature"], args["timestamp"], args["nonce"])
        except Exception:
            return Response("bad signature", status=403)
        if request.method == "GET":
            return args["echostr"]
        body = request.get_data()
        encrypted = args.get("encrypt_type") == "aes"
        crypto = WeChatCrypto(self.token, self.aes_key, self.appid) if self.aes_key else None
        xml = (
            crypto.decrypt_message(body, args["msg_signature"], args["timestamp"], args["nonce"]) if encrypted else body
        )
        msg = parse_message(xml)
        with self.lock:
            self.requests.append((dict(args), msg))
            n = len(self.requests)
        if n <= self.delay_first:
            time.sleep(self.delay)
        text = self.answer(msg)
        if text is None:
            return "success"
        reply = TextReply(content=text, message=msg).render()
        if encrypted:
            reply = crypto.encrypt_message(reply, args["nonce"], args["timestamp"])
        return Response(reply, mimetype="application/xml")


@pytest.mark.parametrize("mode", ["plaintext", "safe", "compat"])
def test_deliver_and_read_passive_reply(mode):
    stub = StubWebhook()
    with serve_in_thread(stub.app) as base:
        user = WeChatUser(
            f"{base}/wechat", TOKEN, APPID, AES_KEY if mode != "plaintext" else "", openid=OPENID, mode=mode
        )
        reply = user.send_text("我想贷款")
    assert reply.content == "收到：我想贷款" and reply.msg_type == "text"
    assert reply.encrypted == (mode != "plaintext") and reply.attempts == 1
    args, msg = stub.requests[0]
    assert args["openid"] == OPENID and ("msg_signature" in args) == (mode != "plaintext")
    assert msg.content == "我想贷款"


def test_no_passive_reply():
    stub = StubWebhook(answer=lambda msg: None)
    with serve_in_thread(stub.app) as base:
        reply = WeChatUser(f"{base}/wechat", TOKEN, APPID, AES_KEY).send_voice("我能贷多少")
    assert reply.empty and reply.body == "success"
    assert stub.requests[0][1].recognition == "我能贷多少"


def test_wechat_retries_the_same_message_when_no_answer_in_time():
    stub = StubWebhook(delay_first=2, delay=0.8)
    with serve_in_thread(stub.app) as base:
        user = WeChatUser(f"{base}/wechat", TOKEN, APPID, AES_KEY, openid=OPENID, timeout=0.4)
        reply = user.send_text("重试")
    assert reply.attempts == 3 and reply.content == "收到：重试"
    ids = {msg.id for _, msg in stub.requests}
    assert len(stub.requests) == 3 and len(ids) == 1  # the same MsgId each time
    assert len({args["nonce"] for args, _ in stub.requests}) == 3  # freshly signed each time


def test_wechat_gives_up_after_three_retries():
    stub = StubWebhook(delay_first=99, delay=0.5)
    with serve_in_thread(stub.app) as base:
        user = WeChatUser(f"{base}/wechat", TOKEN, APPID, openid=OPENID, timeout=0.2)
        with pytest.raises(DeliveryError) as info:
            user.send_text("没人理")
        assert info.value.attempts == 4 and not isinstance(info.value, WebhookUnreachable)
        with pytest.raises(DeliveryError) as info:
            user.deliver(user.text_xml("只试一次"), retries=False)
        assert info.value.attempts == 1


def test_unreachable_webhook_and_wrong_token():
    user = WeChatUser(f"http://127.0.0.1:{free_port()}/wechat", TOKEN, APPID)
    with pytest.raises(WebhookUnreachable):
        user.send_text("喂")
    stub = StubWebhook(token="othertoken")
    with serve_in_thread(stub.app) as base:
        with pytest.raises(DeliveryError) as info:
            WeChatUser(f"{base}/wechat", TOKEN, APPID).send_text("喂")
    assert info.value.status == 403 and info.value.attempts == 1


def test_plaintext_reply_in_safe_mode_is_refused():
    stub = StubWebhook(aes_key="")  # a webhook that ignores encryption
    stub.app.view_functions["wechat"] = lambda: Response(
        TextReply(content="明文", source="gh_x", target=OPENID).render(), mimetype="application/xml"
    )
    with serve_in_thread(stub.app) as base:
        with pytest.raises(BadReply):
            WeChatUser(f"{base}/wechat", TOKEN, APPID, AES_KEY, openid=OPENID).send_text("喂")


def test_url_verification():
    stub = StubWebhook()
    with serve_in_thread(stub.app) as base:
        assert WeChatUser(f"{base}/wechat", TOKEN, APPID).verify_url("shr5ch") == "shr5ch"


# -- the chat console -------------------------------------------------------------

DEMO_OA, DEMO_SECRET = "wx_chat_test_0001", "chat-secret"


def bank_answers(api_base):
    """A webhook that answers the first message passively, and the second later through the API."""

    def answer(msg):
        if msg.content == "你好":
            return "您好，我是阳光信贷助手。"

        def later():
            time.sleep(0.3)
            tok = requests.get(
                f"{api_base}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": DEMO_OA, "secret": DEMO_SECRET},
                timeout=5,
            ).json()
            for text in ("好的，我来帮您申请贷款。", "请问您想贷多少？"):
                requests.post(
                    f"{api_base}/cgi-bin/message/custom/send",
                    params={"access_token": tok["access_token"]},
                    json={"touser": msg.source, "msgtype": "text", "text": {"content": text}},
                    timeout=5,
                )

        threading.Thread(target=later, daemon=True).start()
        return None

    return answer


@pytest.fixture
def wechat_api():
    with serve_in_thread(create_app(apps={DEMO_OA: App(DEMO_OA, DEMO_SECRET, "oa")})) as base:
        yield base


def test_chat_console_prints_passive_and_customer_service_answers(wechat_api):
    stub = StubWebhook(appid=DEMO_OA, aes_key="", answer=bank_answers(wechat_api))
    with serve_in_thread(stub.app) as base:
        user = WeChatUser(f"{base}/wechat", TOKEN, DEMO_OA, openid="o_demo_zhangjianguo")
        out = io.StringIO()
        console = ChatConsole(user, wechat_api, out, max_wait_s=4, short_wait_s=0.5, quiet_s=0.5, poll_s=0.05)
        rc = console.run(io.StringIO("你好\n\n我想贷款\n"))
    assert rc == 0
    assert out.getvalue().splitlines() == [
        "你：你好",
        "银行：您好，我是阳光信贷助手。",
        "你：我想贷款",
        "银行：好的，我来帮您申请贷款。",
        "银行：请问您想贷多少？",
    ]


def run_chat(args, env_extra, stdin):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "WEB_"))}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "emulators.wechat.chat", *args],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_chat_piped_from_standard_input(wechat_api, tmp_path):
    stub = StubWebhook(appid=DEMO_OA, answer=bank_answers(wechat_api))
    with serve_in_thread(stub.app) as base:
        proc = run_chat(
            ["--url", f"{base}/wechat"],
            {"WECHAT_TOKEN": TOKEN, "WECHAT_APPID": DEMO_OA, "WECHAT_AES_KEY": AES_KEY, "WECHAT_API_BASE": wechat_api},
            "你好\n我想贷款\n",
        )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "你：你好",
        "银行：您好，我是阳光信贷助手。",
        "你：我想贷款",
        "银行：好的，我来帮您申请贷款。",
        "银行：请问您想贷多少？",
    ]
    assert stub.requests[0][0]["encrypt_type"] == "aes"  # signed and encrypted as the settings say


def test_chat_says_to_start_the_server_when_the_webhook_is_down(wechat_api):
    proc = run_chat(["--url", f"http://127.0.0.1:{free_port()}/wechat"], {"WECHAT_API_BASE": wechat_api}, "你好\n")
    assert proc.returncode != 0
    assert "make run" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_chat_interactive_prompt(wechat_api):
    stub = StubWebhook(appid=DEMO_OA, aes_key="", answer=lambda msg: "第一行\n第二行")
    lines = iter(["你好", "/quit", "not sent"])
    prompts = []

    def read(prompt):
        prompts.append(prompt)
        return next(lines)

    with serve_in_thread(stub.app) as base:
        user = WeChatUser(f"{base}/wechat", TOKEN, DEMO_OA)
        out = io.StringIO()
        console = ChatConsole(user, wechat_api, out, interactive=True, short_wait_s=0.2, poll_s=0.05, read=read)
        assert console.run(io.StringIO()) == 0
    assert prompts == ["你：", "你："]
    assert out.getvalue().splitlines()[1:] == ["银行：第一行", "      第二行"]
    assert len(stub.requests) == 1


def test_the_chat_console_indents_every_continuation_line_alike():
    from emulators.wechat.chat import ChatConsole
    from emulators.wechat.user import WeChatUser

    out = io.StringIO()
    console = ChatConsole(
        WeChatUser("http://127.0.0.1:9/wechat", "token", "wx0000000000000000", openid="o_chat"),
        "http://127.0.0.1:9",
        out,
    )
    console.say("第一行\n第二行\n第三行")
    assert out.getvalue().splitlines() == ["银行：第一行", "      第二行", "      第三行"]
