"""The `/cgi-bin/` API: access tokens, customer-service and template messages, temporary
media, the menu, QR codes with a scene and their images (the Official Account's), and
subscription messages (the mini-program's)."""

from __future__ import annotations

import base64
import hashlib
import re
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
# Subscription-message keyword types and their longest values (characters), as WeChat documents them.
KEYWORD_LIMITS = {
    "thing": 20,
    "name": 10,
    "phrase": 5,
    "symbol": 5,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "amount": 14,
    "phone_number": 17,
    "car_number": 8,
    "time": 32,
    "date": 32,
}
KEYWORD = re.compile(r"([a-z_]+)(\d+)")
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")
# The menu's limits: buttons, sub-buttons, name bytes (top level, sub), key and url bytes.
MENU_BUTTONS, MENU_SUB_BUTTONS, MENU_NAME_BYTES, MENU_SUB_NAME_BYTES = 3, 5, 16, 60
MENU_KEY_BYTES, MENU_URL_BYTES = 128, 1024
MENU_TYPES = {"click", "view", "miniprogram", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "location_select"}
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
        if msgtype == "image":
            state().check_media(payload["media_id"])
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
    state().check_window(message["touser"])
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


@cgi_bin.post("/message/subscribe/send")
def subscribe_send():
    """subscribeMessage.send (mini-program token): 43101 unless the user accepted the template
    and has an acceptance left; 47003 for a keyword value over its type's limit."""
    account = state().check_token(request.args.get("access_token"), "wxa")
    message = body()
    touser, template_id, data = message.get("touser"), message.get("template_id"), message.get("data")
    if not isinstance(touser, str) or not touser:
        raise WeChatError(40003)
    if not isinstance(template_id, str) or not template_id:
        raise WeChatError(40037)
    if not isinstance(data, dict) or not data:
        raise WeChatError(47001)
    for keyword, value in data.items():
        m = KEYWORD.fullmatch(keyword)
        text = value.get("value") if isinstance(value, dict) else None
        if m is None or m.group(1) not in KEYWORD_LIMITS or not isinstance(text, str):
            raise WeChatError(47001)
        if not text or len(text) > KEYWORD_LIMITS[m.group(1)]:
            raise WeChatError(47003, f"argument invalid! data.{keyword}.value invalid")
    msg = state().send_subscribe_message(account, message)
    return answer({"errcode": 0, "errmsg": "ok", "msgid": msg["id"]})


@cgi_bin.post("/media/upload")
def media_upload():
    """A temporary medium (only images here): multipart field `media`, PNG, JPEG or GIF up to 10 MB."""
    state().check_token(request.args.get("access_token"), "oa")
    if request.args.get("type") != "image":
        raise WeChatError(40005)
    media = request.files.get("media")
    if media is None:
        raise WeChatError(41005)
    data = media.read()
    if not data.startswith(IMAGE_MAGIC):
        raise WeChatError(40005)
    if len(data) > IMAGE_MAX_BYTES:
        raise WeChatError(40009, "invalid image size")
    created_at = int(time.time())
    media_id = base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
    state().add_media(
        {
            "media_id": media_id,
            "type": "image",
            "filename": media.filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "created_at": created_at,
        }
    )
    return answer({"type": "image", "media_id": media_id, "created_at": created_at})


def _check_button(button: dict, sub: bool) -> dict:
    """One menu button as WeChat checks it; returned as menu/get shows it."""
    if not isinstance(button, dict):
        raise WeChatError(47001)
    name = button.get("name")
    name_limit = MENU_SUB_NAME_BYTES if sub else MENU_NAME_BYTES
    if not isinstance(name, str) or not name or len(name.encode("utf-8")) > name_limit:
        raise WeChatError(40025 if sub else 40018)
    children = button.get("sub_button")
    if children is not None and not sub:
        if not isinstance(children, list) or not 1 <= len(children) <= MENU_SUB_BUTTONS:
            raise WeChatError(40023)
        return {"name": name, "sub_button": [_check_button(c, True) for c in children]}
    kind = button.get("type")
    if kind not in MENU_TYPES:
        raise WeChatError(40024 if sub else 40017)
    shown: dict = {"type": kind, "name": name}
    if kind in ("view", "miniprogram"):
        url = button.get("url")
        if not isinstance(url, str) or not url or len(url.encode("utf-8")) > MENU_URL_BYTES:
            raise WeChatError(40027 if sub else 40020)
        shown["url"] = url
    if kind == "miniprogram":
        if not button.get("appid") or not button.get("pagepath"):
            raise WeChatError(47001)
        shown.update(appid=button["appid"], pagepath=button["pagepath"])
    if kind not in ("view", "miniprogram"):
        key = button.get("key")
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MENU_KEY_BYTES:
            raise WeChatError(40026 if sub else 40019)
        shown["key"] = key
    shown["sub_button"] = []
    return shown


@cgi_bin.post("/menu/create")
def menu_create():
    state().check_token(request.args.get("access_token"), "oa")
    buttons = body().get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MENU_BUTTONS:
        raise WeChatError(40016)
    state().set_menu({"button": [_check_button(b, False) for b in buttons]})
    return answer({"errcode": 0, "errmsg": "ok"})


@cgi_bin.get("/menu/get")
def menu_get():
    state().check_token(request.args.get("access_token"), "oa")
    menu = state().current_menu()
    if menu is None:
        raise WeChatError(46003)
    return answer({"menu": menu})


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
