"""QR codes as PNG images (qrcode library), and the scenes of WeChat's parametric QR codes.

A parametric QR code's scene names what it stands for:
- `station:<code>`: a village service station; who scans it belongs to that
  station's officer;
- `auth:<token>`: one party's credit-report authorization request.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def png(data: str, box_size: int = 8) -> bytes:
    """The QR code for `data` as PNG bytes (medium error correction, 4-module border)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    code.add_data(data)
    code.make(fit=True)
    buf = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    return buf.getvalue()


STATION = "station"
AUTHORIZATION = "auth"


@dataclass(frozen=True)
class Scene:
    kind: str  # STATION | AUTHORIZATION
    value: str


def scene(kind: str, value: str) -> str:
    """The scene string of a parametric QR code (WeChat allows 64 characters)."""
    text = f"{kind}:{value}"
    if kind not in (STATION, AUTHORIZATION) or not value or len(text) > 64:
        raise ValueError(f"cannot make a scene of {kind!r} and a {len(value)}-character value")
    return text


def parse_scene(raw: str | None) -> Scene | None:
    """The scene of a subscribe/SCAN event (`qrscene_` already removed), or None when it names nothing we know."""
    kind, sep, value = (raw or "").partition(":")
    if sep and value and kind in (STATION, AUTHORIZATION):
        return Scene(kind, value)
    return None
