"""Lease books in the market engine, on SQLite and PostgreSQL: offers and bids meet on
a term's book; each match is one ``lease`` entry paying the rent and releasing the
offer's units, which stay the lessor's but are promised: not sold, not leased again
over an overlapping term, until the term ends. Every test ends with the same
invariants as the trading tests (``assert_consistent``), leases included."""

from __future__ import annotations

from functools import partial

import pytest

from ledger.core import Entry
from ledger.core.accounts import member_holder
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused
from ledger.core.kinds import EntryKind
from market.book import TimeInForce
from market.engine import AmendRequest, CancelRequest, MarketEngine, UnitTransferRequest
from market.engine.lease_terms import Span, check_term, next_terms, peak

from .network import ANN, ASSET, BOB, CAT, DAN
from .test_market_engine import (
    BUY,
    CASH_MINOR,
    SELL,
    UNITS,
    USD,
    Market,
    assert_consistent,
    entries_after,
    lease_rows,
    market,
    refused,
    snapshot,
    state_of,
)

__all__ = ["market"]  # the fixture, shared with the trading tests

Q1 = "2027-01-01/2027-04-01"  # under way at T0 (2027-01-15)
Q2 = "2027-04-01/2027-07-01"
H1 = "2027-01-01/2027-07-01"  # overlaps both
Q3 = "2027-07-01/2027-10-01"
Q1_END_MS = 1_806_537_600_000  # 2027-04-01
Q2_END_MS = 1_814_400_000_000  # 2027-07-01


def test_an_offer_and_a_bid_meet_in_one_lease_entry(market: Market) -> None:
    offer = market.place(ANN, SELL, 7, 1_000, term=Q2)
    head = snapshot(market.ledger.engine).head.seq
    bid = market.place(BOB, BUY, 9, 400, term=Q2)
    assert [(x.lessor, x.lessee, x.qty_units, x.price_minor) for x in bid.leases] == [
        (ANN, BOB, 400, 7)
    ]
    assert bid.trades == [] and bid.order.status == "filled"
    entries = entries_after(market.ledger.engine, head)
    kinds = [e.kind for e in entries]
    assert kinds.count(EntryKind.LEASE) == 1
    lease = next(e for e in entries if e.kind == EntryKind.LEASE)
    assert lease.payload["term"] == Q2 and lease.payload["lessor"] == ANN
    moved = {(p.account.holder, p.account.instrument): p.amount for p in lease.postings}
    assert moved == {(member_holder(BOB), USD): -2_800, (member_holder(ANN), USD): 2_800}
    # The units never move; the offer still holds what it did not lease.
    assert state_of(market.ledger.engine, ANN, UNITS) == (500_000, 600)
    assert state_of(market.ledger.engine, BOB, USD) == (CASH_MINOR - 2_800, 0)
    assert market.stored(offer.order.id).order.remaining_units == 600
    with market.ledger.engine.connect() as conn:
        (row,) = lease_rows(conn)
    assert (row.lessor, row.lessee, row.term, row.qty_units) == (ANN, BOB, Q2, 400)


def test_leased_out_units_are_not_sold_until_the_term_ends(market: Market) -> None:
    market.place(ANN, SELL, 2, 450_000, term=Q2)
    market.place(BOB, BUY, 2, 450_000, term=Q2)  # ANN keeps 500,000; 450,000 promised
    error = refused(market, Refused, "units_leased_out",
                    lambda: market.place(ANN, SELL, 50, 50_001))  # fmt: skip
    assert error.detail["promised_units"] == "450000"
    market.place(ANN, SELL, 50, 50_000)  # the free rest sells
    market.clock.now_ms = Q2_END_MS  # the term has ended: the units are free again
    market.place(ANN, SELL, 50, 100_000)


