"""Public market data on the wire: books, depth, the tape, candles, statistics and the
stream's events. Every price, quantity and sum is a string of digits (a change may
carry a minus sign); times are RFC 3339 in UTC (the engine keeps milliseconds)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from market.book import Depth, LevelView, Side
from market.data import BookStats, Candle, MarketSummary, TapeTrade, time_of_ms
from market.engine import BookKey

__all__ = [
    "BookOut",
    "CandleOut",
    "CandlesOut",
    "DepthEventOut",
    "LevelOut",
    "MarketOut",
    "MarketsOut",
    "StatsOut",
    "TapeOut",
    "TapeTradeOut",
    "depth_event_out",
    "tape_trade_out",
]


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


class LevelOut(BaseModel):
    """One price level: the remaining quantity of its open orders, and how many."""

    price_minor: str
    qty_units: str
    orders: int

    @classmethod
    def of(cls, level: LevelView) -> LevelOut:
        """A level on the wire."""
        return cls(
            price_minor=str(level.price_minor), qty_units=str(level.qty_units), orders=level.orders
        )


def _levels(levels: tuple[LevelView, ...]) -> list[LevelOut]:
    return [LevelOut.of(level) for level in levels]


class BookOut(BaseModel):
    """L2 depth: bids highest first, asks lowest first, as of journal seq ``seq``."""

    asset_id: str
    currency: str
    seq: int
    bids: list[LevelOut]
    asks: list[LevelOut]

    @classmethod
    def of(cls, book: BookKey, seq: int, depth: Depth) -> BookOut:
        """A book's depth on the wire."""
        return cls(
            asset_id=book.asset_id,
            currency=book.currency,
            seq=seq,
            bids=_levels(depth.bids),
            asks=_levels(depth.asks),
        )


class DepthEventOut(BaseModel):
    """The data of a ``depth`` event of the stream."""

    seq: int
    bids: list[LevelOut]
    asks: list[LevelOut]


def depth_event_out(seq: int, depth: Depth) -> DepthEventOut:
    """A ``depth`` event's data."""
    return DepthEventOut(seq=seq, bids=_levels(depth.bids), asks=_levels(depth.asks))


class TapeTradeOut(BaseModel):
    """A trade on the tape: ``id`` is the seq of the journal entry that settled it; the
    price is the resting (maker) order's."""

    id: int
    price_minor: str
    qty_units: str
    maker_order_id: int
    taker_order_id: int
    taker_side: Side
    executed_at: datetime


def tape_trade_out(trade: TapeTrade) -> TapeTradeOut:
    """A trade on the wire (also the data of a ``trade`` event of the stream)."""
    return TapeTradeOut(
        id=trade.id,
        price_minor=str(trade.price_minor),
        qty_units=str(trade.qty_units),
        maker_order_id=trade.maker_order_id,
        taker_order_id=trade.taker_order_id,
        taker_side=trade.taker_side,
        executed_at=time_of_ms(trade.executed_ms),
    )


class TapeOut(BaseModel):
    """A page of the tape, oldest first. ``next_cursor`` is the last trade's id (or the
    cursor given, when none came): pass it back for the trades after; a page shorter
    than the limit has reached the newest trade."""

    items: list[TapeTradeOut]
    next_cursor: str | None = Field(default=None, max_length=32)


class MarketOut(BaseModel):
    """A book in the list of books; 24 h figures from the 1-minute candles."""

    asset_id: str
    currency: str
    last_price_minor: str | None
    volume_24h_units: str
    trades_24h: int
    best_bid_minor: str | None
    best_ask_minor: str | None

    @classmethod
    def of(cls, summary: MarketSummary) -> MarketOut:
        """A summary on the wire."""
        return cls(
            asset_id=summary.book.asset_id,
            currency=summary.book.currency,
            last_price_minor=_text(summary.last_price_minor),
            volume_24h_units=str(summary.volume_24h_units),
            trades_24h=summary.trades_24h,
            best_bid_minor=_text(summary.best.bid_minor),
            best_ask_minor=_text(summary.best.ask_minor),
        )


class MarketsOut(BaseModel):
    """A page of books in (asset, currency) order; pass ``next_cursor`` back for more."""

    items: list[MarketOut]
    next_cursor: str | None = Field(default=None, max_length=64)


class CandleOut(BaseModel):
    """OHLCV of one interval from ``start``: the first, highest, lowest and last trade
    prices, the units traded, the sum of price times units, the number of trades."""

    start: datetime
    open_minor: str
    high_minor: str
    low_minor: str
    close_minor: str
    volume_units: str
    notional_minor: str
    trades: int

    @classmethod
    def of(cls, candle: Candle) -> CandleOut:
        """A candle on the wire."""
        return cls(
            start=time_of_ms(candle.start_ms),
            open_minor=str(candle.open_minor),
            high_minor=str(candle.high_minor),
            low_minor=str(candle.low_minor),
            close_minor=str(candle.close_minor),
            volume_units=str(candle.volume_units),
            notional_minor=str(candle.notional_minor),
            trades=candle.trades,
        )


class CandlesOut(BaseModel):
    """Candles of one interval, oldest first; an interval without trades has none."""

    asset_id: str
    currency: str
    interval: str
    items: list[CandleOut]


class StatsOut(BaseModel):
    """A book's figures ``as_of`` a moment. The 24 h ones fold the 1-minute candles that
    start at or after 24 h before it (minute granularity); the prices of the 24 h are
    null without a trade in them. ``change_24h_minor`` is the last price less the 24 h
    open, ``change_24h_bps`` the same in basis points of the open (toward zero)."""

    asset_id: str
    currency: str
    as_of: datetime
    last_price_minor: str | None
    last_trade_at: datetime | None
    open_24h_minor: str | None
    high_24h_minor: str | None
    low_24h_minor: str | None
    volume_24h_units: str
    notional_24h_minor: str
    trades_24h: int
    change_24h_minor: str | None
    change_24h_bps: int | None
    best_bid_minor: str | None
    best_ask_minor: str | None

    @classmethod
    def of(cls, stats: BookStats) -> StatsOut:
        """Statistics on the wire."""
        day = stats.day
        return cls(
            asset_id=stats.book.asset_id,
            currency=stats.book.currency,
            as_of=time_of_ms(stats.now_ms),
            last_price_minor=_text(stats.last_price_minor),
            last_trade_at=None if stats.last_trade_ms is None else time_of_ms(stats.last_trade_ms),
            open_24h_minor=_text(day.open_minor),
            high_24h_minor=_text(day.high_minor),
            low_24h_minor=_text(day.low_minor),
            volume_24h_units=str(day.volume_units),
            notional_24h_minor=str(day.notional_minor),
            trades_24h=day.trades,
            change_24h_minor=_text(stats.change_minor),
            change_24h_bps=stats.change_bps,
            best_bid_minor=_text(stats.best.bid_minor),
            best_ask_minor=_text(stats.best.ask_minor),
        )
