"""Stable reason codes carried by ``Rejected`` and ``Cancelled`` events.

The string values are part of the interface: the engine stores them and shows them to
members, so a value is never renamed once released.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CancelReason", "RejectReason"]


class RejectReason(StrEnum):
    """Why a command changed nothing (besides expiring due GTD orders first)."""

    UNKNOWN_ORDER = "unknown_order"
    """Cancel or amend names no resting order."""
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    """A resting order already has this id."""
    ORDER_ID_OUT_OF_RANGE = "order_id_out_of_range"
    """The id is not an int in ``[1, ORDER_ID_MAX]``."""
    BAD_SIDE = "bad_side"
    BAD_TIME_IN_FORCE = "bad_time_in_force"
    """Unknown time in force, GTD without expiry, expiry without GTD, post-only with IOC/FOK."""
    BAD_STP = "bad_stp"
    """Unknown self-trade prevention mode, or DECREMENT on a spend-based market buy."""
    PRICE_OUT_OF_RANGE = "price_out_of_range"
    """The price is not an int in ``[1, PRICE_MAX_MINOR]``."""
    QTY_OUT_OF_RANGE = "qty_out_of_range"
    """The quantity is not an int in ``[1, QTY_MAX_UNITS]``."""
    SPEND_OUT_OF_RANGE = "spend_out_of_range"
    """A market buy's budget is not an int in ``[1, SPEND_MAX_MINOR]``."""
    BAD_TICK = "bad_tick"
    """The price is not a multiple of the book's tick size."""
    BAD_LOT = "bad_lot"
    """The quantity is not a multiple of the book's lot size."""
    EXPIRED = "expired"
    """A GTD order whose expiry is not after ``now_ms``."""
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    """A post-only order (or its amendment) would trade on arrival."""
    FOK_UNFILLABLE = "fok_unfillable"
    """A fill-or-kill order cannot trade its whole quantity at once."""
    BOOK_FULL = "book_full"
    """The book already holds its maximum number of resting orders."""
    NOT_AMENDABLE = "not_amendable"
    """An amend that names neither a new price nor a new quantity."""


class CancelReason(StrEnum):
    """Why units of an accepted order left the book without trading."""

    USER = "user"
    """A cancel command."""
    IOC_REMAINDER = "ioc_remainder"
    """What an IOC order could not trade at once."""
    MARKET_REMAINDER = "market_remainder"
    """What a market order could not trade (book or budget exhausted)."""
    SELF_TRADE = "self_trade"
    """Self-trade prevention (see ``SelfTradePrevention``)."""
