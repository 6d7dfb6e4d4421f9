"""Changing stored history behind the append-only triggers' back, as someone with DDL
rights could: what ``verify`` must catch."""

from __future__ import annotations

from sqlalchemy import Connection, text

from ledger.db.triggers import APPEND_ONLY_TABLES, drop_append_only_triggers


def lift_append_only(conn: Connection) -> None:
    """Let this transaction UPDATE and DELETE journal rows (PostgreSQL: the triggers
    are disabled until it ends; SQLite: they are dropped)."""
    if conn.dialect.name == "postgresql":
        for name in APPEND_ONLY_TABLES:
            conn.execute(text(f"ALTER TABLE {name} DISABLE TRIGGER USER"))
    else:
        drop_append_only_triggers(conn)
