"""QR codes for authorization links."""
from __future__ import annotations

from sunshine.qrcodes import png  # noqa: F401  (re-exported: the PNG of a link)


def authorization_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/auth/{token}"
