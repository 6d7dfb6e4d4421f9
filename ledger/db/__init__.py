"""Persistence: the tables, the engines, the append-only triggers and the migrations."""

from ledger.db.engine import (
    DEFAULT_DATABASE_URL,
    database_url,
    make_engine,
    read_connection,
    write_connection,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "database_url",
    "make_engine",
    "read_connection",
    "write_connection",
]
