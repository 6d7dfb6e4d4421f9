"""Public market data: the books, their depth, trade tape, candles and statistics.

No sign-in: everything here is public. Every read comes from the database
(``market.data``), never from this worker's engine, so any worker answers the same.
A book is named by its asset and currency: a malformed asset id or currency is 422
(``asset_id_*``, ``currency_malformed``), one that does not exist 404
(``unknown_asset``, ``unknown_currency``); a book no order has opened yet reads empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import LedgerDep
from api.problems import PROBLEM_RESPONSES
from api.schemas.markets import (
    BookOut,
    CandleOut,
    CandlesOut,
    MarketOut,
    MarketsOut,
    StatsOut,
    TapeOut,
    tape_trade_out,
)
from ledger.db.engine import read_connection
from market.data import (
    CANDLES_PAGE_DEFAULT,
    CANDLES_PAGE_MAX,
    DEPTH_LEVELS_DEFAULT,
    DEPTH_LEVELS_MAX,
    MARKETS_PAGE_DEFAULT,
    MARKETS_PAGE_MAX,
    TAPE_PAGE_DEFAULT,
    TAPE_PAGE_MAX,
    book_depth,
    book_of_cursor,
    book_stats,
    candles,
    cursor_of_book,
    interval_s_of,
    markets,
    ms_of,
    require_book,
    trades_after,
)

router = APIRouter(prefix="/v1", tags=["market"], responses=PROBLEM_RESPONSES)

AssetPath = Annotated[str, Path(min_length=1, max_length=32, description="the asset's id")]
CurrencyPath = Annotated[str, Path(min_length=1, max_length=16, description="e.g. USD")]
TimeQuery = Annotated[datetime | None, Query(description="RFC 3339, with a zone")]


@router.get("/markets", response_model=MarketsOut)
def market_list(
    ledger: LedgerDep,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MARKETS_PAGE_MAX)] = MARKETS_PAGE_DEFAULT,
) -> MarketsOut:
    """Every book in (asset, currency) order, with its last price, 24 h volume and
    trade count (the 1-minute candles of the last 24 h) and its best bid and ask."""
    after = None if cursor is None else book_of_cursor(cursor)
    now_ms = ms_of(ledger.clock())
    with read_connection(ledger.engine) as conn:
        found = markets(conn, now_ms, after=after, limit=limit)
    more = len(found) == limit
    return MarketsOut(
        items=[MarketOut.of(s) for s in found],
        next_cursor=cursor_of_book(found[-1].book) if found and more else None,
    )


@router.get("/markets/{asset_id}/{currency}/book", response_model=BookOut)
def market_book(
    asset_id: AssetPath,
    currency: CurrencyPath,
    ledger: LedgerDep,
    levels: Annotated[int, Query(ge=1, le=DEPTH_LEVELS_MAX)] = DEPTH_LEVELS_DEFAULT,
) -> BookOut:
    """L2 depth from the open orders: per side the best ``levels`` prices, best first,
    with the quantity resting at each and the number of orders; ``seq`` is the journal
    seq the depth reflects."""
    with read_connection(ledger.engine) as conn:
        book = require_book(conn, asset_id, currency)
        found = book_depth(conn, book, levels)
    return BookOut.of(book, found.seq, found.depth)


@router.get("/markets/{asset_id}/{currency}/trades", response_model=TapeOut)
def market_trades(
    asset_id: AssetPath,
    currency: CurrencyPath,
    ledger: LedgerDep,
    cursor: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="the last trade id seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=TAPE_PAGE_MAX)] = TAPE_PAGE_DEFAULT,
) -> TapeOut:
    """The trade tape, oldest first: the trades after ``cursor`` (from the first,
    without one)."""
    with read_connection(ledger.engine) as conn:
        book = require_book(conn, asset_id, currency)
        found = trades_after(conn, book, cursor, limit)
    last = found[-1].id if found else cursor
    return TapeOut(
        items=[tape_trade_out(t) for t in found],
        next_cursor=None if last is None else str(last),
    )


@router.get("/markets/{asset_id}/{currency}/candles", response_model=CandlesOut)
def market_candles(
    asset_id: AssetPath,
    currency: CurrencyPath,
    ledger: LedgerDep,
    interval: Annotated[str, Query(max_length=8, description="1m, 5m, 1h or 1d")] = "1m",
    start: Annotated[TimeQuery, Query(alias="from")] = None,
    end: Annotated[TimeQuery, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=CANDLES_PAGE_MAX)] = CANDLES_PAGE_DEFAULT,
) -> CandlesOut:
    """OHLCV candles, oldest first, of those that start in [``from``, ``to``): with
    ``from``, the first ``limit`` from it (for the next page, ``from`` the last start
    plus the interval); without, the latest ``limit`` before ``to``. An interval
    without trades has no candle. Any other interval is 422 ``interval_unknown``."""
    interval_s = interval_s_of(interval)
    from_ms = None if start is None else ms_of(start)
    to_ms = None if end is None else ms_of(end)
    with read_connection(ledger.engine) as conn:
        book = require_book(conn, asset_id, currency)
        found = candles(conn, book, interval_s, from_ms=from_ms, to_ms=to_ms, limit=limit)
    return CandlesOut(
        asset_id=book.asset_id,
        currency=book.currency,
        interval=interval,
        items=[CandleOut.of(c) for c in found],
    )


@router.get("/markets/{asset_id}/{currency}/stats", response_model=StatsOut)
def market_stats(asset_id: AssetPath, currency: CurrencyPath, ledger: LedgerDep) -> StatsOut:
    """The last price, the last 24 h (open, high, low, volume, notional, trades, change:
    from the 1-minute candles, so to the minute) and the best bid and ask."""
    now_ms = ms_of(ledger.clock())
    with read_connection(ledger.engine) as conn:
        book = require_book(conn, asset_id, currency)
        found = book_stats(conn, book, now_ms)
    return StatsOut.of(found)
