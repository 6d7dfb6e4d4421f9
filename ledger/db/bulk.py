"""Many rows into one table, fast: COPY on PostgreSQL, one ``executemany`` through the
driver on SQLite. For the hot paths that write thousands of rows a transaction (the chain
mirror's events); values go in as Python ints and strings, amounts converted here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table

from ledger.db.types import Amount

__all__ = ["bulk_insert"]


def bulk_insert(
    conn: Connection, target: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``target``."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        names = ", ".join(columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {target.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    as_text = [isinstance(target.c[name].type, Amount) for name in columns]
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(
        f"INSERT INTO {target.name} ({', '.join(columns)}) VALUES ({marks})",
        [
            tuple(
                str(v) if text and v is not None else v
                for v, text in zip(row, as_text, strict=True)
            )
            for row in rows
        ],
    )
