"""Property-based tests: whatever arrives at `/wechat` (random bodies, headers, query
strings, plaintext and AES, bad signatures, broken XML, any encoding, content type and
size), the answer is a documented status (200, 400, 403) with its reason, never a 500
or a stack trace."""

import re
import secrets
import time
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechatpy.utils import WeChatSigner

from emulators.wechat.user import WeChatUser, msg_signature

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ALLOWED = {200, 400, 403}
SEEN: Counter = Counter()  # statuses the deep test reached; checked below

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
msg_types = (
    st.sampled_from(["text", "voice", "image", "video", "shortvideo", "location", "link", "event", "file", "", "TEXT"])
    | text
)
events = (
    st.sampled_from(["subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", ""])
    | text
)
numbers = st.one_of(st.integers(-(2**70), 2**70).map(str), text)


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wechat_like_xml(draw, plausible: bool = False) -> str:
    """XML shaped like WeChat's messages, with random and missing fields; when
    `plausible`, sender, type and time are always there and mostly sensible."""
    fields = {
        "ToUserName": draw(text),
        "FromUserName": draw(text),
        "CreateTime": draw(numbers),
        "MsgType": draw(msg_types),
        "Content": draw(text),
        "MsgId": draw(numbers),
        "Event": draw(events),
        "EventKey": draw(st.sampled_from(["qrscene_station:HQ001", "station:HQ001", "auth:abc", ""]) | text),
        "Recognition": draw(text),
        "PicUrl": draw(text),
        "Location_X": draw(numbers),
        "Label": draw(text),
        "Url": draw(text),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields)))
    if plausible:
        fields["FromUserName"] = draw(st.sampled_from(["o_demo_zhangjianguo", "o_fuzz_user"]) | text.filter(bool))
        fields["CreateTime"] = draw(st.integers(0, 2**32).map(str) | numbers)
        fields["MsgId"] = draw(st.integers(1, 2**63).map(str) | numbers)
        chosen = sorted(set(chosen) | {"FromUserName", "CreateTime", "MsgType", "MsgId"})
    inner = "".join(f"<{k}>{cdata(fields[k]) if draw(st.booleans()) else fields[k]}</{k}>" for k in chosen)
    return f"<xml>{inner}</xml>".encode("utf-8", "surrogatepass").decode("utf-8", "replace")


bodies = st.one_of(st.binary(max_size=300), text.map(lambda t: t.encode()), wechat_like_xml().map(str.encode))
queries = st.dictionaries(
    st.sampled_from(["signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature", "echostr"]) | text,
    text,
    max_size=7,
)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Content-Encoding", "Transfer-Encoding", "X-Forwarded-For"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    max_size=3,
)


def signed(token: str, extra: dict) -> dict:
    ts, nonce = str(int(time.time())), secrets.token_hex(8)
    signer = WeChatSigner()
    signer.add_data(token, ts, nonce)
    return {**extra, "signature": signer.signature, "timestamp": ts, "nonce": nonce}


def wire_query(user, body: str) -> dict:
    """WeChat's query for `body`; the fuzzed plaintext beside `Encrypt` (compat mode) may not parse."""
    query = signed(user.token, {"openid": user.openid})
    found = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", body)
    if found:
        query.update(
            encrypt_type="aes",
            msg_signature=msg_signature(user.token, query["timestamp"], query["nonce"], found.group(1)),
        )
    return query


def check(resp):
    """A documented status, no stack trace, and a refusal names its reason in one line of
    text ('400 not wechat xml: ...')."""
    assert resp.status_code in ALLOWED, (resp.status_code, resp.data[:300])
    assert b"Traceback" not in resp.data and b'File "' not in resp.data
    if resp.status_code in (400, 403):
        line = resp.data.decode("utf-8")
        assert re.fullmatch(rf"{resp.status_code} \S.*", line), line[:200]


