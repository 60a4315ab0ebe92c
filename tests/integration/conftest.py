"""The whole stack, started by the same launcher as `make run`, on free ports
(see `sunshine.local_stack`)."""

from __future__ import annotations

import pytest

from sunshine import local_stack
from tests.conftest import fresh_database


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    with fresh_database(folder) as db_url:
        try:
            s = local_stack.start(folder, db_url, SECRET_KEY="integration-secret")
        except local_stack.StackFailed as exc:
            pytest.fail(str(exc))
        yield s
        s.stop()
