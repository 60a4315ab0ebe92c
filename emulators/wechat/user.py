"""WeChat's side of the message webhook: a follower of the Official Account
whose messages WeChat's servers POST to the bank's URL.

`WeChatUser` builds the inbound XML exactly as WeChat does, signs the request
(`signature` = sha1 of the sorted token, timestamp and nonce), in safe and
compatible modes encrypts the message with wechatpy's crypto (AES-256-CBC,
`msg_signature`), and POSTs it with the query WeChat sends:

    plaintext: ?signature=&timestamp=&nonce=&openid=
    safe/compat: ?signature=&timestamp=&nonce=&openid=&encrypt_type=aes&msg_signature=

Like WeChat, it waits `timeout` (5 s) for the answer and otherwise sends the
same message again (same MsgId and body; a fresh timestamp, nonce and
signatures), up to `max_retries` (3) more times. The answer is decrypted
when encrypted and returned as a `PassiveReply`; `""` and `"success"` mean
no passive reply.

    user = WeChatUser("http://127.0.0.1:8000/wechat", token, appid, aes_key)
    reply = user.send_text("我想贷款")
    print(reply.content)
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests
import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner, to_text

MODES = ("auto", "plaintext", "compat", "safe")


class DeliveryError(Exception):
    """WeChat could not deliver the message: the customer would see
    "该公众号暂时无法提供服务，请稍后再试"."""

    def __init__(self, reason: str, attempts: int, status: int | None = None, body: str = ""):
        super().__init__(f"{reason} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.reason = reason
        self.attempts = attempts
        self.status = status
        self.body = body


class WebhookUnreachable(DeliveryError):
    """Nothing listens at the webhook URL (connection refused, unknown host)."""


class BadReply(DeliveryError):
    """The webhook answered 200 with something WeChat cannot use (bad XML, bad signature, wrong user)."""


def signature(token: str, timestamp: str, nonce: str) -> str:
    """The `signature` query parameter: sha1 of the sorted token, timestamp and nonce."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    return signer.signature


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The `msg_signature` of an encrypted message: sha1 of the sorted four values."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, encrypt)
    return signer.signature


def account_id_for(appid: str) -> str:
    """A stable stand-in for the account's original ID (gh_ + 12 hex), which settings do not hold."""
    return "gh_" + hashlib.sha1(appid.encode()).hexdigest()[:12]  # noqa: S324  emulator: a fake gh_ account id


def cdata(text: str) -> str:
    """`text` as CDATA, split where it contains the CDATA terminator."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


_msgid_lock = threading.Lock()
_last_msgid = 0


def next_msgid() -> int:
    """A unique, increasing 64-bit message id (milliseconds << 20, so it keeps increasing across runs)."""
    global _last_msgid
    with _msgid_lock:
        _last_msgid = max(_last_msgid + 1, int(time.time() * 1000) << 20)
        return _last_msgid


@dataclass
class PassiveReply:
    """The webhook's HTTP answer to one message, as WeChat reads it."""

    status: int
    body: str  # the HTTP body as received
    xml: str = ""  # the reply XML (decrypted in safe mode); "" when empty
    fields: dict = field(default_factory=dict)
    encrypted: bool = False
    attempts: int = 1
    elapsed_s: float = 0.0

    @property
    def empty(self) -> bool:
        """No passive reply: the body was "" or "success" (answers may follow as customer-service messages)."""
        return not self.xml

    @property
    def msg_type(self) -> str | None:
        return self.fields.get("MsgType")

    @property
    def content(self) -> str | None:
        """The text of a text reply."""
        return self.fields.get("Content") if self.msg_type == "text" else None

    def describe(self) -> str:
        """One line for a person: the text, or what kind of reply it was."""
        kind = self.msg_type
        if kind == "text":
            return self.content or ""
        if kind == "transfer_customer_service":
            return "（已转接人工客服）"
        if kind == "news":
            articles = (self.fields.get("Articles") or {}).get("item") or []
            if isinstance(articles, dict):
                articles = [articles]
            return "；".join(f"[图文] {a.get('Title', '')} {a.get('Url', '')}".strip() for a in articles)
        if kind in ("image", "voice", "video", "music"):
            media = self.fields.get(kind.capitalize()) or {}
            return f"[{kind}] {media.get('MediaId', '') or media.get('Title', '')}".strip()
        return f"[{kind}]"


