"""Demo data: the bank's products, one village's households with pre-granted
lines, WeChat bindings for a few of them, officer accounts and two service
stations.

A household whose `valid_until` is left empty in demo/households.csv gets a
line valid until the end of next year (by `sunshine.clock`), so the demo never
expires. Loading it again changes nothing (within the same year).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from lending.catalog import sync_products
from lending.customers import by_id_number
from lending.village_file import ImportReport, import_lines
from sunshine import clock
from sunshine.models import Customer, Officer, ServiceStation

DEMO = Path(__file__).resolve().parent.parent / "demo"
DEMO_OFFICER = "officer01"


def _rows(name: str) -> list[dict[str, str]]:
    with (DEMO / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def demo_valid_until() -> date:
    """The end of next year: the demo lines' validity when households.csv leaves it empty."""
    return date(clock.today().year + 1, 12, 31)


def _households() -> io.StringIO:
    rows = _rows("households.csv")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "valid_until": row["valid_until"] or demo_valid_until().isoformat()})
    out.seek(0)
    return out


def load_demo(session: Session, secret_key: str) -> ImportReport:
    """Load every piece of demo data (idempotent). Development only: the launcher calls it when
    SUNSHINE_DEMO is on, never in production. More demo data hooks in here."""
    sync_products(session)
    for row in _rows("officers.csv"):
        if session.scalar(select(Officer).where(Officer.username == row["username"])) is None:
            session.add(
                Officer(
                    username=row["username"],
                    display_name=row["display_name"],
                    role=row["role"],
                    wecom_userid=row["wecom_userid"],
                    password_hash=generate_password_hash(row["password"]),
                    # Development data: the published demo password needs no first change.
                    must_change_password=False,
                )
            )
    session.flush()
    for row in _rows("stations.csv"):
        if session.scalar(select(ServiceStation).where(ServiceStation.code == row["code"])) is None:
            officer_id = session.scalar(select(Officer.id).where(Officer.username == row["officer"]))
            session.add(
                ServiceStation(code=row["code"], name=row["name"], village=row["village"], officer_id=officer_id)
            )
    report = import_lines(session, secret_key, _households(), actor="demo")
    officer_id = session.scalar(select(Officer.id).where(Officer.username == DEMO_OFFICER))
    session.execute(update(Customer).where(Customer.officer_id.is_(None)).values(officer_id=officer_id))
    for row in _rows("wechat_bindings.csv"):
        customer = by_id_number(session, secret_key, row["id_number"])
        if customer is not None and customer.wechat_openid != row["openid"]:
            customer.wechat_openid = row["openid"]
    return report


def demo_leftovers(session: Session) -> list[str]:
    """What of the demo is in this database, one line each: demo officers (whose password is
    published in demo/officers.csv) and demo WeChat ids bound to customers. Production refuses
    to start while any is left."""
    usernames = [row["username"] for row in _rows("officers.csv")]
    openids = [row["openid"] for row in _rows("wechat_bindings.csv")]
    found = session.scalars(select(Officer.username).where(Officer.username.in_(usernames))).all()
    bound = session.scalars(select(Customer.wechat_openid).where(Customer.wechat_openid.in_(openids))).all()
    return [f"demo officer {name} (published password) is in the database; delete it" for name in sorted(found)] + [
        f"demo WeChat id {openid} is bound to a customer; unbind it" for openid in sorted(bound)
    ]
