"""WeChat's API servers, emulated: the endpoints the project calls, in
WeChat's JSON shapes and error codes, plus `/_emulator/...` control
endpoints for tests and people.

State lives in memory in this one process (guarded by a lock), so run it as
a single process (`python -m emulators.wechat`). `create_app()` builds a
fresh emulator; `app.extensions["wechat_emulator"]` is its `EmulatorState`.

API endpoints (as on api.weixin.qq.com / mp.weixin.qq.com):
- `GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=`
- `POST /cgi-bin/message/custom/send?access_token=`   (Official Account token)
- `POST /cgi-bin/message/template/send?access_token=` (Official Account token; listed by
  `/_emulator/messages` with msgtype "template", payload {template_id, data, url})
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
  wx.login does: a one-time code that jscode2session exchanges for that openid.
- `POST /_emulator/oauth_user` `{"openid": ...}` (null: none): the WeChat user the authorize
  page answers for, as if that person had opened the page in their WeChat.
- `POST /_emulator/config` `{"token_ttl_s", "token_grace_s", "wxa_pages": [...] | null}`.
- `GET  /healthz`.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timezone
from urllib.parse import urlencode

from flask import Flask, Response, request

from sunshine import clock
from sunshine.qrcodes import png

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40029: "invalid code",
    40052: "invalid action name",
    40053: "invalid action info, please check document",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json",
    41001: "access_token missing",
    41008: "missing code",
    41030: "invalid page",
    42001: "access_token expired",
    44002: "empty post data",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    48001: "api unauthorized",
}
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
# Paths a fault without an explicit `path` does not touch.
_FAULT_EXEMPT = ("/cgi-bin/token", "/cgi-bin/showqrcode")
_SCENE_RE = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}")
_PAGE_RE = re.compile(r"[0-9A-Za-z_\-]+(/[0-9A-Za-z_\-]+)*")
_CODE_RE = re.compile(r"[0-9A-Za-z_\-]{1,128}")


class WeChatError(Exception):
    """An error answer in WeChat's shape: `{"errcode": ..., "errmsg": ...}`."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")


def _rid() -> str:
    return f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


