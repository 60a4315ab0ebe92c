"""`/wechat`: the Official Account's message URL, as WeChat calls it.

Parses and checks the request with wechatpy (signatures, AES in compatible
and safe modes), hands text to the conversation relay, and renders the
passive reply. Plaintext, compatible and safe modes are chosen by settings.
"""
from __future__ import annotations

import logging
import time

import redis
from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import update
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from conversation.relay import Relay
from conversation.tasks import BOT_UNAVAILABLE, Jobs
from sunshine.db import unit_of_work
from sunshine.models import Customer
from sunshine.redis import connect
from webhooks.metrics import count

bp = Blueprint("wechat", __name__)
log = logging.getLogger(__name__)

NOT_UNDERSTOOD_MEDIA = "我现在只能看懂文字和语音。请直接打字或发语音告诉我您想办什么，比如“我想贷款”“我能贷多少”。"
VOICE_NOT_RECOGNISED = "这条语音没有听清，麻烦您打字告诉我，或者再说一遍。"
# Sent to the bot as an intent when someone follows the account.
GREET_INTENT = "/greet"


def _settings():
    return current_app.config["SETTINGS"]


def _redis() -> redis.Redis:
    return connect(_settings().redis_url)


def _refuse(status: int, reason: str):
    log.info("wechat request refused (%s): %s", status, reason)
    count(_redis(), "wechat_rejected_total", reason=reason.split(":")[0])
    abort(status, description=reason)


def _check_origin() -> None:
    """Only WeChat knows the token: check the URL signature and its timestamp."""
    args = request.args
    try:
        check_signature(_settings().wechat_token, args["signature"], args["timestamp"], args["nonce"])
    except (KeyError, InvalidSignatureException):
        _refuse(403, "bad signature")
    skew = _settings().wechat_max_clock_skew
    try:
        stamp = int(args["timestamp"])
    except ValueError:
        _refuse(403, "bad timestamp")
    if skew and abs(time.time() - stamp) > skew:
        _refuse(403, "stale timestamp")


@bp.get("/wechat")
def verify_url():
    """WeChat's URL verification: echo `echostr` when the signature is right."""
    _check_origin()
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


def _safe_cdata(text: str) -> str:
    """Text that cannot close the reply's CDATA section early."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def _crypto() -> WeChatCrypto:
    s = _settings()
    return WeChatCrypto(s.wechat_token, s.wechat_aes_key, s.wechat_appid)


def _read_body() -> tuple[bytes, bool]:
    """The message XML, decrypted when WeChat sent it encrypted."""
    body = request.get_data(cache=False)
    head = body[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in body.upper():
        _refuse(400, "xml with doctype or entities")
    if request.args.get("encrypt_type") != "aes":
        return body, False
    if not _settings().wechat_aes_key:
        _refuse(400, "encrypted message but WECHAT_AES_KEY is not set")
    try:
        return _crypto().decrypt_message(body, request.args.get("msg_signature", ""),
                                         request.args["timestamp"], request.args["nonce"]).encode(), True
    except InvalidSignatureException:
        _refuse(403, "bad msg_signature")
    except InvalidAppIdException:
        _refuse(400, "message for another appid")
    except Exception as exc:  # malformed XML, bad base64, bad padding: WeChat never sends these
        _refuse(400, f"undecryptable: {type(exc).__name__}")


def _reply(message, text: str | None, encrypted: bool) -> Response:
    if not text:
        return Response("success", mimetype="text/plain")
    xml = TextReply(content=_safe_cdata(text), message=message).render()
    if encrypted:
        xml = _crypto().encrypt_message(xml, request.args["nonce"], request.args["timestamp"])
    return Response(xml, mimetype="application/xml")


def _relay_text(openid: str, text: str, message_key: str) -> str | None:
    r = _redis()
    try:
        outcome = Relay(r, Jobs(_settings()), _settings().wechat_reply_budget_s).handle(openid, text, message_key)
    except redis.RedisError as exc:
        log.error("redis unavailable, message %s answered with an apology: %s", message_key, exc)
        return BOT_UNAVAILABLE
    count(r, "wechat_replies_total",
          delivery="duplicate" if outcome.duplicate else ("passive" if outcome.passive_text else "async"))
    return outcome.passive_text


def _mark_unsubscribed(openid: str) -> None:
    """The customer stops following: mark them, keep every record."""
    with unit_of_work(_settings().database_url) as session:
        session.execute(update(Customer).where(Customer.wechat_openid == openid).values(subscribed=False))


@bp.post("/wechat")
def receive():
    _check_origin()
    body, encrypted = _read_body()
    try:
        message = parse_message(body)
    except Exception as exc:  # expat errors, non-XML bodies
        _refuse(400, f"not wechat xml: {type(exc).__name__}")
    if not getattr(message, "source", None):
        _refuse(400, "not wechat xml: no FromUserName")
    openid = message.source
    kind = message.type if message.type != "event" else f"event:{message.event}"
    count(_redis(), "wechat_messages_total", type=kind)

    event_key = f"{openid}:{message.create_time.timestamp():.0f}" if message.type == "event" else str(message.id)
    if message.type == "text":
        return _reply(message, _relay_text(openid, message.content, str(message.id)), encrypted)
    if message.type == "voice":
        text = (message.recognition or "").strip()
        return _reply(message, _relay_text(openid, text, str(message.id)) if text else VOICE_NOT_RECOGNISED,
                      encrypted)
    if message.type in ("image", "video", "shortvideo", "location", "link"):
        return _reply(message, NOT_UNDERSTOOD_MEDIA, encrypted)
    if message.type == "event" and message.event in ("subscribe", "subscribe_scan", "scan"):
        return _reply(message, _relay_text(openid, GREET_INTENT, event_key), encrypted)
    if message.type == "event" and message.event == "unsubscribe":
        _mark_unsubscribed(openid)
    return _reply(message, None, encrypted)