def test_a_unit_is_leased_once_over_overlapping_terms(market: Market) -> None:
    market.place(CAT, SELL, 5, 200_000, term=Q2)
    market.place(BOB, BUY, 5, 200_000, term=Q2)  # all of CAT's units, over Q2
    refused(market, Refused, "units_leased_out",
            lambda: market.place(CAT, SELL, 5, 1, term=H1))  # fmt: skip
    before_q2 = market.place(CAT, SELL, 5, 200_000, term=Q1)  # Q1 ends as Q2 begins
    market.cancel(CAT, before_q2.order.id)
    market.place(CAT, SELL, 5, 200_000, term=Q3)  # after Q2: free


def test_terms_off_the_assets_boundaries_are_refused(market: Market) -> None:
    for term, code in [
        ("2027-02-01/2027-05-01", "term_off_boundary"),  # months, not quarters
        ("2026-07-01/2026-10-01", "term_in_past"),
        ("2027-07-01/2027-04-01", "term_ends_before_start"),
        ("2027-04-01/2027-04-01", "term_ends_before_start"),
        ("2027-13-01/2028-01-01", "term_malformed"),
        ("Q2", "term_malformed"),
        ("\u0662\u0660\u0662\u0667-04-01/2027-07-01", "term_malformed"),  # Arabic-Indic
        ("2027-04-01/2027-07-\uff10\uff11", "term_malformed"),  # fullwidth digits
        ("2027-04-01/2027-07-01\n", "term_malformed"),
        ("2027-01-01/2029-01-01", "term_too_long"),
        ("2029-01-01/2029-04-01", "term_too_far"),
    ]:
        refused(market, InvalidInput, code, partial(market.place, ANN, SELL, 5, 1, term=term))


def test_a_lease_to_oneself_is_refused(market: Market) -> None:
    market.place(ANN, SELL, 7, 100, term=Q2)
    refused(market, Refused, "lease_to_self",
            lambda: market.place(ANN, BUY, 7, 100, term=Q2))  # fmt: skip
    market.place(ANN, BUY, 7, 100, term=Q3)  # another book


def test_a_lease_order_rests_until_its_term_ends(market: Market) -> None:
    offer = market.place(ANN, SELL, 7, 100, term=Q1)
    assert offer.order.time_in_force is TimeInForce.GTD
    market.clock.now_ms = Q1_END_MS  # Q1 has ended
    market.engine.expire_now()
    assert market.stored(offer.order.id).order.status == "expired"
    assert state_of(market.ledger.engine, ANN, UNITS) == (500_000, 0)


def test_leases_survive_a_rebuild_and_reach_a_second_engine(market: Market) -> None:
    market.place(ANN, SELL, 1, 500_000, term=Q2)
    market.place(BOB, BUY, 1, 500_000, term=Q2)
    market.engine.forget()  # rebuilt from the database at the next batch
    refused(market, Refused, "units_leased_out", lambda: market.place(ANN, SELL, 50, 1))
    other = MarketEngine(market.ledger, now_ms=market.clock)
    try:
        other.place(market.order(CAT, SELL, 6, 100, term=Q2))  # the other engine knows Q2
        with pytest.raises(Refused) as caught:
            other.place(market.order(ANN, SELL, 6, 1, term=H1))
        assert caught.value.code == "units_leased_out"
        assert_consistent(market.ledger.engine, market.engine, other)
    finally:
        other.stop()


def test_an_amended_offer_holds_only_unpromised_units(market: Market) -> None:
    market.place(CAT, SELL, 5, 150_000, term=Q2)
    market.place(BOB, BUY, 5, 150_000, term=Q2)
    offer = market.place(CAT, SELL, 5, 10_000, term=H1)  # 50,000 left over H1
    refused(market, Refused, "units_leased_out",
            lambda: market.amend(CAT, offer.order.id, qty=50_001))  # fmt: skip
    assert market.amend(CAT, offer.order.id, qty=50_000).order.remaining_units == 50_000


