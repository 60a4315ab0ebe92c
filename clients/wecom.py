"""WeCom (企业微信) application messages to officers: wechatpy's `enterprise`
client, wrapped.

- Base URL from `settings.wecom_api_base` (`https://qyapi.weixin.qq.com` in
  production, `emulators.wecom` in development and tests).
- The access_token lives in Redis (wechatpy's `RedisStorage`), shared by
  every process; a call refused for its token (40001/40014/42001) is retried
  once after a refresh (wechatpy's own retry has no bound).
- WeCom errors surface as `WeComError(errcode, errmsg)`; a WeCom that cannot
  be reached as `WeComError(None, ...)`.

    WeCom.from_settings(settings).send_text(["li.jingli"], "新的转人工会话…")
"""

from __future__ import annotations

import redis as redis_lib
import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from clients.wechat import TOKEN_ERRORS
from sunshine.protect import redact_credentials
from sunshine.redis import connect

PRODUCTION_API_BASE = "https://qyapi.weixin.qq.com"


class WeComError(Exception):
    """WeCom answered with `errcode`, or could not be reached (errcode None)."""

    def __init__(self, errcode: int | None, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"WeCom error {self.errcode}: {self.errmsg}"


class BankWeComClient(WeChatClient):
    """wechatpy's WeCom client pointed at `api_base`, its token in Redis."""

    def __init__(
        self, api_base: str, corpid: str, secret: str, *, redis: redis_lib.Redis | None = None, timeout: float = 5.0
    ):
        storage = RedisStorage(redis, prefix=f"sunshine:wecom:{corpid}") if redis is not None else MemoryStorage()
        super().__init__(corpid, secret, session=storage, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = api_base.rstrip("/") + "/cgi-bin/"

    def fetch_access_token(self) -> dict:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
        )


class WeCom:
    """What the bank asks of WeCom: text messages from its officers' application."""

    def __init__(
        self,
        api_base: str,
        corpid: str,
        secret: str,
        agentid: int,
        *,
        redis: redis_lib.Redis | None = None,
        timeout: float = 5.0,
    ):
        self.client = BankWeComClient(api_base, corpid, secret, redis=redis, timeout=timeout)
        self.agentid = agentid

    @classmethod
    def from_settings(cls, settings, *, redis: redis_lib.Redis | None = None) -> WeCom:
        """The client for WECOM_API_BASE, WECOM_CORPID, WECOM_SECRET, WECOM_AGENTID (token in REDIS_URL)."""
        if redis is None and settings.redis_url:
            redis = connect(settings.redis_url)
        return cls(
            settings.wecom_api_base, settings.wecom_corpid, settings.wecom_secret, settings.wecom_agentid, redis=redis
        )

    def send_text(self, userids: list[str], text: str) -> None:
        """Send `text` to these WeCom members through the application; a member WeCom does
        not know is an error (81013), not a silent loss."""
        for attempt in (1, 2):
            try:
                result = self.client.message.send_text(self.agentid, userids, text)
            except WeChatClientException as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    self.client.session.delete(self.client.access_token_key)
                    continue
                raise WeComError(int(exc.errcode) if exc.errcode else None, str(exc.errmsg)) from exc
            except (requests.RequestException, ValueError, redis_lib.RedisError) as exc:
                raise WeComError(None, f"{type(exc).__name__}: {redact_credentials(str(exc))}") from exc
            if result.get("invaliduser"):
                raise WeComError(81013, f"unknown WeCom user(s): {result['invaliduser']}")
            return
