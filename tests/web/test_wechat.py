"""`/wechat` with WeChat's published vectors (../shared/testdata/wechat/vectors.md)."""

import secrets
import time

from sqlalchemy import select
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from sunshine.db import unit_of_work
from sunshine.models import ConversationMessage

# Section B: the Official Account sample.
TOKEN, KEY, APPID = "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"
TS, NONCE, MSG_SIG = "1409735669", "1320562132", "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
URL_SIG = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
B1_BODY = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
VECTOR_SETTINGS = dict(wechat_token=TOKEN, wechat_aes_key=KEY, wechat_appid=APPID, wechat_max_clock_skew=0)


def signed_query(token, nonce=None, timestamp=None, **extra):
    ts, nonce = str(timestamp or int(time.time())), nonce or secrets.token_hex(8)
    signer = WeChatSigner()
    signer.add_data(token, ts, nonce)
    return {"signature": signer.signature, "timestamp": ts, "nonce": nonce, **extra}


def text_xml(content, msg_id=1001, openid="o_demo_zhangjianguo"):
    return (
        f"<xml><ToUserName><![CDATA[gh_bank]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def test_url_verification_with_the_published_signature(make_client):
    client = make_client(**VECTOR_SETTINGS)
    resp = client.get(
        "/wechat", query_string={"signature": URL_SIG, "timestamp": TS, "nonce": NONCE, "echostr": "shr5ch"}
    )
    assert resp.status_code == 200 and resp.data == b"shr5ch"
    bad = client.get(
        "/wechat", query_string={"signature": URL_SIG, "timestamp": TS, "nonce": "1320562133", "echostr": "shr5ch"}
    )
    assert bad.status_code == 403


def test_stale_timestamp_refused_when_window_is_on(make_client):
    client = make_client(wechat_token=TOKEN, wechat_max_clock_skew=300)
    resp = client.get("/wechat", query_string={"signature": URL_SIG, "timestamp": TS, "nonce": NONCE, "echostr": "x"})
    assert resp.status_code == 403


def test_official_sample_decrypts_and_reply_comes_back_encrypted(make_client, bot):
    client = make_client(**VECTOR_SETTINGS)
    resp = client.post(
        "/wechat",
        data=B1_BODY,
        query_string={
            "signature": URL_SIG,
            "timestamp": TS,
            "nonce": NONCE,
            "encrypt_type": "aes",
            "msg_signature": MSG_SIG,
            "openid": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        },
    )
    assert resp.status_code == 200
    reply = WeChatCrypto(TOKEN, KEY, APPID).decrypt_message(
        resp.data, _field(resp.data, "MsgSignature"), _field(resp.data, "TimeStamp"), NONCE
    )
    message = parse_message(reply)
    assert message.content == "已收到：abcdteT" and message.target == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert bot.asked == ["abcdteT"]


def _field(xml: bytes, name: str) -> str:
    text = xml.decode()
    start = text.index(f"<{name}>") + len(name) + 2
    value = text[start : text.index(f"</{name}>")]
    return value.removeprefix("<![CDATA[").removesuffix("]]>")


def test_wrong_msg_signature_is_refused_and_reaches_no_bot(make_client, bot):
    client = make_client(**VECTOR_SETTINGS)
    resp = client.post(
        "/wechat",
        data=B1_BODY,
        query_string={
            "signature": URL_SIG,
            "timestamp": TS,
            "nonce": NONCE,
            "encrypt_type": "aes",
            "msg_signature": "0" * 40,
        },
    )
    assert resp.status_code == 403 and bot.asked == []


def test_plaintext_text_message_gets_the_bots_answer(make_client, bot):
    client = make_client()
    resp = client.post(
        "/wechat", data=text_xml("你好"), query_string=signed_query(client.application.config["SETTINGS"].wechat_token)
    )
    assert resp.status_code == 200
    assert parse_message(resp.data).content == "已收到：你好"


def test_cdata_terminator_in_bot_text_is_made_safe(make_client, bot):
    client = make_client()
    resp = client.post(
        "/wechat",
        data=text_xml("a]]]]><![CDATA[>b", msg_id=1002),
        query_string=signed_query(client.application.config["SETTINGS"].wechat_token),
    )
    assert parse_message(resp.data).content == "已收到：a]]>b"


def test_media_gets_a_helpful_answer_without_the_bot(make_client, bot):
    client = make_client()
    xml = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>image</MsgType><PicUrl>u</PicUrl><MediaId>m</MediaId><MsgId>5</MsgId></xml>"
    )
    resp = client.post(
        "/wechat", data=xml, query_string=signed_query(client.application.config["SETTINGS"].wechat_token)
    )
    assert "文字和语音" in parse_message(resp.data).content and bot.asked == []


def test_bad_bodies_get_400_and_reach_no_bot(make_client, bot):
    client = make_client()
    token = client.application.config["SETTINGS"].wechat_token
    bodies = [
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName></xml>',
        b"<xml><MsgType>text</MsgType></xml>",
        # Found by the fuzzer: wechatpy converts CreateTime and MsgId only when read.
        b"<xml><FromUserName>o1</FromUserName><CreateTime>-62135596801</CreateTime><MsgType>event</MsgType>"
        b"<Event>subscribe</Event></xml>",
        b"<xml><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
        b"<Content>hi</Content><MsgId>abc</MsgId></xml>",
        b"<xml><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
        b"<Content>hi</Content></xml>",
    ]
    for body in bodies:
        resp = client.post("/wechat", data=body, query_string=signed_query(token))
        assert resp.status_code == 400, body
        assert b"Traceback" not in resp.data
    too_large = client.post("/wechat", data=b"<xml>" + b"x" * 70000 + b"</xml>", query_string=signed_query(token))
    assert too_large.status_code == 400 and too_large.data == b"400 body too large"
    assert bot.asked == []


