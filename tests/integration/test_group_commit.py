"""Group commit: concurrent appends share transactions, each draft standing alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from ledger.core import AccountKey
from ledger.core.accounts import member_holder
from ledger.core.errors import LedgerError, Refused
from ledger.journal.group_commit import GroupCommit
from ledger.journal.reads import account_state
from ledger.journal.verify import verify
from ledger.journal.write import Ledger, WriteTx
from ledger.money import transfer_draft

from .network import ANN, BOB, CAT, USD, build_network


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the appends never queued up")
        time.sleep(0.001)


class Gate:
    """A write whose first transaction waits, once begun, until the gate opens: what
    arrives meanwhile queues behind it."""

    def __init__(self, write: Callable[[], Any]) -> None:
        self.entered, self.open = threading.Event(), threading.Event()
        self._write = write

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        if not self.entered.is_set():
            self.entered.set()
            self.open.wait(timeout=10)
        with self._write() as tx:
            yield tx


def test_waiting_appends_share_one_transaction_and_fail_alone(ledger: Ledger) -> None:
    build_network(ledger, cash_minor=1_000)
    batches: list[int] = []
    original = ledger.write

    @contextmanager
    def counted_write() -> Iterator[WriteTx]:
        with original() as tx:
            real = tx.append_each

            def counting(drafts):  # type: ignore[no-untyped-def]
                batches.append(len(drafts))
                return real(drafts)

            tx.append_each = counting  # type: ignore[method-assign]
            yield tx

    # The first transaction waits until every other append is queued behind it.
    gate = Gate(counted_write)
    group = GroupCommit(gate.write)
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
            return group.submit(drafts[i]).result()
        except LedgerError as error:
            return error

    with ThreadPoolExecutor(len(drafts)) as pool:
        first = pool.submit(submit, 0)
        _until(gate.entered.is_set)
        rest = [pool.submit(submit, i) for i in range(1, len(drafts))]
        _until(lambda: group.waiting == len(drafts))
        gate.open.set()
        outcomes = [first.result(timeout=30), *(f.result(timeout=30) for f in rest)]

    refused = [o for o in outcomes if isinstance(o, LedgerError)]
    assert sorted(e.code for e in refused) == [
        "idempotency_conflict",
        "insufficient_funds",
        "insufficient_funds",
    ]
    assert all(isinstance(e, Refused) for e in refused if e.code == "insufficient_funds")
    assert batches == [len(drafts)]  # taken once the lock was held: all of them
    with ledger.engine.connect() as conn:
        assert account_state(conn, AccountKey(member_holder(ANN), USD)).balance == 0
        assert verify(conn).ok


def test_the_committer_thread_ends_when_idle_and_returns_with_work(ledger: Ledger) -> None:
    build_network(ledger)
    group = GroupCommit(ledger.write, idle_s=0.01)
    draft = transfer_draft(
        sender=ANN, recipient=BOB, instrument=USD, amount=1, key="solo", actor="t"
    )
    assert group.submit(draft).result().entry.kind == "transfer"
    _until(lambda: not group.running)
    assert group.submit(draft).result().replayed
    _until(lambda: not group.running)


def test_a_draft_cancelled_before_its_batch_is_dropped(ledger: Ledger) -> None:
    build_network(ledger, cash_minor=1_000)
    gate = Gate(ledger.write)
    group = GroupCommit(gate.write)
    drafts = [
        transfer_draft(sender=ANN, recipient=BOB, instrument=USD, amount=1, key=k, actor="t")
        for k in ("kept", "dropped")
    ]
    kept = group.submit(drafts[0])
    _until(gate.entered.is_set)
    dropped = group.submit(drafts[1])
    assert dropped.cancel()
    gate.open.set()
    assert kept.result(timeout=30).entry.idempotency_key == "kept"
    with ledger.engine.connect() as conn:
        assert account_state(conn, AccountKey(member_holder(BOB), USD)).balance == 1_001
        assert verify(conn).ok


def test_a_failed_transaction_fails_every_draft_of_its_batch(ledger: Ledger) -> None:
    build_network(ledger)

    @contextmanager
    def broken_write() -> Iterator[WriteTx]:
        raise ConnectionError("the database went away")
        yield  # pragma: no cover

    group = GroupCommit(broken_write)
    futures = [
        group.submit(
            transfer_draft(sender=ANN, recipient=BOB, instrument=USD, amount=1, key=k, actor="t")
        )
        for k in ("a", "b")
    ]
    for future in futures:
        assert isinstance(future.exception(timeout=30), ConnectionError)


def test_a_refused_draft_is_answered_without_the_frames_of_its_batch(ledger: Ledger) -> None:
    """The frames hold the batch's drafts; with them on the answer, an asker that raises
    it from its future makes a reference cycle that keeps the whole batch alive."""
    build_network(ledger, cash_minor=10)
    group = GroupCommit(ledger.write)
    draft = transfer_draft(sender=ANN, recipient=BOB, instrument=USD, amount=11, key="r", actor="t")
    error = group.submit(draft).exception(timeout=30)
    assert isinstance(error, Refused) and error.code == "insufficient_funds"
    assert error.__traceback__ is None
