"""sunshine/db.py: connections to a SQLite file are pooled, without a cap."""
from __future__ import annotations

import threading

from sqlalchemy import event, text
from sqlalchemy.pool import QueuePool

from bot.actions.credit_line import ActionCreditLine
from sunshine.db import engine_for, make_engine, unit_of_work
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


def test_many_sessions_at_once_each_get_a_connection(db_url):
    opened = count_connections(db_url)
    together = threading.Barrier(12, timeout=20)   # more than the pool keeps
    results: list = []

    def work() -> None:
        with unit_of_work(db_url) as session:
            results.append(session.execute(text("SELECT 1")).scalar())
            together.wait()

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results == [1] * 12
    assert len(opened) == 12


def test_only_sqlite_files_get_the_queue_pool(tmp_path):
    assert isinstance(make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}").pool, QueuePool)
    assert not isinstance(make_engine("sqlite://").pool, QueuePool)
