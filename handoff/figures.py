"""The branch's figures (支行数据), computed live from the records, per village and for the
branch: the households filed (建档面), with a line (授信面) and using it (用信), as of today; and,
over a period, the applications (online ones: submitted by the customer), the share the system
approved by itself, the officers' decisions against the promised time, the first officer reply
to hand-offs, and the authorizations completed with how long they took.

Six grouped SQL aggregates on indexed columns, whatever the branch's size. Durations are
summed in SQL and divided here, so that the branch's averages are the villages' added up.
Times are stored as naive UTC; the period is Beijing dates, as officers read them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Float, and_, case, distinct, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from handoff.service import CLOSING_NOTE
from sunshine.clock import BEIJING
from sunshine.models import (
    ApplicationEvent,
    Authorization,
    ConversationMessage,
    CreditLine,
    Customer,
    FamilyMember,
    HandOff,
    LoanApplication,
)

BRANCH = "全支行"
NO_VILLAGE = "（无村）"  # customers not from a village file (merchants, civil servants, unbound WeChat users)
DEFAULT_DAYS = 30
MAX_DAYS = 366


class FiguresError(ValueError):
    """A period the figures cannot be computed for; the message is for the officer."""


class _SecondsBetween(FunctionElement):
    """seconds_between(start, end): end - start in seconds, on SQLite and PostgreSQL."""

    type = Float()  # type: ignore[assignment]  # SQLAlchemy's documented way to type a function
    name = "seconds_between"
    inherit_cache = True


@compiles(_SecondsBetween)
def _seconds_sqlite(element, compiler, **kw) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    # julianday is a float of days: rounded to the millisecond, whole seconds stay whole
    return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"


@compiles(_SecondsBetween, "postgresql")
def _seconds_postgresql(element, compiler, **kw) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@dataclass(frozen=True)
class Period:
    """Beijing dates, both included."""

    first: date
    last: date

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as stored: naive UTC."""

        def utc(day: date) -> datetime:
            return datetime.combine(day, time(), BEIJING).astimezone(timezone.utc).replace(tzinfo=None)

        return utc(self.first), utc(self.last + timedelta(days=1))


def period_of(first: str | None, last: str | None, today: date) -> Period:
    """The period an officer asked for (YYYY-MM-DD, either may be empty): by default the last
    DEFAULT_DAYS days up to today."""
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise FiguresError("日期格式不对，请写成 2026-12-01 这样") from None
    if start > end:
        raise FiguresError("开始日期不能晚于结束日期")
    if (end - start).days >= MAX_DAYS:
        raise FiguresError(f"统计期间最长{MAX_DAYS}天")
    return Period(start, end)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class VillageFigures:
    """One village's figures (or the branch's: the villages' added up)."""

    village: str
    # as of today
    households: int = 0  # household heads living in the village
    filed: int = 0  # ... with a credit file (a line granted from the village file, valid or not)
    with_line: int = 0  # ... with a line valid today
    line_amount: int = 0  # yuan
    using: int = 0  # ... drawing on it
    used_amount: int = 0  # yuan
    # over the period
    applications: int = 0  # submitted
    online: int = 0  # ... by the customer (WeChat, mini-program), not entered by an officer
    decided: int = 0  # approved or rejected
    auto_approved: int = 0  # ... approved by the system alone
    officer_decided: int = 0  # decided by officers (the loans above the automatic limit)
    on_time: int = 0  # ... by the promised deadline
    decision_seconds: float = 0.0  # ... from entering review to the decision, summed
    hand_offs: int = 0  # opened
    answered: int = 0  # ... with an officer's reply
    answered_on_time: int = 0  # ... the first by the hand-off's deadline
    reply_seconds: float = 0.0  # ... to the first reply, summed
    authorizations: int = 0  # requested (re-issued ones count once)
    authorized: int = 0  # ... consented
    authorization_seconds: float = 0.0  # ... from the request to the consent, summed

    def __add__(self, other: VillageFigures) -> VillageFigures:
        total = VillageFigures(BRANCH)
        for f in fields(self):
            if f.name != "village":
                setattr(total, f.name, getattr(self, f.name) + getattr(other, f.name))
        return total

    @property
    def filed_share(self) -> float | None:
        return _share(self.filed, self.households)

    @property
    def line_share(self) -> float | None:
        return _share(self.with_line, self.households)

    @property
    def use_share(self) -> float | None:
        return _share(self.using, self.with_line)

    @property
    def online_share(self) -> float | None:
        return _share(self.online, self.applications)

    @property
    def auto_share(self) -> float | None:
        return _share(self.auto_approved, self.decided)

    @property
    def on_time_share(self) -> float | None:
        return _share(self.on_time, self.officer_decided)

    @property
    def decision_hours(self) -> float | None:
        return self.decision_seconds / 3600 / self.officer_decided if self.officer_decided else None

    @property
    def answered_on_time_share(self) -> float | None:
        return _share(self.answered_on_time, self.answered)

    @property
    def reply_minutes(self) -> float | None:
        return self.reply_seconds / 60 / self.answered if self.answered else None

    @property
    def authorized_share(self) -> float | None:
        return _share(self.authorized, self.authorizations)

    @property
    def authorization_minutes(self) -> float | None:
        return self.authorization_seconds / 60 / self.authorized if self.authorized else None


