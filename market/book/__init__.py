"""The pure book: one price-time order book per (asset, currency), commands in, events out.

Standard library only: no database, no HTTP, no clock (time is ``now_ms`` on each
command), no randomness; the same commands into a new ``Book`` give the same events and
the same ``state_hash()``. Modules:

- ``book``: ``Book``, the commands (place, cancel, amend, expire) and the order of checks;
- ``state``: ``BookState``, what a book holds and every read of it;
- ``level``: resting orders, price levels and one side of a book;
- ``matching``: taking liquidity from one side in price-time priority;
- ``admission``: the checks an order passes before it touches the book;
- ``commands``, ``events``, ``reasons``, ``terms``, ``views``, ``errors``: the words of
  its interface.
"""

from market.book.book import Book
from market.book.commands import Amend, Cancel, Command, Expire, PlaceLimit, PlaceMarket
from market.book.errors import (
    BookConfigError,
    BookInvariantError,
    MarketError,
    QueryOutOfRange,
    UnknownCommand,
)
from market.book.events import (
    ACCEPTED,
    Accepted,
    Amended,
    Cancelled,
    Event,
    Expired,
    Rejected,
    Trade,
)
from market.book.reasons import CancelReason, RejectReason
from market.book.terms import (
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
from market.book.views import Depth, LevelView, OrderView

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
