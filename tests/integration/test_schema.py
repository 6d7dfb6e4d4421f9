"""The migrated schema is the models' schema, and migrations round-trip, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, Table, inspect, select, text
from sqlalchemy.exc import DBAPIError

from ledger.db.migrate import current_revision, downgrade, head_revision, upgrade
from ledger.db.schema import (
    Base,
    Currency,
    JournalEntry,
    JournalHoldChange,
    JournalPosting,
    table,
)
from ledger.db.types import Amount
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import place_hold, transfer

from .network import ANN, BOB, USD, build_network


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    assert _diff(engine) == []


def test_downgrade_and_upgrade_round_trip(engine: Engine) -> None:
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    downgrade(engine, "base")
    with engine.connect() as conn:
        assert current_revision(conn) is None
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert _diff(engine) == []
    with engine.connect() as conn:
        codes = set(conn.execute(select(table(Currency).c.code)).scalars())
    assert {"USD", "EUR", "ETH", "USDC"} <= codes


def test_amounts_beyond_64_bits_are_stored_exactly(engine: Engine) -> None:
    values = [10**30 + 7, -(10**36), 2**63, -(2**63) - 1, 0]
    probe = Table(
        "amount_probe", MetaData(), Column("id", Integer, primary_key=True), Column("v", Amount())
    )
    probe.create(engine)
    with engine.begin() as conn:
        conn.execute(probe.insert(), [{"id": i, "v": v} for i, v in enumerate(values)])
    with engine.connect() as conn:
        back = [r.v for r in conn.execute(select(probe).order_by(probe.c.id))]
    assert back == values
    assert all(type(v) is int for v in back)


def test_entry_id_index_migration_keeps_a_populated_journal(engine: Engine) -> None:
    """0003 rebuilds ``journal_entries`` on SQLite: every entry, posting and hold change
    survives both ways, the chain still verifies, and the journal stays append-only."""
    ledger = Ledger(engine)
    build_network(ledger)  # with today's code, so on today's schema; then back to 0002
    place_hold(
        ledger, member=ANN, instrument=USD, amount=5, hold_id="h", reason="bid", key="h", actor="t"
    )
    before = _journal_rows(engine)
    downgrade(engine, "0002")
    assert _journal_rows(engine) == before
    for revision in ("head", "0002", "head"):
        if revision == "head":
            upgrade(engine)
        else:
            downgrade(engine, revision)
        assert _journal_rows(engine) == before
        with engine.connect() as conn:
            assert verify(conn).ok
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM journal_entries WHERE seq = 1"))
    assert _diff(engine) == []
    transfer(ledger, sender=ANN, recipient=BOB, instrument=USD, amount=1, key="t", actor="t")
    with engine.connect() as conn:
        assert verify(conn).ok


def _journal_rows(engine: Engine) -> tuple[list[object], ...]:
    with engine.connect() as conn:
        return tuple(
            [tuple(row) for row in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in (table(JournalEntry), table(JournalPosting), table(JournalHoldChange))
        )
