"""Group commit: concurrent appends share transactions, each draft standing alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ledger.core import AccountKey
from ledger.errors import LedgerError, Refused
from ledger.journal import Ledger, WriteTx
from ledger.members import member_holder
from ledger.reads import account_state
from ledger.transfers import transfer_draft
from ledger.verify import verify

from .network import ANN, BOB, CAT, USD, build_network


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the appends never queued up")
        time.sleep(0.001)


def test_waiting_appends_share_one_transaction_and_fail_alone(ledger: Ledger) -> None:
    build_network(ledger, cash_minor=1_000)
    batches: list[int] = []
    gate = threading.Event()
    original = ledger.write

    @contextmanager
    def gated_write() -> Iterator[WriteTx]:
        # The first transaction waits until every other append is queued behind it.
        if not batches:
            gate.wait(timeout=10)
        with original() as tx:
            real = tx.append_each

            def counting(drafts):  # type: ignore[no-untyped-def]
                batches.append(len(drafts))
                return real(drafts)

            tx.append_each = counting  # type: ignore[method-assign]
            yield tx

    ledger._group._write = gated_write
    drafts = [
        transfer_draft(
            sender=ANN, recipient=BOB, instrument=USD, amount=100, key=f"g{i}", actor="t"
        )
        for i in range(12)  # ANN has 1,000: ten succeed, two are refused
    ]
    drafts.append(
        transfer_draft(sender=CAT, recipient=BOB, instrument=USD, amount=5, key="g0", actor="t")
    )  # reuses a key for another request

    def submit(i: int) -> object:
        try:
            return ledger.append(drafts[i])
        except LedgerError as error:
            return error

    with ThreadPoolExecutor(len(drafts)) as pool:
        first = pool.submit(submit, 0)
        _until(lambda: ledger._group._leading and not ledger._group._waiting)
        rest = [pool.submit(submit, i) for i in range(1, len(drafts))]
        _until(lambda: len(ledger._group._waiting) == len(drafts) - 1)
        gate.set()
        outcomes = [first.result(timeout=30), *(f.result(timeout=30) for f in rest)]

    refused = [o for o in outcomes if isinstance(o, LedgerError)]
    assert sorted(e.code for e in refused) == [
        "idempotency_conflict",
        "insufficient_funds",
        "insufficient_funds",
    ]
    assert all(isinstance(e, Refused) for e in refused if e.code == "insufficient_funds")
    assert sum(batches) == len(drafts) and max(batches) > 1
    with ledger.engine.connect() as conn:
        assert account_state(conn, AccountKey(member_holder(ANN), USD)).balance == 0
        assert verify(conn).ok


def test_a_lone_append_leads_its_own_batch(ledger: Ledger) -> None:
    build_network(ledger)
    draft = transfer_draft(
        sender=ANN, recipient=BOB, instrument=USD, amount=1, key="solo", actor="t"
    )
    assert ledger.append(draft).entry.kind == "transfer"
    assert ledger.append(draft).replayed
    assert not ledger._group._leading and not ledger._group._waiting
