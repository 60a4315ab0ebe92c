"""Followers of the Official Account, and the service stations' QR codes they scan
(scenes: sunshine.qrcodes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clients.wechat import WeChatApi, WeChatApiError
from sunshine.db import unit_of_work
from sunshine.models import Follower, ServiceStation, utcnow
from sunshine.qrcodes import STATION, png, scene
from sunshine.settings import load


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


def station_qrcode(session: Session, api, code: str) -> tuple[ServiceStation, bytes]:
    """A permanent parametric QR code for a service station, to print and put up:
    returns the station and the PNG. Raises LookupError for an unknown station."""
    station = station_by_code(session, code)
    if station is None:
        raise LookupError(f"no service station with code {code!r}")
    qr = api.create_scene_qrcode(scene(STATION, station.code), expire_seconds=None)
    return station, png(qr.url)


def main(argv: list[str] | None = None) -> int:
    """`python -m conversation.followers station-qr CODE [--out FILE]`."""
    parser = argparse.ArgumentParser(prog="python -m conversation.followers")
    commands = parser.add_subparsers(dest="command", required=True)
    station_qr = commands.add_parser("station-qr", help="make a service station's QR code (PNG)")
    station_qr.add_argument("code")
    station_qr.add_argument("--out", type=Path, help="PNG file (default: station-CODE.png)")
    args = parser.parse_args(argv)
    settings = load()
    try:
        with unit_of_work(settings.database_url) as session:
            station, image = station_qrcode(session, WeChatApi.from_settings(settings), args.code)
            name = station.name
    except (LookupError, WeChatApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = args.out or Path(f"station-{args.code}.png")
    out.write_bytes(image)
    print(f"{name} ({args.code}): QR code written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
