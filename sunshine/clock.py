"""The bank's one clock, and Beijing time as customers and officers read it.

Times are stored as naive UTC. Every "now" and "today" in the project comes
from here, so that a test can move the clock (`travel_to`) and a whole run can
start it elsewhere: SUNSHINE_CLOCK (an ISO date or date-time, UTC) sets the
clock of every process of a run to that moment at start, ticking on from there
(e.g. `SUNSHINE_CLOCK=2031-06-01 make test-fast`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

from sunshine.settings import raw_setting

BEIJING = timezone(timedelta(hours=8), "CST")


def _offset_from(setting: str) -> timedelta:
    if not setting:
        return timedelta(0)
    start = datetime.fromisoformat(setting)
    if start.tzinfo is not None:
        start = start.astimezone(timezone.utc).replace(tzinfo=None)
    return start - datetime.now(timezone.utc).replace(tzinfo=None)


_offset = _offset_from(raw_setting("SUNSHINE_CLOCK"))


def utcnow() -> datetime:
    """Now, as stored: naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None) + _offset


def today() -> date:
    """Today's date in Beijing (a line valid until a day is valid through that day there)."""
    return in_beijing(utcnow()).date()


@contextmanager
def travel_to(moment: datetime | date) -> Iterator[None]:
    """Tests: the clock of this process reads `moment` (naive UTC) and ticks on from there."""
    global _offset
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, 4)  # noon in Beijing
    before = _offset
    _offset = moment - datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        yield
    finally:
        _offset = before


def in_beijing(moment: datetime) -> datetime:
    """A stored (naive UTC) time as an aware Beijing time."""
    return moment.replace(tzinfo=timezone.utc).astimezone(BEIJING)


def customer_time(moment: datetime) -> str:
    """3月5日08:30: a time as a customer's message says it."""
    local = in_beijing(moment)
    return f"{local.month}月{local.day}日{local.hour:02d}:{local.minute:02d}"


def customer_date(day: date) -> str:
    """2027年12月31日: a date as a customer's message says it."""
    return f"{day.year}年{day.month}月{day.day}日"


def officer_time(moment: datetime | None) -> str:
    """03-05 08:30: a time in the officer console's lists (empty for none)."""
    return in_beijing(moment).strftime("%m-%d %H:%M") if moment is not None else ""


def full_time(moment: datetime) -> str:
    """2027-03-05 08:30: a time in a WeChat template message."""
    return in_beijing(moment).strftime("%Y-%m-%d %H:%M")
