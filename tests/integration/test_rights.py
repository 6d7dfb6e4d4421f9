"""Rights by the clock (``ledger.rights``), on SQLite and PostgreSQL: owned, less leased
out, plus leased in, at an instant; a lease shifts rights exactly over ``[start, end)``;
a past instant reads the ledger as it stood then; the rights of every holder sum to the
asset's ``total_units`` at every instant, and no holder has more leased out over an
instant to come than it owns.

Leases are made through the market engine (the ``market`` fixture of the trading tests,
which also ends every test with their invariants). The engine's clock (``market.clock``,
from 2027-01-15) and the ledger's (a ``StepClock`` from 2027-01-01, a second an entry)
are apart: instants at the lease terms' boundaries come after every entry and read the
ledger now; instants at recorded times read its past.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core import with_check_character
from ledger.core.accounts import member_holder, pool_holder
from ledger.core.errors import InvalidInput, LedgerError, NotFound
from ledger.core.kinds import EntryKind
from ledger.core.timestamps import ms_of, time_of_ms
from ledger.db.engine import read_connection
from ledger.journal.entries import load_entries
from ledger.journal.reads import cap_table_of, digest
from ledger.registry.assets import issue_units, register_asset
from ledger.rights import HolderRights, RightsTable, holder_rights, members_rights, rights_table
from market.engine.lease_terms import next_terms, term_span
from market.engine.rows import LeaseRow, TradeRow

from .network import ANN, ASSET, BOB, CAT, DAN
from .test_market_engine import BUY, SELL, Market, market

__all__ = ["market"]  # the fixture, shared with the trading tests

Q1 = "2027-01-01/2027-04-01"  # under way at the engine's T0 (2027-01-15); covers the ledger's times
Q2 = "2027-04-01/2027-07-01"
Q2_START_MS, Q2_END_MS = term_span(Q2)
TOTAL = 1_000_000
A, B, C, D = (member_holder(x) for x in (ANN, BOB, CAT, DAN))


def table_at(m: Market, at_ms: int, asset: str = ASSET) -> RightsTable:
    with read_connection(m.ledger.engine) as conn:
        return rights_table(conn, asset, time_of_ms(at_ms))


def rights_at(m: Market, at: int | datetime, asset: str = ASSET) -> dict[str, int]:
    """Each holder's rights at ``at`` (ms or a time), checked against its own read."""
    moment = time_of_ms(at) if isinstance(at, int) else at
    with read_connection(m.ledger.engine) as conn:
        table = rights_table(conn, asset, moment)
        assert sum(r.rights for r in table.rows) == table.total_units
        members = sum(r.rights for r in table.rows if r.holder != pool_holder(asset))
        assert members_rights(conn, asset, moment) == members  # read without the table
        for row in table.rows:
            if row.holder.startswith("member:"):
                address = row.holder.removeprefix("member:")
                assert holder_rights(conn, asset, address, moment) == row
        return {r.holder: r.rights for r in table.rows}


def head_time(m: Market) -> datetime:
    """When the latest entry was recorded (the ledger's clock)."""
    with m.ledger.engine.connect() as conn:
        (entry,) = load_entries(conn, [digest(conn).seq])
    return entry.recorded_at


# -- worked examples --------------------------------------------------------------------


def test_a_lease_moves_rights_exactly_over_its_term(market: Market) -> None:
    market.place(ANN, SELL, 7, 1_000, term=Q2)
    market.place(BOB, BUY, 9, 400, term=Q2)
    owners = {A: 500_000, B: 300_000, C: 200_000}
    leased = {A: 499_600, B: 300_400, C: 200_000}
    assert rights_at(market, Q2_START_MS - 1) == owners
    assert rights_at(market, Q2_START_MS) == leased
    assert rights_at(market, Q2_END_MS - 1) == leased
    assert rights_at(market, Q2_END_MS) == owners
    table = table_at(market, Q2_START_MS)
    assert (table.asset_id, table.total_units, table.at_ms) == (ASSET, TOTAL, Q2_START_MS)
    assert table.rows == [  # in holder order
        HolderRights(A, 500_000, 400, 0, 499_600),
        HolderRights(C, 200_000, 0, 0, 200_000),
        HolderRights(B, 300_000, 0, 400, 300_400),
    ]
    # Ownership never moved: the offer's unleased rest still holds ANN's units.
    assert [r.owned for r in table_at(market, Q2_END_MS).rows] == [500_000, 200_000, 300_000]


