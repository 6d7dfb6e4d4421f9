"""Many rows into one table, fast, through the driver: on PostgreSQL one ``INSERT``
over arrays (a round trip) a ``PG_ARRAY_ROWS_MAX`` rows, and ``COPY`` beyond that
outside a pipeline (``ledger.db.engine.pipelined``, which cannot carry COPY);
one ``executemany`` on SQLite. For the hot paths: the journal's rows at every write,
the market engine's at every batch, the chain mirror's events. Values go in as Python
ints, strings, datetimes and None; amounts are converted here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Final

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql

from ledger.db.types import Amount

__all__ = ["PG_ARRAY_ROWS_MAX", "bulk_insert", "pg_array", "pg_array_insert_sql"]

PG_ARRAY_ROWS_MAX: Final = 256
"""Up to this many rows, PostgreSQL gets one ``INSERT ... SELECT FROM unnest(...)`` with
a column a parameter; beyond it, ``COPY``. COPY takes two round trips (the statement,
then the data and its end) and more of the driver's Python per call: the market engine
writes a dozen small tables a batch, and with 16 orders a batch the round trips were
most of its time. For thousands of rows COPY's rows, written in C, win.

The ``INSERT`` is a server-side prepared statement (per connection, at its first use):
PostgreSQL then parses and analyses it once, not at every batch. Under the HTTP order
load that was a quarter of the server's CPU per batch (``log_parser_stats`` and its
kin), and preparing cut PostgreSQL's CPU per order by 13 %. It reads no rows, so no
generic plan can go stale (``ledger.db.engine.make_engine``)."""


def bulk_insert(
    conn: Connection, target: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``target``."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        cursor = driver.cursor()  # type: ignore[union-attr]
        if len(rows) <= PG_ARRAY_ROWS_MAX or driver.pgconn.pipeline_status:  # type: ignore[union-attr]
            sql = pg_array_insert_sql(target, tuple(columns))
            for start in range(0, len(rows), PG_ARRAY_ROWS_MAX):
                part = rows[start : start + PG_ARRAY_ROWS_MAX]
                cursor.execute(
                    sql, [pg_array(column) for column in zip(*part, strict=True)], prepare=True
                )
            return
        with cursor.copy(f"COPY {target.name} ({', '.join(columns)}) FROM STDIN") as copy:
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
    sql = f"INSERT INTO {target.name} ({', '.join(columns)}) VALUES ({marks})"
    if len(params) == 1:  # a plain execute: executemany would open a pipeline for one row
        conn.exec_driver_sql(sql, params[0])
    else:
        conn.exec_driver_sql(sql, params)


def pg_array(values: Iterable[object]) -> str:
    """The text of a PostgreSQL array of ``values`` (ints, strings, datetimes, bools or
    None), to be sent as one parameter and cast (``%s::bigint[]``). Every string is
    quoted, its backslashes and double quotes escaped, so that any text, commas, braces,
    ``NULL`` and white space included, reads back as itself."""
    out: list[str] = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif v is True or v is False:
            out.append("t" if v else "f")
        elif isinstance(v, int):
            out.append(str(int(v)))
        elif isinstance(v, str):
            out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("a naive datetime has no place in the database")
            out.append('"' + v.isoformat() + '"')
        else:
            raise TypeError(f"no array text for a {type(v).__name__}")
    return "{" + ",".join(out) + "}"


@cache
def pg_array_insert_sql(target: Table, columns: tuple[str, ...]) -> str:
    """PostgreSQL's ``INSERT`` of rows given as one array a column (``pg_array`` of each
    column's values, in ``columns`` order): ``bulk_insert``'s statement, which a caller
    may extend (``ON CONFLICT ...``)."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    casts = ", ".join(f"%s::{target.c[name].type.compile(dialect=dialect)}[]" for name in columns)
    return f"INSERT INTO {target.name} ({', '.join(columns)}) SELECT * FROM unnest({casts})"


def _amounts_as_text(row: Sequence[object], indexes: Sequence[int]) -> tuple[object, ...]:
    values = list(row)
    for i in indexes:
        v = values[i]
        if v is not None:
            values[i] = str(v)
    return tuple(values)
