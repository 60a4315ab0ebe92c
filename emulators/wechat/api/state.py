"""What the WeChat API emulator remembers (accounts, tokens, messages, codes, faults,
calls), in plain Python: every read and write holds the state's one lock."""

from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40009: "invalid image size",
    40013: "invalid appid",
    40005: "invalid file type",
    40007: "invalid media_id",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40029: "invalid code",
    40037: "invalid template_id",
    40052: "invalid action name",
    40053: "invalid action info, please check document",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json",
    41001: "access_token missing",
    41005: "media data missing",
    41008: "missing code",
    41030: "invalid page",
    43101: "user refuse to accept the msg",
    42001: "access_token expired",
    44002: "empty post data",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    46003: "menu no exist",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
}
# Paths a fault without an explicit `path` does not touch.
FAULT_EXEMPT = ("/cgi-bin/token", "/cgi-bin/showqrcode")
OAUTH_CODE_TTL_S = 300
WINDOW_S = 48 * 3600  # customer-service messages reach a user this long after their last message
MEDIA_TTL_S = 3 * 86400  # temporary media


class WeChatError(Exception):
    """An error answer in WeChat's shape: `{"errcode": ..., "errmsg": ...}`."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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
        return path == self.path if self.path else path not in FAULT_EXEMPT


@dataclass
class EmulatorState:
    """Everything the emulator remembers; every access holds `lock`."""

    apps: dict[str, App]
    token_ttl_s: int = 7200
    token_grace_s: int = 300
    wxa_pages: set[str] | None = None  # None: any well-formed page exists
    # Where the mini-program's message push goes ({"url", "token", "aes_key", "format"}; None: nowhere).
    wxa_push: dict | None = None
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
        self.oauth_unionid: str | None = None  # the oauth_user's UnionID, when one was given
        self.oauth_codes: dict[str, dict] = {}
        self.calls: collections.deque[dict] = collections.deque(maxlen=10000)
        self._seq = 0
        self.last_inbound: dict[str, float] = {}  # users whose 48-hour window is kept (others: always open)
        self.accepted: dict[tuple[str, str], int] = {}  # (mini-program openid, template_id) -> sends left
        self.subscribe_messages: list[dict] = []
        self.media: dict[str, dict] = {}
        self.menu: dict | None = None

    def reset(self) -> None:
        with self.lock:
            self._clear()

    def account(self, appid: str) -> App | None:
        with self.lock:
            return self.apps.get(appid)

    def configure(self, token_ttl_s: int, token_grace_s: int, wxa_pages: set[str] | None) -> dict:
        with self.lock:
            self.token_ttl_s, self.token_grace_s, self.wxa_pages = token_ttl_s, token_grace_s, wxa_pages
            return {
                "token_ttl_s": self.token_ttl_s,
                "token_grace_s": self.token_grace_s,
                "wxa_pages": None if self.wxa_pages is None else sorted(self.wxa_pages),
            }

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

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def pending_faults(self) -> list[dict]:
        with self.lock:
            return [asdict(f) for f in self.faults]

    # -- messages and calls --------------------------------------------------
    def record_message(self, app: App, body: dict) -> dict:
        msgtype = body["msgtype"]
        payload = body[msgtype]
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
                "received_at": now_iso(),
            }
            self.messages.append(msg)
            return msg

    def messages_for(self, touser: str | None, since: int = 0) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self.messages if (touser is None or m["touser"] == touser) and m["id"] > since]

    def template_messages_for(self, touser: str | None) -> list[dict]:
        return [m for m in self.messages_for(touser) if m["msgtype"] == "template"]

    # -- the 48-hour window of customer-service messages ---------------------------
    def set_last_inbound(self, openid: str, at: float | None) -> None:
        """When `openid` last wrote (None: forget, the window is always open again)."""
        with self.lock:
            if at is None:
                self.last_inbound.pop(openid, None)
            else:
                self.last_inbound[openid] = at

    def check_window(self, openid: str) -> None:
        """45015 when the user's last message is more than 48 hours old."""
        with self.lock:
            at = self.last_inbound.get(openid)
        if at is not None and time.time() - at > WINDOW_S:
            raise WeChatError(45015)

    # -- subscription messages (mini-program) --------------------------------------
    def subscribe(self, openid: str, template_ids: list[str], status: str) -> dict[str, int]:
        """What wx.requestSubscribeMessage does: each `accept` allows one more message of that template
        (一次性订阅), `reject` none. Returns the sends now left per template."""
        with self.lock:
            for template_id in template_ids:
                key = (openid, template_id)
                self.accepted[key] = self.accepted.get(key, 0) + 1 if status == "accept" else 0
            return {t: self.accepted[(openid, t)] for t in template_ids}

    def subscriptions_of(self, openid: str) -> dict[str, int]:
        with self.lock:
            return {t: n for (o, t), n in self.accepted.items() if o == openid}

    def send_subscribe_message(self, app: App, body: dict) -> dict:
        """Use one acceptance of the template and record the message; 43101 when none is left."""
        key = (body["touser"], body["template_id"])
        with self.lock:
            if self.accepted.get(key, 0) <= 0:
                raise WeChatError(43101)
            self.accepted[key] -= 1
            self._seq += 1
            msg = {
                "id": self._seq,
                "touser": body["touser"],
                "template_id": body["template_id"],
                "page": body.get("page"),
                "data": body["data"],
                "appid": app.appid,
                "received_at": now_iso(),
            }
            self.subscribe_messages.append(msg)
            return msg

    def subscribe_messages_for(self, touser: str | None) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self.subscribe_messages if touser is None or m["touser"] == touser]

    # -- media and the menu --------------------------------------------------------
    def add_media(self, record: dict) -> None:
        with self.lock:
            self.media[record["media_id"]] = record

    def check_media(self, media_id: str) -> None:
        """40007 for a media_id never uploaded or older than 3 days."""
        with self.lock:
            record = self.media.get(media_id)
        if record is None or time.time() - record["created_at"] > MEDIA_TTL_S:
            raise WeChatError(40007)

    def media_uploaded(self) -> list[dict]:
        with self.lock:
            return list(self.media.values())

    def set_menu(self, menu: dict) -> None:
        with self.lock:
            self.menu = menu

    def current_menu(self) -> dict | None:
        with self.lock:
            return self.menu

    def record_call(self, call: dict) -> None:
        with self.lock:
            self.calls.append(call)

    def calls_made(self) -> list[dict]:
        with self.lock:
            return list(self.calls)

    # -- QR codes and mini-program codes ---------------------------------------
    def add_qrcode(self, record: dict) -> None:
        with self.lock:
            self.qrcodes[record["ticket"]] = record

    def qrcode(self, ticket: str) -> dict | None:
        with self.lock:
            return self.qrcodes.get(ticket)

    def qrcodes_made(self) -> list[dict]:
        with self.lock:
            return list(self.qrcodes.values())

    def page_exists(self, page: str) -> bool:
        with self.lock:
            return self.wxa_pages is None or page in self.wxa_pages

    def add_wxacode(self, record: dict) -> None:
        with self.lock:
            self.wxacodes.append(record)

    def wxacodes_made(self) -> list[dict]:
        with self.lock:
            return list(self.wxacodes)

    # -- one-time codes: wx.login's and web authorization's ------------------
    def add_jscode(self, code: str, openid: str, unionid: str | None) -> None:
        with self.lock:
            self.jscodes[code] = {"openid": openid, "unionid": unionid}
            self.used_codes.discard(code)

    def redeem_jscode(self, code: str) -> dict | None:
        """The identity a wx.login code stands for (None: a code the emulator did not
        hand out); 40163 when it was used before."""
        with self.lock:
            if code in self.used_codes:
                raise WeChatError(40163)
            self.used_codes.add(code)
            return self.jscodes.pop(code, None)

    def set_oauth_user(self, openid: str | None, unionid: str | None = None) -> str | None:
        with self.lock:
            self.oauth_user, self.oauth_unionid = openid, unionid
        return openid

    def oauth_account_and_user(self, appid: str) -> tuple[App | None, str | None]:
        with self.lock:
            return self.apps.get(appid), self.oauth_user

    def grant_oauth_code(self, openid: str, appid: str, scope: str) -> str:
        code = secrets.token_hex(16)
        with self.lock:
            self.oauth_codes[code] = {
                "openid": openid,
                "unionid": self.oauth_unionid if openid == self.oauth_user else None,
                "appid": appid,
                "scope": scope,
                "expires_at": time.time() + OAUTH_CODE_TTL_S,
            }
        return code

    def redeem_oauth_code(self, code: str) -> dict | None:
        """The grant behind a web-authorization code (None: unknown); 40163 when used before."""
        with self.lock:
            if code in self.used_codes:
                raise WeChatError(40163)
            grant = self.oauth_codes.pop(code, None)
            if grant is not None:
                self.used_codes.add(code)
            return grant


def default_apps(settings=None) -> dict[str, App]:
    """The accounts the emulator knows: the project's Official Account and mini-program."""
    if settings is None:
        from sunshine.settings import load

        settings = load()
    return {
        settings.wechat_appid: App(settings.wechat_appid, settings.wechat_secret, "oa"),
        settings.wxa_appid: App(settings.wxa_appid, settings.wxa_secret, "wxa"),
    }
