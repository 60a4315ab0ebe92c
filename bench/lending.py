"""`python -m bench.lending`: the lending service's figures.

- `decisions_per_s`: applications decided automatically per second, one after
  another: both parties' credit reports from the bureau emulator over HTTP,
  the risk rules, the approval, committed; baseline: a bare committed status
  update of the same applications.
- `decision_p95_ms`: time from report arrival to the committed decision, p95
  (target under 1 s); baseline null.
- `import_100k_s`: import of a generated 100,000-household village file
  (each household a head and a spouse) into a fresh SQLite database (target
  under 60 s); baseline: a bare executemany insert of the same number of
  households, without validation, sealing or look-ups. The peak memory growth
  of importing 10,000 and 100,000 households is printed to show it stays flat.

The imports run in fresh SQLite databases under a temporary folder; the
decisions then run in the 100,000-household one, so that the rules' look-ups
meet a village-sized table.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from bench.results import percentile, record
from clients.bureau import BureauClient
from emulators import serve_in_thread
from emulators.bureau.api import create_app, with_check_digit
from lending.applications import Applications
from lending.catalog import sync_products
from lending.reports import parties
from lending.village_file import COLUMNS, import_file
from sunshine.clock import utcnow
from sunshine.db import unit_of_work
from sunshine.migrate import upgrade
from sunshine.models import Authorization, Customer, LoanApplication
from sunshine.protect import unseal

SECRET = "bench-secret-key"  # noqa: S105  a benchmark's throw-away secret
DECISIONS = 400
HOUSEHOLDS = 100_000


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "建国春华立新军玉梅秀英丽桂芳志强文明红霞海涛德福永平金山兰凤"


def person_name(n: int) -> str:
    """A Chinese name for person n (names repeat, as in a real county; the ID number tells people apart)."""
    i = n // len(SURNAMES)
    return SURNAMES[n % len(SURNAMES)] + GIVEN[i % len(GIVEN)] + GIVEN[(7 * i + 3) % len(GIVEN)]


def village_row(n: int) -> dict:
    """Household n: a farmer head and spouse with clean credit reports (the emulator's digit 15 < 6)."""

    def id_number(birth_year: int, k: int) -> str:
        return with_check_digit(
            f"{320000 + n % 90000}{birth_year}{1 + n % 12:02d}{1 + n % 28:02d}" f"{(n // 90000) % 10}{(n // 10) % 6}{k}"
        )

    return {
        "village": f"村{n // 1000:03d}",
        "household_head": person_name(2 * n),
        "id_number": id_number(1970 + n % 20, 1),
        "phone": f"13{n:09d}",
        "customer_type": "farmer",
        "credit_line": str(50_000 + (n % 20) * 10_000),
        "valid_until": "2027-12-31",
        "members": f"spouse:{person_name(2 * n + 1)}:{id_number(1972 + n % 20, 2)}:15{n:09d}",
        "tags": "occupation=水稻种植;income_band=5-10万",
    }


def write_village_file(path: Path, households: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for n in range(households):
            writer.writerow(village_row(n))
    return path


def fresh_database(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}.sqlite"
    upgrade(url)
    with unit_of_work(url) as session:
        sync_products(session)
    return url


# --- import ----------------------------------------------------------------------


def _import_in_child(url: str, path: str, queue) -> None:
    """Import in a fresh process so that its peak memory (ru_maxrss) is this import's alone."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with unit_of_work(url) as session:
        report = import_file(session, SECRET, Path(path), actor="bench")
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    queue.put((elapsed, report.created, len(report.errors), grown_kib / 1024))


def measure_import(folder: Path, households: int) -> tuple[float, float, str]:
    """(seconds, peak RSS growth in MiB, database URL) of importing a generated file of `households`."""
    path = write_village_file(folder / f"village_{households}.csv", households)
    url = fresh_database(folder, f"import_{households}")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_import_in_child, args=(url, str(path), queue))
    child.start()
    elapsed, created, errors, grown_mib = queue.get()
    child.join()
    if (created, errors) != (households, 0):
        raise SystemExit(f"import of {households} households created {created} with {errors} errors")
    return elapsed, grown_mib, url


def bare_insert(folder: Path, households: int) -> float:
    """The floor: the same number of heads and spouses inserted with one executemany, nothing checked."""
    url = fresh_database(folder, "bare")
    rows = [
        {
            "name": f"户主{n}",
            "id_fingerprint": f"{n:064d}",
            "id_sealed": "x",
            "id_masked": "x",
            "customer_type": "farmer",
            "village": "村",
        }
        for n in range(2 * households)
    ]
    started = time.perf_counter()
    with unit_of_work(url) as session:
        session.execute(insert(Customer.__table__), rows)
    return time.perf_counter() - started


# --- decisions -------------------------------------------------------------------


def decision_setup(url: str) -> tuple[Applications, list[int]]:
    """DECISIONS household heads of the imported file, each with an application awaiting its reports,
    consents given."""
    service = Applications(SECRET, notify=lambda openid, text, **_: None)
    pending = []
    with unit_of_work(url) as session:
        heads = session.scalars(
            select(Customer).join(Customer.credit_lines).order_by(Customer.id).limit(DECISIONS)
        ).all()
        for n, customer in enumerate(heads):
            customer.wechat_openid = f"o_bench_{n}"
            app = service.apply(session, customer.id, "sunshine_e_loan", 30_000, 12, idempotency_key=f"b{n}")
            for role, person in parties(session, app).items():
                session.add(
                    Authorization(
                        application_id=app.id,
                        customer_id=customer.id,
                        party_role=role,
                        party_name=person.name,
                        party_id_masked=person.id_masked,
                        purpose="贷款审批",
                        requested_by="bench",
                        token_hash=f"{app.id}:{role}",
                        status="consented",
                        expires_at=utcnow() + timedelta(days=365),
                    )
                )
            pending.append(app.id)
    return service, pending


def measure_decisions(url: str, bureau_url: str) -> tuple[float, float, float]:
    """(decisions per second, p95 ms from report arrival to committed decision, baseline updates per second).

    Each decision: both parties' reports from the bureau emulator over HTTP, then the rules and the
    automatic approval, committed."""
    service, pending = decision_setup(url)
    bureau = BureauClient(bureau_url)
    latencies = []
    started = time.perf_counter()
    for app_id in pending:
        with unit_of_work(url) as session:
            people = parties(session, session.get(LoanApplication, app_id))
            reports = {
                role: bureau.query_report(unseal(SECRET, p.id_sealed), p.name, f"{app_id}:{role}")
                for role, p in people.items()
            }
        arrived = time.perf_counter()
        with unit_of_work(url) as session:
            status = service.report_arrived(session, app_id, reports).status
        latencies.append((time.perf_counter() - arrived) * 1000)
        if status != "approved":
            raise SystemExit(f"application {app_id} was not approved automatically: {status}")
    rate = len(pending) / (time.perf_counter() - started)
    started = time.perf_counter()
    for app_id in pending:
        with unit_of_work(url) as session:
            session.execute(
                update(LoanApplication)
                .where(LoanApplication.id == app_id)
                .values(status="disbursed", updated_at=utcnow())
            )
    baseline = len(pending) / (time.perf_counter() - started)
    return rate, percentile(latencies, 95), baseline


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator's request log
    with tempfile.TemporaryDirectory(prefix="bench-lending-") as tmp:
        folder = Path(tmp)
        small_s, small_mib, _ = measure_import(folder, HOUSEHOLDS // 10)
        big_s, big_mib, url = measure_import(folder, HOUSEHOLDS)
        bare_s = bare_insert(folder, HOUSEHOLDS)
        with serve_in_thread(create_app()) as bureau_url:
            rate, p95, baseline_rate = measure_decisions(url, bureau_url)
    record(
        {
            "decisions_per_s": (rate, "decisions/s", baseline_rate),
            "decision_p95_ms": (p95, "ms", None),
            "import_100k_s": (big_s, "s", bare_s),
        }
    )
    print(f"{'figure':<22}{'value':>12}{'baseline':>12}  note")
    print(
        f"{'decisions_per_s':<22}{rate:>12.1f}{baseline_rate:>12.1f}  {DECISIONS} automatic approvals: "
        "2 bureau queries (HTTP), rules, commit; baseline: bare status update"
    )
    print(f"{'decision_p95_ms':<22}{p95:>12.1f}{'-':>12}  report arrival to committed decision (target < 1000)")
    print(
        f"{'import_100k_s':<22}{big_s:>12.1f}{bare_s:>12.1f}  {HOUSEHOLDS:,} households + spouses "
        "(target < 60); baseline: bare insert"
    )
    print(
        f"{'import peak RSS':<22}{big_mib:>11.1f}M{small_mib:>11.1f}M  growth at 100k vs 10k households "
        f"(10k took {small_s:.1f} s)"
    )


if __name__ == "__main__":
    main()
