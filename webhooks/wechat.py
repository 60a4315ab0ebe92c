"""`/wechat`: the Official Account's message URL, as WeChat calls it.

Checks the request with wechatpy (signature, timestamp window, nonce replay,
AES in compatible and safe modes), parses the message, lets
`conversation.inbound` decide the answer, and renders the passive reply.
Plaintext, compatible and safe modes are chosen by settings.
"""

from __future__ import annotations

import logging
import time
from typing import NoReturn

import redis
from flask import Blueprint, Response, abort, current_app, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature
from werkzeug.exceptions import RequestEntityTooLarge

from conversation.inbound import Inbound, message_key
from sunshine.metrics import count
from sunshine.redis import connect

bp = Blueprint("wechat", __name__)
log = logging.getLogger(__name__)


def _settings():
    return current_app.config["SETTINGS"]


def _redis() -> redis.Redis:
    return connect(_settings().redis_url)


def refuse(status: int, reason: str) -> NoReturn:
    log.info("wechat request refused (%s): %s", status, reason)
    count(_redis(), "wechat_rejected_total", reason=reason.split(":")[0])
    abort(status, description=reason)


def check_origin(replay_check: bool, token: str | None = None) -> None:
    """Only WeChat knows the token (the Official Account's, or `token`): check the URL signature,
    its timestamp and, for messages, that its nonce was not used before (a replayed request)."""
    args = request.args
    try:
        check_signature(token or _settings().wechat_token, args["signature"], args["timestamp"], args["nonce"])
    except (KeyError, InvalidSignatureException):
        refuse(403, "bad signature")
    skew = _settings().wechat_max_clock_skew
    try:
        stamp = int(args["timestamp"])
    except ValueError:
        refuse(403, "bad timestamp")
    if skew and abs(time.time() - stamp) > skew:
        refuse(403, "stale timestamp")
    if replay_check and skew and not _first_use_of_nonce(args["nonce"], 2 * skew):
        refuse(403, "replayed nonce")


def _first_use_of_nonce(nonce: str, memory_s: int) -> bool:
    """WeChat sends a fresh nonce with every request, retries included: a nonce
    seen inside the window is a replay. Without Redis the check is skipped."""
    try:
        return bool(_redis().set(f"wx:nonce:{nonce[:64]}", "1", nx=True, ex=memory_s))
    except redis.RedisError as exc:
        log.warning("nonce replay check skipped, redis unavailable: %s", exc)
        return True


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    log.info("wechat request refused (400): body over %s bytes", current_app.config["MAX_CONTENT_LENGTH"])
    return "400 body too large", 400, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/wechat")
def verify_url():
    """WeChat's URL verification: echo `echostr` when the signature is right."""
    check_origin(replay_check=False)
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
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        refuse(400, "xml with doctype or entities")
    aes_key_set = bool(_settings().wechat_aes_key)
    if request.args.get("encrypt_type") != "aes":
        # In safe and compatible mode WeChat always marks its bodies encrypt_type=aes: a plaintext
        # body then comes from someone who knows only the token (the URL signature), not the key.
        if aes_key_set:
            refuse(400, "plaintext message but WECHAT_AES_KEY is set (safe mode)")
        return body, False
    if not aes_key_set:
        refuse(400, "encrypted message but WECHAT_AES_KEY is not set")
    try:
        return _crypto().decrypt_message(
            body, request.args.get("msg_signature", ""), request.args["timestamp"], request.args["nonce"]
        ).encode(), True
    except InvalidSignatureException:
        refuse(403, "bad msg_signature")
    except InvalidAppIdException:
        refuse(400, "message for another appid")
    except Exception as exc:  # malformed XML, bad base64, bad padding: WeChat never sends these
        refuse(400, f"undecryptable: {type(exc).__name__}")


def _reply(message, text: str | None, encrypted: bool) -> Response:
    if not text:
        return Response("success", mimetype="text/plain")
    xml = TextReply(content=_safe_cdata(text), message=message).render()
    if encrypted:
        xml = _crypto().encrypt_message(xml, request.args["nonce"], request.args["timestamp"])
    return Response(xml, mimetype="application/xml")


@bp.post("/wechat")
def receive():
    check_origin(replay_check=True)
    body, encrypted = _read_body()
    try:
        message = parse_message(body)
    except Exception as exc:  # expat errors, non-XML bodies
        refuse(400, f"not wechat xml: {type(exc).__name__}")
    if not getattr(message, "source", None):
        refuse(400, "not wechat xml: no FromUserName")
    try:
        message_key(message)
    except ValueError as exc:
        refuse(400, f"not wechat xml: {exc}")
    count(_redis(), "wechat_messages_total", type=message.type if message.type != "event" else f"event:{message.event}")
    return _reply(message, Inbound(_settings(), _redis(), current_app.extensions["jobs"]).handle(message), encrypted)
