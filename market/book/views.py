"""What a book shows of itself: L2 levels, depth and order snapshots."""

from __future__ import annotations

from typing import NamedTuple

from market.book.level import ID, OWNER, QTY, RANK, TERMS, OrderTerms, RestingOrder
from market.book.terms import Owner, SelfTradePrevention, Side, TimeInForce

__all__ = ["Depth", "LevelView", "OrderView", "order_view"]


class LevelView(NamedTuple):
    """One L2 price level: total live quantity and number of live orders."""

    price_minor: int
    qty_units: int
    orders: int


class Depth(NamedTuple):
    """The top levels of each side, best first."""

    bids: tuple[LevelView, ...]
    asks: tuple[LevelView, ...]


class OrderView(NamedTuple):
    """A snapshot of one resting order."""

    order_id: int
    owner: Owner
    side: Side
    price_minor: int
    qty_units: int
    tif: TimeInForce
    expires_at_ms: int | None
    post_only: bool
    stp: SelfTradePrevention


def order_view(order: RestingOrder) -> OrderView:
    """Snapshot a live resting order."""
    terms: OrderTerms = order[TERMS]
    return OrderView(
        order[ID],
        order[OWNER],
        terms.side,
        abs(order[RANK]),
        order[QTY],
        terms.tif,
        terms.expires_at_ms,
        terms.post_only,
        terms.stp,
    )
