"""Risk-interception rules (风险拦截规则), kept as data in rules.yml.

Each rule names a check, its limits, an outcome (reject outright, or send to
an officer for review) and the Chinese description the officer reads. The
checks run when an application is submitted and again when the credit
reports arrive; checks of a credit report run only then.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clients.bureau import CreditReport
from lending.identity import normalize_id_number
from lending.parties import RISK_LABELS
from lending.tags import TagFileError, catalogue, check_tag_map, pairs_of
from sunshine.models import CreditLine, Customer, FamilyMember, LoanApplication, WatchListEntry, audit
from sunshine.protect import fingerprint, mask_id_number
from sunshine.yaml_files import read_yaml

RULES_FILE = Path(__file__).with_name("rules.yml")
OUTCOMES = ("reject", "review")


class RuleFileError(ValueError):
    """rules.yml cannot be used; the message names the rule and what is wrong."""


@dataclass
class RiskContext:
    """What the checks look at. `reports` is None at submission, else one credit report per party role."""

    session: Session
    application: LoanApplication
    customer: Customer
    birth_date: date
    available: int  # the customer's remaining line, not counting this application
    now: datetime
    reports: Mapping[str, CreditReport] | None = None


@dataclass(frozen=True)
class RuleHit:
    code: str
    outcome: str
    description: str
    stage: str

    def as_dict(self) -> dict:
        return {"code": self.code, "outcome": self.outcome, "description": self.description, "stage": self.stage}


class WatchListError(ValueError):
    """A watch-list change that cannot be made; the message is for the officer."""


WATCH_REASON_LIMIT = 200  # as the watch_list table keeps it


def _watch_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise WatchListError("请写明原因")
    if len(reason) > WATCH_REASON_LIMIT:
        raise WatchListError(f"原因不能超过{WATCH_REASON_LIMIT}个字")
    return reason


def watch(session: Session, secret_key: str, id_number: str, reason: str, actor: str) -> tuple[WatchListEntry, bool]:
    """Put a person on the watch list (关注名单) with a reason (required); the ID number is kept
    as a fingerprint. Returns (entry, created): a person already there keeps their entry."""
    id_number = normalize_id_number(id_number)
    reason = _watch_reason(reason)
    fp = fingerprint(secret_key, id_number)
    entry = session.scalar(select(WatchListEntry).where(WatchListEntry.id_fingerprint == fp))
    if entry is not None:
        return entry, False
    entry = WatchListEntry(id_fingerprint=fp, id_masked=mask_id_number(id_number), reason=reason, added_by=actor)
    session.add(entry)
    session.flush()
    audit(session, actor, "watch_list.added", "watch_list", entry.id, id_masked=entry.id_masked, reason=reason)
    return entry, True


def unwatch(session: Session, entry_id: int, reason: str, actor: str) -> str:
    """Take a person off the watch list with a reason (required); the audit log keeps the entry.
    Returns their masked ID number."""
    reason = _watch_reason(reason)
    entry = session.get(WatchListEntry, entry_id)
    if entry is None:
        raise WatchListError("关注名单上没有这一条（可能已被移除）")
    audit(
        session,
        actor,
        "watch_list.removed",
        "watch_list",
        entry.id,
        id_masked=entry.id_masked,
        reason=reason,
        added_reason=entry.reason,
        added_by=entry.added_by,
        added_at=entry.added_at.isoformat(),
    )
    session.delete(entry)
    session.flush()
    return entry.id_masked


def watched(session: Session) -> list[WatchListEntry]:
    """The watch list, latest first."""
    return list(
        session.scalars(select(WatchListEntry).order_by(WatchListEntry.added_at.desc(), WatchListEntry.id.desc()))
    )


@dataclass(frozen=True)
class Check:
    """A check yields the values that fill a rule's description, once per hit."""

    run: Callable[[RiskContext, dict], Iterator[dict]]
    fills: frozenset
    needs_reports: bool = False


CHECKS: dict[str, Check] = {}


def check(name: str, *fills: str):
    """Register a check of the application and the customer."""

    def register(fn):
        CHECKS[name] = Check(fn, frozenset(fills))
        return fn

    return register


def report_check(name: str, *fills: str):
    """Register a check of each party's credit report; it runs only when the reports have arrived."""

    def register(test: Callable[[CreditReport, dict], dict | None]):
        def run(ctx: RiskContext, p: dict) -> Iterator[dict]:
            for role, report in (ctx.reports or {}).items():
                values = test(report, p)
                if values is not None:
                    yield {"party": RISK_LABELS.get(role, role), **values}

        CHECKS[name] = Check(run, frozenset(fills) | {"party"}, needs_reports=True)
        return test

    return register


@check("age", "age")
def _age(ctx: RiskContext, p: dict) -> Iterator[dict]:
    today, born = ctx.now.date(), ctx.birth_date
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not p["min_age"] <= age <= p["max_age"]:
        yield {"age": age}


@check("over_remaining_line", "amount", "available")
def _over_remaining_line(ctx: RiskContext, p: dict) -> Iterator[dict]:
    if ctx.application.amount > ctx.available:
        yield {"amount": ctx.application.amount, "available": ctx.available}


@check("frequent_applications", "count")
def _frequent_applications(ctx: RiskContext, p: dict) -> Iterator[dict]:
    since = ctx.now - timedelta(days=p["days"])
    count = ctx.session.scalar(
        select(func.count())
        .select_from(LoanApplication)
        .where(LoanApplication.customer_id == ctx.customer.id, LoanApplication.created_at >= since)
    )
    if count > p["max_applications"]:
        yield {"count": count}


