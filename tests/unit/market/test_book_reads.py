"""Cancels, reads, the state hash, commands through ``apply``, limits and invariants."""

from __future__ import annotations

import pytest

from market import (
    DEPTH_LEVELS_MAX,
    Amend,
    Book,
    BookInvariantError,
    Cancel,
    Cancelled,
    CancelReason,
    Command,
    Expire,
    PlaceLimit,
    PlaceMarket,
    QueryOutOfRange,
    Rejected,
    RejectReason,
    UnknownCommand,
)
from market.book.level import COMPACT_DEAD_MIN
from tests.unit.market.book_helpers import BUY, SELL, book_with, trades


def test_cancel_removes_the_order_and_an_unknown_one_is_rejected() -> None:
    book = book_with((1, 1, BUY, 100, 5), (2, 2, BUY, 100, 6))
    assert list(book.cancel(1)) == [Cancelled(1, 1, CancelReason.USER, 5, 0)]
    assert list(book.cancel(1)) == [Rejected(1, RejectReason.UNKNOWN_ORDER)]
    assert [tuple(lv) for lv in book.depth(1).bids] == [(100, 6, 1)]
    assert list(book.cancel(2)) == [Cancelled(2, 2, CancelReason.USER, 6, 0)]
    assert book.best_bid() is None and book.depth(1).bids == ()


def test_many_cancels_inside_a_level_keep_it_consistent_and_compact() -> None:
    book = Book()
    for i in range(1, 401):
        book.place_limit(i, i, SELL, 100, 1)
    for i in range(2, 401, 2):
        book.cancel(i)
    for i in range(3, 301, 2):
        book.cancel(i)
    book.check_invariants()
    level = book._asks.levels[-100]
    assert len(level) - level.dead == 51
    assert level.dead < max(COMPACT_DEAD_MIN, 51) + 1
    assert trades(book.place_limit(999, 999, BUY, 100, 3)) == [
        (1, 999, 100, 1), (301, 999, 100, 1), (303, 999, 100, 1)
    ]  # fmt: skip


def test_the_state_hash_follows_resting_orders_and_their_priority() -> None:
    a = book_with((1, 1, BUY, 100, 5), (2, 2, BUY, 100, 5))
    b = book_with((1, 1, BUY, 100, 5), (2, 2, BUY, 100, 5))
    c = book_with((2, 2, BUY, 100, 5), (1, 1, BUY, 100, 5))
    assert a.state_hash() == b.state_hash() != c.state_hash()
    b.amend(1, qty_units=4)
    assert a.state_hash() != b.state_hash()
    assert Book().state_hash() == Book().state_hash()


def test_apply_dispatches_every_command_like_the_methods() -> None:
    book, twin = Book(), Book()
    commands: list[Command] = [
        PlaceLimit(1, 1, SELL, 100, 5),
        PlaceLimit(2, 2, SELL, 101, 5, tif="gtd", expires_at_ms=20),  # type: ignore[arg-type]
        PlaceMarket(3, 3, BUY, spend_minor=300),
        Amend(1, qty_units=1),
        Cancel(1),
        Expire(25),
    ]
    got = [list(book.apply(c)) for c in commands]
    want = [
        list(twin.place_limit(1, 1, SELL, 100, 5)),
        list(twin.place_limit(2, 2, SELL, 101, 5, "gtd", 20)),  # type: ignore[arg-type]
        list(twin.place_market(3, 3, BUY, spend_minor=300)),
        list(twin.amend(1, qty_units=1)),
        list(twin.cancel(1)),
        list(twin.expire(25)),
    ]
    assert got == want
    assert [type(e).__name__ for e in got[-1]] == ["Expired"]
    with pytest.raises(UnknownCommand):
        book.apply("cancel 1")  # type: ignore[arg-type]


def test_depth_levels_are_limited() -> None:
    book = Book()
    with pytest.raises(QueryOutOfRange) as raised:
        book.depth(0)
    assert raised.value.code == "levels_out_of_range"
    with pytest.raises(QueryOutOfRange):
        book.depth(DEPTH_LEVELS_MAX + 1)
    assert book.depth(DEPTH_LEVELS_MAX) == ((), ())


def test_depth_is_the_top_levels_only_however_deep_the_book() -> None:
    book = Book()
    for i in range(1, 2_001):
        book.place_limit(i, i, BUY, i, 1)
    assert [lv.price_minor for lv in book.depth(3).bids] == [2_000, 1_999, 1_998]


def test_order_views_and_resting_list_show_priority() -> None:
    book = book_with((1, 1, BUY, 99, 5), (2, 2, BUY, 100, 5), (3, 3, SELL, 105, 1))
    assert [o.order_id for o in book.resting()] == [2, 1, 3]
    view = book.order(3)
    assert view is not None and (view.side, view.price_minor, view.qty_units) == (SELL, 105, 1)
    assert book.order(42) is None


def test_check_invariants_notices_a_broken_book() -> None:
    book = book_with((1, 1, BUY, 100, 5))
    book.check_invariants()
    book._bids.levels[100].qty_units += 1
    with pytest.raises(BookInvariantError):
        book.check_invariants()