def test_peak_counts_what_overlaps_at_one_instant() -> None:
    spans = [Span(0, 10, 5), Span(10, 20, 7), Span(5, 15, 1)]
    assert peak(spans, 0) == 8
    assert peak(spans, 0, 5) == 5
    assert peak(spans, 15) == 7
    assert peak(spans, 20) == 0
    assert next_terms("quarter", 1_800_000_000_000, 2) == [Q1, Q2]
    assert next_terms("month", 1_800_000_000_000, 1) == ["2027-01-01/2027-02-01"]
    assert check_term(Q2, "quarter", 1_800_000_000_000) == (Q1_END_MS, Q2_END_MS)


def test_a_cancel_or_amend_naming_the_other_kind_of_order_is_unknown(market: Market) -> None:
    offer = market.place(ANN, SELL, 7, 100, term=Q2)
    sell = market.place(ANN, SELL, 70, 100)
    for order_id, lease in ((offer.order.id, False), (sell.order.id, True)):
        refused(market, NotFound, "unknown_order", partial(
            market.engine.cancel, CancelRequest(ANN, order_id, market.key(), "t", lease=lease)
        ))  # fmt: skip
        refused(market, NotFound, "unknown_order", partial(
            market.engine.amend, AmendRequest(ANN, order_id, market.key(), "t", 8, lease=lease)
        ))  # fmt: skip
    assert market.engine.cancel(CancelRequest(ANN, offer.order.id, "c", "t", lease=True))


def test_the_other_kind_stays_unknown_when_finished_or_replayed(market: Market) -> None:
    # A finished order of one kind is no order of the other kind (not "not open"); a
    # cancel replayed (the same key) on the other kind's route finds none either.
    offer = market.place(ANN, SELL, 7, 100, term=Q2)
    sell = market.place(ANN, SELL, 70, 100)
    for order_id, lease in ((offer.order.id, True), (sell.order.id, False)):
        cancelled = market.engine.cancel(CancelRequest(ANN, order_id, f"c{order_id}", "t", lease))
        assert bool(cancelled.order.term) is lease
        refused(market, NotFound, "unknown_order", partial(
            market.engine.cancel, CancelRequest(ANN, order_id, market.key(), "t", not lease)
        ))  # fmt: skip
        refused(market, NotFound, "unknown_order", partial(
            market.engine.cancel, CancelRequest(ANN, order_id, f"c{order_id}", "t", not lease)
        ))  # fmt: skip
        again = market.engine.cancel(CancelRequest(ANN, order_id, f"c{order_id}", "t", lease))
        assert again.replayed and again.order.id == order_id


def test_a_replayed_lease_placement_answers_its_leases(market: Market) -> None:
    market.place(ANN, SELL, 7, 100, term=Q2)
    request = market.order(BOB, BUY, 7, 40, term=Q2, key="bid-1")
    first = market.engine.place(request)
    again = market.engine.place(request)
    assert again.replayed and [x.id for x in again.leases] == [x.id for x in first.leases]
    assert len(first.leases) == 1


def test_a_unit_transfer_keeps_what_leases_promise(market: Market) -> None:
    market.place(CAT, SELL, 5, 150_000, term=Q2)
    market.place(BOB, BUY, 5, 150_000, term=Q2)  # CAT keeps 200,000; 150,000 promised

    def transfer(qty: int, key: str) -> Entry:
        return market.engine.transfer(UnitTransferRequest(CAT, DAN, ASSET, qty, key, "t"))

    refused(market, Refused, "units_leased_out", partial(transfer, 50_001, "t1"))
    moved = transfer(50_000, "t2")  # the free rest moves
    assert transfer(50_000, "t2") == moved  # the same request answers the same entry
    refused(market, Conflict, "idempotency_conflict", partial(transfer, 1, "t2"))
    assert state_of(market.ledger.engine, DAN, UNITS) == (50_000, 0)
    market.clock.now_ms = Q2_END_MS  # the term has ended: the rest is free again
    transfer(150_000, "t3")
