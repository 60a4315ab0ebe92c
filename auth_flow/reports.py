"""From the last consent to the reports in the lending service.

When every party the product requires has consented, `fetch_reports` queries their
credit reports from the bureau in parallel and hands them to
`lending.applications.Applications.report_arrived`, which decides.

Never twice for one consent: before any query, one `credit_report_records` row per
authorization is inserted (unique on the authorization) in its own transaction; a
second caller finds them and queries nothing. A timeout or a 5xx is retried with
backoff under the same authorization id (the bureau treats a repeated authorization
id as the same query); a refusal (4xx) is not retried. A query that still fails
leaves the record `failed` with the reason, an audit entry, and the application
waiting; `fetch_reports(..., retry_failed=True)` queries the failed ones again
(no console page or command calls it yet).
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clients.bureau import BureauClient, BureauError, BureauRejected, CreditReport
from lending.applications import PARTY_LABELS, Applications
from lending.reports import parties
from sunshine.db import unit_of_work
from sunshine.models import Authorization, CreditReportRecord, LoanApplication, audit, utcnow
from sunshine.protect import seal, unseal

log = logging.getLogger(__name__)
BACKOFF_S = 0.5  # first retry after 0.5 s, then 1 s, 2 s, ...


@dataclass
class Fetch:
    """What `fetch_reports` did: "waiting" (consents missing), "claimed_elsewhere", "received"
    (the lending service has the reports) or "failed" (some query failed)."""
    state: str
    missing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def missing_consents(session, application: LoanApplication) -> list[str]:
    consented = set(session.scalars(select(Authorization.party_role).where(
        Authorization.application_id == application.id, Authorization.status == "consented")))
    return [role for role in parties(session, application) if role not in consented]


def _claim(settings, application_id: int, retry_failed: bool) -> tuple[Fetch | None, list[tuple]]:
    """Insert the query records (or take back the failed ones): the list of queries to make."""
    with unit_of_work(settings.database_url) as session:
        application = session.get(LoanApplication, application_id)
        missing = missing_consents(session, application)
        if missing:
            return Fetch("waiting", missing=missing), []
        if application.status != "awaiting_authorization":
            return Fetch("claimed_elsewhere"), []
        jobs = []
        for role, person in parties(session, application).items():
            auth = session.scalar(select(Authorization).where(
                Authorization.application_id == application.id, Authorization.party_role == role,
                Authorization.status == "consented"))
            record = session.scalar(select(CreditReportRecord).where(
                CreditReportRecord.authorization_id == auth.id))
            if record is None:
                record = CreditReportRecord(authorization_id=auth.id, application_id=application.id,
                                            party_role=role, status="querying", attempts=0)
                session.add(record)
            elif record.status == "failed" and retry_failed:
                record.status, record.error = "querying", None
            else:
                continue
            jobs.append((role, unseal(settings.secret_key, person.id_sealed), person.name, str(auth.id)))
        try:
            session.flush()
        except IntegrityError:  # another process claimed them a moment ago
            session.rollback()
            return Fetch("claimed_elsewhere"), []
        if not jobs:
            return Fetch("claimed_elsewhere"), []
        audit(session, "system", "credit_reports.querying", "loan_application", application.id,
              parties=[j[0] for j in jobs])
        return None, jobs


def _query(bureau: BureauClient, attempts: int, id_number: str, name: str, authorization_id: str,
           sleep=time.sleep) -> tuple[CreditReport | None, int, str | None]:
    for attempt in range(1, attempts + 1):
        try:
            return bureau.query_report(id_number, name, authorization_id), attempt, None
        except BureauRejected as exc:
            return None, attempt, f"征信中心拒绝查询：{exc.code}"
        except BureauError as exc:
            log.warning("credit report for authorization %s, attempt %d/%d: %s", authorization_id, attempt,
                        attempts, exc)
            if attempt == attempts:
                return None, attempt, f"征信中心暂时无法访问（已尝试{attempts}次）"
            sleep(BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def fetch_reports(settings, application_id: int, bureau: BureauClient | None = None,
                  applications: Applications | None = None, retry_failed: bool = False) -> Fetch:
    """Query every report of the application once consents are complete; give them to lending."""
    done, jobs = _claim(settings, application_id, retry_failed)
    if done is not None:
        return done
    bureau = bureau or BureauClient(settings.bureau_url, timeout=settings.bureau_timeout_s)
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda j: _query(bureau, settings.bureau_attempts, *j[1:]), jobs))
    applications = applications or Applications.from_settings(settings)
    with unit_of_work(settings.database_url) as session:
        failed = {}
        for (role, _, _, auth_id), (report, attempts, error) in zip(jobs, results):
            record = session.scalar(select(CreditReportRecord).where(
                CreditReportRecord.authorization_id == int(auth_id)))
            record.attempts += attempts
            record.finished_at = utcnow()
            if report is None:
                record.status, record.error = "failed", error
                failed[role] = error
            else:
                record.status, record.report_id = "received", report.report_id
                record.report_sealed = seal(settings.secret_key, json.dumps(report.raw, ensure_ascii=False))
        if failed:
            audit(session, "system", "credit_reports.failed", "loan_application", application_id, failed=failed)
            return Fetch("failed", failed=failed)
        reports = received_reports(session, settings.secret_key, application_id)
        if set(reports) != set(parties(session, session.get(LoanApplication, application_id))):
            return Fetch("claimed_elsewhere")  # another query of this application is still out
        applications.report_arrived(session, application_id, reports)
        audit(session, "system", "credit_reports.received", "loan_application", application_id,
              reports={role: r.report_id for role, r in reports.items()})
    return Fetch("received")


def received_reports(session, secret_key: str, application_id: int) -> dict[str, CreditReport]:
    records = session.scalars(select(CreditReportRecord).where(
        CreditReportRecord.application_id == application_id, CreditReportRecord.status == "received"))
    return {r.party_role: CreditReport.from_json(json.loads(unseal(secret_key, r.report_sealed))) for r in records}


def progress_text(session, application: LoanApplication) -> str:
    """For the applicant: who has authorized and who not yet."""
    missing = missing_consents(session, application)
    people = parties(session, application)
    done = [f"{PARTY_LABELS[r]}{people[r].name}" for r in people if r not in missing]
    text = f"征信授权进度（申请编号{application.id}）：已授权：{'、'.join(done) or '暂无'}"
    if missing:
        return text + f"；还需授权：{'、'.join(PARTY_LABELS[r] + people[r].name for r in missing)}。"
    return text + "。全部授权完成，正在查询征信报告。"
