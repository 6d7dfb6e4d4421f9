"""Alembic environment: migrates the database named by DPN_DATABASE_URL (or a given
connection), with the ledger's metadata as the target for autogenerate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.db.engine import make_engine
from ledger.db.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `dpn db upgrade`")
run_migrations_online()
