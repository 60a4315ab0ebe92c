"""The annual inspection of pre-granted lines (智能年检, 增持减退).

Each line whose validity ends within the rules' window (lending/inspection_rules.yml) is
judged against last year's snapshot (`CreditLine.baseline`): the household's income from the
latest village file's tags, the instalments the core says are overdue now (the live loans are
synchronised first), the latest consented credit report, the watch list and negative tags.

- The income band (a tag of lending/tags.yml, compared by its place in the catalogue's order)
  moved at most the steps allowed and nothing negative: **passed off-site**. The line is kept
  (same band), raised or lowered by the rules' percentage per band (增持减退), valid
  `extend_months` longer, its baseline becomes today's data, and the customer is told in WeChat
  (after the commit, through the notice policy).
- Otherwise: an **on-site task** for the household's officer, with a deadline; the officer's
  findings, conclusion (通过 / 调减 / 收回) and photos are saved, and locked once submitted.

A batch (`run_batch`, `python -m lending annual-inspection`) works through the due lines in
chunks, one transaction each, keeping its counts in `inspection_batches` so the console shows
its progress. A line is inspected once per validity end (unique), so a re-run, or a second
process at the same time, inspects nothing twice; a household the core cannot answer for is
left for the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from clients.bureau import CreditReport
from clients.corebank import CoreBankingClient, CoreBankingError
from lending.loans import LIVE_STATUSES, sync_loan
from lending.notify import OfficerNotifier, notify_officer
from lending.repayment import add_months
from lending.tags import TagFileError, catalogue, check_tag_map, tag_map
from sunshine import clock
from sunshine.clock import customer_date
from sunshine.db import unit_of_work
from sunshine.jobs import after_commit
from sunshine.models import (
    Authorization,
    CreditLine,
    CreditReportRecord,
    Customer,
    CustomerTag,
    InspectionBatch,
    InspectionPhoto,
    LineInspection,
    Loan,
    LoanInstalment,
    Officer,
    WatchListEntry,
    audit,
)
from sunshine.protect import mask_name, unseal
from sunshine.yaml_files import read_yaml

log = logging.getLogger(__name__)
RULES_FILE = Path(__file__).with_name("inspection_rules.yml")
CHUNK = 200  # lines judged in one transaction
NOTICE_KIND = "credit_line_inspection"
# The officer's conclusion on site and the outcome it gives the line.
CONCLUSIONS = {"pass": "通过", "lower": "调减", "withdraw": "收回"}
OUTCOMES = {"pass": "kept", "lower": "lowered", "withdraw": "withdrawn"}
OUTCOME_LABELS = {"kept": "额度维持", "raised": "额度上调", "lowered": "额度调减", "withdrawn": "额度收回"}
MAX_PHOTOS = 9
MAX_PHOTO_BYTES = 8_000_000
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}  # by their first bytes


class InspectionRulesError(ValueError):
    """The rules file cannot be used; the message names the setting and what is wrong."""


class InspectionError(ValueError):
    """An officer's action on an inspection refused; the message is for the officer (nothing changed)."""


class Locked(InspectionError):
    """A change to an inspection already submitted (the refusal is in the session's audit log)."""


