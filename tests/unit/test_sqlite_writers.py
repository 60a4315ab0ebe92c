"""Several processes writing one SQLite file (`make run`'s default database): a
transaction that reads and then writes must wait for another writer, not fail
with "database is locked" (what `make soak` found: WeCom notices sent twice,
authorization links replaced by an apology)."""

import threading

import pytest
from sqlalchemy import text

from sunshine.db import make_engine, unit_of_work

pytestmark = pytest.mark.no_database  # its own SQLite file, whatever DATABASE_URL says


def test_read_then_write_waits_for_a_writer_that_came_in_between(tmp_path):
    url = f"sqlite:///{tmp_path / 'writers.sqlite'}"
    with unit_of_work(url) as session:
        session.execute(text("CREATE TABLE notice (id INTEGER PRIMARY KEY, status TEXT)"))
        session.execute(text("INSERT INTO notice VALUES (1, 'pending'), (2, 'pending')"))
    other = make_engine(url)  # another process's connection
    other_started, other_done, errors = threading.Event(), threading.Event(), []

    def other_writer():
        other_started.set()
        try:
            with other.begin() as conn:
                conn.execute(text("UPDATE notice SET status = 'sent' WHERE id = 2"))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            other_done.set()

    with unit_of_work(url) as session:
        assert session.execute(text("SELECT status FROM notice WHERE id = 1")).scalar_one() == "pending"
        writer = threading.Thread(target=other_writer)
        writer.start()
        other_started.wait(5)
        other_done.wait(1)  # with a deferred BEGIN the other writer commits here, before our write
        session.execute(text("UPDATE notice SET status = 'sent' WHERE id = 1"))
    writer.join(30)
    other.dispose()
    assert errors == []
    with unit_of_work(url) as session:
        assert session.execute(text("SELECT id, status FROM notice ORDER BY id")).all() == [(1, "sent"), (2, "sent")]
