"""The test suite. Constants shared by the fixtures (tests/conftest.py) and the helpers."""

import os

TEST_SECRET = "test-secret-key"
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "13"))