class WeChatUser:
    """One follower of the Official Account, talking to the bank's webhook through WeChat."""

    def __init__(
        self,
        webhook_url: str,
        token: str,
        appid: str,
        aes_key: str = "",
        openid: str = "o_demo_zhangjianguo",
        mode: str = "auto",
        *,
        account_id: str | None = None,
        timeout: float = 5.0,
        max_retries: int = 3,
        http: requests.Session | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if mode == "auto":
            mode = "safe" if aes_key else "plaintext"
        if mode in ("safe", "compat") and not aes_key:
            raise ValueError(f"{mode} mode needs the account's EncodingAESKey")
        self.webhook_url = webhook_url
        self.token = token
        self.appid = appid
        self.aes_key = aes_key
        self.openid = openid
        self.mode = mode
        self.account_id = account_id or account_id_for(appid)
        self.timeout = timeout
        self.max_retries = max_retries
        self.http = http or requests.Session()
        self._crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None

    # -- building messages ---------------------------------------------------
    def _xml(self, msg_type: str, body: list[tuple[str, object]], msg_id: int | None) -> str:
        parts = [
            f"<ToUserName>{cdata(self.account_id)}</ToUserName>",
            f"<FromUserName>{cdata(self.openid)}</FromUserName>",
            f"<CreateTime>{int(time.time())}</CreateTime>",
            f"<MsgType>{cdata(msg_type)}</MsgType>",
        ]
        for name, value in body:
            parts.append(f"<{name}>{value if isinstance(value, int) else cdata(str(value))}</{name}>")
        if msg_id is not None:
            parts.append(f"<MsgId>{msg_id}</MsgId>")
        return "<xml>" + "".join(parts) + "</xml>"

    def text_xml(self, text: str, msg_id: int | None = None) -> str:
        return self._xml("text", [("Content", text)], msg_id or next_msgid())

    def voice_xml(self, recognition: str, media_id: str | None = None) -> str:
        media_id = media_id or "voice_" + hashlib.sha1(f"{time.time()}{random.random()}".encode()).hexdigest()[:24]  # noqa: S311,S324  emulator: a fake media id
        return self._xml(
            "voice", [("MediaId", media_id), ("Format", "amr"), ("Recognition", recognition)], next_msgid()
        )

    def event_xml(self, event: str, key: str = "", ticket: str | None = None) -> str:
        """An event. For `subscribe` with a key (following through a parametric QR code) WeChat
        prefixes the key with `qrscene_`; that is done here, so pass the scene as the bank made it."""
        body: list[tuple[str, object]] = [("Event", event)]
        if key:
            if event == "subscribe" and not key.startswith("qrscene_"):
                key = "qrscene_" + key
            body.append(("EventKey", key))
        if ticket:
            body.append(("Ticket", ticket))
        return self._xml("event", body, None)

    # -- sending -------------------------------------------------------------
    def send_text(self, text: str) -> PassiveReply:
        return self.deliver(self.text_xml(text))

    def send_voice(self, recognition: str) -> PassiveReply:
        """A voice message as WeChat forwards it, with its speech-recognition text."""
        return self.deliver(self.voice_xml(recognition))

    def send_event(self, event: str, key: str = "", ticket: str | None = None) -> PassiveReply:
        """`subscribe`, `unsubscribe`, `SCAN`, `CLICK`, `VIEW`, ... (WeChat's spelling)."""
        return self.deliver(self.event_xml(event, key, ticket))

    def scan_qrcode(self, scene: str, ticket: str = "TICKET", following: bool = True) -> PassiveReply:
        """Scan a parametric QR code: SCAN when already following, else subscribe with `qrscene_`."""
        if following:
            return self.send_event("SCAN", scene, ticket)
        return self.send_event("subscribe", scene, ticket)

    def wire_body(self, xml_body: str) -> str:
        """The POST body WeChat sends for `xml_body` in this mode (encrypted once per message)."""
        if self.mode == "plaintext":
            return xml_body
        encrypt = to_text(PrpCrypto(self._crypto.key).encrypt(xml_body, self.appid))
        if self.mode == "compat":  # the plaintext fields, and the same message encrypted
            inner = xml_body.strip()
            if not inner.endswith("</xml>"):
                raise ValueError("xml_body must be one <xml>...</xml> document")
            return f"{inner[:-len('</xml>')]}<Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        return f"<xml><ToUserName>{cdata(self.account_id)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"

    def query(self, body: str, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        """The query string WeChat puts on the POST of `body` (the wire body)."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(random.randint(100000000, 2**31 - 1))  # noqa: S311  emulator: WeChat's nonce is not secret (the signature is)
        params = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": self.openid,
        }
        if self.mode != "plaintext":
            encrypt = xmltodict.parse(body)["xml"]["Encrypt"]
            params["encrypt_type"] = "aes"
            params["msg_signature"] = msg_signature(self.token, timestamp, nonce, encrypt)
        return params

    def deliver(self, xml_body: str, retries: bool = True) -> PassiveReply:
        """POST one message as WeChat does; on no answer within `timeout`, send it again
        (at most `max_retries` more times when `retries`). Raises `DeliveryError` when
        WeChat would give up, `WebhookUnreachable` when nothing listens."""
        body = self.wire_body(xml_body)
        attempts_allowed = 1 + (self.max_retries if retries else 0)
        started = time.monotonic()
        last_reason = "no answer"
        unreachable = False
        for attempt in range(1, attempts_allowed + 1):
            params = self.query(body)
            url = f"{self.webhook_url}{'&' if '?' in self.webhook_url else '?'}{urlencode(params)}"
            try:
                resp = self.http.post(
                    url,
                    data=body.encode("utf-8"),
                    timeout=self.timeout,
                    headers={"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"},
                )
            except requests.Timeout:
                last_reason, unreachable = f"no answer within {self.timeout:g} s", False
                continue
            except requests.ConnectionError as exc:
                last_reason, unreachable = f"cannot connect to {self.webhook_url}: {type(exc).__name__}", True
                continue
            if resp.status_code != 200:
                raise DeliveryError(
                    f"webhook answered HTTP {resp.status_code}", attempt, resp.status_code, resp.text[:500]
                )
            try:
                reply = self.read_reply(resp.content)
            except BadReply as exc:
                exc.attempts = attempt
                raise
            reply.attempts = attempt
            reply.elapsed_s = time.monotonic() - started
            return reply
        cls = WebhookUnreachable if unreachable else DeliveryError
        raise cls(last_reason, attempts_allowed)

    # -- reading the answer --------------------------------------------------
    def read_reply(self, raw: bytes | str) -> PassiveReply:
        """Read the webhook's answer as WeChat does: decrypt and check it in safe/compat mode."""
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        stripped = text.strip()
        reply = PassiveReply(status=200, body=text)
        if stripped in ("", "success"):
            return reply
        try:
            doc = xmltodict.parse(stripped)["xml"]
        except Exception as exc:
            raise BadReply(f"reply is not WeChat XML: {type(exc).__name__}", 1, 200, text[:500]) from None
        if isinstance(doc, dict) and "Encrypt" in doc:
            if self._crypto is None:
                raise BadReply("encrypted reply but no EncodingAESKey configured", 1, 200, text[:500])
            try:
                inner = self._crypto.decrypt_message(
                    doc, doc.get("MsgSignature", ""), doc.get("TimeStamp", ""), doc.get("Nonce", "")
                )
            except InvalidSignatureException:
                raise BadReply("reply MsgSignature does not match", 1, 200, text[:500]) from None
            except InvalidAppIdException:
                raise BadReply("reply encrypted for another appid", 1, 200, text[:500]) from None
            except Exception as exc:
                raise BadReply(f"reply cannot be decrypted: {type(exc).__name__}", 1, 200, text[:500]) from None
            reply.encrypted = True
            reply.xml = to_text(inner)
            try:
                doc = xmltodict.parse(reply.xml)["xml"]
            except Exception as exc:
                raise BadReply(f"decrypted reply is not XML: {type(exc).__name__}", 1, 200, reply.xml) from None
        else:
            if self.mode == "safe":
                raise BadReply("plaintext reply in safe mode", 1, 200, text[:500])
            reply.xml = stripped
        if not isinstance(doc, dict) or not doc.get("MsgType"):
            raise BadReply("reply has no MsgType", 1, 200, reply.xml)
        fields = {k: (v.strip() if isinstance(v, str) and k == "MsgType" else v) for k, v in doc.items()}
        if fields.get("ToUserName") != self.openid:
            raise BadReply(f"reply addressed to {fields.get('ToUserName')!r}, not {self.openid!r}", 1, 200, reply.xml)
        reply.fields = fields
        return reply

    # -- URL verification ----------------------------------------------------
    def verify_url(self, echostr: str = "") -> str:
        """The GET WeChat sends when the URL is configured: returns the webhook's answer body."""
        echostr = echostr or str(random.randint(10**17, 10**18))  # noqa: S311  emulator: echostr is echoed back, not secret
        timestamp, nonce = str(int(time.time())), str(random.randint(100000000, 2**31 - 1))  # noqa: S311  emulator: WeChat's nonce is not secret (the signature is)
        params = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        resp = self.http.get(self.webhook_url, params=params, timeout=self.timeout)
        return resp.text
