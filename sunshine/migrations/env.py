"""Alembic environment: the URL comes from the caller's Config (see sunshine.migrate)."""

from alembic import context

from sunshine.db import make_engine
from sunshine.models import Base

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL in the Alembic config: migrate with sunshine.migrate.upgrade(url)")
    engine = make_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch migrations rebuild a table (copy, drop, rename): with foreign keys enforced, the
            # drop of a table others refer to (customers) fails. SQLite ignores this pragma inside a
            # transaction, so it is set on the DB-API connection before the migration's transaction begins.
            connection.connection.cursor().execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
