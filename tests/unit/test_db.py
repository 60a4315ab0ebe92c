"""sunshine/db.py: connections to a SQLite file are pooled, without a cap."""

from __future__ import annotations

import threading

from sqlalchemy import event, text
from sqlalchemy.pool import QueuePool

from bot.actions.credit_line import ActionCreditLine
from sunshine.db import engine_for, make_engine
from tests.unit.bot_trackers import DEMO_OPENID, make_tracker, run, user_event


def count_connections(url: str) -> list:
    engine = engine_for(url)
    engine.dispose()
    opened: list = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    return opened


def test_actions_reuse_one_database_connection(bank_env):
    opened = count_connections(bank_env)

    for _ in range(4):
        answer, _ = run(ActionCreditLine(), make_tracker(DEMO_OPENID, user_event("我能贷多少", "ask_credit_line")))
        assert "20万元" in answer

    assert len(opened) == 1


def test_many_connections_at_once_each_get_their_own(db_url):
    opened = count_connections(db_url)
    engine = engine_for(db_url)
    together = threading.Barrier(12, timeout=20)  # more than the pool keeps
    results: list = []
    failures: list = []

    def work() -> None:
        # Held at once, before any transaction: on SQLite, transactions take the write
        # lock (BEGIN IMMEDIATE) and so cannot all be open together.
        try:
            with engine.connect() as conn:
                together.wait()
                results.append(conn.execute(text("SELECT 1")).scalar())
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert results == [1] * 12
    assert len(opened) == 12


def test_only_sqlite_files_get_the_queue_pool(tmp_path):
    assert isinstance(make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}").pool, QueuePool)
    assert not isinstance(make_engine("sqlite://").pool, QueuePool)
