"""`/wechat/mp`: the mini-program's message push (消息推送), as WeChat calls it.

WeChat reports here what people do with the subscription-message templates
(`subscribe_msg_popup_event`, `subscribe_msg_change_event`, `subscribe_msg_sent_event`),
as XML or JSON (the format chosen in the mini-program's admin page), signed with
WXA_PUSH_TOKEN like the Official Account's messages and, in safe mode, encrypted
with WXA_PUSH_AES_KEY (wechatpy's crypto, as in webhooks/wechat.py).
conversation.subscriptions records each acceptance; other events are acknowledged.
"""

from __future__ import annotations

import json
from typing import Any

import xmltodict
from flask import Blueprint, Response, current_app, request
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from conversation import subscriptions
from sunshine.db import unit_of_work
from webhooks.wechat import check_origin, refuse

bp = Blueprint("wxa_push", __name__)
EVENT_ELEMENTS = subscriptions.EVENT_ELEMENTS  # the JSON form has a top-level List instead


def _settings():
    return current_app.config["SETTINGS"]


def _parse(raw: bytes | str, is_json: bool) -> dict[str, Any]:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if is_json:
        obj = json.loads(text)
    else:
        upper = text.upper()
        if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
            refuse(400, "xml with doctype or entities")
        obj = xmltodict.parse(text).get("xml")
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    return obj


def _message() -> dict[str, Any]:
    """The pushed message, decrypted when WeChat sent it encrypted."""
    s = _settings()
    body = request.get_data(cache=False)
    is_json = body.lstrip().startswith(b"{")
    try:
        outer = _parse(body, is_json)
    except Exception as exc:  # malformed XML or JSON
        refuse(400, f"not a push message: {type(exc).__name__}")
    if request.args.get("encrypt_type") != "aes":
        if s.wxa_push_aes_key:
            refuse(400, "plaintext push but WXA_PUSH_AES_KEY is set (safe mode)")
        return outer
    if not s.wxa_push_aes_key:
        refuse(400, "encrypted push but WXA_PUSH_AES_KEY is not set")
    crypto = WeChatCrypto(s.wxa_push_token, s.wxa_push_aes_key, s.wxa_appid)
    try:
        plain = crypto.decrypt_message(
            outer, request.args.get("msg_signature", ""), request.args["timestamp"], request.args["nonce"]
        )
        return _parse(plain, is_json)
    except InvalidSignatureException:
        refuse(403, "bad msg_signature")
    except InvalidAppIdException:
        refuse(400, "push for another appid")
    except Exception as exc:  # bad base64, bad padding, no Encrypt: WeChat never sends these
        refuse(400, f"undecryptable: {type(exc).__name__}")


def _items(message: dict[str, Any], event: str) -> list[dict]:
    holder = message.get(EVENT_ELEMENTS[event]) if EVENT_ELEMENTS[event] in message else message
    items = (holder or {}).get("List") if isinstance(holder, dict) else None
    if isinstance(items, dict):
        return [items]
    return [i for i in items or [] if isinstance(i, dict)]


@bp.get("/wechat/mp")
def verify_url():
    """WeChat's URL verification: echo `echostr` when the signature is right."""
    check_origin(replay_check=False, token=_settings().wxa_push_token)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat/mp")
def receive():
    check_origin(replay_check=True, token=_settings().wxa_push_token)
    message = _message()
    openid, event = message.get("FromUserName"), message.get("Event")
    if not isinstance(openid, str) or not openid:
        refuse(400, "push without FromUserName")
    if event in EVENT_ELEMENTS:
        with unit_of_work(_settings().database_url) as session:
            subscriptions.record_event(session, openid, event, _items(message, event))
    return Response("success", mimetype="text/plain")
