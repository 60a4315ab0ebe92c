"""The Alembic migrations build exactly the schema the models describe, in one line of history."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from sunshine.db import make_engine
from sunshine.migrate import MIGRATIONS, upgrade
from sunshine.models import Base
from tests.conftest import fresh_database


def test_migrations_build_the_models_schema(tmp_path):
    with fresh_database(tmp_path) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                drift = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        finally:
            engine.dispose()
    assert drift == [], "the models and the migrations differ; add a migration for:\n" + "\n".join(map(str, drift))


def test_migrations_have_one_head():
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()  # what `alembic heads` lists
    assert len(heads) == 1, f"the migrations branch: heads {heads}; merge them into one"
