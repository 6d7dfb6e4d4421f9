"""One matching loop: the fast path for plain GTC orders leaves what the general path does.

``Book.place_limit`` takes a plain GTC order (default terms, small ints) through
``matching.take_plain`` and rests it in place; anything else goes through the general
checks, ``matching.take`` and ``BookSide.add``. These tests hold the two to the same
events and the same state, down to the records of makers that filled and left the book
(an earlier copy of the loop inside ``place_limit`` left those unzeroed while ``take``
zeroed them). They look at the book's internals on purpose: that state is what drifted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from market import Book, Event, SelfTradePrevention, Side
from market.book.level import QTY, SELL_GTC, BookSide, RestingOrder
from market.book.matching import take, take_plain
from tests.unit.market.book_helpers import BUY, SELL, trades

SideState = tuple[list[int], list[tuple[int, int, int, list[RestingOrder]]]]


class GeneralPathBook(Book):
    """A book that counts the limit orders it sends down the general path."""

    general_path_orders = 0

    def _place_limit_checked(self, *args: Any) -> Sequence[Event]:
        type(self).general_path_orders += 1
        return super()._place_limit_checked(*args)


def side_state(side: BookSide) -> SideState:
    """Ranks, then per level: price, live quantity, dead records, every record (copied)."""
    return side.ranks[:], [
        (rank, level.qty_units, level.dead, [list(o) for o in level])
        for rank, level in sorted(side.levels.items())
    ]


def book_state(book: Book) -> tuple[SideState, SideState, dict[int, RestingOrder]]:
    return (
        side_state(book._bids),
        side_state(book._asks),
        {order_id: list(o) for order_id, o in book._orders.items()},
    )


def test_a_filled_maker_is_left_as_the_general_path_leaves_it() -> None:
    """The drift the issue names: a maker filled by a plain GTC order is zeroed."""
    records: dict[str, list[RestingOrder]] = {}
    events: dict[str, Sequence[Event]] = {}
    for path, stp in (
        ("fast", SelfTradePrevention.CANCEL_NEWEST),
        # Not a plain order, so the general path; with distinct owners the same trades.
        ("general", SelfTradePrevention.CANCEL_OLDEST),
    ):
        book = Book()
        book.place_limit(1, 10, SELL, 100, 5)
        book.place_limit(2, 11, SELL, 100, 5)
        book.place_limit(3, 12, SELL, 101, 5)
        makers = [book._orders[order_id] for order_id in (1, 2, 3)]
        events[path] = book.place_limit(9, 20, BUY, 101, 12, stp=stp)
        records[path] = [list(m) for m in makers]
        book.check_invariants()
        assert len(book) == 1
    assert trades(events["fast"]) == [(1, 9, 100, 5), (2, 9, 100, 5), (3, 9, 101, 2)]
    assert list(events["fast"]) == list(events["general"])
    assert records["fast"] == records["general"]
    assert [m[QTY] for m in records["fast"]] == [0, 0, 3]


ORDER = st.tuples(
    st.integers(1, 3),  # owner: few, so that self-trade prevention fires
    st.sampled_from([BUY, SELL]),
    st.integers(96, 104),  # price
    st.integers(1, 12),  # qty
)
STEP = st.one_of(ORDER, st.integers(0, 40))  # an order, or cancel the n-th order placed


@given(st.lists(STEP, max_size=60))
def test_plain_orders_leave_the_same_state_on_either_path(steps: list[Any]) -> None:
    """The same plain GTC orders, once as ``Side`` members (the fast path) and once as
    plain strings (the general path, same terms): same events, same book, same records
    for every order ever placed, including those that left."""
    fast, general = Book(), GeneralPathBook()
    GeneralPathBook.general_path_orders = 0
    placed: list[tuple[RestingOrder | None, RestingOrder | None]] = []
    limits = 0
    for step in steps:
        if isinstance(step, int):
            if step < len(placed):
                order_id = step + 1
                assert list(fast.cancel(order_id)) == list(general.cancel(order_id))
            continue
        owner, side, price, qty = step
        order_id = len(placed) + 1
        fast_events = fast.place_limit(order_id, owner, side, price, qty)
        general_events = general.place_limit(order_id, owner, side.value, price, qty)
        limits += 1
        assert list(fast_events) == list(general_events)
        placed.append((fast._orders.get(order_id), general._orders.get(order_id)))
        assert book_state(fast) == book_state(general)
        fast.check_invariants()
    assert GeneralPathBook.general_path_orders == limits
    assert fast.state_hash() == general.state_hash()
    for fast_record, general_record in placed:
        assert (fast_record is None) == (general_record is None)
        if fast_record is not None and general_record is not None:
            assert list(fast_record) == list(general_record)


@given(
    st.lists(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9)), max_size=30),
    st.sets(st.integers(0, 29)),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 60),
)
def test_take_plain_is_take_with_cancel_newest(
    resting: list[tuple[int, int, int]],
    cancelled: set[int],
    owner: int,
    limit_price: int,
    qty_units: int,
) -> None:
    """``take_plain`` and ``take(..., CANCEL_NEWEST)`` over the same asks (some records
    dead): the same units left, events, levels and maker records, filled ones included."""
    outcomes = []
    for matcher in ("take_plain", "take"):
        asks = BookSide(Side.SELL)
        orders: dict[int, RestingOrder] = {}
        records: list[RestingOrder] = []
        for n, (maker_owner, price, qty) in enumerate(resting):
            record = [qty, n + 1, maker_owner, -price, SELL_GTC]
            asks.add(record)
            orders[n + 1] = record
            records.append(record)
        for n in sorted(cancelled):
            if n < len(records):
                asks.remove(records[n])
                del orders[n + 1]
        events: list[Event] = []
        if matcher == "take_plain":
            left = take_plain(asks, orders, 99, owner, BUY, -limit_price, qty_units, events)
        else:
            left = take(
                asks, orders, 99, owner, BUY, -limit_price, qty_units,
                SelfTradePrevention.CANCEL_NEWEST, events,
            )  # fmt: skip
        outcomes.append(
            (left, events, side_state(asks), sorted(orders), [list(r) for r in records])
        )
    assert outcomes[0] == outcomes[1]
