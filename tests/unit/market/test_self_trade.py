"""Self-trade prevention: the incoming order's mode decides what happens when it meets a
resting order of the same owner."""

from __future__ import annotations

from market import Book, Cancelled, CancelReason, Event, SelfTradePrevention, Side
from tests.unit.market.book_helpers import BUY, SELL, book_with, kinds, trades

STP = SelfTradePrevention
SELF = CancelReason.SELF_TRADE


def _book() -> Book:
    # Owner 7's own ask sits between two others at the same price.
    return book_with((1, 1, SELL, 100, 5), (2, 7, SELL, 100, 5), (3, 3, SELL, 100, 5))


def _buy(book: Book, stp: STP, qty: int = 12) -> list[Event]:
    return list(book.place_limit(9, 7, BUY, 100, qty, stp=stp))


def test_cancel_newest_is_the_default_and_cancels_the_incoming_rest() -> None:
    book = _book()
    events = book.place_limit(9, 7, BUY, 100, 12)
    assert trades(events) == [(1, 9, 100, 5)]
    assert events[-1] == Cancelled(9, 7, SELF, 7, 0)
    assert [o.order_id for o in book.resting()] == [2, 3]


def test_cancel_oldest_cancels_the_resting_order_and_goes_on() -> None:
    book = _book()
    events = _buy(book, STP.CANCEL_OLDEST)
    assert kinds(events) == ["Accepted", "Trade", "Cancelled", "Trade"]
    assert events[2] == Cancelled(2, 7, SELF, 5, 0)
    assert trades(events) == [(1, 9, 100, 5), (3, 9, 100, 5)]
    assert book.order(9).qty_units == 2  # type: ignore[union-attr]


def test_cancel_both_cancels_both() -> None:
    book = _book()
    events = _buy(book, STP.CANCEL_BOTH)
    assert events[2:] == [Cancelled(2, 7, SELF, 5, 0), Cancelled(9, 7, SELF, 7, 0)]
    assert [o.order_id for o in book.resting()] == [3]


def test_decrement_takes_the_smaller_quantity_off_both_without_a_trade() -> None:
    book = _book()
    events = _buy(book, STP.DECREMENT)
    # Trade 5 with id 1; then 7 left meets own 5: both lose 5, own ask is gone; 2 trade with 3.
    assert events[2:4] == [Cancelled(2, 7, SELF, 5, 0), Cancelled(9, 7, SELF, 5, 2)]
    assert trades(events) == [(1, 9, 100, 5), (3, 9, 100, 2)]
    assert book.order(3).qty_units == 3  # type: ignore[union-attr]
    assert book.order(9) is None


def test_decrement_of_a_larger_resting_order_leaves_it_smaller_in_place() -> None:
    book = book_with((1, 7, SELL, 100, 10), (2, 3, SELL, 100, 5))
    events = list(book.place_limit(9, 7, BUY, 100, 4, stp=STP.DECREMENT))
    assert events[1:] == [Cancelled(1, 7, SELF, 4, 6), Cancelled(9, 7, SELF, 4, 0)]
    assert [(o.order_id, o.qty_units) for o in book.resting()] == [(1, 6), (2, 5)]


def test_orders_of_different_owners_trade_and_a_market_sell_obeys_stp_too() -> None:
    book = book_with((1, 7, BUY, 100, 5), (2, 2, BUY, 99, 5))
    events = book.place_market(3, 7, Side.SELL, qty_units=10, stp=STP.CANCEL_OLDEST)
    assert events[1] == Cancelled(1, 7, SELF, 5, 0)
    assert trades(events) == [(2, 3, 99, 5)]
