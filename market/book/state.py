"""A book's state and every read of it; ``market.book.Book`` adds the commands.

Reads never change the book. Best prices are O(1), depth is O(levels asked), and the
whole-book reads (``resting``, ``state_hash``, ``check_invariants``) are O(orders).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, KeysView
from typing import Final

from market.book.errors import BookConfigError, BookInvariantError, QueryOutOfRange
from market.book.level import ID, QTY, RANK, TERMS, BookSide, RestingOrder
from market.book.terms import (
    DEPTH_LEVELS_MAX,
    ORDERS_MAX_DEFAULT,
    PRICE_MAX_MINOR,
    QTY_MAX_UNITS,
    Side,
)
from market.book.views import Depth, LevelView, OrderView, order_view

__all__ = ["EXPIRES_AT", "BookState"]

EXPIRES_AT: Final = 0
"""Index of the expiry in an entry ``(expires_at_ms, order_id)`` of a book's GTD heap."""


class BookState:
    """The resting orders of one book, by price level and by id, and their reads.

    ``tick_size_minor`` and ``lot_size_units`` constrain prices and quantities;
    ``orders_max`` bounds the resting orders. Raises ``BookConfigError`` for values it
    cannot use.
    """

    __slots__ = ("_asks", "_bids", "_gtd", "_lot", "_orders", "_orders_max", "_tick")

    def __init__(
        self,
        tick_size_minor: int = 1,
        lot_size_units: int = 1,
        orders_max: int = ORDERS_MAX_DEFAULT,
    ) -> None:
        if type(tick_size_minor) is not int or not 0 < tick_size_minor <= PRICE_MAX_MINOR:
            raise BookConfigError("bad_tick_size", f"tick size {tick_size_minor!r}")
        if type(lot_size_units) is not int or not 0 < lot_size_units <= QTY_MAX_UNITS:
            raise BookConfigError("bad_lot_size", f"lot size {lot_size_units!r}")
        if type(orders_max) is not int or orders_max < 1:
            raise BookConfigError("bad_orders_max", f"orders max {orders_max!r}")
        self._tick = tick_size_minor
        self._lot = lot_size_units
        self._orders_max = orders_max
        self._bids = BookSide(Side.BUY)
        self._asks = BookSide(Side.SELL)
        self._orders: dict[int, RestingOrder] = {}
        self._gtd: list[tuple[int, int]] = []  # heap of (expires_at_ms, order_id); may be stale

    @property
    def tick_size_minor(self) -> int:
        """Every price is a multiple of this."""
        return self._tick

    @property
    def lot_size_units(self) -> int:
        """Every quantity is a multiple of this."""
        return self._lot

    @property
    def orders_max(self) -> int:
        """The most resting orders this book holds."""
        return self._orders_max

    def __len__(self) -> int:
        """The number of resting orders."""
        return len(self._orders)

    def best_bid(self) -> int | None:
        """The highest resting buy price, or None; O(1)."""
        ranks = self._bids.ranks
        return ranks[-1] if ranks else None

    def best_ask(self) -> int | None:
        """The lowest resting sell price, or None; O(1)."""
        ranks = self._asks.ranks
        return -ranks[-1] if ranks else None

    def depth(self, levels: int) -> Depth:
        """L2 depth: the best ``levels`` price levels per side with quantity and order
        count, best first, in O(levels). Raises ``QueryOutOfRange`` unless
        ``1 <= levels <= DEPTH_LEVELS_MAX``."""
        if type(levels) is not int or not 1 <= levels <= DEPTH_LEVELS_MAX:
            raise QueryOutOfRange(
                "levels_out_of_range", f"levels must be 1..{DEPTH_LEVELS_MAX}, not {levels!r}"
            )
        return Depth(_side_depth(self._bids, levels), _side_depth(self._asks, levels))

    def next_expiry_ms(self) -> int | None:
        """The earliest expiry of a GTD order, or None; O(1). It may name an order that
        has left the book since (an ``expire`` at that time then changes nothing)."""
        return self._gtd[0][EXPIRES_AT] if self._gtd else None

    def order(self, order_id: int) -> OrderView | None:
        """A snapshot of the resting order ``order_id``, or None if it does not rest."""
        order = self._orders.get(order_id)
        return None if order is None else order_view(order)

    def order_ids(self) -> KeysView[int]:
        """The ids of the resting orders (a live view), in O(1)."""
        return self._orders.keys()

    def resting(self) -> list[OrderView]:
        """Every resting order: bids then asks, each in priority order; O(orders)."""
        return [order_view(o) for o in self._in_priority()]

    def state_hash(self) -> str:
        """SHA-256 hex digest of the resting orders in priority order; O(orders).

        Each order contributes one line of all its fields, bids (best first, then oldest)
        before asks, so two books holding the same orders in the same priority share it.
        It is what a book rebuilt by replaying stored commands is checked against.
        """
        digest = hashlib.sha256()
        for o in self.resting():
            digest.update(
                f"{o.side.value}|{o.price_minor}|{o.order_id}|{o.owner}|{o.qty_units}|"
                f"{o.tif.value}|{o.expires_at_ms}|{int(o.post_only)}|{o.stp.value}\n".encode()
            )
        return digest.hexdigest()

    def check_invariants(self) -> None:
        """Raise ``BookInvariantError`` unless the book is internally consistent and not
        crossed; O(orders). For tests and for checking a rebuilt book."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise BookInvariantError("book_crossed", f"best bid {bid} >= best ask {ask}")
        seen = 0
        for side in (self._bids, self._asks):
            if side.ranks != sorted(set(side.levels)):
                raise BookInvariantError("ranks_out_of_step", f"{side.side} ranks")
            for rank, level in side.levels.items():
                live = [o for o in level if o[QTY]]
                if (
                    not live
                    or sum(o[QTY] for o in live) != level.qty_units
                    or len(level) - len(live) != level.dead
                    or side.sign * level.price_minor != rank
                ):
                    raise BookInvariantError("level_out_of_step", f"level {level.price_minor}")
                for o in live:
                    if (
                        self._orders.get(o[ID]) is not o
                        or o[RANK] != rank
                        or o[TERMS].side is not side.side
                    ):
                        raise BookInvariantError("order_out_of_step", f"order {o[ID]}")
                seen += len(live)
        if seen != len(self._orders):
            raise BookInvariantError("order_count_mismatch", f"{seen} != {len(self._orders)}")

    def _in_priority(self) -> Iterator[RestingOrder]:
        for side in (self._bids, self._asks):
            for rank in reversed(side.ranks):
                for order in side.levels[rank]:
                    if order[QTY]:
                        yield order


def _side_depth(side: BookSide, levels: int) -> tuple[LevelView, ...]:
    book_levels = side.levels
    ranks = side.ranks
    top = ranks[-levels:] if levels < len(ranks) else ranks
    return tuple(
        LevelView(lv.price_minor, lv.qty_units, len(lv) - lv.dead)
        for lv in (book_levels[rank] for rank in reversed(top))
    )