def household_of(session: Session, customer_id: int) -> set[int]:
    """Everyone in the households the customer heads or belongs to, the customer included."""
    heads = {customer_id} | set(
        session.scalars(select(FamilyMember.customer_id).where(FamilyMember.member_id == customer_id))
    )
    members = set(session.scalars(select(FamilyMember.member_id).where(FamilyMember.customer_id.in_(heads))))
    return heads | members


@check("shared_phone", "count")
def _shared_phone(ctx: RiskContext, p: dict) -> Iterator[dict]:
    if not ctx.customer.phone_fingerprint:
        return
    count = ctx.session.scalar(
        select(func.count())
        .select_from(Customer)
        .where(
            Customer.phone_fingerprint == ctx.customer.phone_fingerprint,
            Customer.id.not_in(household_of(ctx.session, ctx.customer.id)),
        )
    )
    if count:
        yield {"count": count}


@check("id_in_several_households", "count")
def _id_in_several_households(ctx: RiskContext, p: dict) -> Iterator[dict]:
    """A member of another household, or of two; a household head is one who has a village line."""
    cid = ctx.customer.id
    as_member = ctx.session.scalar(
        select(func.count(func.distinct(FamilyMember.customer_id))).where(FamilyMember.member_id == cid)
    )
    as_head = (
        ctx.session.scalar(
            select(func.count())
            .select_from(CreditLine)
            .where(CreditLine.customer_id == cid, CreditLine.source == "whole_village")
        )
        > 0
    )
    if as_member + as_head > 1:
        yield {"count": as_member + as_head}


@check("watch_list", "reason")
def _watch_list(ctx: RiskContext, p: dict) -> Iterator[dict]:
    entry = ctx.session.scalar(
        select(WatchListEntry).where(WatchListEntry.id_fingerprint == ctx.customer.id_fingerprint)
    )
    if entry is not None:
        yield {"reason": entry.reason}


@check("tagged", "tag")
def _tagged(ctx: RiskContext, p: dict) -> Iterator[dict]:
    """The applicant has one of the tags in `params.tags` ({kind: [values]}, lending/tags.yml)."""
    have = pairs_of(ctx.session, ctx.customer.id)
    for kind, values in p["tags"].items():
        for value in values:
            if (kind, value) in have:
                yield {"tag": f"{catalogue().label(kind)}：{value}"}


@report_check("current_overdue", "amount")
def _current_overdue(report: CreditReport, p: dict) -> dict | None:
    if report.has_current_overdue:
        return {"amount": report.summary.get("current_overdue_amount", 0)}
    return None


@report_check("past_overdue", "count")
def _past_overdue(report: CreditReport, p: dict) -> dict | None:
    """Overdue records that are all repaid (a current overdue is the rule above)."""
    count = len(report.overdue_records)
    return {"count": count} if count > p["max_records"] and not report.has_current_overdue else None


@report_check("recent_queries", "count")
def _recent_queries(report: CreditReport, p: dict) -> dict | None:
    count = report.summary.get("queries_last_1m", 0)
    return {"count": count} if count > p["max_queries_1m"] else None


@dataclass(frozen=True)
class Rule:
    code: str
    check: str
    outcome: str
    description: str
    params: dict = field(default_factory=dict)

    def run(self, ctx: RiskContext, stage: str) -> list[RuleHit]:
        return [
            RuleHit(self.code, self.outcome, self.description.format(**self.params, **values), stage)
            for values in CHECKS[self.check].run(ctx, self.params)
        ]


class RuleBook:
    """The rules in force; `evaluate` runs those that apply at a stage."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> RuleBook:
        rules = []
        for row in read_yaml(path):
            rule = Rule(
                code=str(row.get("code", "")),
                check=row.get("check", ""),
                outcome=row.get("outcome", ""),
                description=row.get("description", ""),
                params=row.get("params") or {},
            )
            if not rule.code or not rule.description:
                raise RuleFileError(f"{path.name}: every rule needs a code and a description")
            if rule.check not in CHECKS:
                raise RuleFileError(f"rule {rule.code}: unknown check {rule.check!r}; known: {', '.join(CHECKS)}")
            if rule.outcome not in OUTCOMES:
                raise RuleFileError(f"rule {rule.code}: outcome must be reject or review")
            if rule.check == "tagged":
                try:
                    check_tag_map(f"rule {rule.code}: params.tags", rule.params.get("tags"))
                except TagFileError as exc:
                    raise RuleFileError(str(exc)) from None
            unknown = (
                {name for _, name, _, _ in string.Formatter().parse(rule.description) if name}
                - set(rule.params)
                - CHECKS[rule.check].fills
            )
            if unknown:
                raise RuleFileError(f"rule {rule.code}: description uses unknown {', '.join(sorted(unknown))}")
            rules.append(rule)
        if len({r.code for r in rules}) != len(rules):
            raise RuleFileError(f"{path.name}: rule codes must be unique")
        return cls(rules)

    def evaluate(self, ctx: RiskContext, stage: str) -> list[RuleHit]:
        """Every hit at this stage ('submission' or 'report'), rejections first."""
        hits = [
            hit
            for rule in self.rules
            if ctx.reports is not None or not CHECKS[rule.check].needs_reports
            for hit in rule.run(ctx, stage)
        ]
        return sorted(hits, key=lambda h: h.outcome != "reject")
