"""OHLCV candles of a book, and its last 24 hours folded from them.

The engine keeps a candle per book, interval (1m, 5m, 1h, 1d) and bucket in the
transaction that settles the bucket's trades: ``open`` is the first trade's price,
``close`` the last's, ``volume_units`` the units traded, ``notional_minor`` the sum of
price times quantity, ``trades`` their number. A bucket without trades has no candle
(nothing is filled in).

**The 24 hours** are the 1-minute candles whose bucket starts at or after ``now - 24
h``: minute granularity, so a trade up to 59.999 s older than 24 h counts when its
minute starts inside the window, and one in the window's first, partial minute does
not when that minute starts before it. They are read as the minute candles up to the
first whole hour of the window and the hour candles after it (at most 60 + 24 rows a
book, not 1,440): the same figures, as an hour's candle is made of the same trades as
its minutes'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from sqlalchemy import Connection, and_, or_, select

from ledger.core.errors import InvalidInput
from ledger.core.timestamps import ms_of, time_of_ms
from ledger.db.schema import MarketCandle, table
from market.engine import CANDLE_INTERVALS_S, BookKey

__all__ = [
    "CANDLES_PAGE_DEFAULT",
    "CANDLES_PAGE_MAX",
    "CANDLE_INTERVALS",
    "DAY_MS",
    "Candle",
    "Window",
    "candles",
    "interval_s_of",
    "ms_of",
    "time_of_ms",
    "window_24h",
    "window_of",
]

CANDLE_INTERVALS: Final = {"1m": 60, "5m": 300, "1h": 3_600, "1d": 86_400}
"""The candles' intervals by name, in seconds (those the engine keeps)."""
CANDLES_PAGE_MAX: Final = 1_000
CANDLES_PAGE_DEFAULT: Final = 500
DAY_MS: Final = 86_400_000
_MINUTE_S: Final = 60
_HOUR_S: Final = 3_600
_HOUR_MS: Final = _HOUR_S * 1_000

if sorted(CANDLE_INTERVALS.values()) != sorted(CANDLE_INTERVALS_S):  # pragma: no cover
    raise RuntimeError("the candle intervals named here are not those the engine keeps")

_candles = table(MarketCandle)


class Candle(NamedTuple):
    """One bucket of one interval, from ``start_ms``."""

    start_ms: int
    open_minor: int
    high_minor: int
    low_minor: int
    close_minor: int
    volume_units: int
    notional_minor: int
    trades: int


class Window(NamedTuple):
    """Candles folded into one: the prices are None when no trade fell in it."""

    open_minor: int | None
    high_minor: int | None
    low_minor: int | None
    close_minor: int | None
    volume_units: int
    notional_minor: int
    trades: int


EMPTY_WINDOW: Final = Window(None, None, None, None, 0, 0, 0)


def interval_s_of(name: str) -> int:
    """The seconds of an interval named ``1m``, ``5m``, ``1h`` or ``1d``;
    ``InvalidInput`` (``interval_unknown``) for any other name."""
    seconds = CANDLE_INTERVALS.get(name)
    if seconds is None:
        raise InvalidInput(
            "interval_unknown",
            f"interval {name[:16]!r} is not one of {', '.join(CANDLE_INTERVALS)}",
        )
    return seconds


def _candle(row: Any) -> Candle:
    return Candle(
        row.bucket_ms,
        row.open_minor,
        row.high_minor,
        row.low_minor,
        row.close_minor,
        row.volume_units,
        int(row.notional_minor),
        row.trades,
    )


_CANDLE_COLUMNS = (
    _candles.c.bucket_ms,
    _candles.c.open_minor,
    _candles.c.high_minor,
    _candles.c.low_minor,
    _candles.c.close_minor,
    _candles.c.volume_units,
    _candles.c.notional_minor,
    _candles.c.trades,
)


def candles(
    conn: Connection,
    key: BookKey,
    interval_s: int,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    limit: int = CANDLES_PAGE_DEFAULT,
) -> list[Candle]:
    """The book's candles of ``interval_s``, oldest first, starting in ``[from_ms,
    to_ms)``: with ``from_ms`` the first ``limit`` from it (page on from the last one's
    start plus the interval); without, the last ``limit`` before ``to_ms`` (the latest,
    as a chart wants them)."""
    if interval_s not in CANDLE_INTERVALS_S:
        raise InvalidInput("interval_unknown", f"no candles of {interval_s!r} s are kept")
    if type(limit) is not int or not 1 <= limit <= CANDLES_PAGE_MAX:
        raise InvalidInput(
            "limit_out_of_range", f"limit must be 1..{CANDLES_PAGE_MAX}, not {limit!r}"
        )
    c = _candles.c
    query = select(*_CANDLE_COLUMNS).where(
        c.asset_id == key.asset_id, c.currency == key.currency, c.interval_s == interval_s
    )
    if from_ms is not None:
        query = query.where(c.bucket_ms >= from_ms)
    if to_ms is not None:
        query = query.where(c.bucket_ms < to_ms)
    if from_ms is not None:
        return [_candle(r) for r in conn.execute(query.order_by(c.bucket_ms).limit(limit))]
    rows = list(conn.execute(query.order_by(c.bucket_ms.desc()).limit(limit)))
    return [_candle(r) for r in reversed(rows)]


def window_of(found: Iterable[Candle]) -> Window:
    """Candles (oldest first) folded into one."""
    first = last = None
    high = low = None
    volume = notional = trades = 0
    for candle in found:
        if first is None:
            first = candle
        last = candle
        high = candle.high_minor if high is None else max(high, candle.high_minor)
        low = candle.low_minor if low is None else min(low, candle.low_minor)
        volume += candle.volume_units
        notional += candle.notional_minor
        trades += candle.trades
    if first is None or last is None:
        return EMPTY_WINDOW
    return Window(first.open_minor, high, low, last.close_minor, volume, notional, trades)


def window_24h(conn: Connection, keys: Sequence[BookKey], now_ms: int) -> dict[BookKey, Window]:
    """Each book's last 24 hours as of ``now_ms`` (see the module docstring): one
    statement for all of ``keys``."""
    if not keys:
        return {}
    since = max(0, now_ms - DAY_MS)
    edge = -(-since // _HOUR_MS) * _HOUR_MS  # the first whole hour of the window
    c = _candles.c
    # One index range per book and interval, ORed: both databases search each (a row
    # value IN list made SQLite scan the table).
    ranges = []
    for key in keys:
        book = and_(c.asset_id == key.asset_id, c.currency == key.currency)
        minutes = and_(c.interval_s == _MINUTE_S, c.bucket_ms >= since, c.bucket_ms < edge)
        ranges += [and_(book, minutes), and_(book, c.interval_s == _HOUR_S, c.bucket_ms >= edge)]
    rows = conn.execute(
        select(c.asset_id, c.currency, *_CANDLE_COLUMNS)
        .where(or_(*ranges))
        .order_by(c.asset_id, c.currency, c.bucket_ms, c.interval_s)
    )
    grouped: dict[BookKey, list[Candle]] = {BookKey(*k): [] for k in keys}
    for row in rows:
        grouped[BookKey(row.asset_id, row.currency)].append(_candle(row))
    return {k: window_of(found) for k, found in grouped.items()}
