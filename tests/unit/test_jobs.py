"""sunshine.jobs.after_commit: once after the commit, never after a rollback, the last per key."""

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from sunshine.jobs import after_commit, queue_name


def test_after_commit_runs_once_after_the_commit_and_never_after_a_rollback():
    ran = []
    with Session(create_engine("sqlite://")) as session:
        session.execute(text("SELECT 1"))  # a transaction under way
        after_commit(session, lambda: ran.append("dropped"))
        session.rollback()
        session.execute(text("SELECT 1"))
        after_commit(session, lambda: ran.append("first"), key="application:1")
        after_commit(session, lambda: ran.append("last"), key="application:1")
        after_commit(session, lambda: ran.append("other"))
        try:
            with session.begin_nested():  # a savepoint rolled back: the transaction goes on
                raise ValueError
        except ValueError:
            pass
        assert ran == []
        session.commit()
        session.commit()
    assert ran == ["last", "other"]


def test_a_failing_callback_does_not_stop_the_others():
    ran = []
    with Session(create_engine("sqlite://")) as session:
        after_commit(session, lambda: 1 / 0)
        after_commit(session, lambda: ran.append("told"))
        session.commit()
    assert ran == ["told"]


def test_a_customer_s_jobs_always_go_to_the_same_queue():
    assert queue_name("o_demo_zhangjianguo", 4) == queue_name("o_demo_zhangjianguo", 4)
    assert {queue_name(f"o_{i}", 4) for i in range(100)} == {f"replies.{p}" for p in range(4)}