def test_a_lessee_without_units_gets_a_row_for_the_term_only(market: Market) -> None:
    market.place(CAT, SELL, 5, 150_000, term=Q2)
    market.place(DAN, BUY, 5, 150_000, term=Q2)
    assert D not in rights_at(market, Q2_START_MS - 1)
    assert rights_at(market, Q2_START_MS + 86_400_000) == {
        A: 500_000, B: 300_000, D: 150_000, C: 50_000,
    }  # fmt: skip
    assert table_at(market, Q2_START_MS).rows[-1] == HolderRights(D, 0, 0, 150_000, 150_000)
    with read_connection(market.ledger.engine) as conn:
        before = holder_rights(conn, ASSET, DAN, time_of_ms(Q2_START_MS - 1))
    assert before == HolderRights(D, 0, 0, 0, 0)


def test_leases_over_overlapping_terms_add_up(market: Market) -> None:
    h1 = "2027-04-01/2027-10-01"
    market.place(ANN, SELL, 3, 100_000, term=Q2)
    market.place(BOB, BUY, 3, 100_000, term=Q2)
    market.place(ANN, SELL, 3, 50_000, term=h1)
    market.place(CAT, BUY, 3, 50_000, term=h1)
    market.place(BOB, SELL, 3, 20_000, term=Q2)  # a lessee leases out its own units
    market.place(DAN, BUY, 3, 20_000, term=Q2)
    assert rights_at(market, Q2_START_MS) == {
        A: 350_000, B: 380_000, C: 250_000, D: 20_000,
    }  # fmt: skip
    assert rights_at(market, Q2_END_MS) == {A: 450_000, B: 300_000, C: 250_000}
    assert rights_at(market, term_span(h1)[1]) == {A: 500_000, B: 300_000, C: 200_000}


def test_a_past_instant_reads_past_ownership_and_leases(market: Market) -> None:
    before = head_time(market)  # Q1 covers it: the ledger's clock is at 2027-01-01
    market.place(ANN, SELL, 5, 100_000)
    market.place(BOB, BUY, 5, 100_000)  # a trade after ``before``
    traded = head_time(market)
    market.place(CAT, SELL, 2, 50_000, term=Q1)
    market.place(DAN, BUY, 2, 50_000, term=Q1)  # a lease over ``before``, matched after it
    now = {A: 400_000, B: 400_000, C: 150_000, D: 50_000}
    assert rights_at(market, market.clock.now_ms) == now
    assert rights_at(market, head_time(market)) == now
    assert rights_at(market, before) == {A: 500_000, B: 300_000, C: 200_000}
    assert rights_at(market, traded) == {A: 400_000, B: 400_000, C: 200_000}
    with read_connection(market.ledger.engine) as conn:
        seq = rights_table(conn, ASSET, before).seq
        assert seq < digest(conn).seq
        assert rights_table(conn, ASSET, head_time(market)).seq == digest(conn).seq
    # Before the asset's units were issued, its pool had them all.
    with market.ledger.engine.connect() as conn:
        entries = load_entries(conn, list(range(1, seq + 1)))
    issued = next(e for e in entries if e.kind == EntryKind.ASSET_ISSUE)
    just_before = issued.recorded_at - timedelta(microseconds=1)
    assert rights_at(market, just_before) == {pool_holder(ASSET): TOTAL}
    registered = next(e for e in entries if e.kind == EntryKind.ASSET_REGISTER)
    with read_connection(market.ledger.engine) as conn, pytest.raises(NotFound) as caught:
        rights_table(conn, ASSET, registered.recorded_at - timedelta(microseconds=1))
    assert caught.value.code == "unknown_asset"
    assert caught.value.detail == {"registered_seq": str(registered.seq)}


