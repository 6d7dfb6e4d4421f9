"""``WriteTx.append_once``: the one way a service appends an entry with rows of its own.
A replay does nothing and answers the original; a new request gets its rows written at
the seq its entry then takes; a refusal, by the rows or by the entry, leaves nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger.core import EntryDraft, EntryKind
from ledger.core.errors import Conflict, NotFound, Refused
from ledger.db.schema import JournalEntry, table
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import transfer_draft

from .network import ANN, BOB, USD, build_network

_entries = table(JournalEntry)


def _head(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(_entries.c.seq), 0))).scalar_one())


def _draft(amount: int = 5, key: str = "once-1") -> EntryDraft:
    return transfer_draft(
        sender=ANN, recipient=BOB, instrument=USD, amount=amount, key=key, actor="t"
    )


def test_the_rows_get_the_seq_the_entry_takes(ledger: Ledger) -> None:
    build_network(ledger)
    head = _head(ledger)
    given: list[int] = []
    with ledger.write() as tx:
        appended = tx.append_once(_draft(), given.append)
        assert tx.next_seq == head + 2
    assert (given, appended.entry.seq, appended.replayed) == ([head + 1], head + 1, False)
    assert _head(ledger) == head + 1


def test_a_replay_writes_nothing_and_answers_the_original(ledger: Ledger) -> None:
    build_network(ledger)
    with ledger.write() as tx:
        first = tx.append_once(_draft(), lambda seq: None)

    def must_not_run(seq: int) -> None:
        raise AssertionError("a replay wrote rows")

    with ledger.write() as tx:
        again = tx.append_once(_draft(), must_not_run)
    assert (again.entry, again.replayed) == (first.entry, True)
    assert _head(ledger) == first.entry.seq


def test_a_key_used_for_another_request_is_refused_before_any_row(ledger: Ledger) -> None:
    build_network(ledger)
    with ledger.write() as tx:
        tx.append_once(_draft(5))
    ran: list[int] = []
    with pytest.raises(Conflict) as info, ledger.write() as tx:
        tx.append_once(_draft(6), ran.append)
    assert (info.value.code, ran) == ("idempotency_conflict", [])


@pytest.mark.parametrize(
    ("amount", "refusal"),
    [
        (5, NotFound("unknown_thing", "the rows refuse")),  # refused by the service's rows
        (10**12, None),  # refused by the entry itself: more than ANN has
    ],
)
def test_a_refusal_leaves_no_trace(ledger: Ledger, amount: int, refusal: NotFound | None) -> None:
    build_network(ledger)
    head = _head(ledger)

    def rows(seq: int) -> None:
        if refusal is not None:
            raise refusal

    with pytest.raises((NotFound, Refused)), ledger.write() as tx:
        tx.append_once(_draft(amount), rows)
    with pytest.raises(RuntimeError, match="spoiled"), ledger.write() as tx:
        with pytest.raises((NotFound, Refused)):  # caught, but the transaction is spoiled
            tx.append_once(_draft(amount, key="once-2"), rows)
        tx.append(_draft(key="once-3"))
    assert _head(ledger) == head
    with ledger.engine.connect() as conn:
        assert verify(conn).ok


def test_the_services_append_once(ledger: Ledger) -> None:
    # Every service with rows of its own answers a repeated request with what it did
    # then, and leaves one entry.
    build_network(ledger)
    with ledger.engine.connect() as conn:
        kinds = conn.execute(select(_entries.c.kind).order_by(_entries.c.seq)).scalars().all()
    assert kinds.count(EntryKind.MEMBER_REGISTER) == 4
    assert kinds.count(EntryKind.ASSET_REGISTER) == 1
    build_network(ledger)  # every request again: all replays
    assert _head(ledger) == len(kinds)
