"""`python -m bench.inspection`: the annual inspection (年检) of a county's households.

- `inspection_10k_households_s`: `lending.inspection.run_batch` over 10,000 households whose
  lines are all due (target < 60 s): each judged against last year's snapshot, the live loans
  of one household in ten synchronised from the core-banking emulator over HTTP first, the
  lines passed off-site updated and their WeChat notices queued in Redis (RQ), the others
  made on-site tasks, the batch's counts kept as it goes. Baseline: the same households'
  lines only read, chunk by chunk, as the batch reads them (what judging and writing add).
- `inspection_2k_rss_mib`, `inspection_10k_rss_mib`: the peak memory growth of the batch over
  2,000 and 10,000 households (each run in a fresh process): flat, as the batch works in
  chunks of `lending.inspection.CHUNK` lines.

The households come from two village files imported through `lending.village_file` into a
fresh SQLite database: last year's (every household at 5-10万, the lines' baselines) and this
year's, where one household in twelve moved up a band (raised), one in twelve down a band
(lowered) and one in twenty-four up two bands (sent on site), one in a hundred has its head
working away (a negative tag), one in a hundred heads is on the watch list, and one loan in
five has an instalment overdue at the core.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from bench.lending import SECRET, fresh_database, village_row
from bench.results import record
from bench.services import redis_url
from clients.corebank import CoreBankingClient
from emulators import serve_in_thread
from emulators.corebank.api import create_app as corebank_app
from lending.inspection import CHUNK, Rules, run_batch
from lending.notify import WeChatNotifier
from lending.repayment import schedule
from lending.village_file import COLUMNS, import_file
from sunshine import clock
from sunshine.db import engine_for, unit_of_work
from sunshine.jobs import Jobs
from sunshine.models import (
    CreditLine,
    Customer,
    LineInspection,
    Loan,
    LoanApplication,
    LoanInstalment,
    Officer,
    WatchListEntry,
)
from sunshine.protect import fingerprint, mask_id_number
from sunshine.settings import Settings

SIZES = (2_000, 10_000)
LOAN_EVERY = 10  # one household in ten has a live loan at the core
OVERDUE = 20  # household n with n % 50 == OVERDUE has an instalment overdue (one loan in five)
WECHAT_EVERY = 3  # one household in three follows the Official Account
MOVED = {5: "10-20万", 17: "10-20万", 7: "5万以下", 19: "5万以下", 11: "20-50万"}  # this year's band by n % 24


def band_now(n: int) -> str:
    """This year's income band of household n (last year's was 5-10万): one in twelve a band up,
    one in twelve a band down, one in twenty-four two bands up."""
    return MOVED.get(n % 24, "5-10万")


def write_year(path: Path, households: int, this_year: bool) -> Path:
    due = (clock.today() + timedelta(days=10)).isoformat()
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for n in range(households):
            band = band_now(n) if this_year else "5-10万"
            away = ";family_role=外出务工人员" if this_year and n % 100 == 77 else ""
            tags = f"occupation=水稻种植;income_band={band}{away}"
            writer.writerow({**village_row(n), "valid_until": due, "tags": tags})
    return path


def prepare(folder: Path, households: int, core: CoreBankingClient) -> str:
    """A database of `households` due for inspection (module docstring); its URL."""
    url = fresh_database(folder, f"inspection_{households}")
    for this_year in (False, True):
        path = write_year(folder / f"village_{households}_{int(this_year)}.csv", households, this_year)
        with unit_of_work(url) as s:
            report = import_file(s, SECRET, path, actor="bench")
        if report.errors:
            raise SystemExit(f"village file not imported: {report.errors[:3]}")
    rows = [village_row(n) for n in range(households)]
    with unit_of_work(url) as s:
        officer = Officer(username="officer01", display_name="李经理", password_hash="-", must_change_password=False)  # noqa: S106  never logs in
        s.add(officer)
        s.flush()
        s.execute(update(Customer).values(officer_id=officer.id))
        heads = {
            fp: cid
            for fp, cid in s.execute(
                select(Customer.id_fingerprint, Customer.id).join(CreditLine, CreditLine.customer_id == Customer.id)
            )
        }
        ids = [heads[fingerprint(SECRET, row["id_number"])] for row in rows]
        s.bulk_update_mappings(
            Customer,
            [{"id": cid, "wechat_openid": f"o_bench_{n}"} for n, cid in enumerate(ids) if n % WECHAT_EVERY == 0],
        )
        s.add_all(
            WatchListEntry(
                id_fingerprint=fingerprint(SECRET, row["id_number"]),
                id_masked=mask_id_number(row["id_number"]),
                reason="bench",
                added_by="bench",
            )
            for n, row in enumerate(rows)
            if n % 100 == 33
        )
        for n in range(0, households, LOAN_EVERY):
            _loan(s, core, n, ids[n], rows[n], overdue=n % 50 == OVERDUE)
    return url


def _loan(s, core: CoreBankingClient, n: int, customer_id: int, row: dict, overdue: bool) -> None:
    """Household n's 阳光e贷 of 30,000 yuan, opened and paid out at the core, stored here; an
    overdue one was paid out 40 days ago (its first instalment is past due and unpaid)."""
    today = clock.today()
    paid_on = today - timedelta(days=40 if overdue else 5)
    plan = schedule("equal_instalments", 3_000_000, 435, 12, paid_on)
    account = core.settlement_account(row["id_number"], row["household_head"])
    sent = [
        {
            "number": i.number,
            "due_date": i.due_date.isoformat(),
            "principal_fen": i.principal_fen,
            "interest_fen": i.interest_fen,
        }
        for i in plan
    ]
    key = f"bench-inspection-{n}"
    booked = core.open_loan(
        f"C{n}", row["id_number"], row["household_head"], "sunshine_e_loan", 3_000_000, 435, 12,
        "equal_instalments", account.account_no, sent, f"{key}:open",
    )  # fmt: skip
    core.disburse(booked.loan_no, 3_000_000, account.account_no, key)
    application = LoanApplication(
        customer_id=customer_id, product_code="sunshine_e_loan", amount=30_000, term_months=12, status="disbursed"
    )
    s.add(application)
    s.flush()
    loan = Loan(
        application_id=application.id,
        customer_id=customer_id,
        account_no=booked.loan_no,
        settlement_account=account.account_no,
        principal_fen=3_000_000,
        annual_rate_bp=435,
        term_months=12,
        repayment_method="equal_instalments",
        disbursed_at=clock.utcnow(),
        disbursed_on=paid_on,
        principal_outstanding_fen=3_000_000,
    )
    loan.instalments = [
        LoanInstalment(number=i.number, due_date=i.due_date, principal_fen=i.principal_fen, interest_fen=i.interest_fen)
        for i in plan
    ]
    s.add(loan)


def _batch_in_child(settings: Settings, queue) -> None:
    """The batch in a forked process, so that its peak memory (ru_maxrss) is the batch's alone."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = run_batch(settings, WeChatNotifier(Jobs(settings)), Rules.load(), tell_officer=lambda *a: None)
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    queue.put((elapsed, report.total, dict(report.counts), grown_kib / 1024))


