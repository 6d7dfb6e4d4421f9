"""Resting orders, price levels, and one side of a book.

A side keeps ``levels``: rank -> ``Level``, and ``ranks``: the ranks of its non-empty
levels in ascending order, so the best level is ``ranks[-1]`` (O(1)) and the top N are
the last N (O(N)). The rank is the price for bids and minus the price for asks: on
both sides a larger rank is better, the sign of a rank tells its side, and an incoming
order with limit rank ``r`` (minus its price for a buy, its price for a sell) crosses a
level of the other side exactly when that level's rank is ``>= r``.

A resting order is a five-slot list, ``[qty_units, order_id, owner, rank, terms]``
indexed by ``QTY``, ``ID``, ``OWNER``, ``RANK``, ``TERMS``: a list is by far the cheapest
mutable record CPython builds, and one is built for nearly every command. ``qty_units ==
0`` marks a dead record: the order left the book, or an amend that lost priority put a
new record for the same order id at the back.

A level is a deque of records in time priority. Removing an order from the middle
(cancel, expiry, amend) marks it dead instead of searching the deque; matching drops
dead records when they reach the front, and a level whose dead records outnumber its
live ones is compacted, so memory stays proportional to live orders. The level's live
order count is ``len(level) - level.dead``; ``qty_units`` sums its live quantities.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Any, Final, NamedTuple, TypeAlias

from market.book.terms import SelfTradePrevention, Side, TimeInForce

__all__ = [
    "BUY_GTC",
    "COMPACT_DEAD_MIN",
    "ID",
    "OWNER",
    "QTY",
    "RANK",
    "SELL_GTC",
    "TERMS",
    "BookSide",
    "Level",
    "OrderTerms",
    "RestingOrder",
]

RestingOrder: TypeAlias = list[Any]
"""``[qty_units: int, order_id: int, owner: Owner, rank: int, terms: OrderTerms]``."""
QTY: Final = 0
ID: Final = 1
OWNER: Final = 2
RANK: Final = 3
TERMS: Final = 4

COMPACT_DEAD_MIN: Final = 32
"""A level is compacted only once it has at least this many dead records (amortizes it)."""


class OrderTerms(NamedTuple):
    """What an order keeps from its placing command besides id, owner, price and quantity.

    Shared between orders (every plain GTC order of a side uses one instance), so resting
    orders stay small.
    """

    side: Side
    tif: TimeInForce
    expires_at_ms: int | None
    stp: SelfTradePrevention
    post_only: bool


BUY_GTC: Final = OrderTerms(
    Side.BUY, TimeInForce.GTC, None, SelfTradePrevention.CANCEL_NEWEST, False
)
SELL_GTC: Final = OrderTerms(
    Side.SELL, TimeInForce.GTC, None, SelfTradePrevention.CANCEL_NEWEST, False
)


class Level(deque[RestingOrder]):
    """The records at one price on one side, oldest first (dead ones included)."""

    __slots__ = ("dead", "price_minor", "qty_units")

    def __init__(self, price_minor: int) -> None:
        # deque.__new__ already made it empty; deque.__init__ would only add a maxlen,
        # and skipping it halves the cost of a level, made afresh whenever one empties.
        self.price_minor = price_minor
        self.qty_units = 0
        self.dead = 0


class BookSide:
    """The bids or the asks of one book."""

    __slots__ = ("levels", "ranks", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = 1 if side is Side.BUY else -1
        self.levels: dict[int, Level] = {}
        self.ranks: list[int] = []

    def add(self, order: RestingOrder) -> None:
        """Queue ``order`` last at its rank, creating the level if needed.

        ``Book.place_limit`` writes this out on its fast path (a call there costs 4 % of
        the market benchmark); a test holds the two to the same state."""
        rank = order[RANK]
        level = self.levels.get(rank)
        if level is None:
            level = self.levels[rank] = Level(self.sign * rank)
            insort(self.ranks, rank)
        level.append(order)
        level.qty_units += order[QTY]

    def remove(self, order: RestingOrder) -> None:
        """Take the live ``order`` out of its level (marking it dead), dropping an emptied
        level; the caller removes it from the book's id map."""
        rank = order[RANK]
        level = self.levels[rank]
        level.qty_units -= order[QTY]
        order[QTY] = 0
        dead = level.dead + 1
        if dead == len(level):
            del self.levels[rank]
            del self.ranks[bisect_left(self.ranks, rank)]
        elif dead >= COMPACT_DEAD_MIN and dead + dead > len(level):
            live = [o for o in level if o[QTY]]
            level.clear()
            level.extend(live)
            level.dead = 0
        else:
            level.dead = dead

    def reduce(self, order: RestingOrder, qty_units: int) -> None:
        """Lower the live ``order`` to ``qty_units`` (> 0) in place, keeping its priority."""
        self.levels[order[RANK]].qty_units -= order[QTY] - qty_units
        order[QTY] = qty_units
