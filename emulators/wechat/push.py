"""WeChat's side of the mini-program's message push (消息推送): the subscribe events
WeChat POSTs to the bank's push URL (`/wechat/mp`) when a person answers
wx.requestSubscribeMessage, changes a template in the settings, or is sent a message.

The body is XML or JSON (the format chosen in the mini-program's admin page), signed
as the Official Account's messages are (`signature` = sha1 of the sorted token,
timestamp and nonce) and, in safe mode, encrypted with wechatpy's crypto
(`{"ToUserName", "Encrypt"}` and `msg_signature`).

    push = MiniProgramPush("http://127.0.0.1:8000/wechat/mp", token, wxa_appid, fmt="json")
    push.send("o_mp_zhang", "subscribe_msg_popup_event", [{"TemplateId": "sub_x", "SubscribeStatusString": "accept"}])
"""

from __future__ import annotations

import json
import random
import time
from urllib.parse import urlencode

import requests
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import to_text

from emulators.wechat.user import account_id_for, cdata, msg_signature, signature

# The element holding each subscribe event's templates in the XML form.
EVENT_ELEMENTS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}


class MiniProgramPush:
    """The push of one mini-program to one URL, in `fmt` ("xml" or "json"), encrypted when `aes_key` is set."""

    def __init__(
        self,
        url: str,
        token: str,
        appid: str,
        aes_key: str = "",
        fmt: str = "xml",
        *,
        timeout: float = 5.0,
        http: requests.Session | None = None,
    ):
        if fmt not in ("xml", "json"):
            raise ValueError("fmt must be xml or json")
        self.url, self.token, self.appid, self.aes_key, self.fmt = url, token, appid, aes_key, fmt
        self.account_id = account_id_for(appid)
        self.timeout = timeout
        self.http = http or requests.Session()
        self._crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None

    def message(self, openid: str, event: str, items: list[dict]) -> str:
        """The plaintext message of one subscribe event, as WeChat writes it."""
        created = int(time.time())
        if self.fmt == "json":
            return json.dumps(
                {
                    "ToUserName": self.account_id,
                    "FromUserName": openid,
                    "CreateTime": created,
                    "MsgType": "event",
                    "Event": event,
                    "List": items if len(items) != 1 else items[0],
                },
                ensure_ascii=False,
            )
        lists = "".join(
            "<List>" + "".join(f"<{k}>{cdata(str(v))}</{k}>" for k, v in item.items()) + "</List>" for item in items
        )
        return (
            f"<xml><ToUserName>{cdata(self.account_id)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType>{cdata('event')}</MsgType><Event>{cdata(event)}</Event>"
            f"<{EVENT_ELEMENTS[event]}>{lists}</{EVENT_ELEMENTS[event]}></xml>"
        )

    def request(self, openid: str, event: str, items: list[dict]) -> tuple[dict[str, str], str, str]:
        """(query, body, content type) of the POST WeChat makes for one event."""
        timestamp = str(int(time.time()))
        nonce = str(random.randint(100000000, 2**31 - 1))  # noqa: S311  emulator: WeChat's nonce is not secret
        query = {"signature": signature(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        body = self.message(openid, event, items)
        content_type = "application/json" if self.fmt == "json" else "text/xml"
        if self._crypto is None:
            return query, body, content_type
        encrypt = to_text(PrpCrypto(self._crypto.key).encrypt(body, self.appid))
        query.update(encrypt_type="aes", msg_signature=msg_signature(self.token, timestamp, nonce, encrypt))
        if self.fmt == "json":
            body = json.dumps({"ToUserName": self.account_id, "Encrypt": encrypt})
        else:
            body = f"<xml><ToUserName>{cdata(self.account_id)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        return query, body, content_type

    def send(self, openid: str, event: str, items: list[dict]) -> requests.Response:
        """POST one event to the push URL (WeChat expects `success`)."""
        query, body, content_type = self.request(openid, event, items)
        return self.http.post(
            f"{self.url}?{urlencode(query)}",
            data=body.encode("utf-8"),
            headers={"Content-Type": content_type},
            timeout=self.timeout,
        )