def read_only(url: str) -> float:
    """The baseline: the lines and their customers read chunk by chunk, nothing judged or written."""
    started = time.perf_counter()
    with unit_of_work(url) as s:
        ids = list(s.scalars(select(CreditLine.id).order_by(CreditLine.id)))
    for start in range(0, len(ids), CHUNK):
        with unit_of_work(url) as s:
            for line in s.scalars(select(CreditLine).where(CreditLine.id.in_(ids[start : start + CHUNK]))):
                _ = line.customer.name
    return time.perf_counter() - started


def measure(folder: Path, households: int, settings: Settings, core: CoreBankingClient) -> tuple[float, float, float]:
    """(seconds, peak RSS growth in MiB, baseline seconds) of inspecting `households`."""
    url = prepare(folder, households, core)
    engine_for(url).dispose()  # no pooled connection crosses the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_batch_in_child, args=(replace(settings, database_url=url), queue))
    child.start()
    elapsed, total, counts, grown_mib = queue.get()
    child.join()
    with unit_of_work(url) as s:
        inspected = len(s.scalars(select(LineInspection.id)).all())
    if total != households or inspected != households or counts.get("failed"):
        raise SystemExit(f"inspected {inspected} of {households} households: {counts}")
    print(f"  {households:>6} households: {elapsed:.1f} s, peak RSS +{grown_mib:.1f} MiB, {counts}")
    return elapsed, grown_mib, read_only(url)


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator's request lines
    logging.getLogger("lending.inspection").setLevel(logging.WARNING)
    base = Settings()
    figures = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-inspection-") as tmp,
        redis_url() as redis,
        serve_in_thread(corebank_app(base.core_banking_channel_id, base.core_banking_secret)) as core_url,
    ):
        core = CoreBankingClient(core_url, base.core_banking_channel_id, base.core_banking_secret, timeout=10)
        settings = replace(base, redis_url=redis, core_banking_url=core_url, secret_key=SECRET, worker_processes=1)
        for households in SIZES:
            elapsed, grown, baseline = measure(Path(tmp), households, settings, core)
            label = f"{households // 1000}k"
            figures[f"inspection_{label}_rss_mib"] = (grown, "MiB", None)
            if households == max(SIZES):
                figures[f"inspection_{label}_households_s"] = (elapsed, "s", baseline)
    record(figures)
    for name, (value, unit, baseline) in figures.items():
        print(f"{name:32} {value:10.2f} {unit}" + (f"   (baseline {baseline:.2f})" if baseline is not None else ""))


if __name__ == "__main__":
    main()
