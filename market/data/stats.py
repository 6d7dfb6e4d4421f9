"""Figures of a book at a glance: the list of books, and one book's statistics.

Last price is the latest trade's (the tape's index, newest first); the 24 h figures are
folded from the candles (``market.data.candles.window_24h``: minute granularity); best
bid and ask are the first entries of the depth index. The list reads a page of books in
two statements whatever its length: the books with their last price and best prices
(scalar subqueries on those indexes), then their candles.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sqlalchemy import Connection, select, tuple_

from ledger.core.errors import InvalidInput
from ledger.db.schema import MarketBook, MarketTrade, table
from market.data.books import BestPrices, best_price_columns, best_prices
from market.data.candles import Window, window_24h
from market.data.tape import last_trade
from market.engine import BookKey

__all__ = [
    "MARKETS_PAGE_DEFAULT",
    "MARKETS_PAGE_MAX",
    "BookStats",
    "MarketSummary",
    "book_of_cursor",
    "book_stats",
    "cursor_of_book",
    "markets",
]

MARKETS_PAGE_MAX: Final = 100
MARKETS_PAGE_DEFAULT: Final = 50
BPS: Final = 10_000

_books = table(MarketBook)
_trades = table(MarketTrade)


class MarketSummary(NamedTuple):
    """A book in the list of books."""

    book: BookKey
    last_price_minor: int | None
    volume_24h_units: int
    trades_24h: int
    best: BestPrices


class BookStats(NamedTuple):
    """One book's figures as of ``now_ms``."""

    book: BookKey
    now_ms: int
    last_price_minor: int | None
    last_trade_ms: int | None
    day: Window
    best: BestPrices

    @property
    def change_minor(self) -> int | None:
        """The last price less the 24 h open; None without a trade in the 24 h."""
        if self.day.open_minor is None or self.last_price_minor is None:
            return None
        return self.last_price_minor - self.day.open_minor

    @property
    def change_bps(self) -> int | None:
        """``change_minor`` in basis points of the 24 h open, rounded toward zero."""
        change = self.change_minor
        if change is None or not self.day.open_minor:
            return None
        bps = abs(change) * BPS // self.day.open_minor
        return bps if change >= 0 else -bps


def cursor_of_book(key: BookKey) -> str:
    """The cursor that pages the list of books after ``key``: ``<asset>/<currency>``."""
    return f"{key.asset_id}/{key.currency}"


def book_of_cursor(cursor: str) -> BookKey:
    """The book a cursor of ``cursor_of_book`` names; ``InvalidInput``
    (``cursor_malformed``) for any other text."""
    asset_id, slash, currency = cursor.partition("/")
    if not slash or not asset_id.isalnum() or not currency.isalnum() or not cursor.isascii():
        raise InvalidInput("cursor_malformed", "the cursor is a next_cursor of this list")
    return BookKey(asset_id, currency)


def markets(
    conn: Connection, now_ms: int, *, after: BookKey | None = None, limit: int
) -> list[MarketSummary]:
    """The books, ordered by (asset, currency), after ``after``: at most ``limit``
    (1..``MARKETS_PAGE_MAX``), each with its last price, 24 h volume and trades as of
    ``now_ms``, and best prices."""
    if type(limit) is not int or not 1 <= limit <= MARKETS_PAGE_MAX:
        raise InvalidInput(
            "limit_out_of_range", f"limit must be 1..{MARKETS_PAGE_MAX}, not {limit!r}"
        )
    b, t = _books.c, _trades.c
    last_price = (
        select(t.price_minor)
        .where(t.asset_id == b.asset_id, t.currency == b.currency)
        .order_by(t.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(
        b.asset_id, b.currency, last_price, *best_price_columns(b.asset_id, b.currency)
    ).where(b.term == "")  # the trading books; lease books are listed by their asset
    if after is not None:
        query = query.where(tuple_(b.asset_id, b.currency) > tuple_(after.asset_id, after.currency))
    rows = list(conn.execute(query.order_by(b.asset_id, b.currency).limit(limit)))
    keys = [BookKey(r[0], r[1]) for r in rows]
    days = window_24h(conn, keys, now_ms)
    return [
        MarketSummary(key, r[2], days[key].volume_units, days[key].trades, BestPrices(r[3], r[4]))
        for key, r in zip(keys, rows, strict=True)
    ]


def book_stats(conn: Connection, key: BookKey, now_ms: int) -> BookStats:
    """The book's last price, its 24 h as of ``now_ms`` and its best prices. Give it a
    connection in a snapshot so that they agree."""
    last = last_trade(conn, key)
    return BookStats(
        key,
        now_ms,
        None if last is None else last.price_minor,
        None if last is None else last.executed_ms,
        window_24h(conn, [key], now_ms)[key],
        best_prices(conn, key),
    )
