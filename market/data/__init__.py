"""Public market data, read from the tables the engine keeps in the transaction of each
order and trade, so that every worker shows the same whatever worker took the orders:

- ``books``: which books exist (``require_book``), L2 depth from the open orders, best
  prices, the journal seq a read reflects;
- ``tape``: the trades of a book, oldest first, paged by id;
- ``candles``: OHLCV per interval, and the last 24 hours folded from them;
- ``stats``: the list of books with their figures, and one book's statistics;
- ``feed``: what a live stream reads (the books the order log says changed, their new
  trades and depth); ``hub``: one poller per worker that fans those out to subscribers.
"""

from market.data.books import (
    DEPTH_LEVELS_DEFAULT,
    DEPTH_LEVELS_MAX,
    BestPrices,
    BookDepth,
    best_prices,
    book_depth,
    depth_of,
    require_book,
)
from market.data.candles import (
    CANDLE_INTERVALS,
    CANDLES_PAGE_DEFAULT,
    CANDLES_PAGE_MAX,
    DAY_MS,
    Candle,
    Window,
    candles,
    interval_s_of,
    ms_of,
    time_of_ms,
    window_24h,
    window_of,
)
from market.data.feed import (
    BookUpdate,
    Changes,
    book_snapshot,
    book_updates,
    changed_books,
    command_head,
)
from market.data.hub import (
    STREAM_POLL_S,
    STREAM_QUEUE_MAX,
    STREAM_REPLAY_TRADES_MAX,
    STREAM_SUBSCRIBERS_MAX,
    DepthEvent,
    StreamEnd,
    StreamEvent,
    StreamHub,
    Subscription,
    TradeEvent,
)
from market.data.stats import (
    MARKETS_PAGE_DEFAULT,
    MARKETS_PAGE_MAX,
    BookStats,
    MarketSummary,
    book_of_cursor,
    book_stats,
    cursor_of_book,
    markets,
)
from market.data.tape import (
    TAPE_PAGE_DEFAULT,
    TAPE_PAGE_MAX,
    TapeTrade,
    last_trade,
    latest_trades,
    trades_after,
)

__all__ = [
    "CANDLES_PAGE_DEFAULT",
    "CANDLES_PAGE_MAX",
    "CANDLE_INTERVALS",
    "DAY_MS",
    "DEPTH_LEVELS_DEFAULT",
    "DEPTH_LEVELS_MAX",
    "MARKETS_PAGE_DEFAULT",
    "MARKETS_PAGE_MAX",
    "STREAM_POLL_S",
    "STREAM_QUEUE_MAX",
    "STREAM_REPLAY_TRADES_MAX",
    "STREAM_SUBSCRIBERS_MAX",
    "TAPE_PAGE_DEFAULT",
    "TAPE_PAGE_MAX",
    "BestPrices",
    "BookDepth",
    "BookStats",
    "BookUpdate",
    "Candle",
    "Changes",
    "DepthEvent",
    "MarketSummary",
    "StreamEnd",
    "StreamEvent",
    "StreamHub",
    "Subscription",
    "TapeTrade",
    "TradeEvent",
    "Window",
    "best_prices",
    "book_depth",
    "book_of_cursor",
    "book_snapshot",
    "book_stats",
    "book_updates",
    "candles",
    "changed_books",
    "command_head",
    "cursor_of_book",
    "depth_of",
    "interval_s_of",
    "last_trade",
    "latest_trades",
    "markets",
    "ms_of",
    "require_book",
    "time_of_ms",
    "trades_after",
    "window_24h",
    "window_of",
]
