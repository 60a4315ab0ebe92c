"""The bank's WeChat API client: wechatpy's `WeChatClient`, wrapped.

- Base URL from `settings.wechat_api_base` (`https://api.weixin.qq.com` in
  production, the emulator in development and tests).
- The access_token lives in Redis (wechatpy's `RedisStorage`, key prefix
  `sunshine:wechat:<appid>`), shared by every process, and is refreshed a
  little before WeChat expires it.
- One process at a time refreshes it (a Redis lock), and a process that was
  refused a token it just read takes the token another process fetched
  instead of fetching yet another one.
- A call refused for its token (40001/40014/42001) is retried after a refresh
  at most `max_token_refreshes` times (wechatpy's own retry has no bound).
- WeChat errors surface as `WeChatApiError(errcode, errmsg)`; a WeChat that
  cannot be reached (or Redis, for the token) as `WeChatUnavailable`.

    api = WeChatApi.from_settings(settings)
    try:
        api.send_text(openid, "您的申请已受理")
    except WeChatApiError as exc:
        if exc.outside_window: ...   # 45015: the customer has not written for 48 hours
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis as redis_lib
import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.oauth import WeChatOAuth
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from sunshine.protect import redact_credentials
from sunshine.redis import connect

log = logging.getLogger(__name__)

# errcodes callers handle
INVALID_CREDENTIAL = 40001
INVALID_ACCESS_TOKEN = 40014
EXPIRED_ACCESS_TOKEN = 42001
API_DAILY_QUOTA = 45009
OUT_OF_RESPONSE_WINDOW = 45015  # the user has not interacted within 48 hours
OUT_OF_RESPONSE_COUNT = 45047  # too many customer-service messages since the user's last message
NOT_SUBSCRIBED = 43101  # subscription message: the user did not accept the template (or used it up)
MENU_NOT_FOUND = 46003  # the Official Account has no menu
TOKEN_ERRORS = frozenset({INVALID_CREDENTIAL, INVALID_ACCESS_TOKEN, EXPIRED_ACCESS_TOKEN})

# Refresh the cached token this long before WeChat's expiry (at most half its life).
EARLY_REFRESH_S = 300
PRODUCTION_API_BASE = "https://api.weixin.qq.com"
PRODUCTION_QRCODE_BASE = "https://mp.weixin.qq.com"
PRODUCTION_OPEN_BASE = "https://open.weixin.qq.com"


class WeChatApiError(Exception):
    """WeChat answered with an error code (`errcode`), or could not be reached (errcode None)."""

    def __init__(self, errcode: int | None, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"WeChat API error {self.errcode}: {self.errmsg}"

    @property
    def outside_window(self) -> bool:
        """45015: the customer has not written within 48 hours (or unfollowed); only templates reach them."""
        return self.errcode == OUT_OF_RESPONSE_WINDOW

    @property
    def too_many_messages(self) -> bool:
        """45047: too many customer-service messages since the customer last wrote."""
        return self.errcode == OUT_OF_RESPONSE_COUNT

    @property
    def not_subscribed(self) -> bool:
        """43101: the person did not accept this subscription template (or used up their acceptance)."""
        return self.errcode == NOT_SUBSCRIBED

    @property
    def rate_limited(self) -> bool:
        """45009: the account's daily API quota is used up."""
        return self.errcode == API_DAILY_QUOTA

    @property
    def token_error(self) -> bool:
        return self.errcode in TOKEN_ERRORS


class WeChatUnavailable(WeChatApiError):
    """WeChat (or Redis, holding the token) could not be reached, timed out or failed at HTTP level."""

    def __init__(self, errmsg: str):
        super().__init__(None, errmsg)

    def __str__(self) -> str:
        return f"WeChat API unavailable: {self.errmsg}"


@dataclass(frozen=True)
class SceneQrCode:
    """A parametric Official Account QR code: scanning it sends a subscribe/SCAN event with the scene."""

    ticket: str
    url: str  # what the QR code encodes
    expire_seconds: int | None  # None: permanent
    image_url: str  # the QR code image (showqrcode)


@dataclass(frozen=True)
class WebUser:
    """The WeChat user web authorization names: their Official Account openid and, when the
    Official Account is under the bank's Open Platform account, their UnionID."""

    openid: str
    unionid: str | None = None