# --- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    window_days: int
    grace_days: int
    income_tag: str
    income_bands: tuple[str, ...]  # the tag's values, lowest first, as lending/tags.yml lists them
    max_band_steps_offsite: int
    max_overdue_instalments: int
    report_max_age_days: int
    report_current_overdue: bool
    max_new_report_overdue_records: int
    watch_list: bool
    negative_tags: dict[str, frozenset[str]]
    raise_per_band_pct: float
    lower_per_band_pct: float
    round_to: int
    max_amount: int
    extend_months: int
    deadline_days: int

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> Rules:
        """Read and check the rules file (InspectionRulesError naming what is wrong)."""
        try:
            data = read_yaml(path)
        except (OSError, yaml.YAMLError) as exc:
            raise InspectionRulesError(f"{path.name}: cannot be read: {exc}") from None
        return cls.parse(data, path.name)

    @classmethod
    def parse(cls, data: Any, name: str = "inspection rules") -> Rules:
        def get(dotted: str) -> Any:
            node = data
            for key in dotted.split("."):
                if not isinstance(node, dict) or key not in node:
                    raise InspectionRulesError(f"{name}: {dotted} is missing")
                node = node[key]
            return node

        def number(dotted: str, low: float, high: float, whole: bool = True) -> Any:
            value = get(dotted)
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                raise InspectionRulesError(f"{name}: {dotted} must be a {'whole ' if whole else ''}number")
            if not low <= value <= high:
                raise InspectionRulesError(f"{name}: {dotted} must be between {low:g} and {high:g}, not {value}")
            return value

        def flag(dotted: str) -> bool:
            value = get(dotted)
            if not isinstance(value, bool):
                raise InspectionRulesError(f"{name}: {dotted} must be true or false")
            return value

        income_tag = get("income.tag")
        kind = catalogue().kinds.get(income_tag) if isinstance(income_tag, str) else None
        if kind is None or kind.multiple:
            raise InspectionRulesError(
                f"{name}: income.tag must name a one-value kind of tags.yml (its values are the bands, lowest first),"
                f" not {income_tag!r}"
            )
        negative = get("negative.tags")
        if not isinstance(negative, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in negative.items()
        ):
            raise InspectionRulesError(f"{name}: negative.tags must map a tag name to a list of values")
        try:
            check_tag_map("negative.tags", {k: v for k, v in negative.items() if v})
        except TagFileError as exc:
            raise InspectionRulesError(f"{name}: {exc}") from None
        rules = cls(
            window_days=number("due.window_days", 0, 366),
            grace_days=number("due.grace_days", 0, 366),
            income_tag=kind.code,
            income_bands=kind.values,
            max_band_steps_offsite=number("income.max_band_steps_offsite", 0, len(kind.values) - 1),
            max_overdue_instalments=number("negative.max_overdue_instalments", 0, 1000),
            report_max_age_days=number("negative.report_max_age_days", 1, 3660),
            report_current_overdue=flag("negative.report_current_overdue"),
            max_new_report_overdue_records=number("negative.max_new_report_overdue_records", 0, 1000),
            watch_list=flag("negative.watch_list"),
            negative_tags={k: frozenset(v) for k, v in negative.items()},
            raise_per_band_pct=number("adjust.raise_per_band_pct", 0, 100, whole=False),
            lower_per_band_pct=number("adjust.lower_per_band_pct", 0, 100, whole=False),
            round_to=number("adjust.round_to", 1, 100_000),
            max_amount=number("adjust.max_amount", 1, 5_000_000),
            extend_months=number("extend_months", 1, 60),
            deadline_days=number("on_site.deadline_days", 1, 180),
        )
        if rules.lower_per_band_pct * rules.max_band_steps_offsite >= 100:
            raise InspectionRulesError(
                f"{name}: adjust.lower_per_band_pct times income.max_band_steps_offsite must stay below 100"
                " (a line lowered off-site would be nothing)"
            )
        return rules

    def band(self, tags: dict[str, Any]) -> int | None:
        """The household's income band by its place in the catalogue's order (0: the lowest);
        None when the tag is missing or not one of the catalogue's bands."""
        value = tags.get(self.income_tag)
        return self.income_bands.index(value) if value in self.income_bands else None


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    """The rules of lending/inspection_rules.yml, read and checked once per process."""
    return Rules.load()


# --- judging one household -------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the inspection sees of a household today."""

    tags: dict[str, Any]
    overdue_instalments: int = 0
    report_current_overdue: bool | None = None  # None: no consented report recent enough
    report_overdue_records: int | None = None
    watch_reason: str | None = None


@dataclass(frozen=True)
class Judgement:
    mode: str  # off_site | on_site
    outcome: str | None  # kept | raised | lowered (off-site); None on site
    new_amount: int
    reasons: list[dict[str, str]] = field(default_factory=list)
    band_steps: int | None = None  # this year's band less last year's; None when either is unknown


