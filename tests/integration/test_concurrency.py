"""Parallel writers never overdraw, never fork the chain, never lose or repeat an entry."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from sqlalchemy import Engine, select

from ledger.core import AccountKey
from ledger.db.schema import JournalEntry, table
from ledger.errors import Refused
from ledger.journal import Ledger
from ledger.members import member_holder
from ledger.reads import account_state
from ledger.transfers import transfer
from ledger.verify import verify

from .network import ANN, BOB, CAT, DAN, USD, build_network

pytestmark = pytest.mark.slow

CASH = 20_000  # per member: small, so many transfers are refused for want of funds


def _race(engine: Engine, threads: int, transfers: int) -> None:
    ledger = Ledger(engine)
    build_network(ledger, cash_minor=CASH)
    members = (ANN, BOB, CAT, DAN)
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        rng = random.Random(w)
        for i in range(transfers // threads):
            sender, recipient = rng.sample(members, 2)
            key = f"w{w}-{i}"
            try:
                transfer(
                    ledger,
                    sender=sender,
                    recipient=recipient,
                    instrument=USD,
                    amount=rng.randint(1, 3_000),
                    key=key,
                    actor=f"worker {w}",
                )
            except Refused as exc:
                assert exc.code == "insufficient_funds"
                with lock:
                    refused.append(key)
            else:
                with lock:
                    accepted.append(key)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))

    entries = table(JournalEntry)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                entries.c.seq, entries.c.idempotency_key, entries.c.prev_hash, entries.c.hash
            ).order_by(entries.c.seq)
        ).all()
        report = verify(conn)
        total = sum(account_state(conn, AccountKey(member_holder(m), USD)).balance for m in members)
        for m in members:
            state = account_state(conn, AccountKey(member_holder(m), USD))
            assert state.available >= 0
    assert report.ok, report.problems
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))  # gap-free
    assert all(a.hash == b.prev_hash for a, b in pairwise(rows))  # no fork
    keys = [r.idempotency_key for r in rows if r.idempotency_key.startswith("w")]
    assert sorted(keys) == sorted(accepted)  # none lost, none repeated
    assert len(accepted) + len(refused) == transfers
    assert accepted and refused  # the race really contended for funds
    assert total == 4 * CASH  # money moved, none created


def test_parallel_writers_on_postgres(postgres_engine: Engine) -> None:
    _race(postgres_engine, threads=8, transfers=10_000)


def test_parallel_writers_on_sqlite(sqlite_engine: Engine) -> None:
    _race(sqlite_engine, threads=4, transfers=1_000)
