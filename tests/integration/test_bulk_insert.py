"""``bulk_insert`` and ``pipelined``: rows go in as they were, by every path (arrays,
COPY, arrays in chunks inside a pipeline, executemany on SQLite), and an error inside a
pipeline surfaces as SQLAlchemy's, the transaction spoiled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from ledger.db.bulk import PG_ARRAY_ROWS_MAX, bulk_insert, pg_array
from ledger.db.engine import pipelined
from ledger.db.schema import MarketOrder, table

from .test_journal import AWKWARD_KEYS

_orders = table(MarketOrder)
COLUMNS = (
    "id", "asset_id", "currency", "owner", "side", "type", "time_in_force", "price_minor",
    "qty_units", "spend_minor", "remaining_units", "filled_units", "filled_minor", "status",
    "reason", "post_only", "self_trade", "expires_at_ms", "hold_id", "placed_ms",
    "updated_seq",
)  # fmt: skip


def _row(i: int) -> tuple[object, ...]:
    text = AWKWARD_KEYS[i % len(AWKWARD_KEYS)]
    return (
        i + 1, "1FTFW1ET5DFC10312", "USD", f"0x{i:040x}", "sell", "limit", "GTC",
        None if i % 3 else 2**63 - 1, i, None if i % 2 else 10**36, 0, i, -(10**30) - i,
        "open", None if i % 5 else text, i % 2 == 0, "cancel_newest", None, text,
        1_700_000_000_000 + i, i + 1,
    )  # fmt: skip


def _stored(engine: Engine) -> list[tuple[object, ...]]:
    columns = [_orders.c[name] for name in COLUMNS]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(_orders.c.id))]


@pytest.mark.parametrize("count", [1, 7, PG_ARRAY_ROWS_MAX, PG_ARRAY_ROWS_MAX + 1])
@pytest.mark.parametrize("in_pipeline", [False, True])
def test_rows_read_back_as_written(engine: Engine, count: int, in_pipeline: bool) -> None:
    rows = [_row(i) for i in range(count)]
    with engine.begin() as conn:
        if in_pipeline:
            with pipelined(conn):  # no COPY in a pipeline: arrays, in chunks
                bulk_insert(conn, _orders, COLUMNS, rows)
        else:
            bulk_insert(conn, _orders, COLUMNS, rows)
    assert _stored(engine) == rows


def test_an_error_in_a_pipeline_is_sqlalchemys_and_spoils_the_transaction(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        bulk_insert(conn, _orders, COLUMNS, [_row(0)])
    with pytest.raises(IntegrityError), engine.begin() as conn, pipelined(conn):
        bulk_insert(conn, _orders, COLUMNS, [_row(1)])
        bulk_insert(conn, _orders, COLUMNS, [_row(0)])  # the same id again
    assert _stored(engine) == [_row(0)]  # nothing of the failed transaction stayed


def test_array_text_refuses_what_it_cannot_spell() -> None:
    assert pg_array([1, None, True, 'a"b', datetime(2027, 1, 1, tzinfo=UTC)]) == (
        '{1,NULL,t,"a\\"b","2027-01-01T00:00:00+00:00"}'
    )
    with pytest.raises(ValueError, match="naive"):
        pg_array([datetime(2027, 1, 1)])
    with pytest.raises(TypeError, match="float"):
        pg_array([1.5])


def test_only_the_array_insert_is_a_prepared_statement_on_postgresql(
    postgres_engine: Engine,
) -> None:
    # Parsed once a connection, not at every batch; nothing else is prepared, however
    # often it runs (a generic plan of a read could go stale as the journal grows).
    with postgres_engine.begin() as conn:
        for n in range(3):
            bulk_insert(conn, _orders, COLUMNS, [_row(2 * n), _row(2 * n + 1)])
        for _ in range(10):
            conn.execute(select(_orders.c.id).where(_orders.c.id == 1)).all()
        prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").all()
    (statement,) = [p.statement for p in prepared]
    assert statement.startswith(f"INSERT INTO market_orders ({', '.join(COLUMNS)}) SELECT")
    assert len(_stored(postgres_engine)) == 6