def test_redis_down_still_answers_in_time_and_keeps_the_message(make_client, bot, demo_settings):
    from conversation.inbox import HELD_FOR_LATER, relay_held

    client = make_client(redis_url="redis://127.0.0.1:1/0")
    token = client.application.config["SETTINGS"].wechat_token
    started = time.monotonic()
    for _ in range(2):  # WeChat's retry of the same message is kept once
        resp = client.post("/wechat", data=text_xml("你好", msg_id=1003), query_string=signed_query(token))
        assert resp.status_code == 200 and parse_message(resp.data).content == HELD_FOR_LATER
    assert time.monotonic() - started < 4.5 and bot.asked == []
    with unit_of_work(demo_settings.database_url) as session:
        assert session.execute(select(ConversationMessage.body, ConversationMessage.status)).all() == [("你好", "held")]

    class Queued:
        def __init__(self):
            self.asked = []

        def answer(self, openid, text, key):
            self.asked.append((openid, text, key))

    queued = Queued()  # Redis is back: the watcher hands the message to the bot's worker, once
    assert relay_held(demo_settings, queued) == 1 and relay_held(demo_settings, queued) == 0
    assert queued.asked == [("o_demo_zhangjianguo", "你好", "1003")]
    with unit_of_work(demo_settings.database_url) as session:
        assert session.scalars(select(ConversationMessage.status).order_by(ConversationMessage.id)).all() == ["relayed"]
    # A late retry of it now is a duplicate: it does not reach the bot again.
    resp = make_client().post("/wechat", data=text_xml("你好", msg_id=1003), query_string=signed_query(token))
    assert resp.status_code == 200 and bot.asked == []


def test_replayed_nonce_is_refused_inside_the_window(make_client, bot):
    client = make_client()
    token = client.application.config["SETTINGS"].wechat_token
    query = signed_query(token, nonce="424242")
    assert client.post("/wechat", data=text_xml("你好", msg_id=2001), query_string=query).status_code == 200
    replay = client.post("/wechat", data=text_xml("你好", msg_id=2002), query_string=query)
    assert replay.status_code == 403 and b"replayed nonce" in replay.data
    assert bot.asked == ["你好"]


def test_billion_laughs_and_external_entities_are_refused(make_client, bot):
    client = make_client()
    token = client.application.config["SETTINGS"].wechat_token
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<xml><Content>&lol2;</Content></xml>"
    )
    external = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>'
    entity_only = b'<xml><!ENTITY e "x"><Content>a</Content></xml>'
    for body in (laughs, external, entity_only):
        resp = client.post("/wechat", data=body, query_string=signed_query(token))
        assert resp.status_code == 400 and b"doctype" in resp.data
    assert bot.asked == []


def test_message_encrypted_for_another_appid_is_refused(make_client, bot):
    from emulators.wechat.user import WeChatUser

    client = make_client(wechat_aes_key=KEY, wechat_appid=APPID, wechat_token=TOKEN)
    stranger = WeChatUser("http://unused/wechat", TOKEN, "wx_someone_else_01", KEY)
    body = stranger.wire_body(stranger.text_xml("你好"))
    resp = client.post("/wechat", data=body, query_string=stranger.query(body))
    assert resp.status_code == 400 and b"another appid" in resp.data
    garbage = body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA")
    resp = client.post("/wechat", data=garbage, query_string=stranger.query(garbage))
    assert resp.status_code == 400 and b"undecryptable" in resp.data
    assert bot.asked == []


def test_forged_or_stale_posts_are_refused_and_change_nothing(make_client, bot, demo_settings):
    from sqlalchemy import func, select

    from sunshine.db import unit_of_work
    from sunshine.models import Follower

    client = make_client()
    token = client.application.config["SETTINGS"].wechat_token
    subscribe = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>o_forged</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>event</MsgType><Event>subscribe</Event></xml>"
    )
    forged = {**signed_query(token), "signature": "0" * 40}
    stale = signed_query(token, timestamp=int(time.time()) - 301)
    for query, reason in ((forged, b"bad signature"), (stale, b"stale timestamp"), ({}, b"bad signature")):
        for body in (text_xml("你好", msg_id=3001), subscribe):
            resp = client.post("/wechat", data=body, query_string=query)
            assert resp.status_code == 403 and reason in resp.data
    assert bot.asked == []
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(Follower)) == 0


def test_a_plaintext_body_is_refused_in_safe_mode(make_client, bot):
    """With an AES key set WeChat marks every body encrypt_type=aes (safe and compatible mode):
    a plaintext post comes from someone who knows the token but not the key."""
    client = make_client(wechat_aes_key=KEY, wechat_appid=APPID, wechat_token=TOKEN)
    resp = client.post("/wechat", data=text_xml("你好", msg_id=4001), query_string=signed_query(TOKEN))
    assert resp.status_code == 400 and b"plaintext message" in resp.data
    assert bot.asked == []
    plaintext_mode = make_client()  # no key: plaintext is what WeChat sends
    token = plaintext_mode.application.config["SETTINGS"].wechat_token
    resp = plaintext_mode.post("/wechat", data=text_xml("你好", msg_id=4002), query_string=signed_query(token))
    assert resp.status_code == 200