@FUZZ
@given(body=bodies, query=queries, extra_headers=headers)
def test_unsigned_requests_are_refused_without_a_500(make_client, bot, body, query, extra_headers):
    client = make_client()
    check(client.post("/wechat", data=body, query_string=query, headers=extra_headers))
    check(client.get("/wechat", query_string=query, headers=extra_headers))
    assert bot.asked == []


@FUZZ
@given(body=bodies, query=queries, encrypted=st.booleans())
def test_signed_requests_with_random_bodies_never_fail(make_client, bot, body, query, encrypted):
    client = make_client(wechat_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" if encrypted else "")
    token = client.application.config["SETTINGS"].wechat_token
    extra = {**query, "encrypt_type": "aes", "msg_signature": "0" * 40} if encrypted else query
    check(client.post("/wechat", data=body, query_string=signed(token, extra)))


# The same 200 examples every run (derandomized): how many reach the bot varies from 18 to 70 with
# the seed, and the guard below must not fail on a seed that parsed badly.
@settings(FUZZ, derandomize=True)
@given(xml=wechat_like_xml(plausible=True), mode=st.sampled_from(["plaintext", "safe", "compat"]))
def test_well_signed_messages_with_random_fields_never_fail(make_client, bot, xml, mode):
    """Past the signature and decryption: random message content reaches parsing and routing."""
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" if mode != "plaintext" else ""
    client = make_client(wechat_aes_key=key)
    s = client.application.config["SETTINGS"]
    user = WeChatUser("http://unused/wechat", s.wechat_token, s.wechat_appid, key, mode=mode)
    try:
        body = user.wire_body(xml)
    except ValueError:  # compat mode needs one <xml> document; the fuzzed text may end otherwise
        body = user.wire_body("<xml>" + xml + "</xml>") if mode != "compat" else None
    if body is None:
        return
    resp = client.post("/wechat", data=body.encode(), query_string=wire_query(user, body))
    check(resp)
    SEEN[resp.status_code] += 1


def test_the_deep_fuzzing_reached_the_bot_and_the_refusals():
    """Guards the test above against fuzzing nothing but parse errors."""
    if not SEEN:
        import pytest

        pytest.skip("run together with test_well_signed_messages_with_random_fields_never_fail")
    assert SEEN[200] >= 20 and SEEN[400] >= 5, SEEN


CONTENT_TYPES = st.sampled_from(
    [
        "text/xml",
        "application/xml",
        "text/xml; charset=gbk",
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "latin-1-bytes"])


def encoded(xml: str, encoding: str) -> bytes:
    """The message as bytes in `encoding`, declared in the XML prolog as WeChat's never is;
    'latin-1-bytes': bytes that are not UTF-8 at all, undeclared."""
    if encoding == "latin-1-bytes":
        return xml.encode("utf-8").replace(b"<Content>", b"<Content>\xe9\xff\xfe")
    prolog = f'<?xml version="1.0" encoding="{encoding.replace("-sig", "")}"?>'
    return (prolog + xml).encode(encoding, "replace")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    xml=wechat_like_xml(plausible=True),
    encoding=ENCODINGS,
    content_type=CONTENT_TYPES,
    padding=st.sampled_from([0, 0, 0, 64 * 1024 - 200, 64 * 1024, 1024 * 1024]),
)
def test_signed_messages_in_any_encoding_size_and_content_type_never_fail(
    make_client, bot, xml, encoding, content_type, padding
):
    client = make_client()
    body = encoded(xml, encoding)
    if padding:  # a huge message: padding inside the XML, around the 64 KiB limit and far beyond
        body = body.replace(b"</xml>", b"<Pad>" + b"x" * padding + b"</Pad></xml>")
    token = client.application.config["SETTINGS"].wechat_token
    resp = client.post("/wechat", data=body, query_string=signed(token, {}), content_type=content_type or None)
    check(resp)
    if len(body) > 64 * 1024:
        assert resp.status_code == 400 and resp.data == b"400 body too large"
