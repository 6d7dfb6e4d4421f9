"""Holders' balances now, read for many holders in one statement and shared between
concurrent readers: each holder gets what a read of its own would give."""

from __future__ import annotations

import asyncio

import pytest

from ledger.core.accounts import member_holder
from ledger.core.errors import InvalidInput
from ledger.db.engine import read_connection
from ledger.journal.reads import (
    HOLDERS_PER_READ_MAX,
    holder_balances,
    holders_balances,
    holdings_now,
)
from ledger.journal.write import Ledger
from ledger.money import transfer

from .network import ANN, BOB, CAT, DAN, UNITS, USD, build_network

NOBODY = member_holder("0x000000000000000000000000000000000000dEaD")


def test_many_holders_read_at_once_as_each_alone(ledger: Ledger) -> None:
    build_network(ledger, cash_minor=1_000)
    transfer(ledger, sender=ANN, recipient=DAN, instrument=UNITS, amount=7, key="t", actor="t")
    holders = [member_holder(m) for m in (ANN, BOB, CAT, DAN)] + [NOBODY]
    with read_connection(ledger.engine, snapshot=False) as conn:
        alone = {h: holder_balances(conn, h) for h in holders}
        together = holders_balances(conn, holders)
        assert holders_balances(conn, []) == {}
        with pytest.raises(InvalidInput) as refused:
            holders_balances(conn, [f"member:{i}" for i in range(HOLDERS_PER_READ_MAX + 1)])
    assert refused.value.code == "holders_too_many"
    assert together == alone
    assert together[NOBODY] == []
    dan = {key.instrument: state.balance for key, state in together[member_holder(DAN)]}
    assert dan == {USD: 1_000, UNITS: 7}


def test_concurrent_reads_now_share_statements_and_see_committed_writes(
    ledger: Ledger,
) -> None:
    build_network(ledger, cash_minor=1_000)
    reads = holdings_now(ledger.engine)
    holders = [member_holder(m) for m in (ANN, BOB, CAT, DAN)] * 5

    async def all_of_them() -> list[object]:
        return list(await asyncio.gather(*(reads.read(h) for h in holders)))

    with read_connection(ledger.engine, snapshot=False) as conn:
        expected = [holder_balances(conn, h) for h in holders]
    assert asyncio.run(all_of_them()) == expected
    # A write committed before the read is asked for is in what it reads.
    transfer(ledger, sender=BOB, recipient=CAT, instrument=USD, amount=250, key="t", actor="t")
    cat = asyncio.run(reads.read(member_holder(CAT)))
    assert {key.instrument: state.balance for key, state in cat}[USD] == 1_250
    assert reads.submit(member_holder(BOB)).result(10)[0][1].balance == 750


def test_sums_as_of_a_seq_take_more_accounts_than_a_statement_takes_parameters(
    ledger: Ledger,
) -> None:
    """An asset's past cap table sums the postings of every holder's account: 100,000s
    of ids, more than PostgreSQL's 65,535 parameters (or old SQLite's 999) a statement."""
    from ledger.journal.reads import _sum_as_of  # the slicing is what is under test

    build_network(ledger)
    with read_connection(ledger.engine) as conn:
        ids = [*range(1, 70_001)]
        states = _sum_as_of(conn, ids, seq=10**9)
    assert len(states) == 70_000
    assert any(s.balance for s in states.values())  # the network's accounts are among them
