"""Administration (supervisors only): officers' accounts, service stations and their
officers, which officer serves which customer, and the watch list.

Every function takes the acting officer and refuses anyone but an active supervisor
(`require_supervisor`, which records the refusal); bad input raises AdminError with a
Chinese message before anything is changed; every change is in the audit log with who
did it and, where there was one, the value before.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from handoff.service import SUPERVISOR, actor_of
from lending import risk
from lending.customers import by_id_number
from lending.identity import InvalidIdNumber
from sunshine.clock import utcnow
from sunshine.models import (
    AuditEntry,
    Customer,
    HandOff,
    Officer,
    OfficerSession,
    ServiceStation,
    WatchListEntry,
    audit,
)

ROLES = {"officer": "客户经理", "supervisor": "主管"}
USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,31}")
WECOM_USERID = re.compile(r"[A-Za-z0-9._@-]{1,64}")
STATION_CODE = re.compile(r"[A-Z0-9]{2,16}")
NAME_LIMIT = 32  # display names, station names and villages as officers type them
# First passwords' alphabet: no look-alike characters (0/O, 1/l/I), read out or copied from the screen.
FIRST_PASSWORD_CHARACTERS = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105
FIRST_PASSWORD_LENGTH = 12


class AdminError(ValueError):
    """An administrative change that cannot be made; the message is for the supervisor."""


class NotSupervisor(AdminError):
    """The acting officer is not a supervisor."""


def require_supervisor(session: Session, officer: Officer, doing: str) -> None:
    """Raise NotSupervisor unless the officer is an active supervisor; a refusal is recorded
    (audit `admin.refused`), and nothing else is changed."""
    if officer.role == SUPERVISOR and officer.active:
        return
    audit(session, actor_of(officer), "admin.refused", "officer", officer.id, doing=doing)
    raise NotSupervisor("只有主管可以进行管理操作（客户经理账号、服务站、客户分配、关注名单）")


def _text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise AdminError(f"请填写{what}")
    if len(value) > NAME_LIMIT:
        raise AdminError(f"{what}不能超过{NAME_LIMIT}个字")
    return value


def _active_officer(session: Session, officer_id: int | None) -> Officer:
    target = session.get(Officer, officer_id) if officer_id else None
    if target is None or not target.active:
        raise AdminError("没有这位客户经理，或其账号已停用")
    return target


def _officer(session: Session, officer_id: int) -> Officer:
    target = session.get(Officer, officer_id)
    if target is None:
        raise AdminError("没有这位客户经理")
    return target


def _username(officer: Officer | None) -> str | None:
    return officer.username if officer else None


# -- officers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficerRow:
    officer: Officer
    customers: int
    stations: int
    open_hand_offs: int


def officers(session: Session, by: Officer) -> list[OfficerRow]:
    """Every officer with how many customers, stations and open hand-offs they have."""
    require_supervisor(session, by, "officers.list")

    def counts(column, *where) -> dict[int, int]:
        query = select(column, func.count()).where(column.is_not(None), *where).group_by(column)
        return {officer_id: n for officer_id, n in session.execute(query)}

    customers, stations = counts(Customer.officer_id), counts(ServiceStation.officer_id)
    hand_offs = counts(HandOff.officer_id, HandOff.status != "closed")
    rows = session.scalars(select(Officer).order_by(Officer.active.desc(), Officer.role.desc(), Officer.username))
    return [OfficerRow(o, customers.get(o.id, 0), stations.get(o.id, 0), hand_offs.get(o.id, 0)) for o in rows]


def first_password() -> str:
    """A password to give an officer once: they must choose their own at the first login."""
    return "".join(secrets.choice(FIRST_PASSWORD_CHARACTERS) for _ in range(FIRST_PASSWORD_LENGTH))


def create_officer(
    session: Session, by: Officer, username: str, display_name: str, role: str, wecom_userid: str = ""
) -> tuple[Officer, str]:
    """A new officer with a first password (returned, to be shown once, never stored in the
    clear) that they must change at the first login. Returns (officer, first password)."""
    require_supervisor(session, by, "officers.create")
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise AdminError("用户名应为3至32位小写字母、数字或 . _ -，以字母开头")
    display_name = _text(display_name, "姓名")
    if role not in ROLES:
        raise AdminError("角色应为客户经理或主管")
    wecom = (wecom_userid or "").strip()
    if wecom and not WECOM_USERID.fullmatch(wecom):
        raise AdminError("企业微信账号应为1至64位字母、数字或 . _ @ -")
    if session.scalar(select(Officer.id).where(func.lower(Officer.username) == username)) is not None:
        raise AdminError(f"用户名 {username} 已经有人用了")
    password = first_password()
    officer = Officer(
        username=username,
        display_name=display_name,
        role=role,
        wecom_userid=wecom or None,
        password_hash=generate_password_hash(password),
        must_change_password=True,
        active=True,
    )
    session.add(officer)
    session.flush()
    audit(
        session,
        actor_of(by),
        "officer.created",
        "officer",
        officer.id,
        username=username,
        display_name=display_name,
        role=role,
        wecom_userid=officer.wecom_userid,
    )
    return officer, password


def end_sessions(session: Session, officer: Officer, reason: str) -> int:
    """End every live console session of this officer (password changed or reset, account
    deactivated); returns how many."""
    result = session.execute(
        update(OfficerSession)
        .where(OfficerSession.officer_id == officer.id, OfficerSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _not_self(by: Officer, target: Officer, doing: str) -> None:
    if target.id == by.id:
        raise AdminError(f"不能{doing}自己的账号")


def deactivate(session: Session, by: Officer, officer_id: int) -> Officer:
    """Stop an officer's account: their sessions end, their open hand-offs return to the
    branch queue (new ones no longer reach them); customers and stations stay theirs until
    reassigned (the list shows how many)."""
    require_supervisor(session, by, "officers.deactivate")
    target = _officer(session, officer_id)
    _not_self(by, target, "停用")
    if not target.active:
        raise AdminError(f"{target.display_name}的账号已经停用")
    target.active = False
    ended = end_sessions(session, target, "deactivated")
    returned = session.execute(
        update(HandOff)
        .where(HandOff.officer_id == target.id, HandOff.status != "closed")
        .values(officer_id=None, status="open")
        .execution_options(synchronize_session=False)
    )
    audit(
        session,
        actor_of(by),
        "officer.deactivated",
        "officer",
        target.id,
        sessions_ended=ended,
        hand_offs_to_branch_queue=int(getattr(returned, "rowcount", 0) or 0),
    )
    return target


def reactivate(session: Session, by: Officer, officer_id: int) -> Officer:
    """Open a stopped account again (its old sessions stay ended: the officer logs in)."""
    require_supervisor(session, by, "officers.reactivate")
    target = _officer(session, officer_id)
    if target.active:
        raise AdminError(f"{target.display_name}的账号没有停用")
    target.active = True
    audit(session, actor_of(by), "officer.reactivated", "officer", target.id)
    return target


def reset_password(session: Session, by: Officer, officer_id: int) -> tuple[Officer, str]:
    """A new first password for an officer who forgot theirs: every session of theirs ends and
    they must choose their own at the next login. Returns (officer, first password)."""
    require_supervisor(session, by, "officers.reset_password")
    target = _officer(session, officer_id)
    _not_self(by, target, "在这里重置")
    if not target.active:
        raise AdminError(f"{target.display_name}的账号已经停用，请先启用")
    password = first_password()
    target.password_hash = generate_password_hash(password)
    target.must_change_password, target.password_changed_at = True, utcnow()
    ended = end_sessions(session, target, "password_reset")
    audit(session, actor_of(by), "officer.password_reset", "officer", target.id, sessions_ended=ended)
    return target, password


def active_officers(session: Session) -> list[Officer]:
    """The officers a customer or a station may be given to."""
    return list(session.scalars(select(Officer).where(Officer.active.is_(True)).order_by(Officer.display_name)))


# -- service stations --------------------------------------------------------------------


def stations(session: Session, by: Officer) -> list[ServiceStation]:
    require_supervisor(session, by, "stations.list")
    return list(session.scalars(select(ServiceStation).order_by(ServiceStation.code)))


def create_station(
    session: Session, by: Officer, code: str, name: str, village: str, officer_id: int | None
) -> ServiceStation:
    """A new service station (its QR code's scene is `station:<code>`, so the code is fixed)."""
    require_supervisor(session, by, "stations.create")
    code = (code or "").strip().upper()
    if not STATION_CODE.fullmatch(code):
        raise AdminError("服务站编号应为2至16位大写字母或数字，如 HQ003")
    name, village = _text(name, "服务站名称"), _text(village, "所在村镇")
    officer = _active_officer(session, officer_id) if officer_id else None
    if session.scalar(select(ServiceStation.id).where(ServiceStation.code == code)) is not None:
        raise AdminError(f"服务站编号 {code} 已经有了")
    station = ServiceStation(code=code, name=name, village=village, officer=officer)
    session.add(station)
    session.flush()
    audit(
        session,
        actor_of(by),
        "station.created",
        "service_station",
        station.id,
        code=code,
        name=name,
        village=village,
        officer=_username(officer),
    )
    return station


def assign_station(
    session: Session, by: Officer, station_id: int, officer_id: int | None
) -> tuple[ServiceStation, Officer]:
    """Give a station to an officer: who scans its code from now on is routed to them."""
    require_supervisor(session, by, "stations.assign")
    station = session.get(ServiceStation, station_id)
    if station is None:
        raise AdminError("没有这个服务站")
    officer = _active_officer(session, officer_id)
    if station.officer is officer:
        raise AdminError(f"{station.name}已经由{officer.display_name}负责")
    before = _username(station.officer)
    station.officer = officer
    audit(
        session,
        actor_of(by),
        "station.officer_assigned",
        "service_station",
        station.id,
        before=before,
        after=officer.username,
    )
    return station, officer


# -- customers and their officers -------------------------------------------------------


def customer_by_id_number(session: Session, secret_key: str, id_number: str) -> Customer:
    try:
        customer = by_id_number(session, secret_key, id_number)
    except InvalidIdNumber as exc:
        raise AdminError(str(exc)) from None
    if customer is None:
        raise AdminError("没有这个身份证号的客户")
    return customer


def assign_customer(
    session: Session, by: Officer, customer_id: int, officer_id: int | None
) -> tuple[Customer, Officer]:
    """Give one customer to an officer: their hand-offs and applications go to them."""
    require_supervisor(session, by, "customers.assign")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise AdminError("没有这位客户")
    officer = _active_officer(session, officer_id)
    if customer.officer is officer:
        raise AdminError(f"{customer.name}已经由{officer.display_name}负责")
    before = _username(customer.officer)
    customer.officer = officer
    audit(
        session,
        actor_of(by),
        "customer.officer_assigned",
        "customer",
        customer.id,
        before=before,
        after=officer.username,
    )
    return customer, officer


@dataclass(frozen=True)
class Village:
    name: str
    customers: int
    by_officer: dict[str, int]  # officers' names (未分配: none; a stopped one marked) and their customers


def villages(session: Session, by: Officer) -> list[Village]:
    """The villages of the credit files, with how many customers each officer serves there."""
    require_supervisor(session, by, "customers.list")
    rows = session.execute(
        select(Customer.village, Officer.display_name, Officer.active, func.count())
        .outerjoin(Officer, Officer.id == Customer.officer_id)
        .where(Customer.village.is_not(None))
        .group_by(Customer.village, Officer.display_name, Officer.active)
        .order_by(Customer.village, Officer.display_name)
    )
    found: dict[str, dict[str, int]] = {}
    for village, officer_name, active, count in rows:
        label = "未分配" if officer_name is None else officer_name + ("" if active else "（已停用）")
        found.setdefault(village, {})[label] = count
    return [Village(name, sum(counts.values()), counts) for name, counts in found.items()]


def assign_village(session: Session, by: Officer, village: str, officer_id: int | None) -> int:
    """Give every customer of a village to one officer; returns how many changed hands (each
    recorded with the officer before)."""
    require_supervisor(session, by, "customers.assign_village")
    village = (village or "").strip()
    officer = _active_officer(session, officer_id)
    if not village or session.scalar(select(Customer.id).where(Customer.village == village).limit(1)) is None:
        raise AdminError(f"没有{village or '这个村'}的客户")
    names = {officer_id: name for officer_id, name in session.execute(select(Officer.id, Officer.username))}
    changing = session.execute(
        select(Customer.id, Customer.officer_id).where(
            Customer.village == village, Customer.officer_id.is_distinct_from(officer.id)
        )
    ).all()
    if not changing:
        return 0
    session.execute(
        update(Customer)
        .where(Customer.id.in_([row.id for row in changing]))
        .values(officer_id=officer.id)
        .execution_options(synchronize_session=False)
    )
    at, actor = utcnow(), actor_of(by)
    session.execute(
        insert(AuditEntry.__table__),
        [
            {
                "at": at,
                "actor": actor,
                "action": "customer.officer_assigned",
                "subject_type": "customer",
                "subject_id": str(row.id),
                "detail": {"before": names.get(row.officer_id), "after": officer.username, "village": village},
            }
            for row in changing
        ],
    )
    return len(changing)


# -- the watch list (关注名单) -------------------------------------------------------------


def watch_list(session: Session, by: Officer) -> list[WatchListEntry]:
    require_supervisor(session, by, "watch_list.list")
    return risk.watched(session)


def add_to_watch_list(session: Session, by: Officer, secret_key: str, id_number: str, reason: str) -> WatchListEntry:
    """Put a person on the watch list with a reason: their applications are intercepted."""
    require_supervisor(session, by, "watch_list.add")
    try:
        entry, created = risk.watch(session, secret_key, id_number, reason, actor_of(by))
    except (risk.WatchListError, InvalidIdNumber) as exc:
        raise AdminError(str(exc)) from None
    if not created:
        raise AdminError(f"{entry.id_masked} 已在关注名单上（原因：{entry.reason}）")
    return entry


def remove_from_watch_list(session: Session, by: Officer, entry_id: int, reason: str) -> str:
    """Take a person off the watch list with a reason; returns their masked ID number."""
    require_supervisor(session, by, "watch_list.remove")
    try:
        return risk.unwatch(session, entry_id, reason, actor_of(by))
    except risk.WatchListError as exc:
        raise AdminError(str(exc)) from None
