"""The books as the database holds them: which exist, their L2 depth and best prices.

Everything here reads the tables the engine keeps in the transaction of each order and
trade (``market_books``, ``market_orders``), so every worker answers the same whatever
worker took the orders. Depth is summed from the open orders through the partial index
``ix_market_orders_open_depth (asset_id, currency, side, price_minor) WHERE status =
'open'``; the status is written into the statement as a literal, as SQLite uses a
partial index only for a query whose WHERE names the index's own condition.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sqlalchemy import ColumnElement, Connection, func, literal, select

from ledger.core import validate_asset_id
from ledger.core.accounts import currency_of
from ledger.core.errors import InvalidInput, NotFound
from ledger.db.schema import Asset, Currency, MarketBook, MarketOrder, table
from ledger.journal.reads import digest
from market.book import DEPTH_LEVELS_MAX, Depth, LevelView, Side
from market.engine import BookKey, OrderStatus

__all__ = [
    "DEPTH_LEVELS_DEFAULT",
    "DEPTH_LEVELS_MAX",
    "BestPrices",
    "BookDepth",
    "best_price_columns",
    "best_prices",
    "book_depth",
    "depth_of",
    "open_book",
    "open_condition",
    "require_book",
]

DEPTH_LEVELS_DEFAULT: Final = 20
"""Price levels per side a depth read shows unless asked for more (at most
``DEPTH_LEVELS_MAX``, 1,000, the pure book's own limit)."""

_orders = table(MarketOrder)
_books = table(MarketBook)
_assets = table(Asset)
_currencies = table(Currency)


def open_condition() -> ColumnElement[bool]:
    """``status = 'open'`` with the status inline: the partial index's own condition."""
    return _orders.c.status == literal(OrderStatus.OPEN, literal_execute=True)


class BookDepth(NamedTuple):
    """A book's depth as of journal seq ``seq`` (every entry up to it is reflected)."""

    seq: int
    depth: Depth


class BestPrices(NamedTuple):
    """The highest resting buy and the lowest resting sell, either None."""

    bid_minor: int | None
    ask_minor: int | None


def require_book(conn: Connection, asset_id: str, currency: str) -> BookKey:
    """The book of ``asset_id`` in ``currency``; ``InvalidInput`` if either is malformed
    (``asset_id_*``, ``currency_malformed``), ``NotFound`` if the asset or the currency
    does not exist (``unknown_asset``, ``unknown_currency``). A book no order has opened
    yet is a book all the same: its reads are empty."""
    validate_asset_id(asset_id)
    currency_of(currency)
    key = BookKey(asset_id, currency)
    if open_book(conn, key):
        return key  # the common case: one statement
    found = conn.execute(
        select(
            select(_assets.c.id).where(_assets.c.id == asset_id).scalar_subquery(),
            select(_currencies.c.code).where(_currencies.c.code == currency).scalar_subquery(),
        )
    ).one()
    if found[0] is None:
        raise NotFound("unknown_asset", f"no asset {asset_id!r}")
    if found[1] is None:
        raise NotFound("unknown_currency", f"no currency {currency!r}")
    return key


def open_book(conn: Connection, key: BookKey) -> bool:
    """Whether an order has opened this book."""
    row = conn.execute(
        select(_books.c.opened_seq).where(
            _books.c.asset_id == key.asset_id,
            _books.c.currency == key.currency,
            _books.c.term == key.term,
        )
    ).first()
    return row is not None


def depth_of(conn: Connection, key: BookKey, levels: int = DEPTH_LEVELS_DEFAULT) -> Depth:
    """L2 depth of the open orders: per side the best ``levels`` prices, best first, each
    with its remaining quantity and number of orders: what ``Book.depth(levels)`` of the
    engine's book shows. ``InvalidInput`` (``levels_out_of_range``) unless ``1 <= levels
    <= DEPTH_LEVELS_MAX``."""
    if type(levels) is not int or not 1 <= levels <= DEPTH_LEVELS_MAX:
        raise InvalidInput(
            "levels_out_of_range", f"levels must be 1..{DEPTH_LEVELS_MAX}, not {levels!r}"
        )
    return Depth(_side(conn, key, Side.BUY, levels), _side(conn, key, Side.SELL, levels))


def _side(conn: Connection, key: BookKey, side: Side, levels: int) -> tuple[LevelView, ...]:
    price = _orders.c.price_minor
    rows = conn.execute(
        select(price, func.sum(_orders.c.remaining_units), func.count())
        .where(
            _orders.c.asset_id == key.asset_id,
            _orders.c.currency == key.currency,
            _orders.c.term == key.term,
            _orders.c.side == side.value,
            open_condition(),
        )
        .group_by(price)
        .order_by(price.desc() if side is Side.BUY else price)
        .limit(levels)
    )
    # PostgreSQL sums a BIGINT as NUMERIC: back to int.
    return tuple(LevelView(int(p), int(q), int(n)) for p, q, n in rows)


def book_depth(conn: Connection, key: BookKey, levels: int = DEPTH_LEVELS_DEFAULT) -> BookDepth:
    """The depth and the journal seq it reflects. Give it a connection in a snapshot
    (``read_connection(engine)``) so that both are read at the same moment."""
    seq = digest(conn).seq
    return BookDepth(seq, depth_of(conn, key, levels))


def best_prices(conn: Connection, key: BookKey) -> BestPrices:
    """The book's best bid and best ask (each the first entry of the depth index)."""
    found = conn.execute(select(*best_price_columns(key.asset_id, key.currency, key.term))).one()
    return BestPrices(found[0], found[1])


def best_price_columns(
    asset_id: ColumnElement[str] | str,
    currency: ColumnElement[str] | str,
    term: ColumnElement[str] | str = "",
) -> tuple[ColumnElement[int | None], ColumnElement[int | None]]:
    """Scalar subqueries of the best bid and ask, for a book named by values or by the
    columns of an outer query (the trading book unless ``term`` names a lease book)."""
    o = _orders.c

    def best(side: Side) -> ColumnElement[int | None]:
        extreme = func.max(o.price_minor) if side is Side.BUY else func.min(o.price_minor)
        return (
            select(extreme)
            .where(
                o.asset_id == asset_id,
                o.currency == currency,
                o.term == term,
                o.side == side.value,
                open_condition(),
            )
            .scalar_subquery()
        )

    return best(Side.BUY), best(Side.SELL)
