"""Database engine and unit of work (SQLAlchemy 1.4, used in 2.0 style)."""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sunshine.settings import VAR


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder and foreign keys."""
    kwargs: dict = {"future": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        VAR.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # pysqlite's own transaction handling would let RELEASE SAVEPOINT commit the
            # whole transaction (begin_nested); SQLAlchemy emits BEGIN itself instead.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            conn.exec_driver_sql("BEGIN")
    return engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def session_factory(url: str) -> sessionmaker:
    return sessionmaker(bind=engine_for(url), future=True, expire_on_commit=False)


@contextmanager
def unit_of_work(url: str) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")


def in_unit_of_work(url: str, work: Callable[[Session], T], attempts: int = 6) -> T:
    """`work(session)` in a unit of work, run afresh when SQLite refuses its write: a transaction that
    read before another process wrote gets "database is locked" at once (the busy timeout does not
    apply). For background jobs whose write must not be lost to that (a notice's status, a hand-off)."""
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(url) as session:
                return work(session)
        except OperationalError:
            if attempt == attempts or not url.startswith("sqlite"):
                raise
            time.sleep(random.uniform(0.05, 0.1) * 2 ** attempt)  # about 6 s in all
    raise AssertionError("unreachable")