def _now_iso() -> str:
    return clock.utcnow().replace(tzinfo=timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class App:
    appid: str
    secret: str
    kind: str  # "oa" (Official Account) or "wxa" (mini-program)


@dataclass
class Token:
    appid: str
    expires_at: float
    superseded_at: float | None = None
    forced_expired: bool = False


@dataclass
class Fault:
    errcode: int = 0
    count: int = 1
    delay: float = 0.0
    path: str | None = None
    status: int | None = None
    errmsg: str | None = None

    def matches(self, path: str) -> bool:
        return path == self.path if self.path else path not in _FAULT_EXEMPT


@dataclass
class EmulatorState:
    """Everything the emulator remembers; every access holds `lock`."""

    apps: dict[str, App]
    token_ttl_s: int = 7200
    token_grace_s: int = 300
    wxa_pages: set[str] | None = None  # None: any well-formed page exists
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self._clear()

    def _clear(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.messages: list[dict] = []
        self.faults: list[Fault] = []
        self.qrcodes: dict[str, dict] = {}
        self.wxacodes: list[dict] = []
        self.jscodes: dict[str, dict] = {}
        self.used_codes: set[str] = set()
        self.oauth_user: str | None = None
        self.oauth_codes: dict[str, dict] = {}
        self.calls: collections.deque = collections.deque(maxlen=10000)
        self._seq = 0

    def reset(self) -> None:
        with self.lock:
            self._clear()

    # -- tokens --------------------------------------------------------------
    def issue_token(self, appid: str, secret: str) -> tuple[str, int]:
        with self.lock:
            app = self.apps.get(appid)
            if app is None:
                raise WeChatError(40013)
            if not secrets.compare_digest(app.secret, secret):
                raise WeChatError(40125)
            now = time.time()
            for tok in self.tokens.values():
                if tok.appid == appid and tok.superseded_at is None:
                    tok.superseded_at = now
            token = secrets.token_urlsafe(102)
            self.tokens[token] = Token(appid, now + self.token_ttl_s)
            mine = [t for t, v in self.tokens.items() if v.appid == appid]
            for old in mine[:-20]:
                del self.tokens[old]
            return token, self.token_ttl_s

    def check_token(self, token: str | None, kind: str) -> App:
        if not token:
            raise WeChatError(41001)
        with self.lock:
            tok = self.tokens.get(token)
            now = time.time()
            if tok is None:
                raise WeChatError(40001)
            if tok.forced_expired or now >= tok.expires_at:
                raise WeChatError(42001)
            if tok.superseded_at is not None and now > tok.superseded_at + self.token_grace_s:
                raise WeChatError(40001)
            app = self.apps[tok.appid]
        if app.kind != kind:
            raise WeChatError(48001)
        return app

    def expire_tokens(self, appid: str | None = None) -> int:
        with self.lock:
            hit = [t for t in self.tokens.values() if appid in (None, t.appid)]
            for t in hit:
                t.forced_expired = True
            return len(hit)

    # -- faults --------------------------------------------------------------
    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    # -- records -------------------------------------------------------------
    def record_message(self, app: App, body: dict) -> dict:
        msgtype = body["msgtype"]
        payload = body.get(msgtype)
        with self.lock:
            self._seq += 1
            msg = {
                "id": self._seq,
                "touser": body["touser"],
                "msgtype": msgtype,
                "content": payload.get("content") if msgtype == "text" else None,
                "payload": payload,
                "kf_account": (body.get("customservice") or {}).get("kf_account"),
                "appid": app.appid,
                "received_at": _now_iso(),
            }
            self.messages.append(msg)
            return msg

    def messages_for(self, touser: str | None, since: int = 0) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self.messages if (touser is None or m["touser"] == touser) and m["id"] > since]


def _json(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, content_type="application/json; charset=utf-8")


def _error(errcode: int, errmsg: str | None = None) -> Response:
    # WeChat answers errors with HTTP 200 and a JSON body; errmsg ends with a request id.
    msg = errmsg or ERRMSG.get(errcode, "error")
    return _json({"errcode": errcode, "errmsg": f"{msg} rid: {_rid()}"})


def _body() -> dict:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise WeChatError(44002)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WeChatError(47001) from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    return body


def _check_message(body: dict) -> None:
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser.strip():
        raise WeChatError(40003)
    msgtype = body.get("msgtype")
    if msgtype not in MESSAGE_TYPES:
        raise WeChatError(40008)
    payload = body.get(msgtype)
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


def default_apps(settings=None) -> dict[str, App]:
    """The accounts the emulator knows: the project's Official Account and mini-program."""
    if settings is None:
        from sunshine.settings import load

        settings = load()
    return {
        settings.wechat_appid: App(settings.wechat_appid, settings.wechat_secret, "oa"),
        settings.wxa_appid: App(settings.wxa_appid, settings.wxa_secret, "wxa"),
    }


def create_app(
    settings=None,
    *,
    apps: dict[str, App] | None = None,
    token_ttl_s: int = 7200,
    token_grace_s: int = 300,
    wxa_pages: set[str] | None = None,
) -> Flask:
    """A fresh WeChat API emulator knowing `apps` (default: the accounts in `settings`)."""
    state = EmulatorState(
        apps if apps is not None else default_apps(settings),
        token_ttl_s=token_ttl_s,
        token_grace_s=token_grace_s,
        wxa_pages=wxa_pages,
    )
    app = Flask("emulators.wechat")
    app.extensions["wechat_emulator"] = state

    def is_control(path: str) -> bool:
        return path.startswith("/_emulator/") or path == "/healthz"

    @app.errorhandler(WeChatError)
    def on_wechat_error(exc: WeChatError):
        return _error(exc.errcode, exc.errmsg)

    @app.before_request
    def inject_fault():
        if is_control(request.path):
            return None
        fault = state.take_fault(request.path)
        if fault is None:
            return None
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status:
            return Response(f"<html><body>{fault.status}</body></html>", status=fault.status, content_type="text/html")
        if fault.errcode:
            return _error(fault.errcode, fault.errmsg)
        return None

    @app.after_request
    def log_call(response: Response):
        if not is_control(request.path):
            errcode = None
            if response.content_type.startswith("application/json"):
                try:
                    errcode = json.loads(response.get_data()).get("errcode")
                except ValueError:
                    pass
            with state.lock:
                state.calls.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "errcode": errcode,
                        "status": response.status_code,
                        "at": _now_iso(),
                    }
                )
        return response

    # -- WeChat's API --------------------------------------------------------
    @app.get("/cgi-bin/token")
    def token():
        args = request.args
        if args.get("grant_type") != "client_credential":
            raise WeChatError(40002)
        access_token, expires_in = state.issue_token(args.get("appid", ""), args.get("secret", ""))
        return _json({"access_token": access_token, "expires_in": expires_in})

    @app.post("/cgi-bin/message/custom/send")
    def custom_send():
        account = state.check_token(request.args.get("access_token"), "oa")
        body = _body()
        _check_message(body)
        state.record_message(account, body)
        return _json({"errcode": 0, "errmsg": "ok"})

    @app.post("/cgi-bin/message/template/send")
    def template_send():
        account = state.check_token(request.args.get("access_token"), "oa")
        body = _body()
        data = body.get("data")
        if not body.get("touser") or not body.get("template_id"):
            raise WeChatError(47001)
        if not isinstance(data, dict) or not all(isinstance(v, dict) and "value" in v for v in data.values()):
            raise WeChatError(47001)
        state.record_message(
            account,
            {
                "touser": body["touser"],
                "msgtype": "template",
                "template": {"template_id": body["template_id"], "data": data, "url": body.get("url")},
            },
        )
        return _json({"errcode": 0, "errmsg": "ok", "msgid": secrets.randbelow(2**53)})

    @app.post("/cgi-bin/qrcode/create")
    def qrcode_create():
        state.check_token(request.args.get("access_token"), "oa")
        body = _body()
        action = body.get("action_name")
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            raise WeChatError(40052)
        scene = ((body.get("action_info") or {}).get("scene")) or {}
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
        answer: dict = {"ticket": ticket}
        if permanent:
            record["expire_at"] = None
        else:
            raw = body.get("expire_seconds", QR_DEFAULT_EXPIRE_S)
            try:
                expire = int(raw)
            except (TypeError, ValueError):
                raise WeChatError(47001) from None
            expire = max(1, min(expire, QR_MAX_EXPIRE_S))
            record["expire_at"] = time.time() + expire
            answer["expire_seconds"] = expire
        answer["url"] = url
        record.update(ticket=ticket, url=url, created_at=_now_iso())
        with state.lock:
            state.qrcodes[ticket] = record
        return _json(answer)

    @app.get("/cgi-bin/showqrcode")
    def show_qrcode():
        with state.lock:
            record = state.qrcodes.get(request.args.get("ticket", ""))
        if record is None or (record["expire_at"] is not None and time.time() > record["expire_at"]):
            return Response(
                "<html><body>ticket not found or expired</body></html>", status=404, content_type="text/html"
            )
        return Response(png(record["url"]), content_type="image/png")

    @app.post("/wxa/getwxacodeunlimit")
    def wxacode_unlimit():
        account = state.check_token(request.args.get("access_token"), "wxa")
        body = _body()
        scene = body.get("scene")
        if not isinstance(scene, str) or not _SCENE_RE.fullmatch(scene):
            raise WeChatError(40169)
        page = body.get("page")
        if page not in (None, ""):
            if not isinstance(page, str) or not _PAGE_RE.fullmatch(page):
                raise WeChatError(41030)
            with state.lock:
                pages = state.wxa_pages
            if body.get("check_path", True) and pages is not None and page not in pages:
                raise WeChatError(41030)
        width = body.get("width", 430)
        box = max(4, min(int(width) // 40 if isinstance(width, int | float) else 10, 32))
        with state.lock:
            state.wxacodes.append(
                {"appid": account.appid, "scene": scene, "page": page or None, "created_at": _now_iso()}
            )
        return Response(
            png(f"wxa://{account.appid}/{page or ''}?scene={scene}", box_size=box), content_type="image/png"
        )

    def code_exchange(code_param: str):
        """The account and code of a code-for-identity request (jscode2session, web OAuth),
        after WeChat's checks of appid, secret, grant_type and a code being there."""
        args = request.args
        with state.lock:
            account = state.apps.get(args.get("appid", ""))
        if account is None:
            raise WeChatError(40013)
        if not secrets.compare_digest(account.secret, args.get("secret", "")):
            raise WeChatError(40125)
        if args.get("grant_type") != "authorization_code":
            raise WeChatError(40002)
        code = args.get(code_param, "")
        if not code:
            raise WeChatError(41008)
        return account, code

    @app.get("/sns/jscode2session")
    def jscode2session():
        account, code = code_exchange("js_code")
        if not _CODE_RE.fullmatch(code) or code.lower().startswith(("bad", "invalid")):
            raise WeChatError(40029)
        with state.lock:
            if code in state.used_codes:
                raise WeChatError(40163)
            state.used_codes.add(code)
            known = state.jscodes.pop(code, None)
        if known is None:
            digest = hashlib.sha1(f"{account.appid}:{code}".encode()).digest()  # noqa: S324  emulator: derives a fake openid from a login code, as WeChat's opaque ids
            known = {"openid": "o" + base64.urlsafe_b64encode(digest).decode()[:27]}
        answer = {"session_key": base64.b64encode(secrets.token_bytes(16)).decode(), "openid": known["openid"]}
        if known.get("unionid"):
            answer["unionid"] = known["unionid"]
        return _json(answer)

    @app.get("/connect/oauth2/authorize")
    def oauth_authorize():
        args = request.args
        with state.lock:
            account, openid = state.apps.get(args.get("appid", "")), state.oauth_user
        if account is None or account.kind != "oa":
            raise WeChatError(40013)
        redirect_uri = args.get("redirect_uri", "")
        if (
            not redirect_uri.startswith(("http://", "https://"))
            or args.get("response_type") != "code"
            or args.get("scope") not in ("snsapi_base", "snsapi_userinfo")
        ):
            raise WeChatError(47001)
        if openid is None:
            return Response(
                "<html><body>请在微信客户端打开链接</body></html>", status=200, content_type="text/html; charset=utf-8"
            )
        code = secrets.token_hex(16)
        with state.lock:
            state.oauth_codes[code] = {
                "openid": openid,
                "appid": account.appid,
                "scope": args["scope"],
                "expires_at": time.time() + 300,
            }
        sep = "&" if "?" in redirect_uri else "?"
        target = f"{redirect_uri}{sep}{urlencode({'code': code, 'state': args.get('state', '')})}"
        return Response(status=302, headers={"Location": target})

    @app.get("/sns/oauth2/access_token")
    def oauth_access_token():
        account, code = code_exchange("code")
        with state.lock:
            if code in state.used_codes:
                raise WeChatError(40163)
            grant = state.oauth_codes.pop(code, None)
            if grant is not None:
                state.used_codes.add(code)
        if grant is None or grant["appid"] != account.appid or grant["expires_at"] < time.time():
            raise WeChatError(40029)
        return _json(
            {
                "access_token": secrets.token_urlsafe(32),
                "expires_in": 7200,
                "refresh_token": secrets.token_urlsafe(32),
                "openid": grant["openid"],
                "scope": grant["scope"],
            }
        )

    # -- control -------------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        return _json({"ok": True})

    @app.get("/_emulator/messages")
    def messages():
        try:
            since = int(request.args.get("since", "0") or 0)
        except ValueError:
            return _json({"error": "since must be a message id"}, 400)
        return _json(state.messages_for(request.args.get("touser") or None, since))

    @app.route("/_emulator/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        if request.method == "POST":
            spec = request.get_json(force=True, silent=True)
            if not isinstance(spec, dict):
                return _json({"error": "body must be a JSON object"}, 400)
            try:
                fault = Fault(
                    errcode=int(spec.get("errcode") or 0),
                    count=int(spec.get("count", 1)),
                    delay=float(spec.get("delay", 0)),
                    path=spec.get("path") or None,
                    status=int(spec["status"]) if spec.get("status") else None,
                    errmsg=spec.get("errmsg"),
                )
            except (TypeError, ValueError):
                return _json({"error": "errcode, count, status must be integers, delay a number"}, 400)
            if fault.count < 1 or fault.delay < 0:
                return _json({"error": "count must be >= 1 and delay >= 0"}, 400)
            state.add_fault(fault)
        elif request.method == "DELETE":
            with state.lock:
                state.faults.clear()
        with state.lock:
            return _json({"ok": True, "pending": [asdict(f) for f in state.faults]})

    @app.post("/_emulator/reset")
    def reset():
        state.reset()
        return _json({"ok": True})

    @app.post("/_emulator/expire_tokens")
    def expire_tokens():
        spec = request.get_json(force=True, silent=True) or {}
        n = state.expire_tokens(spec.get("appid") if isinstance(spec, dict) else None)
        return _json({"ok": True, "expired": n})

    @app.get("/_emulator/calls")
    def calls():
        with state.lock:
            return _json(list(state.calls))

    @app.get("/_emulator/qrcodes")
    def qrcodes():
        with state.lock:
            return _json(list(state.qrcodes.values()))

    @app.get("/_emulator/wxacodes")
    def wxacodes():
        with state.lock:
            return _json(list(state.wxacodes))

    @app.post("/_emulator/jscodes")
    def jscodes():
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict) or not spec.get("openid"):
            return _json({"error": 'body must be {"openid": ..., "code": optional, "unionid": optional}'}, 400)
        code = spec.get("code") or secrets.token_hex(16)
        if not _CODE_RE.fullmatch(code):
            return _json({"error": "code must be 1-128 letters, digits, '_' or '-'"}, 400)
        with state.lock:
            state.jscodes[code] = {"openid": spec["openid"], "unionid": spec.get("unionid")}
            state.used_codes.discard(code)
        return _json({"code": code, "openid": spec["openid"]})

    @app.post("/_emulator/oauth_user")
    def oauth_user():
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict) or not (spec.get("openid") is None or isinstance(spec["openid"], str)):
            return _json({"error": 'body must be {"openid": str | null}'}, 400)
        with state.lock:
            state.oauth_user = spec.get("openid") or None
        return _json({"openid": state.oauth_user})

    @app.post("/_emulator/config")
    def config():
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict):
            return _json({"error": "body must be a JSON object"}, 400)
        try:
            ttl = int(spec.get("token_ttl_s", state.token_ttl_s))
            grace = int(spec.get("token_grace_s", state.token_grace_s))
            pages = spec.get("wxa_pages", sorted(state.wxa_pages) if state.wxa_pages is not None else None)
            pages = None if pages is None else {str(p) for p in pages}
        except (TypeError, ValueError):
            return _json({"error": "token_ttl_s and token_grace_s are seconds, wxa_pages a list or null"}, 400)
        with state.lock:
            state.token_ttl_s, state.token_grace_s, state.wxa_pages = ttl, grace, pages
            return _json(
                {
                    "token_ttl_s": state.token_ttl_s,
                    "token_grace_s": state.token_grace_s,
                    "wxa_pages": None if state.wxa_pages is None else sorted(state.wxa_pages),
                }
            )

    return app
