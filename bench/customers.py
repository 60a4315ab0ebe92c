"""`python -m bench.customers`: the console's customer search over 100,000 customers.

- `console_customer_search_ms`: the p95 of a search as the console runs it
  (`lending.customers.search` in its own unit of work, its customers' officers loaded as the
  results page shows them), over a mix of what officers type: a whole name, a given name, a
  surname (thousands match: the first 50 shown), the last four digits, a masked ID number
  (3212**********1234: the hidden digits compared with the sealed numbers of those sharing
  the last four), a whole phone, a masked phone, a name with the last four; half as a
  supervisor (every customer), half as one of 20 officers (their own). Target under 200 ms.
  Baseline: the p95 of a bare look-up of one customer by ID fingerprint (an indexed equality).

The database is SQLite, or, when DATABASE_URL names a PostgreSQL one, a scratch database
beside it (bench.binding.scratch_database), migrated, with the demo loaded; the 100,000
customers are bulk-inserted with their real fingerprints, sealed numbers and search keys
(as the village-file import writes them, without its validation).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import joinedload
from werkzeug.security import generate_password_hash

from bench.binding import SECRET, scratch_database
from bench.lending import person_name
from bench.results import percentile, record
from emulators.bureau.api import with_check_digit
from lending.customers import search, search_keys
from sunshine.db import unit_of_work
from sunshine.models import Customer, Officer
from sunshine.protect import fingerprint, mask_id_number, mask_phone, seal

CUSTOMERS, OFFICERS, BATCH = 100_000, 20, 5_000
QUERIES = 400


def person_id(n: int) -> str:
    """Customer n's ID number (unique for n below 180,000; the last four spread as in life)."""
    birth = f"{1950 + 20 * (n // 90000) + n % 20}{1 + n % 12:02d}{1 + n % 28:02d}"
    return with_check_digit(f"{320000 + n % 90000}{birth}{n * 37 % 1000:03d}")


def phone_of(n: int) -> str:
    return f"1{3 + n % 7}{n * 7919 % 1_000_000_000:09d}"


def seed(url: str) -> list[int]:
    """OFFICERS officers and CUSTOMERS customers spread over them; returns the officers' ids."""
    with unit_of_work(url) as s:
        hashed = generate_password_hash("bench-officer")
        officers = [
            Officer(username=f"bench{i:02d}", display_name=f"客户经理{i}", password_hash=hashed, role="officer")
            for i in range(OFFICERS)
        ]
        s.add_all(officers)
        s.flush()
        officer_ids = [o.id for o in officers]
    started = time.perf_counter()
    for start in range(0, CUSTOMERS, BATCH):
        rows = []
        for n in range(start, start + BATCH):
            name, id_number, phone = person_name(n), person_id(n), phone_of(n)
            rows.append(
                {
                    "name": name,
                    "id_fingerprint": fingerprint(SECRET, id_number),
                    "id_sealed": seal(SECRET, id_number),
                    "id_masked": mask_id_number(id_number),
                    "phone_fingerprint": fingerprint(SECRET, phone),
                    "phone_sealed": seal(SECRET, phone),
                    "phone_masked": mask_phone(phone),
                    "customer_type": "farmer",
                    "village": f"第{n % 300}村",
                    "officer_id": officer_ids[n % OFFICERS],
                    **search_keys(name, id_number, phone),
                }
            )
        with unit_of_work(url) as s:
            s.execute(insert(Customer.__table__), rows)
    with unit_of_work(url) as s:
        total = s.scalar(select(func.count()).select_from(Customer))
    print(f"seeded {total:,} customers in {time.perf_counter() - started:.1f} s")
    return officer_ids


def queries(rng: random.Random) -> list[str]:
    """What officers type, about people who exist (and some who do not)."""
    out = []
    for _ in range(QUERIES):
        n = rng.randrange(CUSTOMERS)
        name, id_number, phone = person_name(n), person_id(n), phone_of(n)
        out.append(
            rng.choice(
                [
                    name,
                    name[1:],
                    name[0],
                    id_number[-4:],
                    id_number[:4] + "*" * 10 + id_number[-4:],
                    phone,
                    phone[:3] + "****" + phone[-4:],
                    f"{name} {phone[-4:]}",
                ]
            )
        )
    return out


def timed_search(url: str, query: str, officer_id: int | None) -> float:
    started = time.perf_counter()
    with unit_of_work(url) as s:
        found = search(s, SECRET, query, officer_id)
        for c in found.customers:  # the results page names each customer's officer
            _ = c.officer
    return (time.perf_counter() - started) * 1000


def baseline(url: str, rng: random.Random) -> list[float]:
    times = []
    for _ in range(QUERIES):
        fp = fingerprint(SECRET, person_id(rng.randrange(CUSTOMERS)))
        started = time.perf_counter()
        with unit_of_work(url) as s:
            s.scalar(select(Customer).where(Customer.id_fingerprint == fp).options(joinedload(Customer.officer)))
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    rng = random.Random(21)  # noqa: S311  which customers are searched for, the same each run
    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp)) as url:
        officer_ids = seed(url)
        print(f"database: {url.split(':', 1)[0]}")
        for q in queries(rng)[:20]:  # warm the caches
            timed_search(url, q, None)
        bare = baseline(url, rng)
        times, by_kind = [], {}
        for i, q in enumerate(queries(rng)):
            officer = None if i % 2 == 0 else rng.choice(officer_ids)
            ms = timed_search(url, q, officer)
            times.append(ms)
            by_kind.setdefault(_kind(q), []).append(ms)
    p95, base = percentile(times, 95), percentile(bare, 95)
    for kind, values in sorted(by_kind.items()):
        p50, p95_kind = percentile(values, 50), percentile(values, 95)
        print(f"  {kind:<16} n={len(values):3d}  p50 {p50:6.1f} ms  p95 {p95_kind:6.1f} ms")
    print(f"console_customer_search_ms  p95 {p95:.1f} ms over {len(times)} searches (target < 200)")
    print(f"  baseline: a bare look-up by ID fingerprint, p95 {base:.1f} ms")
    record({"console_customer_search_ms": (p95, "ms", base)})


def _kind(q: str) -> str:
    if " " in q:
        return "name + last 4"
    if "*" in q:
        return "masked phone" if len(q) == 11 else "masked ID"
    if q.isdigit():
        return "whole phone" if len(q) == 11 else "last 4"
    return {1: "surname", 2: "given name"}.get(len(q), "whole name")


if __name__ == "__main__":
    main()
