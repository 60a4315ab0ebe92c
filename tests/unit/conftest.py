"""Fixtures of the unit tests: the action server's environment."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.conftest import TEST_SECRET
from tests.unit.bot_trackers import PUBLIC_BASE
from tests.unit.lending_helpers import service


@pytest.fixture
def bank_env(demo_db_url, redis_url, monkeypatch):
    """The action server's environment: the demo database, the test Redis and the test secret."""
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE)
    monkeypatch.setenv("AUTHORIZATION_TTL_S", "1800")
    return demo_db_url


@pytest.fixture
def bank_sms(bank_env, sms, monkeypatch):
    """The action server's SMS gateway is the emulator; returns texts_to(phone, count): the texts
    it received for that phone, waiting up to 5 s for `count` of them (the binding's texts are
    sent in the background, after the answer)."""
    client, received = sms
    monkeypatch.setenv("SMS_API_BASE", client.base_url)
    monkeypatch.setenv("SMS_API_KEY", client.api_key)

    def texts_to(phone: str, count: int = 1) -> list[str]:
        deadline = time.monotonic() + 5
        while True:
            found = [m["content"] for m in received if m["phone"] == phone]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    return texts_to


@pytest.fixture
def core(demo_settings, corebank):
    """(settings, the service with the emulated core, what customers were told, the emulator's URL and state)."""
    client, url, state = corebank
    svc, told = service(core_banking=client)
    return replace(demo_settings, core_banking_url=url), svc, told, url, state
