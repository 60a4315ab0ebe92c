"""Shared fixtures: a real database (SQLite, or PostgreSQL when DATABASE_URL
names one) migrated with Alembic, and a real Redis server."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sunshine import redis_server
from sunshine.db import unit_of_work
from sunshine.local_stack import free_port  # noqa: F401  (tests import it from here)
from sunshine.migrate import upgrade
from sunshine.models import Base
from sunshine.settings import Settings

TEST_SECRET = "test-secret-key"
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "13"))


@contextmanager
def fresh_database(folder: Path):
    """A new, empty database: a file in `folder`, or a new PostgreSQL
    database beside the one DATABASE_URL names (dropped afterwards)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield f"sqlite:///{folder / 'sunshine.sqlite'}"
        return
    name = f"sunshine_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = url.rsplit("/", 1)[0] + "/" + name
    try:
        yield test_url
    finally:
        from sunshine.db import engine_for

        engine_for(test_url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """A migrated database for this test session: its URL."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        upgrade(url)
        yield url


@pytest.fixture
def db_url(database_template, tmp_path):
    """An empty, migrated database for one test."""
    if database_template.startswith("sqlite"):
        path = tmp_path / "test.sqlite"  # a copy of the migrated template: fast and isolated
        shutil.copy(database_template.split("///", 1)[1], path)
        return f"sqlite:///{path}"
    with unit_of_work(database_template) as session:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return database_template


@pytest.fixture
def demo_db_url(db_url):
    """A database holding the demo village, products and officers."""
    from sunshine.demo import load_demo

    with unit_of_work(db_url) as session:
        load_demo(session, TEST_SECRET)
    return db_url


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory):
    """A real Redis server: the one at REDIS_URL, else a private one started here."""
    url = os.environ.get("REDIS_URL", "")
    if url and redis_server.reachable(url):
        yield url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        return
    port = free_port()
    proc = redis_server.start(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_base_url):
    """A flushed Redis database reserved for tests."""
    import redis

    url = f"{redis_base_url}/{TEST_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def settings(db_url, redis_url) -> Settings:
    return replace(Settings(), database_url=db_url, redis_url=redis_url, secret_key=TEST_SECRET)


@pytest.fixture
def demo_settings(settings, demo_db_url) -> Settings:
    return replace(settings, database_url=demo_db_url)
