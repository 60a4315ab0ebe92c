"""`python -m bench.binding`: guessing people's identities, measured by trying.

- `bind_bruteforce_guesses_allowed`: a stranger's WeChat user tries to bind 周桂芳 (a demo
  customer, not bound) knowing her name and birth date: 50 ID numbers with valid check
  digits, the real one 23rd (as in the finding). The figure is how many of the guesses were
  looked at (answered "if the name and ID match, we texted a code") before the answers
  became "today's tries are used up" (target at most 5). The bench also checks that no
  text reached her phone and that nothing was bound.
- `auth_parallel_attempts_over_limit`: 20 wrong identity checks posted at once on one
  authorization token (AUTH_MAX_ATTEMPTS 5), each in its own thread and transaction; the
  figure is how many of them were evaluated beyond the limit (target 0). Baseline: the same
  run with the token's row lock turned off (the old code). Meaningful on PostgreSQL: set
  DATABASE_URL to one (a scratch database is created beside it and dropped); on SQLite, whose
  writers queue at BEGIN IMMEDIATE, both are 0.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bench.results import record

SECRET = "bench-secret"  # noqa: S105  a benchmark's throw-away secret
GUESSES, RIGHT_AT, PARALLEL, MAX_ATTEMPTS = 50, 23, 20, 5


@contextmanager
def scratch_database(folder: Path) -> Iterator[str]:
    """A migrated database with the demo loaded: SQLite in `folder`, or a new PostgreSQL
    database beside the one DATABASE_URL names."""
    from sqlalchemy import create_engine, text

    from sunshine.db import engine_for, unit_of_work
    from sunshine.demo import load_demo
    from sunshine.migrate import upgrade
    from sunshine.settings import load

    url = load().database_url
    admin, name = None, f"sunshine_bench_{uuid.uuid4().hex[:8]}"
    if url.startswith("postgresql"):
        admin = create_engine(url, isolation_level="AUTOCOMMIT", future=True)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = url.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{folder / 'bench.sqlite'}"
    try:
        upgrade(url)
        with unit_of_work(url) as s:
            load_demo(s, SECRET)
        yield url
    finally:
        engine_for(url).dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def bruteforce(url: str) -> int:
    from lending.binding import BindingRefused, BindLimits, code_sent, request_code
    from lending.customers import by_id_number
    from lending.identity import check_digit
    from sunshine.db import unit_of_work

    name, right, phone = "周桂芳", "321283197009090663", "13912340006"
    wrong = [f"32128319700909{n:03d}" for n in range(200)]
    candidates = [w + check_digit(w) for w in wrong if w + check_digit(w) != right][: GUESSES - 1]
    candidates.insert(RIGHT_AT - 1, right)
    limits, texted, looked_at = BindLimits(), [], 0
    for candidate in candidates:
        with unit_of_work(url) as s:
            try:
                answer = request_code(s, SECRET, "o_bench_stranger", f"{name} {candidate}", limits, texted.append)
            except BindingRefused:
                continue
            looked_at += answer == code_sent(limits)
    with unit_of_work(url) as s:
        bound = by_id_number(s, SECRET, right).wechat_openid
    assert bound is None and phone not in texted, "the brute force got through"  # noqa: S101  a bench's check
    return looked_at


def parallel_over_limit(url: str, row_lock: bool) -> int:
    from auth_flow import tokens
    from auth_flow.evidence import Client
    from auth_flow.identity import check_identity
    from lending.customers import by_openid
    from sunshine.db import unit_of_work

    with unit_of_work(url) as s:
        zhang = by_openid(s, "o_demo_zhangjianguo")
        token = tokens.issue(s, zhang, zhang, "applicant", "bench", timedelta(minutes=30)).token
    evaluated, lock, barrier = [], threading.Lock(), threading.Barrier(PARALLEL)
    client = Client("10.0.0.1", "bench")

    def attempt() -> None:
        barrier.wait()
        try:
            with unit_of_work(url) as s:
                result = check_identity(
                    s, SECRET, token, "张建国", "000000", client, MAX_ATTEMPTS, wechat_openid="o_demo_zhangjianguo"
                )
            with lock:
                evaluated.append(result)
        except Exception:  # noqa: S110  refused (locked), or lost a race in the old code: not evaluated
            pass

    original = tokens.find_by_token
    if not row_lock:
        tokens.find_by_token = lambda session, token, lock=False: original(session, token)  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=attempt) for _ in range(PARALLEL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        tokens.find_by_token = original  # type: ignore[assignment]
    return max(len(evaluated) - MAX_ATTEMPTS, 0)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp)) as url:
        backend = url.split(":", 1)[0]
        guesses = bruteforce(url)
        over = parallel_over_limit(url, row_lock=True)
        over_before = parallel_over_limit(url, row_lock=False)
    record(
        {
            "bind_bruteforce_guesses_allowed": (guesses, "guesses/day", None),
            "auth_parallel_attempts_over_limit": (over, "attempts", over_before),
        }
    )
    print(f"bind_bruteforce_guesses_allowed    {guesses:4d}   (of {GUESSES} tried, the right ID {RIGHT_AT}rd)")
    print(f"auth_parallel_attempts_over_limit  {over:4d}   ({backend}; without the row lock: {over_before})")


if __name__ == "__main__":
    main()
