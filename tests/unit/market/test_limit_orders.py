"""Limit orders: resting, price-time priority, trades at the resting price, checks."""

from __future__ import annotations

import pytest

from market import (
    ACCEPTED,
    ORDER_ID_MAX,
    PRICE_MAX_MINOR,
    QTY_MAX_UNITS,
    Book,
    BookConfigError,
    Cancelled,
    Rejected,
    RejectReason,
    Trade,
)
from tests.unit.market.book_helpers import BUY, SELL, book_with, kinds, trades


def test_a_non_crossing_order_rests_and_shows_in_depth() -> None:
    book = Book()
    assert list(book.place_limit(1, 10, BUY, 100, 5)) == [ACCEPTED]
    assert list(book.place_limit(2, 11, SELL, 105, 7)) == [ACCEPTED]
    assert (book.best_bid(), book.best_ask()) == (100, 105)
    depth = book.depth(5)
    assert [tuple(lv) for lv in depth.bids] == [(100, 5, 1)]
    assert [tuple(lv) for lv in depth.asks] == [(105, 7, 1)]
    assert len(book) == 2


def test_trades_at_the_resting_price_in_price_then_time_priority() -> None:
    book = book_with(
        (1, 1, SELL, 101, 5), (2, 2, SELL, 100, 5), (3, 3, SELL, 100, 5), (4, 4, SELL, 102, 5)
    )
    events = book.place_limit(9, 9, BUY, 101, 12)
    # Best price first (100: id 2 before id 3, by arrival), then 101; never 102.
    assert trades(events) == [(2, 9, 100, 5), (3, 9, 100, 5), (1, 9, 101, 2)]
    first = events[1]
    assert isinstance(first, Trade)
    assert (first.maker_owner, first.taker_owner, first.taker_side) == (2, 9, BUY)
    assert book.order(1) is not None and book.order(1).qty_units == 3  # type: ignore[union-attr]
    assert book.best_ask() == 101 and len(book) == 2


def test_a_sell_sweeps_bids_from_the_highest_down_and_rests_the_rest() -> None:
    book = book_with((1, 1, BUY, 99, 4), (2, 2, BUY, 100, 4))
    events = book.place_limit(3, 3, SELL, 99, 10)
    assert trades(events) == [(2, 3, 100, 4), (1, 3, 99, 4)]
    assert book.best_bid() is None and book.best_ask() == 99
    assert book.order(3) is not None and book.order(3).qty_units == 2  # type: ignore[union-attr]


def test_depth_counts_orders_and_quantity_per_level_best_first() -> None:
    book = book_with(
        (1, 1, BUY, 100, 5), (2, 2, BUY, 100, 6), (3, 3, BUY, 98, 1), (4, 4, BUY, 99, 2)
    )
    assert [tuple(lv) for lv in book.depth(2).bids] == [(100, 11, 2), (99, 2, 1)]
    assert [tuple(lv) for lv in book.depth(10).bids] == [(100, 11, 2), (99, 2, 1), (98, 1, 1)]
    assert book.depth(3).asks == ()


@pytest.mark.parametrize(
    ("price", "qty", "reason"),
    [
        (101, 10, RejectReason.BAD_TICK),
        (100, 7, RejectReason.BAD_LOT),
        (0, 10, RejectReason.PRICE_OUT_OF_RANGE),
        (-5, 10, RejectReason.PRICE_OUT_OF_RANGE),
        (PRICE_MAX_MINOR + 5, 10, RejectReason.PRICE_OUT_OF_RANGE),
        (100, 0, RejectReason.QTY_OUT_OF_RANGE),
        (100, QTY_MAX_UNITS + 5, RejectReason.QTY_OUT_OF_RANGE),
        (100.0, 10, RejectReason.PRICE_OUT_OF_RANGE),
        (100, True, RejectReason.QTY_OUT_OF_RANGE),
    ],
)
def test_prices_and_quantities_are_checked(
    price: object, qty: object, reason: RejectReason
) -> None:
    book = Book(tick_size_minor=5, lot_size_units=5)
    assert list(book.place_limit(1, 1, BUY, price, qty)) == [Rejected(1, reason)]  # type: ignore[arg-type]
    assert len(book) == 0


