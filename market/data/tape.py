"""The trade tape of a book: its trades, oldest first, paged by id.

A trade's id is the seq of the journal entry that settled it, so ids only grow and a
page that starts after the last id seen never skips or repeats one (``market_trades``
is read through its index ``(asset_id, currency, id)``). The tape is public: it shows
neither owner, only the orders' ids.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from sqlalchemy import Connection, select

from ledger.core.errors import InvalidInput
from ledger.db.schema import MarketTrade, table
from market.book import Side
from market.engine import BookKey

__all__ = [
    "TAPE_PAGE_DEFAULT",
    "TAPE_PAGE_MAX",
    "TapeTrade",
    "last_trade",
    "latest_trades",
    "trades_after",
]

TAPE_PAGE_MAX: Final = 1_000
TAPE_PAGE_DEFAULT: Final = 100

_trades = table(MarketTrade)
_COLUMNS = (
    _trades.c.id,
    _trades.c.price_minor,
    _trades.c.qty_units,
    _trades.c.maker_order_id,
    _trades.c.taker_order_id,
    _trades.c.taker_side,
    _trades.c.executed_ms,
)


class TapeTrade(NamedTuple):
    """A trade as the tape shows it: at the resting (maker) order's price."""

    id: int
    price_minor: int
    qty_units: int
    maker_order_id: int
    taker_order_id: int
    taker_side: Side
    executed_ms: int


def _trade(row: Any) -> TapeTrade:
    return TapeTrade(
        row.id,
        row.price_minor,
        row.qty_units,
        row.maker_order_id,
        row.taker_order_id,
        Side(row.taker_side),
        row.executed_ms,
    )


def _check_limit(limit: int, high: int) -> None:
    if type(limit) is not int or not 1 <= limit <= high:
        raise InvalidInput("limit_out_of_range", f"limit must be 1..{high}, not {limit!r}")


def trades_after(
    conn: Connection, key: BookKey, after_id: int | None, limit: int = TAPE_PAGE_DEFAULT
) -> list[TapeTrade]:
    """The book's trades with an id above ``after_id`` (all, if None), oldest first, at
    most ``limit`` (1..``TAPE_PAGE_MAX``)."""
    _check_limit(limit, TAPE_PAGE_MAX)
    query = select(*_COLUMNS).where(
        _trades.c.asset_id == key.asset_id, _trades.c.currency == key.currency
    )
    if after_id is not None:
        query = query.where(_trades.c.id > after_id)
    rows = conn.execute(query.order_by(_trades.c.id).limit(limit))
    return [_trade(r) for r in rows]


def latest_trades(
    conn: Connection, key: BookKey, after_id: int, limit: int = TAPE_PAGE_DEFAULT
) -> list[TapeTrade]:
    """The book's last ``limit`` trades with an id above ``after_id``, oldest first (the
    tail of the tape, where ``trades_after`` gives its head)."""
    _check_limit(limit, TAPE_PAGE_MAX)
    rows = conn.execute(
        select(*_COLUMNS)
        .where(
            _trades.c.asset_id == key.asset_id,
            _trades.c.currency == key.currency,
            _trades.c.id > after_id,
        )
        .order_by(_trades.c.id.desc())
        .limit(limit)
    )
    return [_trade(r) for r in reversed(list(rows))]


def last_trade(conn: Connection, key: BookKey) -> TapeTrade | None:
    """The book's latest trade, if it has traded."""
    found = latest_trades(conn, key, -1, 1)
    return found[0] if found else None
