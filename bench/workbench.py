"""`python -m bench.workbench`: the officer's workbench on a large branch.

A fresh SQLite database holds a generated branch: 100 villages of 1,000 households (a head and
a spouse each, 200,000 customers; some without a credit file, some lines expired, some drawn
on), 10 officers, 20,000 decided applications with their histories, 40,000 authorizations,
10,000 hand-offs with their messages (200 still open) and 2,000 loans with 12 instalments
each (a tenth overdue), spread over the last year.

- `console_figures_ms`: the branch's figures for 30 days (handoff.figures.branch_figures),
  p50 of 5 runs; baseline: one grouped count of the customers by village, the simplest
  aggregate over the same table.
- `console_home_ms`: one officer's home page work (handoff.workbench.today_work, 10 villages
  of theirs), p50 of 20 runs; baseline null.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.lending import fresh_database, person_name
from bench.results import percentile, record
from handoff.figures import branch_figures, period_of
from handoff.workbench import today_work
from sunshine.clock import today, utcnow
from sunshine.db import unit_of_work
from sunshine.models import (
    ApplicationEvent,
    Authorization,
    ConversationMessage,
    CreditLine,
    Customer,
    FamilyMember,
    HandOff,
    Loan,
    LoanApplication,
    LoanInstalment,
    Officer,
)

VILLAGES, PER_VILLAGE, OFFICERS = 100, 1_000, 10
HOUSEHOLDS = VILLAGES * PER_VILLAGE
APPLICATIONS, HAND_OFFS, LOANS = 20_000, 10_000, 2_000
HISTORY_DAYS = 365
BATCH = 5_000


def _batched(session, model, rows) -> None:
    for start in range(0, len(rows), BATCH):
        session.execute(insert(model.__table__), rows[start : start + BATCH])


def generate(url: str) -> None:
    """The generated branch (see the module's description), inserted in batches."""
    rng, now = random.Random(21), utcnow()  # noqa: S311  a reproducible branch, not a secret

    def some_time():
        return now - timedelta(days=HISTORY_DAYS * rng.random())

    with unit_of_work(url) as s:
        _batched(
            s,
            Officer,
            [
                {"username": f"officer{o:02d}", "display_name": f"经理{o}", "password_hash": "-", "role": "officer"}
                for o in range(1, OFFICERS + 1)
            ],
        )
        people = []
        for n in range(2 * HOUSEHOLDS):  # heads first (ids 1..N), then their spouses
            household = n % HOUSEHOLDS
            village = household // PER_VILLAGE
            people.append(
                {
                    "name": person_name(n),
                    "id_fingerprint": f"{n:064d}",
                    "id_sealed": "-",
                    "id_masked": "-",
                    "customer_type": "farmer",
                    "village": f"村{village:03d}",
                    "officer_id": 1 + village % OFFICERS,
                }
            )
        _batched(s, Customer, people)
        _batched(
            s,
            FamilyMember,
            [{"customer_id": h + 1, "member_id": HOUSEHOLDS + h + 1, "role": "spouse"} for h in range(HOUSEHOLDS)],
        )
        lines = []
        for h in range(HOUSEHOLDS):
            if rng.random() < 0.05:  # no credit file
                continue
            expired = rng.random() < 0.03
            amount = 50_000 + rng.randrange(20) * 10_000
            lines.append(
                {
                    "customer_id": h + 1,
                    "amount": amount,
                    "used_amount": amount // 2 if rng.random() < 0.3 else 0,
                    "valid_until": date(2025, 12, 31) if expired else date(2027, 12, 31),
                    "source": "whole_village",
                    "tags": {},
                }
            )
        _batched(s, CreditLine, lines)

        heads = rng.sample(range(1, HOUSEHOLDS + 1), APPLICATIONS)
        applications, events, authorizations = [], [], []
        for a, customer_id in enumerate(heads, 1):
            submitted = some_time()
            auto = rng.random() < 0.7
            queued = submitted + timedelta(hours=1)
            decided = queued + (timedelta(0) if auto else timedelta(hours=rng.uniform(1, 40)))
            outcome = "approved" if auto or rng.random() < 0.8 else "rejected"
            applications.append(
                {
                    "customer_id": customer_id,
                    "product_code": "sunshine_e_loan",
                    "amount": 50_000,
                    "term_months": 12,
                    "status": outcome,
                    "review_mode": "auto" if auto else "officer",
                    "review_deadline": None if auto else queued + timedelta(hours=24),
                    "risk_hits": [],
                    "created_at": submitted,
                    "updated_at": decided,
                }
            )
            actor = "customer" if rng.random() < 0.8 else "officer:officer01"
            events += [
                {"application_id": a, "at": submitted, "actor": actor, "action": "submitted", "to_status": "submitted"},
                {
                    "application_id": a,
                    "at": queued,
                    "actor": "system",
                    "action": "queued",
                    "from_status": "awaiting_authorization",
                    "to_status": "under_review",
                },
                {
                    "application_id": a,
                    "at": decided,
                    "actor": "auto" if auto else "officer:officer01",
                    "action": outcome,
                    "from_status": "under_review",
                    "to_status": outcome,
                },
            ]
            for role in ("applicant", "spouse"):
                consented = rng.random() < 0.85
                authorizations.append(
                    {
                        "application_id": a,
                        "customer_id": customer_id,
                        "party_role": role,
                        "party_name": "-",
                        "party_id_masked": "-",
                        "purpose": "贷款审批",
                        "requested_by": "customer",
                        "token_hash": f"{a}:{role}",
                        "status": "consented" if consented else "expired",
                        "expires_at": submitted + timedelta(days=1),
                        "created_at": submitted,
                        "consented_at": submitted + timedelta(minutes=rng.uniform(1, 120)) if consented else None,
                    }
                )
        _batched(s, LoanApplication, applications)
        _batched(s, ApplicationEvent, [{"reason": "", "detail": {}, "from_status": None, **e} for e in events])
        _batched(s, Authorization, authorizations)

        hand_offs, messages = [], []
        for n in range(1, HAND_OFFS + 1):
            created = some_time()
            openid = f"o_bench_{n}"
            hand_offs.append(
                {
                    "openid": openid,
                    "customer_id": rng.randrange(1, HOUSEHOLDS + 1),
                    "officer_id": None if n % 50 == 0 else 1 + n % OFFICERS,
                    "reason": "customer_request",
                    "summary": {},
                    "priority": 1,
                    "status": "open" if n % 50 == 0 or n % 51 == 0 else "closed",
                    "deadline": created + timedelta(minutes=30),
                    "created_at": created,
                }
            )
            messages.append(
                {
                    "openid": openid,
                    "hand_off_id": n,
                    "direction": "inbound",
                    "author": "customer",
                    "body": "你好",
                    "status": "received",
                    "created_at": created + timedelta(minutes=1),
                }
            )
            if rng.random() < 0.9:
                messages.append(
                    {
                        "openid": openid,
                        "hand_off_id": n,
                        "direction": "outbound",
                        "author": "officer:officer01",
                        "body": "您好",
                        "status": "sent",
                        "created_at": created + timedelta(minutes=rng.uniform(2, 60)),
                    }
                )
        _batched(s, HandOff, hand_offs)
        _batched(s, ConversationMessage, messages)

        approved = [a for a, row in enumerate(applications, 1) if row["status"] == "approved"][:LOANS]
        loans, instalments = [], []
        for n, application_id in enumerate(approved, 1):
            row = applications[application_id - 1]
            disbursed = row["updated_at"]
            late = n % 10 == 0
            loans.append(
                {
                    "application_id": application_id,
                    "customer_id": row["customer_id"],
                    "account_no": f"L{n:010d}",
                    "settlement_account": f"S{n:010d}",
                    "principal_fen": 5_000_000,
                    "annual_rate_bp": 435,
                    "term_months": 12,
                    "repayment_method": "equal_instalments",
                    "disbursed_at": disbursed,
                    "disbursed_on": disbursed.date(),
                    "status": "overdue" if late else "active",
                    "principal_outstanding_fen": 5_000_000,
                    "overdue_fen": 430_000 if late else 0,
                    "synced_at": now,
                }
            )
            for k in range(1, 13):
                due = disbursed.date() + timedelta(days=30 * k - 45)
                instalments.append(
                    {
                        "loan_id": n,
                        "number": k,
                        "due_date": due,
                        "principal_fen": 416_667,
                        "interest_fen": 18_125,
                        "paid_fen": 0,
                        "status": "overdue" if late and k == 1 else "scheduled",
                    }
                )
        _batched(s, Loan, loans)
        _batched(s, LoanInstalment, instalments)


def timed(runs: int, work) -> float:
    """The p50 of `runs` calls of work(), in ms (each in its own unit of work)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-workbench-") as tmp:
        url = fresh_database(Path(tmp), "branch")
        started = time.perf_counter()
        generate(url)
        generated_s = time.perf_counter() - started
        period = period_of(None, None, today())

        def figures():
            with unit_of_work(url) as s:
                result = branch_figures(s, period, today())
            if len(result.villages) != VILLAGES:
                raise SystemExit(f"{len(result.villages)} villages in the figures, not {VILLAGES}")
            return result

        def baseline():
            with unit_of_work(url) as s:
                s.execute(select(Customer.village, func.count()).group_by(Customer.village)).all()

        def home():
            with unit_of_work(url) as s:
                today_work(s, s.get(Officer, 1))

        total = figures().branch
        figures_ms, baseline_ms, home_ms = timed(5, figures), timed(5, baseline), timed(20, home)
    record({"console_figures_ms": (figures_ms, "ms", baseline_ms), "console_home_ms": (home_ms, "ms", None)})
    print(
        f"generated in {generated_s:.1f} s: {total.households:,} households, {total.applications:,} applications "
        f"in 30 days, {total.hand_offs:,} hand-offs, {total.authorizations:,} authorizations"
    )
    print(f"{'figure':<22}{'value':>12}{'baseline':>12}  note")
    print(
        f"{'console_figures_ms':<22}{figures_ms:>12.1f}{baseline_ms:>12.1f}  {VILLAGES} villages, "
        f"{HOUSEHOLDS:,} households, 30 days; baseline: customers counted by village"
    )
    print(f"{'console_home_ms':<22}{home_ms:>12.1f}{'-':>12}  one officer's work (10 villages)")


if __name__ == "__main__":
    main()
