"""Amend: a smaller quantity keeps queue priority; a new price or a larger one loses it."""

from __future__ import annotations

from market import Amended, Book, Rejected, RejectReason
from tests.unit.market.book_helpers import BUY, SELL, book_with, kinds, trades


def _queue() -> Book:
    return book_with((1, 1, SELL, 100, 10), (2, 2, SELL, 100, 10))


def test_a_smaller_quantity_keeps_priority() -> None:
    book = _queue()
    assert list(book.amend(1, qty_units=4)) == [Amended(1, 1, 100, 4, 100, 10, True)]
    assert trades(book.place_limit(3, 3, BUY, 100, 4)) == [(1, 3, 100, 4)]
    assert [tuple(lv) for lv in book.depth(1).asks] == [(100, 10, 1)]


def test_a_larger_quantity_loses_priority() -> None:
    book = _queue()
    assert list(book.amend(1, qty_units=12)) == [Amended(1, 1, 100, 12, 100, 10, False)]
    assert trades(book.place_limit(3, 3, BUY, 100, 4)) == [(2, 3, 100, 4)]
    assert [o.order_id for o in book.resting()] == [2, 1]


def test_a_new_price_loses_priority_even_when_it_comes_back() -> None:
    book = _queue()
    book.amend(1, price_minor=101)
    book.amend(1, price_minor=100)
    assert [o.order_id for o in book.resting()] == [2, 1]
    assert [tuple(lv) for lv in book.depth(2).asks] == [(100, 20, 2)]


def test_an_amend_that_crosses_trades_at_once_at_the_resting_price() -> None:
    book = book_with((1, 1, SELL, 100, 10), (2, 2, BUY, 95, 6))
    events = book.amend(2, price_minor=105)
    assert kinds(events) == ["Amended", "Trade"]
    assert trades(events) == [(1, 2, 100, 6)]
    assert book.order(2) is None and book.order(1).qty_units == 4  # type: ignore[union-attr]


def test_post_only_amend_that_would_cross_is_rejected_and_changes_nothing() -> None:
    book = book_with((1, 1, SELL, 100, 10))
    book.place_limit(2, 2, BUY, 95, 6, post_only=True)
    assert list(book.amend(2, price_minor=100)) == [Rejected(2, RejectReason.POST_ONLY_WOULD_CROSS)]
    assert book.order(2).price_minor == 95  # type: ignore[union-attr]


def test_amend_checks_its_order_and_its_values() -> None:
    book = book_with((1, 1, SELL, 100, 10), tick_size_minor=5, lot_size_units=2)
    assert list(book.amend(9, qty_units=2)) == [Rejected(9, RejectReason.UNKNOWN_ORDER)]
    assert list(book.amend(1)) == [Rejected(1, RejectReason.NOT_AMENDABLE)]
    assert list(book.amend(1, price_minor=101)) == [Rejected(1, RejectReason.BAD_TICK)]
    assert list(book.amend(1, qty_units=3)) == [Rejected(1, RejectReason.BAD_LOT)]
    assert list(book.amend(1, qty_units=0)) == [Rejected(1, RejectReason.QTY_OUT_OF_RANGE)]
    assert list(book.amend(1, price_minor=0)) == [Rejected(1, RejectReason.PRICE_OUT_OF_RANGE)]
    assert book.order(1).qty_units == 10  # type: ignore[union-attr]


def test_an_amended_gtd_order_keeps_its_expiry() -> None:
    book = Book()
    book.place_limit(1, 1, BUY, 100, 5, "gtd", expires_at_ms=50)  # type: ignore[arg-type]
    book.amend(1, price_minor=101, now_ms=10)
    assert book.order(1).expires_at_ms == 50  # type: ignore[union-attr]
    assert [type(e).__name__ for e in book.expire(50)] == ["Expired"]
    assert len(book) == 0
