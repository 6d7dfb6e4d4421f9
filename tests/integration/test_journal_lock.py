"""The journal lock on PostgreSQL belongs to one journal: writers of a journal in another
schema of the same database do not wait for it (advisory locks are database-wide)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from ledger.journal import Ledger
from ledger.reads import digest
from ledger.transfers import transfer

from .network import ANN, BOB, USD, build_network

pytestmark = pytest.mark.postgres

WAIT_S = 30.0


def test_journals_in_two_schemas_do_not_wait_for_each_other(
    postgres_engine: Engine, other_postgres_engine: Engine
) -> None:
    first, second = Ledger(postgres_engine), Ledger(other_postgres_engine)
    build_network(second)

    done = threading.Event()

    def write_the_second() -> None:
        transfer(second, sender=ANN, recipient=BOB, instrument=USD, amount=1, key="x", actor="t")
        done.set()

    with first.write():  # holds the first journal's lock until the block ends
        writer = threading.Thread(target=write_the_second)
        writer.start()
        assert done.wait(WAIT_S), "the second journal waited for the first one's lock"
    writer.join(WAIT_S)


def test_writers_of_one_journal_still_wait_for_each_other(postgres_engine: Engine) -> None:
    ledger = Ledger(postgres_engine)
    build_network(ledger)

    entered, done = threading.Event(), threading.Event()

    def write() -> None:
        entered.set()
        transfer(ledger, sender=ANN, recipient=BOB, instrument=USD, amount=1, key="y", actor="t")
        done.set()

    with ledger.write() as tx:
        writer = threading.Thread(target=write)
        writer.start()
        assert entered.wait(WAIT_S)
        assert not done.wait(0.5), "a second writer got past the journal lock"
        head = tx.head_seq
    writer.join(WAIT_S)
    assert done.is_set()
    with postgres_engine.connect() as conn:
        assert digest(conn).seq == head + 1
