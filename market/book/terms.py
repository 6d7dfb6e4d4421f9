"""The words an order is made of: sides, time in force, self-trade prevention, and limits.

Units (DESIGN.md, "Money, units, identifiers"): a price is integer minor currency units
per asset unit (``price_minor``); a quantity is integer asset units (``qty_units``); a
market buy's budget is integer minor currency units (``spend_minor``). Time is an integer
count of milliseconds since the Unix epoch (``now_ms``, ``expires_at_ms``), always passed
in by the caller: the book never reads a clock.

Owners are opaque ``int`` s chosen by the engine (it maps members to them); two orders are
a self-trade when their owners are equal. Order ids are ``int`` s assigned by the engine.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DEPTH_LEVELS_MAX",
    "ORDERS_MAX_DEFAULT",
    "ORDER_ID_MAX",
    "PRICE_MAX_MINOR",
    "QTY_MAX_UNITS",
    "SPEND_MAX_MINOR",
    "Owner",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
]

Owner = int
"""An opaque owner key; equal owners never trade with each other (see SelfTradePrevention)."""

PRICE_MAX_MINOR: Final = 10**30
"""Largest accepted price: room for wei-denominated prices (18 decimals) of 10**12 per unit."""

QTY_MAX_UNITS: Final = 10**12
"""Largest accepted order quantity (an asset has 1,000,000 units by default)."""

SPEND_MAX_MINOR: Final = PRICE_MAX_MINOR * QTY_MAX_UNITS
"""Largest accepted budget of a market buy."""

ORDER_ID_MAX: Final = 2**63 - 1
"""Order ids are engine-assigned integers in ``[1, ORDER_ID_MAX]`` (fits a signed BIGINT)."""

ORDERS_MAX_DEFAULT: Final = 1_000_000
"""Default most resting orders one book holds; more are rejected with ``book_full``."""

DEPTH_LEVELS_MAX: Final = 1_000
"""Most price levels per side that one depth query returns."""


class Side(StrEnum):
    """Which way an order trades: a buy pays currency for units, a sell the reverse."""

    BUY = "buy"
    SELL = "sell"


class TimeInForce(StrEnum):
    """How long a limit order may live.

    GTC rests until filled or cancelled; IOC trades what it can at once and cancels the
    rest; FOK trades its whole quantity at once or is rejected; GTD rests like GTC until
    ``expires_at_ms`` (it is expired by the first command whose ``now_ms >= expires_at_ms``).
    """

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"


class SelfTradePrevention(StrEnum):
    """What happens when an incoming order meets a resting order of the same owner.

    The incoming (newest) order's mode decides:
    CANCEL_NEWEST cancels the rest of the incoming order; CANCEL_OLDEST cancels the resting
    order and matching goes on; CANCEL_BOTH cancels both; DECREMENT takes the smaller
    remaining quantity off both without a trade, cancelling whichever reaches zero.
    """

    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"
    DECREMENT = "decrement"
