"""Triggers that make the journal append-only in the database itself.

Any UPDATE or DELETE of an entry, a posting or a hold change is refused, whoever
connects; on PostgreSQL TRUNCATE is refused as well.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["APPEND_ONLY_TABLES", "create_append_only_triggers", "drop_append_only_triggers"]

APPEND_ONLY_TABLES = ("journal_entries", "journal_postings", "journal_hold_changes")
_PG_FUNCTION = "dpn_journal_is_append_only"


def create_append_only_triggers(conn: Connection) -> None:
    """Install the triggers on every append-only table (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        # Through text() so the driver's placeholder syntax leaves the % of RAISE alone.
        conn.execute(
            text(
                f"""
            CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'journal is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
            )
        )
        for table in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        return
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, 'journal is append-only: {op} on {table} refused');"
                " END"
            )


def drop_append_only_triggers(conn: Connection) -> None:
    """Remove the triggers (for a downgrade of the migration that made them)."""
    if conn.dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
        return
    for table in APPEND_ONLY_TABLES:
        for op in ("update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
