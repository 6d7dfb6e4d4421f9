"""Parallel writers never overdraw, never fork the chain, never lose or repeat an entry.

Each writer is a ``Ledger`` of its own over an engine of its own (its own connection
pool, its own group-commit thread), as separate server workers are. Nothing in the
process orders their appends: only the database's journal lock (the advisory lock on
PostgreSQL; the writer file lock and ``BEGIN IMMEDIATE`` on SQLite) does. Without it
this test fails: writers read the same head and collide on a seq, or spend the same
money twice.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import pairwise

import pytest
from sqlalchemy import Engine, select, text

from ledger.core import AccountKey
from ledger.core.accounts import member_holder
from ledger.core.errors import Refused
from ledger.db.engine import make_engine
from ledger.db.schema import JournalEntry, table
from ledger.journal.reads import account_state
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import transfer

from .network import ANN, BOB, CAT, DAN, USD, build_network

pytestmark = pytest.mark.slow

CASH = 20_000  # per member: small, so many transfers are refused for want of funds
AMOUNT_MAX = 12_000
MEMBERS = (ANN, BOB, CAT, DAN)
START_WAIT_S = 60.0

EngineFactory = Callable[[], Engine]


def _race(engine: Engine, new_engine: EngineFactory, writers: int, transfers: int) -> None:
    build_network(Ledger(engine), cash_minor=CASH)
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(writers, timeout=START_WAIT_S)

    with ExitStack() as stack:
        engines = [new_engine() for _ in range(writers)]
        for own in engines:
            stack.callback(own.dispose)
        ledgers = [Ledger(own) for own in engines]

        def writer(w: int) -> None:
            ledger, rng = ledgers[w], random.Random(w)
            start.wait()  # everyone begins at once
            for i in range(transfers // writers):
                sender, recipient = rng.sample(MEMBERS, 2)
                key = f"w{w}-{i}"
                try:
                    transfer(
                        ledger,
                        sender=sender,
                        recipient=recipient,
                        instrument=USD,
                        amount=rng.randint(1, AMOUNT_MAX),
                        key=key,
                        actor=f"writer {w}",
                    )
                except Refused as exc:
                    assert exc.code == "insufficient_funds", exc
                    with lock:
                        refused.append(key)
                else:
                    with lock:
                        accepted.append(key)

        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(writer, range(writers)))  # re-raises a writer's error

    entries = table(JournalEntry)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                entries.c.seq, entries.c.idempotency_key, entries.c.prev_hash, entries.c.hash
            ).order_by(entries.c.seq)
        ).all()
        report = verify(conn)
        states = [account_state(conn, AccountKey(member_holder(m), USD)) for m in MEMBERS]
    assert report.ok, report.problems
    assert all(s.available >= 0 and s.balance >= 0 for s in states)  # never overdrawn
    assert sum(s.balance for s in states) == len(MEMBERS) * CASH  # none created or lost
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))  # gap-free
    assert all(a.hash == b.prev_hash for a, b in pairwise(rows))  # one chain, no fork
    keys = [r.idempotency_key for r in rows if r.idempotency_key.startswith("w")]
    assert len(keys) == len(set(keys))  # none repeated
    assert set(keys) == set(accepted)  # none lost
    assert not set(keys) & set(refused)  # a refused transfer left no trace
    assert len(accepted) + len(refused) == transfers
    # The writers really raced: for funds, and for the journal (their entries interleave).
    assert len(refused) > transfers // 10 and len(accepted) > transfers // 10
    writer_of = [k.partition("-")[0] for k in keys]
    assert sum(a != b for a, b in pairwise(writer_of)) > len(keys) // 10


@pytest.fixture
def postgres_engines(postgres_engine: Engine) -> EngineFactory:
    """Engines of their own on the test's schema: a pool per writer."""
    with postgres_engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    url = postgres_engine.url.render_as_string(hide_password=False)

    def new_engine() -> Engine:
        return make_engine(
            url, connect_args={"options": f"-csearch_path={schema}"}, pool_size=1, max_overflow=1
        )

    return new_engine


@pytest.mark.postgres
def test_parallel_writers_on_postgres(
    postgres_engine: Engine, postgres_engines: EngineFactory
) -> None:
    # 3,000 transfers already race: hundreds refused for want of funds, the writers'
    # entries interleaving throughout (the last asserts of _race); 10,000 took 3x longer.
    _race(postgres_engine, postgres_engines, writers=8, transfers=3_000)


def test_parallel_writers_on_sqlite(sqlite_engine: Engine) -> None:
    url = sqlite_engine.url.render_as_string(hide_password=False)
    _race(sqlite_engine, lambda: make_engine(url), writers=8, transfers=1_000)
