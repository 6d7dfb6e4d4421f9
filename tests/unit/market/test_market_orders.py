"""Market orders: a sell names a quantity, a buy a budget; neither ever rests."""

from __future__ import annotations

from market import (
    ACCEPTED,
    Book,
    Cancelled,
    CancelReason,
    Rejected,
    RejectReason,
    SelfTradePrevention,
)
from tests.unit.market.book_helpers import BUY, SELL, book_with, kinds, trades


def test_a_market_sell_sweeps_the_bids_and_cancels_what_is_left() -> None:
    book = book_with((1, 1, BUY, 100, 4), (2, 2, BUY, 90, 4))
    events = book.place_market(3, 3, SELL, qty_units=10)
    assert trades(events) == [(1, 3, 100, 4), (2, 3, 90, 4)]
    assert events[-1] == Cancelled(3, 3, CancelReason.MARKET_REMAINDER, 2, 0)
    assert len(book) == 0


def test_a_market_buy_spends_at_most_its_budget_in_whole_lots() -> None:
    book = book_with((1, 1, SELL, 100, 10), (2, 2, SELL, 110, 10), lot_size_units=2)
    events = book.place_market(3, 3, BUY, spend_minor=1_500)
    # 10 at 100 = 1000; 500 left buys 4 at 110 (5 would not be a whole number of lots).
    assert trades(events) == [(1, 3, 100, 10), (2, 3, 110, 4)]
    assert events[-1] == Cancelled(3, 3, CancelReason.MARKET_REMAINDER, 0, 0)
    assert sum(t[2] * t[3] for t in trades(events)) <= 1_500
    assert book.order(2).qty_units == 6  # type: ignore[union-attr]


def test_a_market_buy_that_spends_exactly_its_budget_has_no_remainder() -> None:
    book = book_with((1, 1, SELL, 100, 10))
    events = book.place_market(2, 2, BUY, spend_minor=500)
    assert list(events) == [ACCEPTED, *events[1:]] and kinds(events) == ["Accepted", "Trade"]


def test_a_market_order_on_an_empty_side_is_cancelled_whole() -> None:
    assert list(Book().place_market(1, 1, SELL, qty_units=5)) == [
        ACCEPTED,
        Cancelled(1, 1, CancelReason.MARKET_REMAINDER, 5, 0),
    ]


def test_market_orders_name_the_right_amount() -> None:
    book = Book(lot_size_units=5)
    assert list(book.place_market(1, 1, BUY, qty_units=5)) == [
        Rejected(1, RejectReason.SPEND_OUT_OF_RANGE)
    ]
    assert list(book.place_market(2, 1, BUY, qty_units=5, spend_minor=100)) == [
        Rejected(2, RejectReason.QTY_OUT_OF_RANGE)
    ]
    assert list(book.place_market(3, 1, SELL, qty_units=7)) == [Rejected(3, RejectReason.BAD_LOT)]
    assert list(book.place_market(4, 1, SELL, qty_units=5, spend_minor=10)) == [
        Rejected(4, RejectReason.SPEND_OUT_OF_RANGE)
    ]
    decrement = SelfTradePrevention.DECREMENT
    assert list(book.place_market(5, 1, BUY, spend_minor=100, stp=decrement)) == [
        Rejected(5, RejectReason.BAD_STP)
    ]


def test_a_market_buy_stops_at_its_own_order_by_default() -> None:
    book = book_with((1, 1, SELL, 100, 5), (2, 7, SELL, 100, 5), (3, 3, SELL, 100, 5))
    events = book.place_market(4, 7, BUY, spend_minor=10_000)
    assert trades(events) == [(1, 4, 100, 5)]
    assert events[-1] == Cancelled(4, 7, CancelReason.SELF_TRADE, 0, 0)
    assert [o.order_id for o in book.resting()] == [2, 3]
