"""The Official Account's `/cgi-bin/` API: access tokens, customer-service and template
messages, QR codes with a scene and their images."""

from __future__ import annotations

import base64
import secrets
import time

from flask import Blueprint, Response, request

from emulators.wechat.api.state import WeChatError, now_iso
from emulators.wechat.api.wire import answer, body, state
from sunshine.qrcodes import png

TEXT_LIMIT_BYTES = 2048
MESSAGE_TYPES = {
    "text",
    "image",
    "voice",
    "video",
    "music",
    "news",
    "mpnews",
    "mpnewsarticle",
    "msgmenu",
    "wxcard",
    "miniprogrampage",
}
QR_MAX_EXPIRE_S = 2592000  # 30 days
QR_DEFAULT_EXPIRE_S = 60

cgi_bin = Blueprint("cgi_bin", __name__, url_prefix="/cgi-bin")


@cgi_bin.get("/token")
def token():
    args = request.args
    if args.get("grant_type") != "client_credential":
        raise WeChatError(40002)
    access_token, expires_in = state().issue_token(args.get("appid", ""), args.get("secret", ""))
    return answer({"access_token": access_token, "expires_in": expires_in})


def _check_message(message: dict) -> None:
    touser = message.get("touser")
    if not isinstance(touser, str) or not touser.strip():
        raise WeChatError(40003)
    msgtype = message.get("msgtype")
    if msgtype not in MESSAGE_TYPES:
        raise WeChatError(40008)
    payload = message.get(msgtype)
    if not isinstance(payload, dict):
        raise WeChatError(47001)
    if msgtype == "text":
        content = payload.get("content")
        if not isinstance(content, str) or not content:
            raise WeChatError(47001)
        if len(content.encode("utf-8")) > TEXT_LIMIT_BYTES:
            raise WeChatError(45002)
    elif msgtype in ("image", "voice", "video", "mpnews"):
        if not payload.get("media_id"):
            raise WeChatError(47001)
    elif msgtype == "news":
        articles = payload.get("articles")
        if not isinstance(articles, list) or not articles:
            raise WeChatError(47001)
        if len(articles) > 1:  # WeChat allows one article per customer-service news message
            raise WeChatError(45008)
    elif msgtype == "miniprogrampage":
        if not payload.get("pagepath") or not payload.get("appid"):
            raise WeChatError(47001)


@cgi_bin.post("/message/custom/send")
def custom_send():
    account = state().check_token(request.args.get("access_token"), "oa")
    message = body()
    _check_message(message)
    state().record_message(account, message)
    return answer({"errcode": 0, "errmsg": "ok"})


@cgi_bin.post("/message/template/send")
def template_send():
    account = state().check_token(request.args.get("access_token"), "oa")
    message = body()
    data = message.get("data")
    if not message.get("touser") or not message.get("template_id"):
        raise WeChatError(47001)
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "value" in v for v in data.values()):
        raise WeChatError(47001)
    state().record_message(
        account,
        {
            "touser": message["touser"],
            "msgtype": "template",
            "template": {"template_id": message["template_id"], "data": data, "url": message.get("url")},
        },
    )
    return answer({"errcode": 0, "errmsg": "ok", "msgid": secrets.randbelow(2**53)})


@cgi_bin.post("/qrcode/create")
def qrcode_create():
    state().check_token(request.args.get("access_token"), "oa")
    spec = body()
    action = spec.get("action_name")
    if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
        raise WeChatError(40052)
    scene = ((spec.get("action_info") or {}).get("scene")) or {}
    permanent = action.startswith("QR_LIMIT")
    record: dict = {"action_name": action}
    if action.endswith("STR_SCENE"):
        scene_str = scene.get("scene_str")
        if not isinstance(scene_str, str) or not 1 <= len(scene_str) <= 64:
            raise WeChatError(40053)
        record["scene_str"] = scene_str
    else:
        scene_id = scene.get("scene_id")
        limit = 100000 if permanent else 2**32 - 1
        if not isinstance(scene_id, int) or isinstance(scene_id, bool) or not 1 <= scene_id <= limit:
            raise WeChatError(40053)
        record["scene_id"] = scene_id
    ticket = base64.b64encode(b"\x81\x01" + secrets.token_bytes(48)).decode()
    url = f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}"
    created: dict = {"ticket": ticket}
    if permanent:
        record["expire_at"] = None
    else:
        raw = spec.get("expire_seconds", QR_DEFAULT_EXPIRE_S)
        try:
            expire = int(raw)
        except (TypeError, ValueError):
            raise WeChatError(47001) from None
        expire = max(1, min(expire, QR_MAX_EXPIRE_S))
        record["expire_at"] = time.time() + expire
        created["expire_seconds"] = expire
    created["url"] = url
    record.update(ticket=ticket, url=url, created_at=now_iso())
    state().add_qrcode(record)
    return answer(created)


@cgi_bin.get("/showqrcode")
def show_qrcode():
    record = state().qrcode(request.args.get("ticket", ""))
    if record is None or (record["expire_at"] is not None and time.time() > record["expire_at"]):
        return Response("<html><body>ticket not found or expired</body></html>", status=404, content_type="text/html")
    return Response(png(record["url"]), content_type="image/png")
