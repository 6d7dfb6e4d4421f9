"""The market: order books that match fractions of assets for currency.

``Book`` is pure (standard library only, no clock): commands in, events out. The engine
that holds funds and settles trades in the ledger builds on it.
"""

from market.book import Book
from market.commands import Amend, Cancel, Command, Expire, PlaceLimit, PlaceMarket
from market.errors import (
    BookConfigError,
    BookInvariantError,
    MarketError,
    QueryOutOfRange,
    UnknownCommand,
)
from market.events import ACCEPTED, Accepted, Amended, Cancelled, Event, Expired, Rejected, Trade
from market.reasons import CancelReason, RejectReason
from market.terms import (
    DEPTH_LEVELS_MAX,
    ORDER_ID_MAX,
    ORDERS_MAX_DEFAULT,
    PRICE_MAX_MINOR,
    QTY_MAX_UNITS,
    SPEND_MAX_MINOR,
    Owner,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from market.views import Depth, LevelView, OrderView

__all__ = [
    "ACCEPTED",
    "DEPTH_LEVELS_MAX",
    "ORDERS_MAX_DEFAULT",
    "ORDER_ID_MAX",
    "PRICE_MAX_MINOR",
    "QTY_MAX_UNITS",
    "SPEND_MAX_MINOR",
    "Accepted",
    "Amend",
    "Amended",
    "Book",
    "BookConfigError",
    "BookInvariantError",
    "Cancel",
    "CancelReason",
    "Cancelled",
    "Command",
    "Depth",
    "Event",
    "Expire",
    "Expired",
    "LevelView",
    "MarketError",
    "OrderView",
    "Owner",
    "PlaceLimit",
    "PlaceMarket",
    "QueryOutOfRange",
    "RejectReason",
    "Rejected",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "Trade",
    "UnknownCommand",
]
