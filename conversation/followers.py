"""Followers of the Official Account, and the parametric QR codes they scan.

A QR code's scene names what it stands for:
- `station:<code>`: a village service station; who scans it belongs to that
  station's officer;
- `auth:<token>`: one party's credit-report authorization request.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sunshine.models import Follower, ServiceStation, utcnow

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


def station_by_code(session: Session, code: str) -> ServiceStation | None:
    return session.scalar(select(ServiceStation).where(ServiceStation.code == code))


def followed(session: Session, openid: str, station: ServiceStation | None = None) -> Follower:
    """Record a follow (or a scan by a follower): subscribed again, and bound to `station` when given."""
    follower = session.get(Follower, openid)
    if follower is None:
        follower = Follower(openid=openid, subscribed=False)
        session.add(follower)
    if not follower.subscribed:
        follower.subscribed, follower.subscribed_at, follower.unsubscribed_at = True, utcnow(), None
    if station is not None:
        follower.station = station
    return follower


def unfollowed(session: Session, openid: str) -> None:
    """The customer stops following: mark them, keep every record."""
    follower = session.get(Follower, openid)
    if follower is None:
        follower = Follower(openid=openid)
        session.add(follower)
    follower.subscribed, follower.unsubscribed_at = False, utcnow()