@dataclass(frozen=True)
class WxaSession:
    """A mini-program login: jscode2session's answer."""

    openid: str
    session_key: str
    unionid: str | None = None


class _TimeoutSession(requests.Session):
    """requests.Session with a default timeout: wechatpy fetches tokens without one."""

    def __init__(self, timeout: float):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


class BankWeChatClient(WeChatClient):
    """wechatpy's `WeChatClient` for one appid, pointed at `api_base`, with the
    token in Redis, refreshed under a Redis lock, and bounded token retries."""

    def __init__(
        self,
        api_base: str,
        appid: str,
        secret: str,
        *,
        redis: redis_lib.Redis | None = None,
        timeout: float = 5.0,
        max_token_refreshes: int = 2,
    ):
        prefix = f"sunshine:wechat:{appid}"
        storage = RedisStorage(redis, prefix=prefix) if redis is not None else MemoryStorage()
        # auto_retry=False: wechatpy's own token retry is unbounded; `_request` below bounds it.
        super().__init__(appid, secret, session=storage, timeout=timeout, auto_retry=False)
        base = api_base.rstrip("/")
        self.api_base = base
        self.API_BASE_URL = base + "/cgi-bin/"
        for api in (self.wxa, self.cloud, self.shakearound):
            api.API_BASE_URL = base + "/"
        self.marketing.API_BASE_URL = base + "/marketing/"
        self._http = _TimeoutSession(timeout)
        self._redis = redis
        self._lock_key = f"{prefix}:token_refresh_lock"
        self._local_lock = threading.Lock()
        self.max_token_refreshes = max_token_refreshes

    # -- the access token ----------------------------------------------------
    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if token:
            return token
        return self.refresh_access_token()

    def fetch_access_token(self) -> dict:
        """One token fetch from WeChat (wechatpy's hook), stored with an early expiry."""
        result = self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        expires_in = int(result.get("expires_in", 7200))
        ttl = max(expires_in - min(EARLY_REFRESH_S, expires_in // 2), 1)
        self.session.set(self.access_token_key, result["access_token"], ttl)
        return result

    @contextmanager
    def _refresh_lock(self):
        if self._redis is None:
            with self._local_lock:
                yield
            return
        wait = (self.timeout or 5.0) * 2 + 5
        lock = self._redis.lock(self._lock_key, timeout=wait, blocking_timeout=wait)
        acquired = lock.acquire()
        if not acquired:
            log.warning("access_token refresh lock for %s busy for %.0f s; fetching anyway", self.appid, wait)
        try:
            yield
        finally:
            if acquired:
                try:
                    lock.release()
                except redis_lib.exceptions.LockError:
                    pass  # held longer than its timeout: another process may hold it now

    def refresh_access_token(self, rejected: str | None = None) -> str:
        """A token to use now. Fetches a new one unless another process did so meanwhile;
        `rejected` is the token WeChat just refused (None: there was none cached)."""
        with self._refresh_lock():
            current = self.session.get(self.access_token_key)
            if current and current != rejected:
                return current
            log.info("fetching a WeChat access_token for %s", self.appid)
            return self.fetch_access_token()["access_token"]

    # -- every call ----------------------------------------------------------
    def _request(self, method, url_or_endpoint, **kwargs):
        params = kwargs.get("params")
        if params is None:
            params = kwargs["params"] = {}
        managed = isinstance(params, dict) and "access_token" not in params
        if managed:
            params["access_token"] = self.access_token
        refreshes = 0
        while True:
            try:
                # a copy: wechatpy pops api_base_url/result_processor and encodes data in place
                return super()._request(method, url_or_endpoint, **dict(kwargs))
            except WeChatClientException as exc:
                if not (managed and exc.errcode in TOKEN_ERRORS and refreshes < self.max_token_refreshes):
                    raise
                refreshes += 1
                log.info(
                    "WeChat refused the access_token of %s (%s); refresh %d of at most %d",
                    self.appid,
                    exc.errcode,
                    refreshes,
                    self.max_token_refreshes,
                )
                params["access_token"] = self.refresh_access_token(rejected=params["access_token"])


def _qrcode_base(api_base: str) -> str:
    base = api_base.rstrip("/")
    return PRODUCTION_QRCODE_BASE if base == PRODUCTION_API_BASE else base


class WeChatApi:
    """What the bank asks of WeChat, for its Official Account and its mini-program."""

    def __init__(
        self,
        api_base: str,
        appid: str,
        secret: str,
        wxa_appid: str = "",
        wxa_secret: str = "",
        *,
        redis: redis_lib.Redis | None = None,
        timeout: float = 5.0,
        max_token_refreshes: int = 2,
        qrcode_image_base: str | None = None,
        open_base: str = PRODUCTION_OPEN_BASE,
    ):
        self.api_base = api_base.rstrip("/")
        self.open_base = open_base.rstrip("/")
        self.timeout = timeout
        self.oa = BankWeChatClient(
            api_base, appid, secret, redis=redis, timeout=timeout, max_token_refreshes=max_token_refreshes
        )
        self.wxa = (
            BankWeChatClient(
                api_base, wxa_appid, wxa_secret, redis=redis, timeout=timeout, max_token_refreshes=max_token_refreshes
            )
            if wxa_appid
            else None
        )
        self.qrcode_image_base = (qrcode_image_base or _qrcode_base(api_base)).rstrip("/")

    @classmethod
    def from_settings(cls, settings, *, redis: redis_lib.Redis | None = None, timeout: float = 5.0) -> WeChatApi:
        """The client for `settings` (WECHAT_API_BASE, WECHAT_APPID/SECRET, WXA_APPID/SECRET, REDIS_URL).
        Without a Redis URL the token is cached in this process only."""
        if redis is None and settings.redis_url:
            redis = connect(settings.redis_url)
        return cls(
            settings.wechat_api_base,
            settings.wechat_appid,
            settings.wechat_secret,
            settings.wxa_appid,
            settings.wxa_secret,
            redis=redis,
            timeout=timeout,
            open_base=settings.wechat_open_base,
        )

    # -- plumbing ------------------------------------------------------------
    @staticmethod
    def _call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except WeChatClientException as exc:
            if exc.errcode is None:
                status = getattr(exc.response, "status_code", None)
                raise WeChatUnavailable(f"HTTP {status} from WeChat") from exc
            raise WeChatApiError(int(exc.errcode), str(exc.errmsg)) from exc
        except requests.RequestException as exc:
            raise WeChatUnavailable(f"{type(exc).__name__}: {redact_credentials(str(exc))}") from exc
        except ValueError as exc:  # a token answer that is not JSON
            raise WeChatUnavailable(f"unreadable answer from WeChat: {exc}") from exc
        except redis_lib.RedisError as exc:
            raise WeChatUnavailable(f"Redis holding the access_token failed: {type(exc).__name__}") from exc

    def _mini_program(self) -> BankWeChatClient:
        if self.wxa is None:
            raise WeChatApiError(40013, "no mini-program configured (WXA_APPID)")
        return self.wxa

    def access_token(self) -> str:
        """The Official Account's current access_token (e.g. for the JS-SDK)."""
        return self._call(lambda: self.oa.access_token)

    # -- customer-service messages (within 48 h of the customer's last message) --
    def send_text(self, openid: str, text: str, kf_account: str | None = None) -> None:
        """Send a text (at most 2048 bytes: WeChat answers 45002 beyond)."""
        self._call(self.oa.message.send_text, openid, text, account=kf_account)

    def send_image(self, openid: str, media_id: str) -> None:
        self._call(self.oa.message.send_image, openid, media_id)

    def send_link(self, openid: str, title: str, description: str, url: str, picurl: str = "") -> None:
        """A one-article news message: a card that opens `url`."""
        self._call(
            self.oa.message.send_articles,
            openid,
            [{"title": title, "description": description, "url": url, "picurl": picurl}],
        )

    def send_miniprogram_page(
        self, openid: str, title: str, pagepath: str, thumb_media_id: str, wxa_appid: str | None = None
    ) -> None:
        """A mini-program card (the mini-program must be linked to the Official Account)."""
        appid = wxa_appid or self._mini_program().appid
        self._call(
            self.oa.message.send_mini_program_page,
            openid,
            {"title": title, "appid": appid, "pagepath": pagepath, "thumb_media_id": thumb_media_id},
        )

    # -- template messages (reach a customer outside the 48-hour window) ------------
    def send_template(self, openid: str, template_id: str, data: dict, url: str | None = None) -> None:
        """A template message: `data` is {"keyword": {"value": "..."}} as the template defines."""
        self._call(self.oa.message.send_template, openid, template_id, data, url=url)

    # -- subscription messages (mini-program; the person accepted the template) ----
    def send_subscribe_message(self, mp_openid: str, template_id: str, data: dict, page: str | None = None) -> None:
        """subscribeMessage.send with the mini-program's token: `data` is {"thing1": {"value": "..."}};
        43101 when the person did not accept `template_id` (a one-time acceptance is used by one send)."""
        self._call(self._mini_program().wxa.send_subscribe_message, mp_openid, template_id, data, page=page)

    # -- media and the menu --------------------------------------------------
    def upload_image(self, image: bytes, filename: str = "image.png") -> str:
        """Upload a temporary image (WeChat keeps it 3 days); returns its media_id."""
        return self._call(self.oa.media.upload, "image", (filename, image, "image/png"))["media_id"]

    def current_menu(self) -> dict | None:
        """The Official Account's menu as menu/get answers it ({"menu": {"button": [...]}}), None without one."""
        return self._call(self.oa.menu.get)

    def create_menu(self, menu: dict) -> None:
        """Replace the Official Account's menu with `menu` ({"button": [...]})."""
        self._call(self.oa.menu.create, menu)

    # -- QR codes ------------------------------------------------------------
    def create_scene_qrcode(self, scene_str: str, expire_seconds: int | None = 1800) -> SceneQrCode:
        """A temporary parametric QR code (permanent when `expire_seconds` is None) for `scene_str`
        (1-64 characters): scanning it sends the bank a subscribe or SCAN event carrying it."""
        data: dict[str, Any]
        if expire_seconds is None:
            data = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene_str}}}
        else:
            data = {
                "expire_seconds": int(expire_seconds),
                "action_name": "QR_STR_SCENE",
                "action_info": {"scene": {"scene_str": scene_str}},
            }
        res = self._call(self.oa.qrcode.create, data)
        ticket = res["ticket"]
        return SceneQrCode(
            ticket=ticket,
            url=res.get("url", ""),
            expire_seconds=res.get("expire_seconds"),
            image_url=self.qrcode_image_url(ticket),
        )

    def qrcode_image_url(self, ticket: str) -> str:
        return f"{self.qrcode_image_base}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"

    # -- mini-program ----------------------------------------------------------
    def wxa_code_unlimit(self, scene: str, page: str | None = None, width: int = 430) -> bytes:
        """A mini-program code (image bytes) opening `page` with `scene` (at most 32 characters).
        41030 when the page does not exist in the published mini-program."""
        res = self._call(self._mini_program().wxa.get_wxa_code_unlimited, scene, width=width, page=page)
        if isinstance(res, dict):  # JSON without an errcode: not an image
            raise WeChatApiError(-1, f"expected an image, got {res!r}")
        return res.content

    def jscode2session(self, code: str) -> WxaSession:
        """Exchange a mini-program wx.login code for the user's openid and session_key."""
        client = self._mini_program()
        params = {
            "appid": client.appid,
            "secret": client.secret,
            "js_code": code,
            "grant_type": "authorization_code",
            # present but None: wechatpy adds no access_token, requests sends none
            "access_token": None,
        }
        res = self._call(client.get, "sns/jscode2session", params=params, api_base_url=client.api_base + "/")
        return WxaSession(openid=res["openid"], session_key=res["session_key"], unionid=res.get("unionid"))

    # -- web authorization (OAuth 2.0, snsapi_base) for H5 pages -----------------
    def _oauth(self, redirect_uri: str = "", state: str = "") -> WeChatOAuth:
        """wechatpy's WeChatOAuth for the Official Account, pointed at our hosts, with a timeout."""
        oauth = WeChatOAuth(self.oa.appid, self.oa.secret, redirect_uri, scope="snsapi_base", state=state)
        oauth.API_BASE_URL = self.api_base + "/"
        oauth.OAUTH_BASE_URL = self.open_base + "/connect/"
        oauth._http = _TimeoutSession(self.timeout)
        return oauth

    def oauth_authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the browser so that WeChat comes back to `redirect_uri` with a code
        naming the user (silently: snsapi_base asks the user nothing)."""
        return self._oauth(redirect_uri, state).authorize_url

    def oauth_user(self, code: str) -> WebUser:
        """The WeChat user who came back with `code` (one-time, 5 minutes)."""
        res = self._call(self._oauth().fetch_access_token, code)
        return WebUser(openid=res["openid"], unionid=res.get("unionid"))