def test_each_past_instant_reads_the_same_by_either_way_back(market: Market) -> None:
    # A past instant near the head is read back from the balances now (undoing what came
    # after it); one nearer the start by summing up to it. Both must agree with the
    # cap table of the journal's prefix at every entry, whichever way is taken.
    market.place(ANN, SELL, 5, 100_000)
    market.place(BOB, BUY, 5, 60_000)
    market.place(CAT, SELL, 4, 20_000)
    market.place(DAN, BUY, 4, 20_000)
    with read_connection(market.ledger.engine) as conn:
        head = digest(conn).seq
        entries = load_entries(conn, list(range(1, head + 1)))
        issued = next(e.seq for e in entries if e.kind == EntryKind.ASSET_ISSUE)
        for entry in entries[issued - 1 :]:
            table = rights_table(conn, ASSET, entry.recorded_at)
            past = cap_table_of(conn, ASSET, as_of_seq=table.seq)
            expected = {row.holder: row.units for row in past.rows}
            assert {r.holder: r.owned for r in table.rows if r.owned} == expected, entry.seq
        ways = {head - table.seq <= table.seq for table in (
            rights_table(conn, ASSET, e.recorded_at) for e in entries[issued - 1 : -1]
        )}  # fmt: skip
    assert ways == {True, False}  # both ways were taken


def test_an_unknown_or_mistyped_asset_and_a_naive_time_are_refused(market: Market) -> None:
    unknown = with_check_character("1M8GDM9A0KP000001")
    at = time_of_ms(Q2_START_MS)
    with read_connection(market.ledger.engine) as conn:
        cases: list[tuple[str, type[LedgerError], str]] = [
            (unknown, NotFound, "unknown_asset"),
            (ASSET[:-1] + ("9" if ASSET[-1] != "9" else "8"), InvalidInput, "asset_id_check_digit"),
            ("1M8GDM9AXKP04278", InvalidInput, "asset_id_length"),
        ]
        for asset, kind, code in cases:
            with pytest.raises(kind) as caught:
                rights_table(conn, asset, at)
            assert caught.value.code == code
            with pytest.raises(kind) as caught:
                holder_rights(conn, asset, ANN, at)
            assert caught.value.code == code
        with pytest.raises(InvalidInput) as naive:
            rights_table(conn, ASSET, datetime(2027, 4, 1))
        assert naive.value.code == "time_naive"
        with pytest.raises(InvalidInput) as address:
            holder_rights(conn, ASSET, ANN.lower(), at)
        assert address.value.code == "address_checksum"


# -- properties -------------------------------------------------------------------------

_assets = itertools.count(1)
OWNERS = (ANN, BOB, CAT, DAN)
ISSUED = {ANN: 400, BOB: 300, CAT: 200}  # of 1,000 units; the pool keeps 100
SMALL_TOTAL = 1_000
ALLOWED_REFUSALS = {
    "insufficient_units",
    "insufficient_funds",
    "units_leased_out",
    "lease_to_self",
    "term_in_past",
}

Step = tuple[str, str, str, int, int, int]  # kind, who, with whom, term, qty, price
step = st.tuples(
    # A lease (an offer and a bid that meet) and a trade come as one step, so that most
    # sequences match; lone orders rest, and may meet later ones.
    st.sampled_from(["lease", "lease", "trade", "offer", "bid", "sell", "buy", "wait"]),
    st.sampled_from(OWNERS),
    st.sampled_from(OWNERS),
    st.integers(0, 3),  # the term, of ``terms``
    st.integers(1, 120),  # units; for a wait, days
    st.integers(1, 2),
)
WAIT_STEP_MS = 86_400_000


def fresh_asset(m: Market) -> Market:
    """A new asset of ``SMALL_TOTAL`` units, ``ISSUED`` to three of the members: each
    example trades and leases on its own asset (the database is the test's)."""
    asset = with_check_character(f"1M8GDM9A0KP{next(_assets):06d}")
    register_asset(
        m.ledger, asset, make="Deere", model="8R", serial=asset, location="Ames, IA",
        total_units=SMALL_TOTAL, jurisdiction="US-IA", key=f"asset:{asset}", actor="test",
    )  # fmt: skip
    issue_units(m.ledger, asset, list(ISSUED.items()), key=f"issue:{asset}", actor="test")
    return dataclasses.replace(m, asset=asset)


