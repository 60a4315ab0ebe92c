"""QR codes for authorization links: the H5 link as a PNG, the same QR code sent in the
chat as an image message, and the WeChat code (Official Account parametric QR code or
mini-program code) the settings choose."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import redis

from clients.wechat import WeChatApi, WeChatApiError
from sunshine.clock import utcnow
from sunshine.jobs import current_settings, per_process
from sunshine.qrcodes import AUTHORIZATION, png, scene
from sunshine.redis import connect
from sunshine.settings import Settings

log = logging.getLogger(__name__)


def authorization_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/auth/{token}"


# WeChat keeps a temporary image 3 days; its media_id is reused a little less long.
MEDIA_TTL_S = 3 * 86400 - 3600


def qr_media_id(api: WeChatApi, public_base_url: str, token: str, seconds_left: int, cache: redis.Redis) -> str:
    """The media_id of the authorization's QR code uploaded to WeChat as a temporary image, uploaded
    once per token and cached in Redis while both the token and the upload are valid."""
    key = f"auth:qr-media:{hashlib.sha256(token.encode()).hexdigest()}"
    cached = _cached(cache, key)
    if cached is not None:
        return cached.decode()
    media_id = api.upload_image(png(authorization_url(public_base_url, token)), "authorization-qr.png")
    if seconds_left > 0:
        try:
            cache.set(key, media_id, ex=min(seconds_left, MEDIA_TTL_S))
        except redis.RedisError as exc:
            log.warning("QR media_id not cached (Redis: %s)", exc)
    return media_id


def send_qr_image(openid: str, token: str, expires_at: str, settings: Settings | None = None) -> bool:
    """Send one authorization's QR code to `openid` as an image message (a job, after the bot's
    answer that carries the link); a refusal is logged: the link in that answer stays."""
    settings = settings or current_settings()
    seconds = int((datetime.fromisoformat(expires_at.rstrip("Z")) - utcnow()).total_seconds())
    if seconds <= 0:
        return False
    api: WeChatApi = per_process(WeChatApi.from_settings, settings)
    try:
        media_id = qr_media_id(api, settings.public_base_url, token, seconds, connect(settings.redis_url))
        api.send_image(openid, media_id)
    except WeChatApiError as exc:
        log.warning("authorization QR image to %s not sent (the link was): %s", openid, exc)
        return False
    return True


def wechat_code(api, settings, token: str, expires_at: str, cache: redis.Redis | None = None) -> bytes:
    """PNG of the WeChat code for one authorization, made once per token and `cache`d (Redis)
    until the token expires: each page view would otherwise create a new code at WeChat, whose
    temporary QR codes and mini-program codes are quota-limited.

    "mp": a temporary parametric QR code whose scene is `auth:<token>` (scanning it
    sends the bank an event; conversation.inbound answers with the link), valid as
    long as the token. "wxa": a mini-program code opening `settings.wxa_auth_page`
    with the token as its scene (32 characters, WeChat's limit).
    """
    seconds = int((datetime.fromisoformat(expires_at.rstrip("Z")) - utcnow()).total_seconds())
    key = f"auth:wechat-code:{settings.auth_wechat_code}:{hashlib.sha256(token.encode()).hexdigest()}"
    cached = _cached(cache, key)
    if cached is not None:
        return cached
    if settings.auth_wechat_code == "wxa":
        image = api.wxa_code_unlimit(token, page=settings.wxa_auth_page)
    else:
        qr = api.create_scene_qrcode(scene(AUTHORIZATION, token), expire_seconds=max(seconds, 60))
        image = png(qr.url)
    if cache is not None and seconds > 0:
        try:
            cache.set(key, image, ex=seconds)
        except redis.RedisError as exc:
            log.warning("WeChat code not cached (Redis: %s)", exc)
    return image


def _cached(cache: redis.Redis | None, key: str) -> bytes | None:
    if cache is None:
        return None
    try:
        value = cache.get(key)
    except redis.RedisError as exc:
        log.warning("WeChat code cache unreadable (Redis: %s)", exc)
        return None
    return value if isinstance(value, bytes) else None