@dataclass(frozen=True)
class BranchFigures:
    period: Period
    today: date
    villages: list[VillageFigures]  # by name, customers without a village last
    branch: VillageFigures


# The columns of the table and the CSV: (heading, attribute, kind: count | yuan | share | hours | minutes).
COLUMNS = (
    ("户数", "households", "count"),
    ("建档户数", "filed", "count"),
    ("建档面", "filed_share", "share"),
    ("授信户数", "with_line", "count"),
    ("授信面", "line_share", "share"),
    ("授信金额（元）", "line_amount", "yuan"),
    ("用信户数", "using", "count"),
    ("用信率", "use_share", "share"),
    ("用信金额（元）", "used_amount", "yuan"),
    ("申请笔数", "applications", "count"),
    ("线上申请", "online", "count"),
    ("已决定", "decided", "count"),
    ("系统自动批准", "auto_approved", "count"),
    ("系统审批占比", "auto_share", "share"),
    ("客户经理决定", "officer_decided", "count"),
    ("按时决定", "on_time", "count"),
    ("按时决定占比", "on_time_share", "share"),
    ("平均决定用时（小时）", "decision_hours", "hours"),
    ("转人工", "hand_offs", "count"),
    ("已回复", "answered", "count"),
    ("按时首次回复占比", "answered_on_time_share", "share"),
    ("平均首次回复（分钟）", "reply_minutes", "minutes"),
    ("授权请求", "authorizations", "count"),
    ("授权完成", "authorized", "count"),
    ("授权完成率", "authorized_share", "share"),
    ("平均授权用时（分钟）", "authorization_minutes", "minutes"),
)


def _households(session: Session, today: date):
    """Household heads by village: every customer who is no one's family member."""
    query = (
        select(Customer.village, func.count())
        .where(Customer.id.not_in(select(FamilyMember.member_id)))
        .group_by(Customer.village)
    )
    return ("households",), session.execute(query)


def _lines(session: Session, today: date):
    """Households with a credit file (a line granted, valid or not), with a line valid `today`,
    drawing on it; the valid lines' amounts."""
    valid = CreditLine.valid_until >= today
    query = (
        select(
            Customer.village,
            func.count(distinct(CreditLine.customer_id)),
            func.count(distinct(case((and_(valid, CreditLine.amount > 0), CreditLine.customer_id)))),
            func.sum(case((valid, CreditLine.amount), else_=0)),
            func.count(distinct(case((and_(valid, CreditLine.used_amount > 0), CreditLine.customer_id)))),
            func.sum(case((valid, CreditLine.used_amount), else_=0)),
        )
        .join(Customer, Customer.id == CreditLine.customer_id)
        .where(Customer.id.not_in(select(FamilyMember.member_id)))
        .group_by(Customer.village)
    )
    return ("filed", "with_line", "line_amount", "using", "used_amount"), session.execute(query)


def _applications(session: Session, start: datetime, end: datetime):
    query = (
        select(
            Customer.village,
            func.count(ApplicationEvent.id),
            func.sum(case((ApplicationEvent.actor == "customer", 1), else_=0)),
        )
        .join(LoanApplication, LoanApplication.id == ApplicationEvent.application_id)
        .join(Customer, Customer.id == LoanApplication.customer_id)
        .where(ApplicationEvent.action == "submitted", ApplicationEvent.at >= start, ApplicationEvent.at < end)
        .group_by(Customer.village)
    )
    return ("applications", "online"), session.execute(query)