def test_large_but_valid_values_take_the_general_path_and_work() -> None:
    book = Book()
    big_id = ORDER_ID_MAX
    assert list(book.place_limit(big_id, 1, SELL, PRICE_MAX_MINOR, QTY_MAX_UNITS)) == [ACCEPTED]
    events = book.place_limit(2, 2, BUY, PRICE_MAX_MINOR, 3)
    assert trades(events) == [(big_id, 2, PRICE_MAX_MINOR, 3)]


@pytest.mark.parametrize("order_id", [0, -1, ORDER_ID_MAX + 1, 1.5, "7"])
def test_order_ids_out_of_range_are_rejected(order_id: object) -> None:
    assert list(Book().place_limit(order_id, 1, BUY, 100, 1)) == [  # type: ignore[arg-type]
        Rejected(order_id, RejectReason.ORDER_ID_OUT_OF_RANGE)  # type: ignore[arg-type]
    ]


def test_a_resting_id_cannot_be_placed_again_but_a_finished_one_can() -> None:
    book = book_with((1, 1, BUY, 100, 5))
    assert list(book.place_limit(1, 1, SELL, 200, 5)) == [
        Rejected(1, RejectReason.DUPLICATE_ORDER_ID)
    ]
    book.cancel(1)
    assert list(book.place_limit(1, 1, SELL, 200, 5)) == [ACCEPTED]


def test_plain_strings_are_read_as_the_members_and_unknown_ones_rejected() -> None:
    book = Book()
    assert list(book.place_limit(1, 1, "sell", 100, 5, "gtc", None, False, "decrement")) == [  # type: ignore[arg-type]
        ACCEPTED
    ]
    assert book.order(1).side is SELL  # type: ignore[union-attr]
    assert list(book.place_limit(2, 1, "up", 100, 5)) == [Rejected(2, RejectReason.BAD_SIDE)]  # type: ignore[arg-type]
    assert list(book.place_limit(3, 1, BUY, 90, 5, "day")) == [  # type: ignore[arg-type]
        Rejected(3, RejectReason.BAD_TIME_IN_FORCE)
    ]
    assert list(book.place_limit(4, 1, BUY, 90, 5, stp="nope")) == [  # type: ignore[arg-type]
        Rejected(4, RejectReason.BAD_STP)
    ]


def test_a_full_book_rejects_resting_orders_but_still_matches_ioc() -> None:
    book = book_with((1, 1, BUY, 100, 5), (2, 2, SELL, 110, 5), orders_max=2)
    assert list(book.place_limit(3, 3, BUY, 99, 5)) == [Rejected(3, RejectReason.BOOK_FULL)]
    assert list(book.place_limit(4, 4, SELL, 90, 5, "gtc")) == [  # type: ignore[arg-type]
        Rejected(4, RejectReason.BOOK_FULL)
    ]
    events = book.place_limit(5, 5, SELL, 100, 8, tif="ioc")  # type: ignore[arg-type]
    assert kinds(events) == ["Accepted", "Trade", "Cancelled"]
    assert events[-1] == Cancelled(5, 5, "ioc_remainder", 3, 0)  # type: ignore[arg-type]
    assert len(book) == 1


@pytest.mark.parametrize(
    "config",
    [{"tick_size_minor": 0}, {"lot_size_units": -1}, {"orders_max": 0}, {"tick_size_minor": 1.5}],
)
def test_a_book_refuses_unusable_terms(config: dict[str, object]) -> None:
    with pytest.raises(BookConfigError):
        Book(**config)  # type: ignore[arg-type]
