"""WeChat's API servers, emulated: the endpoints the project calls, in
WeChat's JSON shapes and error codes, plus `/_emulator/...` control
endpoints for tests and people.

State lives in memory in this one process (guarded by a lock), so run it as
a single process (`python -m emulators.wechat`). `create_app()` builds a
fresh emulator; `app.extensions["wechat_emulator"]` is its `EmulatorState`.

Modules: `state` (what the emulator remembers), `wire` (WeChat's JSON and
error answers, fault injection, the call log), and one blueprint per API
area: `cgi_bin` (tokens, messages, QR codes), `wxa` (mini-program codes),
`sns` (jscode2session, web authorization), `control` (`/_emulator/...`).

API endpoints (as on api.weixin.qq.com / mp.weixin.qq.com):
- `GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=`
- `POST /cgi-bin/message/custom/send?access_token=`   (Official Account token)
- `POST /cgi-bin/message/template/send?access_token=` (Official Account token; listed by
  `/_emulator/messages` with msgtype "template", payload {template_id, data, url})
- `POST /cgi-bin/message/subscribe/send?access_token=` (mini-program token): 43101 unless the user
  accepted the template and has an acceptance left (one per accept: 一次性订阅); 47003 for a
  keyword value over its type's limit (thing 20 characters, phrase 5, ...)
- `POST /cgi-bin/media/upload?access_token=&type=image` (multipart `media`: PNG, JPEG or GIF) ->
  `{"type", "media_id", "created_at"}`; image messages need a media_id uploaded within 3 days (40007)
- `POST /cgi-bin/menu/create`, `GET /cgi-bin/menu/get` (Official Account token; WeChat's limits:
  3 buttons, 5 sub-buttons, names 16/60 bytes; 46003 without a menu)
- `POST /cgi-bin/qrcode/create?access_token=`        (Official Account token)
- `GET  /cgi-bin/showqrcode?ticket=`                 (PNG; real host: mp.weixin.qq.com)
- `POST /wxa/getwxacodeunlimit?access_token=`        (mini-program token; PNG or JSON error)
- `GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code`
- `GET  /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=snsapi_base&state=`
  (web authorization; real host: open.weixin.qq.com): redirects to `redirect_uri?code=&state=`
  for the WeChat user set by `/_emulator/oauth_user`, or shows WeChat's "open in WeChat" page
- `GET  /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code`
  (one-time code, valid 5 minutes) -> `{"access_token", "expires_in", "refresh_token", "openid", "scope"}`

Access tokens behave as WeChat's: valid `expires_in` (7200) seconds; after a
new token is fetched for an appid the older ones stay valid for a grace
period (300 s, WeChat's documented overlap), then answer 40001; a token of
the wrong kind of account answers 48001 (api unauthorized).

Control endpoints:
- `GET  /_emulator/messages?touser=OPENID[&since=ID]` customer-service messages
  delivered to that user (all users without `touser`), oldest first; each
  `{"id", "touser", "msgtype", "content", "payload", "kf_account", "appid", "received_at"}`.
  `content` is the text for text messages, else null; `payload` is the
  message's `msgtype` object as sent; `id` increases, so `since=` gives only newer ones.
- `POST /_emulator/faults` `{"errcode": 45015, "count": 1, "delay": 0, "path": null,
  "status": null, "errmsg": null}`: the next `count` calls fail with `errcode`
  (or are only delayed by `delay` seconds when errcode is 0/absent; or answer
  HTTP `status`). Without `path` a fault applies to every API endpoint except
  `/cgi-bin/token` and `/cgi-bin/showqrcode`; with `path` only to that one.
  `GET` lists pending faults, `DELETE` clears them.
- `POST /_emulator/reset` forgets tokens, messages, faults, QR codes, calls.
- `POST /_emulator/expire_tokens` `[{"appid": ...}]`: every issued token answers 42001.
- `GET  /_emulator/calls` API calls received, oldest first (`method`, `path`, `errcode`, `at`).
- `GET  /_emulator/qrcodes`, `GET /_emulator/wxacodes`: codes created.
- `POST /_emulator/jscodes` `{"openid": ..., "code": optional, "unionid": optional}`: what
  wx.login does in the mini-program: a one-time code (chosen, or made up) that jscode2session
  exchanges for that openid and UnionID, once (40163 when used again).
- `POST /_emulator/oauth_user` `{"openid": ..., "unionid": optional}` (null: none): the WeChat
  user the authorize page answers for, as if that person had opened the page in their WeChat;
  `/sns/oauth2/access_token` returns the UnionID too when one is given.
- `POST /_emulator/config` `{"token_ttl_s", "token_grace_s", "wxa_pages": [...] | null}`.
- `POST /_emulator/window` `{"touser", "silent_hours": 49}`: the user last wrote that long ago; over
  48 hours customer-service messages to them answer 45015 (`null`: forget; users never set: open).
- `GET  /_emulator/template_messages?touser=`, `GET /_emulator/subscribe_messages?touser=` (a
  mini-program openid): the template and subscription messages sent, oldest first.
- `POST /_emulator/subscriptions` `{"openid", "template_ids": [...], "status": "accept" | "reject"}`:
  the person answers wx.requestSubscribeMessage; the emulator remembers it and pushes a
  `subscribe_msg_popup_event` to the mini-program's push URL (`GET ?openid=`: sends left).
- `POST /_emulator/wxa_push` `{"url", "token", "aes_key", "format": "xml" | "json"}`: the push URL
  (default: PUBLIC_BASE_URL + `/wechat/mp`, WXA_PUSH_TOKEN, WXA_PUSH_AES_KEY, XML).
- `GET  /_emulator/media`, `GET /_emulator/menu`: the media uploaded, the current menu.
- `GET  /healthz`.
"""

from __future__ import annotations

from flask import Flask

from emulators.wechat.api import wire
from emulators.wechat.api.cgi_bin import cgi_bin
from emulators.wechat.api.control import control
from emulators.wechat.api.sns import sns
from emulators.wechat.api.state import App, EmulatorState, WeChatError, default_apps
from emulators.wechat.api.wxa import wxa

__all__ = ["App", "EmulatorState", "create_app", "default_apps"]


def create_app(
    settings=None,
    *,
    apps: dict[str, App] | None = None,
    token_ttl_s: int = 7200,
    token_grace_s: int = 300,
    wxa_pages: set[str] | None = None,
) -> Flask:
    """A fresh WeChat API emulator knowing `apps` (default: the accounts in `settings`)."""
    app = Flask("emulators.wechat")
    if settings is None and apps is None:
        from sunshine.settings import load

        settings = load()
    app.extensions["wechat_emulator"] = EmulatorState(
        apps if apps is not None else default_apps(settings),
        token_ttl_s=token_ttl_s,
        token_grace_s=token_grace_s,
        wxa_pages=wxa_pages,
        wxa_push=None
        if settings is None
        else {
            "url": settings.public_base_url.rstrip("/") + "/wechat/mp",
            "token": settings.wxa_push_token,
            "aes_key": settings.wxa_push_aes_key,
            "format": "xml",
        },
    )
    app.register_error_handler(WeChatError, wire.on_wechat_error)
    app.before_request(wire.inject_fault)
    app.after_request(wire.log_call)
    for blueprint in (cgi_bin, wxa, sns, control):
        app.register_blueprint(blueprint)
    return app
