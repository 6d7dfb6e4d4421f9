"""Commands: everything that changes a book, as plain immutable values.

The engine persists each command before applying it; replaying the same commands into a
new ``Book`` gives the same events and the same ``state_hash()``. ``Book.apply`` takes
any of these; the ``Book.place_limit`` ... methods take the same fields directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from market.book.terms import Owner, SelfTradePrevention, Side, TimeInForce

__all__ = ["Amend", "Cancel", "Command", "Expire", "PlaceLimit", "PlaceMarket"]


@dataclass(frozen=True, slots=True)
class PlaceLimit:
    """A limit order: trade at ``price_minor`` or better, then rest (GTC/GTD) or not."""

    order_id: int
    owner: Owner
    side: Side
    price_minor: int
    qty_units: int
    tif: TimeInForce = TimeInForce.GTC
    expires_at_ms: int | None = None
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class PlaceMarket:
    """A market order; it never rests.

    A sell names ``qty_units``; a buy names ``spend_minor``, the most it pays in total
    (sum of price * qty over its trades), and buys as many lots as that and the book allow.
    """

    order_id: int
    owner: Owner
    side: Side
    qty_units: int = 0
    spend_minor: int = 0
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Cancel:
    """Remove a resting order."""

    order_id: int
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Amend:
    """Change a resting order's price and/or remaining quantity (``None``: unchanged).

    A smaller quantity at the same price keeps queue priority; a new price or a larger
    quantity loses it, and a new price that crosses trades at once.
    """

    order_id: int
    price_minor: int | None = None
    qty_units: int | None = None
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Expire:
    """Expire every GTD order due at ``now_ms`` (every command also does this first)."""

    now_ms: int


Command = PlaceLimit | PlaceMarket | Cancel | Amend | Expire
"""Anything a book accepts."""
