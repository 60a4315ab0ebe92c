"""Fixtures of the unit tests: the action server's environment."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_SECRET
from tests.unit.bot_trackers import PUBLIC_BASE


@pytest.fixture
def bank_env(demo_db_url, monkeypatch):
    """The action server's environment: the demo database and the test secret."""
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE)
    monkeypatch.setenv("AUTHORIZATION_TTL_S", "1800")
    return demo_db_url
