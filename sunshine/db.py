"""Database engine and unit of work (SQLAlchemy 1.4, used in 2.0 style)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from sunshine.settings import VAR


def engine_url(url: str) -> str:
    """`url` as SQLAlchemy takes it: libpq's list of hosts (`postgresql://u@h1:5432,h2:5432/db?...`,
    which SQLAlchemy 1.4 cannot parse) becomes its `?host=h1:5432&host=h2:5432` form; libpq
    tries them in order (with `target_session_attrs=read-write`, until one takes writes)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    if not scheme.startswith("postgresql") or "," not in hosts:
        return url
    path, question, query = tail.partition("?")
    listed = "&".join(f"host={host}" for host in hosts.split(","))
    return f"{scheme}{sep}{credentials}{at}{slash}{path}?{listed}{'&' + query if question and query else ''}"


def make_engine(url: str) -> Engine:
    """An engine for `url` (`engine_url`); SQLite files get their folder and foreign keys."""
    url = engine_url(url)
    kwargs: dict = {"future": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        VAR.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if make_url(url).database not in (None, "", ":memory:"):
            # SQLAlchemy 1.4 opens a new connection to a SQLite file (and runs the pragmas
            # below) for every session, a few ms each: keep them, as SQLAlchemy 2.0 does,
            # with no cap on how many are open at once (as before).
            kwargs.update(poolclass=QueuePool, max_overflow=-1)
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
            # IMMEDIATE: take the write lock at the start, waiting up to the timeout for other
            # writers. A deferred transaction that reads and then writes fails at once with
            # "database is locked" when another process wrote in between (WAL's stale snapshot),
            # which under load lost officers' notices and customers' authorization links.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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