def run_steps(
    m: Market, steps: list[Step], terms: list[str]
) -> tuple[list[LeaseRow], list[TradeRow], list[tuple[datetime, dict[str, int]]]]:
    """Play ``steps``; the leases and trades the engine reported, and after each step
    the latest entry's time with the rights read then."""
    leases: list[LeaseRow] = []
    trades: list[TradeRow] = []
    seen: list[tuple[datetime, dict[str, int]]] = []
    for kind, who, other, term, qty, price in steps:
        if kind == "wait":
            m.clock.now_ms += qty * WAIT_STEP_MS
            continue
        orders = {
            "lease": [(who, SELL, terms[term]), (other, BUY, terms[term])],
            "trade": [(who, SELL, ""), (other, BUY, "")],
            "offer": [(who, SELL, terms[term])],
            "bid": [(who, BUY, terms[term])],
            "sell": [(who, SELL, "")],
            "buy": [(who, BUY, "")],
        }[kind]
        for owner, side, lease_term in orders:
            try:
                outcome = m.place(owner, side, price, qty, term=lease_term)
            except LedgerError as error:
                assert error.code in ALLOWED_REFUSALS, error
                continue
            leases += outcome.leases
            trades += outcome.trades
        at = head_time(m)
        seen.append((at, {r.holder: r.rights for r in table_at(m, ms_of(at), m.asset).rows}))
    return leases, trades, seen


def instants(terms: list[str], now_ms: int, extra: list[int]) -> list[int]:
    """Every term boundary and the milliseconds either side, now, and ``extra``."""
    bounds = {ms for key in terms for ms in term_span(key)}
    return sorted({b + d for b in bounds for d in (-1, 0, 1)} | {now_ms, *extra})


@settings(
    max_examples=25,
    deadline=None,
    # The fixture's database serves every example: each example has an asset of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(step, min_size=2, max_size=12),
    extra=st.lists(st.integers(0, 400 * 86_400_000), max_size=4),
)
def test_rights_sum_to_the_total_and_follow_the_leases(
    market: Market, steps: list[Step], extra: list[int]
) -> None:
    m = fresh_asset(market)
    registered_ms = ms_of(head_time(m))  # its units were issued then, the ledger's clock
    start_ms = m.clock.now_ms
    q = next_terms("quarter", start_ms, 3)
    terms = [*q, f"{q[0].split('/')[0]}/{q[1].split('/')[1]}"]  # three quarters, a half
    leases, trades, seen = run_steps(m, steps, terms)
    now_ms = m.clock.now_ms
    # What each member owns now, from the trades the engine reported.
    owned: dict[str, int] = defaultdict(int, {member_holder(a): n for a, n in ISSUED.items()})
    owned[pool_holder(m.asset)] = SMALL_TOTAL - sum(ISSUED.values())
    for t in trades:
        seller, buyer = (
            (t.taker_owner, t.maker_owner) if t.taker_side == "sell" else
            (t.maker_owner, t.taker_owner)
        )  # fmt: skip
        owned[member_holder(seller)] -= t.qty_units
        owned[member_holder(buyer)] += t.qty_units
    for at_ms in instants(terms, now_ms, [start_ms + x for x in extra]):
        if at_ms < registered_ms:  # before the asset (the first quarter's start, say)
            continue
        table = table_at(m, at_ms, m.asset)
        # (a) every unit has one rights holder at every instant
        assert sum(r.rights for r in table.rows) == table.total_units == SMALL_TOTAL
        out: dict[str, int] = defaultdict(int)
        into: dict[str, int] = defaultdict(int)
        for lease in leases:
            if lease.starts_ms <= at_ms < lease.ends_ms:
                out[member_holder(lease.lessor)] += lease.qty_units
                into[member_holder(lease.lessee)] += lease.qty_units
        # The table is the model: owned now (every instant here is after the latest
        # entry), less what the reported leases take out, plus what they bring in.
        expected = {
            h: HolderRights(h, owned[h], out[h], into[h], owned[h] - out[h] + into[h])
            for h in {*owned, *out, *into}
            if owned[h] or out[h] or into[h]
        }
        assert {r.holder: r for r in table.rows} == expected
        if at_ms >= now_ms:
            # (b) no unit is leased out twice, nor sold while leased
            for row in table.rows:
                assert row.leased_out <= row.owned and row.rights >= 0, (at_ms, row)
    # A past instant's rights never change: each read again now gives what it gave then.
    for at, rights in seen:
        assert rights_at(m, at, m.asset) == rights
