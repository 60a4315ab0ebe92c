"""QR codes for authorization links: the H5 link as a PNG, and the WeChat code
(Official Account parametric QR code or mini-program code) the settings choose."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import redis

from sunshine.clock import utcnow
from sunshine.qrcodes import AUTHORIZATION, png, scene

log = logging.getLogger(__name__)


def authorization_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/auth/{token}"


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
