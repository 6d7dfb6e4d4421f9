"""The journal lock. On PostgreSQL it belongs to one journal: writers of a journal in
another schema of the same database do not wait for it (advisory locks are
database-wide). On SQLite, writers take turns on a file lock."""

from __future__ import annotations

import fcntl
import threading

import pytest
from sqlalchemy import Engine

from ledger.journal.reads import digest
from ledger.journal.write import Ledger
from ledger.money import transfer

from .network import ANN, BOB, USD, build_network

WAIT_S = 30.0


@pytest.mark.postgres
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


@pytest.mark.postgres
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


def test_sqlite_writers_of_every_process_queue_on_a_file_lock(sqlite_engine: Engine) -> None:
    # A file lock, not SQLite's sleeping busy wait, decides whose write comes next, so
    # writers in other processes (server workers) are handed the turn at once.
    lock_path = f"{sqlite_engine.url.database}-writer.lock"
    ledger = Ledger(sqlite_engine)
    build_network(ledger)

    def lock_is_free() -> bool:
        with open(lock_path, "a+b") as other:  # another open file: as another process
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True

    with ledger.write():
        assert not lock_is_free()
    assert lock_is_free()