def _decisions(session: Session, start: datetime, end: datetime):
    queued = ApplicationEvent.__table__.alias("queued")
    entered_review = (
        select(func.min(queued.c.at))
        .where(
            queued.c.application_id == ApplicationEvent.application_id,
            queued.c.to_status == "under_review",
            queued.c.from_status != "under_review",
        )
        .scalar_subquery()
    )
    by_officer = and_(ApplicationEvent.actor.like("officer:%"), LoanApplication.review_mode == "officer")
    decisions = (
        select(
            Customer.village,
            case((and_(ApplicationEvent.actor == "auto", ApplicationEvent.to_status == "approved"), 1), else_=0).label(
                "auto"
            ),
            case((by_officer, 1), else_=0).label("officer"),
            case((and_(by_officer, ApplicationEvent.at <= LoanApplication.review_deadline), 1), else_=0).label(
                "on_time"
            ),
            case((by_officer, _SecondsBetween(entered_review, ApplicationEvent.at)), else_=None).label("seconds"),
        )
        .join(LoanApplication, LoanApplication.id == ApplicationEvent.application_id)
        .join(Customer, Customer.id == LoanApplication.customer_id)
        .where(
            ApplicationEvent.to_status.in_(("approved", "rejected")),
            ApplicationEvent.at >= start,
            ApplicationEvent.at < end,
        )
        .subquery()
    )
    query = select(
        decisions.c.village,
        func.count(),
        func.sum(decisions.c.auto),
        func.sum(decisions.c.officer),
        func.sum(decisions.c.on_time),
        func.coalesce(func.sum(decisions.c.seconds), 0.0),
    ).group_by(decisions.c.village)
    return ("decided", "auto_approved", "officer_decided", "on_time", "decision_seconds"), session.execute(query)


def _hand_offs(session: Session, start: datetime, end: datetime):
    first_reply = (
        select(func.min(ConversationMessage.created_at))
        .where(
            ConversationMessage.hand_off_id == HandOff.id,
            ConversationMessage.direction == "outbound",
            ConversationMessage.author.like("officer:%"),
            ConversationMessage.body != CLOSING_NOTE,
        )
        .scalar_subquery()
    )
    opened = (
        select(
            Customer.village,
            HandOff.created_at,
            HandOff.deadline,
            first_reply.label("first_reply"),
        )
        .outerjoin(Customer, Customer.id == HandOff.customer_id)
        .where(HandOff.created_at >= start, HandOff.created_at < end)
        .subquery()
    )
    query = select(
        opened.c.village,
        func.count(),
        func.count(opened.c.first_reply),
        func.sum(case((opened.c.first_reply <= opened.c.deadline, 1), else_=0)),
        func.coalesce(func.sum(_SecondsBetween(opened.c.created_at, opened.c.first_reply)), 0.0),
    ).group_by(opened.c.village)
    return ("hand_offs", "answered", "answered_on_time", "reply_seconds"), session.execute(query)


def _authorizations(session: Session, start: datetime, end: datetime):
    query = (
        select(
            Customer.village,
            func.count(Authorization.id),
            func.count(Authorization.consented_at),
            func.coalesce(func.sum(_SecondsBetween(Authorization.created_at, Authorization.consented_at)), 0.0),
        )
        .join(Customer, Customer.id == Authorization.customer_id)
        .where(
            Authorization.created_at >= start,
            Authorization.created_at < end,
            # a request re-issued counts once: the one that replaced it
            or_(Authorization.status != "superseded", Authorization.consented_at.is_not(None)),
        )
        .group_by(Customer.village)
    )
    return ("authorizations", "authorized", "authorization_seconds"), session.execute(query)


def branch_figures(session: Session, period: Period, today: date) -> BranchFigures:
    """The figures of every village and of the branch: households and lines as of `today`
    (a Beijing date), the rest over `period`."""
    start, end = period.bounds
    villages: dict[str | None, VillageFigures] = {}
    for names, rows in (
        _households(session, today),
        _lines(session, today),
        _applications(session, start, end),
        _decisions(session, start, end),
        _hand_offs(session, start, end),
        _authorizations(session, start, end),
    ):
        for village, *values in rows:
            figures = villages.setdefault(village, VillageFigures(village or NO_VILLAGE))
            for name, value in zip(names, values, strict=True):
                # PostgreSQL sums come as Decimal: each figure keeps its own type (int or float)
                setattr(figures, name, type(getattr(figures, name))(value or 0))
    ordered = sorted(villages.values(), key=lambda v: (v.village == NO_VILLAGE, v.village))
    return BranchFigures(period, today, ordered, sum(ordered, VillageFigures(BRANCH)))