def judge(rules: Rules, amount: int, baseline: dict[str, Any], facts: Facts) -> Judgement:
    """Off-site or on site, and the new line (a pure function of the rules and the data)."""
    reasons: list[dict[str, str]] = []
    label = catalogue().label(rules.income_tag)
    before, now = rules.band(baseline.get("tags") or {}), rules.band(facts.tags)
    steps: int | None = None
    if before is None or now is None:
        years = "去年和今年" if before is None and now is None else "去年" if before is None else "今年"
        reasons.append({"code": "income_unknown", "text": f"{years}的{label}档次不明，无法比较，需上门核查"})
    else:
        steps = now - before
        if abs(steps) > rules.max_band_steps_offsite:
            reasons.append(
                {
                    "code": "income_changed",
                    "text": f"{label}由{rules.income_bands[before]}变为{rules.income_bands[now]}，"
                    f"跨{abs(steps)}档，需上门核查",
                }
            )
    if facts.overdue_instalments > rules.max_overdue_instalments:
        reasons.append({"code": "overdue", "text": f"核心系统显示有{facts.overdue_instalments}期贷款逾期未还"})
    if rules.report_current_overdue and facts.report_current_overdue:
        reasons.append({"code": "report_current_overdue", "text": "征信报告显示当前有逾期"})
    if facts.report_overdue_records is not None:
        new = facts.report_overdue_records - int(baseline.get("report_overdue_records", facts.report_overdue_records))
        if new > rules.max_new_report_overdue_records:
            reasons.append({"code": "report_new_overdue", "text": f"征信报告比去年新增{new}条逾期记录"})
    if rules.watch_list and facts.watch_reason is not None:
        reasons.append({"code": "watch_list", "text": f"户主在关注名单上：{facts.watch_reason}"})
    for key, bad in rules.negative_tags.items():
        value = str(facts.tags.get(key) or "")
        if value in bad:
            reasons.append({"code": "negative_tag", "text": f"标签“{key}={value}”需要上门核实"})
    if reasons or before is None or now is None or steps is None:  # no reason: both bands are known
        return Judgement("on_site", None, amount, reasons, steps)
    if steps == 0:
        text = f"{label}仍为{rules.income_bands[now]}，无逾期和负面信息，额度维持{amount:,}元"
        return Judgement("off_site", "kept", amount, [{"code": "passed", "text": text}], steps)
    share = steps * (rules.raise_per_band_pct if steps > 0 else rules.lower_per_band_pct)
    new_amount = min(int(amount * (100 + share) / 100) // rules.round_to * rules.round_to, rules.max_amount)
    if steps > 0:
        new_amount = max(new_amount, amount)  # rounding or the ceiling never turns a raise into a cut
    new_amount = max(new_amount, rules.round_to)
    outcome = "raised" if new_amount > amount else "lowered" if new_amount < amount else "kept"
    if outcome == "kept":
        result = f"额度已到上限，维持{amount:,}元"
    else:
        result = f"额度按每档{abs(share / steps):g}%由{amount:,}元{'上调' if steps > 0 else '下调'}为{new_amount:,}元"
    moved = f"{label}由{rules.income_bands[before]}{'升' if steps > 0 else '降'}至{rules.income_bands[now]}"
    text = f"{moved}（{abs(steps)}档），无逾期和负面信息，{result}"
    return Judgement("off_site", outcome, new_amount, [{"code": "passed", "text": text}], steps)


def granted_baseline(amount: int, tags: dict[str, str]) -> dict[str, Any]:
    """A line's first snapshot: the amount and the household's tags when it was granted."""
    return {"amount": amount, "tags": tags, "on": clock.today().isoformat()}


def snapshot(amount: int, facts: Facts, on: date) -> dict[str, Any]:
    """The data judged today: next year's baseline once the line passes."""
    data: dict[str, Any] = {
        "amount": amount,
        "tags": facts.tags,
        "on": on.isoformat(),
        "overdue_instalments": facts.overdue_instalments,
    }
    if facts.report_overdue_records is not None:
        data["report_overdue_records"] = facts.report_overdue_records
    return data


# --- the batch -------------------------------------------------------------------------------


@dataclass
class BatchReport:
    batch_id: int
    total: int = 0
    counts: Counter = field(default_factory=Counter)  # kept, raised, lowered, on_site, failed
    failed: dict[int, str] = field(default_factory=dict)  # credit line id -> why


Notifier = Callable[..., None]
Progress = Callable[[int, int | None], None]


def due_line_ids(session: Session, rules: Rules, today: date, village: str | None = None) -> list[int]:
    """Lines whose validity ends within the window (or ended within the grace), not yet inspected for it."""
    done = select(LineInspection.id).where(
        LineInspection.credit_line_id == CreditLine.id, LineInspection.due_on == CreditLine.valid_until
    )
    query = select(CreditLine.id).where(
        CreditLine.valid_until <= today + timedelta(days=rules.window_days),
        CreditLine.valid_until >= today - timedelta(days=rules.grace_days),
        ~done.exists(),
    )
    if village:
        query = query.join(Customer, Customer.id == CreditLine.customer_id).where(Customer.village == village)
    return list(session.scalars(query.order_by(CreditLine.id)))


def start_batch(settings, rules: Rules, today: date, village: str | None, actor: str) -> tuple[int, list[int]]:
    """Record a batch with the lines due; returns its id and the lines."""
    with unit_of_work(settings.database_url) as session:
        ids = due_line_ids(session, rules, today, village)
        batch = InspectionBatch(village=village, run_on=today, started_by=actor, total=len(ids), status="running")
        session.add(batch)
        session.flush()
        audit(session, actor, "inspection.batch_started", "inspection_batch", batch.id, village=village, total=len(ids))
        return batch.id, ids


def run_batch(
    settings,
    notify: Notifier,
    rules: Rules,
    core: CoreBankingClient | None = None,
    today: date | None = None,
    village: str | None = None,
    actor: str = "system",
    progress: Progress | None = None,
    tell_officer: OfficerNotifier = notify_officer,
) -> BatchReport:
    """Inspect every line due (the module docstring); `notify(openid, text, kind=, fields=)`."""
    core = core or CoreBankingClient.from_settings(settings)
    today = today or clock.today()
    batch_id, ids = start_batch(settings, rules, today, village, actor)
    report = BatchReport(batch_id, total=len(ids))
    if progress:
        progress(0, len(ids))
    try:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            with unit_of_work(settings.database_url) as session:
                counts = _inspect_chunk(session, settings, rules, core, notify, today, chunk, batch_id, report)
                batch = _batch(session, batch_id)
                for name, n in counts.items():
                    setattr(batch, name, getattr(batch, name) + n)
                batch.done += len(chunk)
            report.counts.update(counts)
            if progress:
                progress(min(start + CHUNK, len(ids)), len(ids))
        with unit_of_work(settings.database_url) as session:
            _tell_officers(session, batch_id, tell_officer)
            batch = _batch(session, batch_id)
            batch.status, batch.finished_at = "done", clock.utcnow()
    except Exception:
        with unit_of_work(settings.database_url) as session:
            batch = _batch(session, batch_id)
            batch.status, batch.finished_at = "failed", clock.utcnow()
        raise
    return report


def _batch(session: Session, batch_id: int) -> InspectionBatch:
    batch = session.get(InspectionBatch, batch_id)
    if batch is None:
        raise LookupError(f"no inspection batch {batch_id}")
    return batch


def _inspect_chunk(
    session: Session,
    settings,
    rules: Rules,
    core: CoreBankingClient,
    notify: Notifier,
    today: date,
    ids: list[int],
    batch_id: int,
    report: BatchReport,
) -> Counter:
    lines = session.scalars(
        select(CreditLine)
        .where(CreditLine.id.in_(ids))
        .options(joinedload(CreditLine.customer))
        .order_by(CreditLine.id)
    ).all()
    customers = {line.customer_id: line.customer for line in lines}
    watched: dict[str, str] = {
        row.id_fingerprint: row.reason
        for row in session.execute(
            select(WatchListEntry.id_fingerprint, WatchListEntry.reason).where(
                WatchListEntry.id_fingerprint.in_([c.id_fingerprint for c in customers.values()])
            )
        )
    }
    overdue, failed = _overdue_at_core(session, core, list(customers))
    reports = _latest_reports(session, settings.secret_key, list(customers), today, rules.report_max_age_days)
    pairs: dict[int, list[tuple[str, str]]] = {cid: [] for cid in customers}
    for row in session.execute(
        select(CustomerTag.customer_id, CustomerTag.kind, CustomerTag.value)
        .where(CustomerTag.customer_id.in_(list(customers)))
        .order_by(CustomerTag.id)
    ):
        pairs[row.customer_id].append((row.kind, row.value))
    counts: Counter = Counter()
    for line in lines:
        customer = line.customer
        if customer.id in failed:
            report.failed[line.id] = failed[customer.id]
            counts["failed"] += 1
            continue
        got = reports.get(customer.id)
        facts = Facts(
            tags=tag_map(pairs[customer.id]),
            overdue_instalments=overdue.get(customer.id, 0),
            report_current_overdue=got.has_current_overdue if got else None,
            report_overdue_records=len(got.overdue_records) if got else None,
            watch_reason=watched.get(customer.id_fingerprint),
        )
        result = judge(rules, line.amount, line.baseline or {}, facts)
        inspection = LineInspection(
            batch_id=batch_id,
            credit_line_id=line.id,
            customer_id=customer.id,
            due_on=line.valid_until,
            mode=result.mode,
            outcome=result.outcome,
            reasons=result.reasons,
            before=line.baseline or {},
            after=snapshot(line.amount, facts, today),
            old_amount=line.amount,
            findings="",
        )
        if result.mode == "off_site":
            _pass(session, line, inspection, result.new_amount, rules, today, notify)
        else:
            inspection.officer_id = customer.officer_id
            inspection.deadline = today + timedelta(days=rules.deadline_days)
        session.add(inspection)
        counts[result.outcome or "on_site"] += 1
    try:
        session.flush()
    except IntegrityError:  # another run inspected some of these lines first: this chunk is theirs
        session.rollback()
        log.info("inspection chunk from line %s taken by another run", ids[0])
        return Counter()
    return counts


def _overdue_at_core(
    session: Session, core: CoreBankingClient, customer_ids: list[int]
) -> tuple[dict[int, int], dict[int, str]]:
    """Per customer, the instalments the core says are overdue (each live loan synchronised
    first), and the customers the core could not answer for."""
    loan_ids = session.execute(
        select(Loan.id, Loan.customer_id).where(Loan.customer_id.in_(customer_ids), Loan.status.in_(LIVE_STATUSES))
    ).all()
    failed: dict[int, str] = {}
    for loan_id, customer_id in loan_ids:
        try:
            sync_loan(session, core, loan_id)
        except CoreBankingError as exc:
            log.warning("loan %s not synchronised, its household waits for the next run: %s", loan_id, exc)
            failed[customer_id] = str(exc)
    session.flush()
    counts = Counter(
        customer_id
        for customer_id, _ in session.execute(
            select(Loan.customer_id, LoanInstalment.id)
            .join(LoanInstalment, LoanInstalment.loan_id == Loan.id)
            .where(Loan.customer_id.in_(customer_ids), LoanInstalment.status == "overdue")
        )
    )
    return dict(counts), failed


def _latest_reports(
    session: Session, secret_key: str, customer_ids: list[int], today: date, max_age_days: int
) -> dict[int, CreditReport]:
    """Each customer's latest credit report received under their own consent, when recent enough."""
    since = datetime.combine(today - timedelta(days=max_age_days), datetime.min.time())
    rows = session.execute(
        select(Authorization.party_customer_id, CreditReportRecord.report_sealed)
        .join(CreditReportRecord, CreditReportRecord.authorization_id == Authorization.id)
        .where(
            Authorization.party_customer_id.in_(customer_ids),
            Authorization.status == "consented",
            CreditReportRecord.status == "received",
            CreditReportRecord.finished_at >= since,
        )
        .order_by(CreditReportRecord.finished_at)
    ).all()
    return {
        customer_id: CreditReport.from_json(json.loads(unseal(secret_key, sealed)))
        for customer_id, sealed in rows
        if sealed
    }


def _pass(
    session: Session,
    line: CreditLine,
    inspection: LineInspection,
    new_amount: int,
    rules: Rules,
    today: date,
    notify: Notifier,
    actor: str = "system",
) -> None:
    """The line passes: its new amount and validity, this year's data as its baseline, the customer told."""
    old_amount, valid_until = line.amount, add_months(max(line.valid_until, today), rules.extend_months)
    inspection.new_amount, inspection.new_valid_until = new_amount, valid_until
    line.amount, line.valid_until, line.baseline = new_amount, valid_until, inspection.after | {"amount": new_amount}
    if new_amount != old_amount:
        audit(
            session,
            actor,
            "credit_line.raised" if new_amount > old_amount else "credit_line.lowered",
            "customer",
            line.customer_id,
            old=old_amount,
            new=new_amount,
            by="annual_inspection",
        )
    customer = line.customer
    if customer.wechat_openid:
        text = passed_text(customer.name, old_amount, new_amount, valid_until)
        fields = {"amount": new_amount, "status": "年检通过", "due_date": customer_date(valid_until)}
        after_commit(session, partial(notify, customer.wechat_openid, text, kind=NOTICE_KIND, fields=fields))


def passed_text(name: str, old_amount: int, new_amount: int, valid_until: date) -> str:
    """The customer's notice of a passed inspection."""
    if new_amount > old_amount:
        what = f"额度由{old_amount:,}元上调为{new_amount:,}元"
    elif new_amount < old_amount:
        what = f"额度由{old_amount:,}元调整为{new_amount:,}元"
    else:
        what = f"额度{new_amount:,}元保持不变"
    return (
        f"{mask_name(name)}您好，您的预授信额度已通过今年的年检，{what}，有效期延长到{customer_date(valid_until)}。"
        "需要用款时直接在这里说“我要贷款”就行。"
    )


def _tell_officers(session: Session, batch_id: int, tell_officer: OfficerNotifier) -> None:
    """One WeCom notice per officer with the households this batch sent them to visit."""
    rows = session.execute(
        select(LineInspection.officer_id, LineInspection.deadline).where(
            LineInspection.batch_id == batch_id, LineInspection.mode == "on_site"
        )
    ).all()
    per_officer = Counter(officer_id for officer_id, _ in rows)
    deadline = max((d for _, d in rows if d is not None), default=None)
    for officer_id, n in per_officer.items():
        tell_officer(
            session,
            officer_id,
            f"本次年检有{n}户需要上门核查，请在{customer_date(deadline) if deadline else '期限内'}前完成，"
            "在工作台“年检”中填写核查情况并上传照片。",
        )


# --- the officer's on-site task ----------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    data: bytes
    filename: str = ""


def photo_type(data: bytes) -> str:
    """image/jpeg or image/png by the file's first bytes (InspectionError otherwise)."""
    if not data:
        raise InspectionError("照片文件是空的，请重新选择")
    if len(data) > MAX_PHOTO_BYTES:
        raise InspectionError(f"照片太大（超过{MAX_PHOTO_BYTES // 1_000_000}MB），请压缩后再上传")
    kind = next((t for magic, t in PHOTO_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise InspectionError("只能上传JPEG或PNG格式的照片，这个文件不是")
    return kind


def may_act(officer: Officer, inspection: LineInspection) -> bool:
    """The household's officer (or, when it has none, any officer), and supervisors."""
    return officer.role == "supervisor" or inspection.officer_id in (None, officer.id)


def _refuse_locked(session: Session, inspection: LineInspection, officer: Officer, what: str) -> None:
    """A change to a submitted inspection: recorded, and refused with the reason."""
    audit(
        session, f"officer:{officer.username}", "inspection.refused_locked", "line_inspection", inspection.id, what=what
    )
    at = clock.in_beijing(inspection.submitted_at).strftime("%Y-%m-%d %H:%M") if inspection.submitted_at else ""
    raise Locked(f"这次年检已于{at}提交并锁定，不能再修改；如有新情况请联系主管。")


def save(
    session: Session,
    inspection_id: int,
    officer: Officer,
    findings: str,
    conclusion: str | None,
    new_amount: int | None,
    photos: Iterable[Photo] = (),
) -> LineInspection:
    """Keep the officer's findings, conclusion and photos so far (not locked)."""
    inspection = _for_officer(session, inspection_id, officer)
    if inspection.submitted_at is not None:
        _refuse_locked(session, inspection, officer, "save")
    _write(session, inspection, officer, findings, conclusion, new_amount, list(photos))
    audit(
        session,
        f"officer:{officer.username}",
        "inspection.saved",
        "line_inspection",
        inspection.id,
        photos=len(inspection.photos),
    )
    return inspection


def submit(
    session: Session,
    inspection_id: int,
    officer: Officer,
    findings: str,
    conclusion: str | None,
    new_amount: int | None,
    photos: Iterable[Photo] = (),
    notify: Notifier | None = None,
    rules: Rules | None = None,
    today: date | None = None,
) -> LineInspection:
    """Submit and lock the on-site inspection; the line follows the conclusion (通过: valid a year
    longer; 调减: the lower amount; 收回: no longer valid) and the customer is told."""
    inspection = _for_officer(session, inspection_id, officer)
    if inspection.submitted_at is not None:
        _refuse_locked(session, inspection, officer, "submit")
    photos = list(photos)
    if not (findings or "").strip():
        raise InspectionError("请填写现场核查情况")
    if conclusion not in CONCLUSIONS:
        raise InspectionError("请选择核查结论：通过、调减或收回")
    if not inspection.photos and not photos:
        raise InspectionError("请至少上传一张现场照片")
    _write(session, inspection, officer, findings, conclusion, new_amount, photos)
    rules = rules or default_rules()
    today = today or clock.today()
    line = session.get(CreditLine, inspection.credit_line_id, with_for_update=True)
    if line is None:
        raise LookupError(f"no credit line {inspection.credit_line_id}")
    now = clock.utcnow()
    inspection.submitted_at, inspection.submitted_by = now, f"officer:{officer.username}"
    inspection.outcome = OUTCOMES[conclusion]
    if inspection.conclusion == "withdraw":
        inspection.new_amount, inspection.new_valid_until = line.amount, today - timedelta(days=1)
        line.valid_until = inspection.new_valid_until
        audit(
            session, inspection.submitted_by, "credit_line.withdrawn", "customer", line.customer_id, amount=line.amount
        )
        if notify and line.customer.wechat_openid:
            text = (
                f"{mask_name(line.customer.name)}您好，经客户经理上门年检，您的预授信额度已收回。有疑问请回复“转人工”。"
            )
            after_commit(session, partial(notify, line.customer.wechat_openid, text, kind=NOTICE_KIND, fields={}))
    else:
        amount = line.amount if inspection.conclusion == "pass" else int(inspection.new_amount or 0)
        _pass(session, line, inspection, amount, rules, today, notify or _nobody, inspection.submitted_by or "")
    audit(
        session,
        inspection.submitted_by,
        "inspection.submitted",
        "line_inspection",
        inspection.id,
        conclusion=inspection.conclusion,
        new_amount=inspection.new_amount,
        photos=[p.sha256 for p in inspection.photos],
    )
    return inspection


def _nobody(*args, **kwargs) -> None:
    """No customer notice (a caller that tells the customer itself, or not at all)."""


def _for_officer(session: Session, inspection_id: int, officer: Officer) -> LineInspection:
    inspection = session.get(LineInspection, inspection_id, with_for_update=True)
    if inspection is None:
        raise LookupError(f"no inspection {inspection_id}")
    if inspection.mode != "on_site":
        raise InspectionError("这户已经非现场年检通过，不需要上门核查")
    if not may_act(officer, inspection):
        audit(session, f"officer:{officer.username}", "inspection.refused_other", "line_inspection", inspection.id)
        raise PermissionError("这是其他客户经理的年检任务，只有主管可以处理")
    return inspection


def _write(
    session: Session,
    inspection: LineInspection,
    officer: Officer,
    findings: str,
    conclusion: str | None,
    new_amount: int | None,
    photos: list[Photo],
) -> None:
    findings = (findings or "").strip()
    if len(findings) > 2000:
        raise InspectionError("核查情况不能超过2000字")
    if conclusion and conclusion not in CONCLUSIONS:
        raise InspectionError("核查结论只能是通过、调减或收回")
    if conclusion == "lower":
        if new_amount is None or not 0 < new_amount < inspection.old_amount:
            raise InspectionError(f"调减后的额度应大于0、小于原额度{inspection.old_amount:,}元")
    else:
        new_amount = None
    if len(inspection.photos) + len(photos) > MAX_PHOTOS:
        raise InspectionError(f"每户最多上传{MAX_PHOTOS}张照片")
    checked = [(p, photo_type(p.data)) for p in photos]  # all checked before anything is kept
    inspection.findings, inspection.conclusion, inspection.new_amount = findings, conclusion or None, new_amount
    inspection.saved_at = clock.utcnow()
    for p, kind in checked:
        inspection.photos.append(
            InspectionPhoto(
                content_type=kind,
                size=len(p.data),
                sha256=hashlib.sha256(p.data).hexdigest(),
                data=p.data,
                uploaded_by=f"officer:{officer.username}",
            )
        )


# --- what others read --------------------------------------------------------------------------


@dataclass(frozen=True)
class DueInspection:
    """An on-site inspection not yet submitted, and the days left until its deadline."""

    inspection: LineInspection
    days_left: int | None  # negative: overdue; None: no deadline

    @property
    def overdue(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def deadline_text(self) -> str:
        """还剩3天 / 今天到期 / 已超期2天, as officers read it."""
        if self.days_left is None:
            return "没有期限"
        if self.days_left < 0:
            return f"已超期{-self.days_left}天"
        return f"还剩{self.days_left}天" if self.days_left else "今天到期"


def open_tasks(session: Session, today: date, officer_id: int | None = None) -> list[DueInspection]:
    """The on-site inspections not yet submitted (one officer's, or everyone's), by deadline."""
    query = (
        select(LineInspection)
        .where(LineInspection.mode == "on_site", LineInspection.submitted_at.is_(None))
        .options(joinedload(LineInspection.customer), joinedload(LineInspection.officer))
        .order_by(LineInspection.deadline, LineInspection.id)
    )
    if officer_id is not None:
        query = query.where(LineInspection.officer_id == officer_id)
    return [
        DueInspection(i, (i.deadline - today).days if i.deadline is not None else None) for i in session.scalars(query)
    ]


def due_for_officer(session: Session, officer_id: int, today: date) -> list[DueInspection]:
    """The officer's on-site inspections not yet submitted, by deadline (overdue ones first),
    each with the days left on `today` (the officers' home page shows them)."""
    return open_tasks(session, today, officer_id)


def latest_of(session: Session, customer_id: int) -> LineInspection | None:
    return session.scalar(
        select(LineInspection)
        .where(LineInspection.customer_id == customer_id)
        .order_by(LineInspection.created_at.desc(), LineInspection.id.desc())
    )


def status_of(session: Session, customer_id: int, today: date, rules: Rules | None = None) -> str:
    """The customer's annual inspection as they read it (与年检状态)."""
    latest = latest_of(session, customer_id)
    line = session.scalar(
        select(CreditLine).where(CreditLine.customer_id == customer_id).order_by(CreditLine.valid_until.desc())
    )
    if latest is not None and latest.mode == "on_site" and latest.submitted_at is None:
        return f"待客户经理上门核查（{customer_date(latest.deadline)}前）" if latest.deadline else "待客户经理上门核查"
    how = "非现场" if latest is not None and latest.mode == "off_site" else "客户经理上门"
    if latest is not None and latest.outcome == "withdrawn":
        return f"{how}年检后额度已收回"
    if line is not None and (latest is None or latest.due_on != line.valid_until):
        window = (rules or default_rules()).window_days
        if line.valid_until <= today + timedelta(days=window):
            return "待年检（到期前银行会自动核查）"
    if latest is None:
        return "未到年检时间"
    return f"已通过（{how}年检，{OUTCOME_LABELS.get(latest.outcome or '', '')}）"


def batch_summary(session: Session, batch_id: int) -> dict[str, int]:
    """The batch's counts and, of those it sent on site, how many officers have completed."""
    batch = session.get(InspectionBatch, batch_id)
    if batch is None:
        raise LookupError(f"no batch {batch_id}")
    completed = session.scalar(
        select(func.count()).where(
            LineInspection.batch_id == batch_id,
            LineInspection.mode == "on_site",
            LineInspection.submitted_at.is_not(None),
        )
    )
    return {
        "total": batch.total,
        "done": batch.done,
        "kept": batch.kept,
        "raised": batch.raised,
        "lowered": batch.lowered,
        "passed": batch.kept + batch.raised + batch.lowered,
        "on_site": batch.on_site,
        "on_site_done": completed,
        "failed": batch.failed,
    }
