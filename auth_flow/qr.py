"""QR codes for authorization links: the H5 link as a PNG, and the WeChat code
(Official Account parametric QR code or mini-program code) the settings choose."""

from __future__ import annotations

from datetime import datetime

from sunshine.clock import utcnow
from sunshine.qrcodes import png  # noqa: F401  (re-exported: the PNG of a link)


def authorization_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/auth/{token}"


def wechat_code(api, settings, token: str, expires_at: str) -> bytes:
    """PNG of the WeChat code for one authorization.

    "mp": a temporary parametric QR code whose scene is `auth:<token>` (scanning it
    sends the bank an event; conversation.inbound answers with the link), valid as
    long as the token. "wxa": a mini-program code opening `settings.wxa_auth_page`
    with the token as its scene (32 characters, WeChat's limit).
    """
    if settings.auth_wechat_code == "wxa":
        return api.wxa_code_unlimit(token, page=settings.wxa_auth_page)
    from conversation.followers import AUTHORIZATION, scene

    seconds = int((datetime.fromisoformat(expires_at.rstrip("Z")) - utcnow()).total_seconds())
    qr = api.create_scene_qrcode(scene(AUTHORIZATION, token), expire_seconds=max(seconds, 60))
    return png(qr.url)
