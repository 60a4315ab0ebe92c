"""The mini-program's `/wxa/` API: unlimited mini-program codes (PNG) for a scene."""

from __future__ import annotations

import re

from flask import Blueprint, Response, request

from emulators.wechat.api.state import WeChatError, now_iso
from emulators.wechat.api.wire import body, state
from sunshine.qrcodes import png

SCENE_RE = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}")
PAGE_RE = re.compile(r"[0-9A-Za-z_\-]+(/[0-9A-Za-z_\-]+)*")

wxa = Blueprint("wxa", __name__, url_prefix="/wxa")


@wxa.post("/getwxacodeunlimit")
def wxacode_unlimit():
    account = state().check_token(request.args.get("access_token"), "wxa")
    spec = body()
    scene = spec.get("scene")
    if not isinstance(scene, str) or not SCENE_RE.fullmatch(scene):
        raise WeChatError(40169)
    page = spec.get("page")
    if page not in (None, ""):
        if not isinstance(page, str) or not PAGE_RE.fullmatch(page):
            raise WeChatError(41030)
        if spec.get("check_path", True) and not state().page_exists(page):
            raise WeChatError(41030)
    width = spec.get("width", 430)
    box = max(4, min(int(width) // 40 if isinstance(width, int | float) else 10, 32))
    state().add_wxacode({"appid": account.appid, "scene": scene, "page": page or None, "created_at": now_iso()})
    return Response(png(f"wxa://{account.appid}/{page or ''}?scene={scene}", box_size=box), content_type="image/png")
