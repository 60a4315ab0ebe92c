"""The security tests use the web tests' app factory and bot stand-in."""

from tests.web.conftest import bot, make_client  # noqa: F401  (fixtures)
