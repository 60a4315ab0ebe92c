"""From the last consent to the reports in the lending service.

When every party the product requires has consented, the web request enqueues
`fetch_job` (sunshine.jobs.Jobs.fetch_reports) after its commit; a worker runs
`fetch_reports`, which queries the parties' credit reports from the bureau in parallel
and hands them to `lending.applications.Applications.report_arrived`, which decides.

Never twice for one consent: before any query, one `credit_report_records` row per
authorization is inserted (unique on the authorization) in its own transaction; a
second caller finds them and queries nothing. A timeout or a 5xx is retried with
backoff under the same authorization id, sent as the bureau's Idempotency-Key (the
bureau answers a repeated key with the same report and no second query record); a
refusal (4xx) is not retried. A query that still fails leaves the record `failed`
with the reason, the application waiting, and the officer told (auth_flow.notices);
`python -m auth_flow retry-reports APPLICATION_ID` queries the failed ones again.

Restart-safe: a record still `querying` after REPORT_QUERY_STALE_S (its process died
mid-query) is taken back by the next `fetch_reports` of that application (one taker:
a conditional UPDATE) and queried again under the same key. `sweep_reports` (run
every minute by `python -m auth_flow sweep-reports --every 60`, a `make run` process)
finds those, and applications whose consents are complete (the last SWEEP_AFTER_S ago)
but whose job never ran.
A job put back by the worker after its worker died (`conversation.worker`) takes its
own `querying` records back at once (`retake=True`), without waiting for them to go stale.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from rq import get_current_job
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from auth_flow import notices
from auth_flow.progress import missing_consents
from clients.bureau import BureauClient, BureauError, BureauRejected, CreditReport
from lending.applications import Applications
from lending.reports import parties
from sunshine.db import unit_of_work
from sunshine.jobs import current_settings
from sunshine.models import Authorization, CreditReportRecord, LoanApplication, audit, utcnow
from sunshine.protect import seal, unseal

log = logging.getLogger(__name__)
BACKOFF_S = 0.5  # first retry after 0.5 s, then 1 s, 2 s, ...
# The sweep leaves an application to the job its last consent enqueued for this long: a job still
# queued behind others must not find its queries claimed by a sweep (on a node that may then die
# mid-query, leaving them to go stale: REPORT_QUERY_STALE_S).
SWEEP_AFTER_S = 60


@dataclass
class Fetch:
    """What `fetch_reports` did: "waiting" (consents missing), "claimed_elsewhere", "received"
    (the lending service has the reports) or "failed" (some query failed)."""

    state: str
    missing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _take_back(session, record: CreditReportRecord, *conditions) -> bool:
    """Set `record` querying again if it still meets `conditions` (one taker among racing processes)."""
    taken = session.execute(
        update(CreditReportRecord)
        .where(CreditReportRecord.id == record.id, *conditions)
        .values(status="querying", error=None, started_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def _application(session, application_id: int) -> LoanApplication:
    application = session.get(LoanApplication, application_id)
    if application is None:
        raise LookupError(f"no loan application {application_id}")
    return application


def _claim(settings, application_id: int, retry_failed: bool, retake: bool = False) -> tuple[Fetch | None, list[tuple]]:
    """Insert the query records (or take back the failed or stale ones; with `retake`, every one
    still `querying`: its process is known dead): the list of queries to make."""
    with unit_of_work(settings.database_url) as session:
        application = _application(session, application_id)
        missing = missing_consents(session, application)
        if missing:
            return Fetch("waiting", missing=missing), []
        if application.status != "awaiting_authorization":
            return Fetch("claimed_elsewhere"), []
        stale_before = utcnow() - timedelta(seconds=settings.report_query_stale_s)
        jobs, requeried = [], []
        for role, person in parties(session, application).items():
            auth = session.scalar(
                select(Authorization).where(
                    Authorization.application_id == application.id,
                    Authorization.party_role == role,
                    Authorization.status == "consented",
                )
            )
            record = session.scalar(select(CreditReportRecord).where(CreditReportRecord.authorization_id == auth.id))
            if record is None:
                session.add(
                    CreditReportRecord(
                        authorization_id=auth.id,
                        application_id=application.id,
                        party_role=role,
                        status="querying",
                        attempts=0,
                    )
                )
            elif record.status == "failed" and retry_failed:
                if not _take_back(session, record, CreditReportRecord.status == "failed"):
                    continue
            elif record.status == "querying" and (retake or record.started_at < stale_before):
                if not _take_back(
                    session,
                    record,
                    CreditReportRecord.status == "querying",
                    CreditReportRecord.started_at == record.started_at,
                ):
                    continue
                requeried.append(role)
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
        if requeried:
            log.warning(
                "application %s: credit-report queries of %s stuck in `querying`, queried again",
                application.id,
                requeried,
            )
        audit(
            session,
            "system",
            "credit_reports.querying",
            "loan_application",
            application.id,
            parties=[j[0] for j in jobs],
            requeried=requeried,
        )
        return None, jobs


def _query(
    bureau: BureauClient, attempts: int, id_number: str, name: str, authorization_id: str, sleep=time.sleep
) -> tuple[CreditReport | None, int, str | None]:
    for attempt in range(1, attempts + 1):
        try:
            return bureau.query_report(id_number, name, authorization_id), attempt, None
        except BureauRejected as exc:
            return None, attempt, f"征信中心拒绝查询：{exc.code}"
        except BureauError as exc:
            log.warning(
                "credit report for authorization %s, attempt %d/%d: %s", authorization_id, attempt, attempts, exc
            )
            if attempt == attempts:
                return None, attempt, f"征信中心暂时无法访问（已尝试{attempts}次）"
            sleep(BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def fetch_reports(
    settings,
    application_id: int,
    bureau: BureauClient | None = None,
    applications: Applications | None = None,
    retry_failed: bool = False,
    notify: notices.OfficerNotifier | None = None,
    retake: bool = False,
) -> Fetch:
    """Query every report of the application once consents are complete; give them to lending.
    The officer hears when the reports are in, or that a query failed (`notify`)."""
    done, jobs = _claim(settings, application_id, retry_failed, retake)
    if done is not None:
        return done
    bureau = bureau or BureauClient(settings.bureau_url, timeout=settings.bureau_timeout_s)
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda j: _query(bureau, settings.bureau_attempts, *j[1:]), jobs))
    applications = applications or Applications.from_settings(settings)
    with unit_of_work(settings.database_url) as session:
        failed: dict[str, str] = {}
        for (role, _, _, auth_id), (report, attempts, error) in zip(jobs, results, strict=False):
            record = session.scalar(
                select(CreditReportRecord).where(CreditReportRecord.authorization_id == int(auth_id))
            )
            record.attempts += attempts
            record.finished_at = utcnow()
            if report is None:
                record.status, record.error = "failed", error
                failed[role] = error or "征信查询失败"
            else:
                record.status, record.report_id = "received", report.report_id
                record.report_sealed = seal(settings.secret_key, json.dumps(report.raw, ensure_ascii=False))
        if failed:
            audit(session, "system", "credit_reports.failed", "loan_application", application_id, failed=failed)
            notices.reports_failed(session, _application(session, application_id), failed, notify)
            return Fetch("failed", failed=failed)
        reports = received_reports(session, settings.secret_key, application_id)
        application = _application(session, application_id)
        if set(reports) != set(parties(session, application)):
            return Fetch("claimed_elsewhere")  # another query of this application is still out
        report_ids = {role: r.report_id for role, r in reports.items()}
        notices.reports_received(session, application, report_ids, notify)
        applications.report_arrived(session, application_id, reports)
        audit(session, "system", "credit_reports.received", "loan_application", application_id, reports=report_ids)
    return Fetch("received")


def fetch_job(application_id: int) -> str:
    """The background job (RQ) enqueued after the last consent: `fetch_reports` in a worker."""
    job = get_current_job()
    outcome = fetch_reports(current_settings(), application_id, retake=bool(job and job.meta.get("abandoned")))
    log.info("credit reports of application %s: %s", application_id, outcome.state)
    return outcome.state


def sweep_reports(
    settings, applications: Applications | None = None, notify: notices.OfficerNotifier | None = None
) -> dict[int, str]:
    """Fetch the reports of every application whose consents are complete, the last at least
    SWEEP_AFTER_S ago, but whose reports are neither in nor being queried (its job died or never
    ran); {application id: state}."""
    with unit_of_work(settings.database_url) as session:
        # Only those with a consent can be complete: the many waiting for their first are not loaded.
        consented = select(Authorization.application_id).where(Authorization.status == "consented")
        just_consented = select(Authorization.application_id).where(
            Authorization.consented_at > utcnow() - timedelta(seconds=SWEEP_AFTER_S)
        )
        waiting = session.scalars(
            select(LoanApplication)
            .where(
                LoanApplication.status == "awaiting_authorization",
                LoanApplication.id.in_(consented),
                LoanApplication.id.not_in(just_consented),
            )
            .order_by(LoanApplication.id)
        ).all()
        ready = [a.id for a in waiting if not missing_consents(session, a)]
    return {app_id: fetch_reports(settings, app_id, applications=applications, notify=notify).state for app_id in ready}


def received_reports(session, secret_key: str, application_id: int) -> dict[str, CreditReport]:
    records = session.scalars(
        select(CreditReportRecord).where(
            CreditReportRecord.application_id == application_id, CreditReportRecord.status == "received"
        )
    )
    return {r.party_role: CreditReport.from_json(json.loads(unseal(secret_key, r.report_sealed))) for r in records}
