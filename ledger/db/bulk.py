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
    # Only the amount columns change form (decimal text); the other values go as they are.
    as_text = [i for i, name in enumerate(columns) if isinstance(target.c[name].type, Amount)]
    marks = ", ".join("?" for _ in columns)
    if as_text:
        params = [_amounts_as_text(row, as_text) for row in rows]
    else:
        params = [row if isinstance(row, tuple) else tuple(row) for row in rows]
    conn.exec_driver_sql(
        f"INSERT INTO {target.name} ({', '.join(columns)}) VALUES ({marks})", params
    )


def _amounts_as_text(row: Sequence[object], indexes: Sequence[int]) -> tuple[object, ...]:
    values = list(row)
    for i in indexes:
        v = values[i]
        if v is not None:
            values[i] = str(v)
    return tuple(values)
