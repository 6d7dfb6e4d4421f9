"""Public market data: the books, their depth, trade tape, candles, statistics, stream.

No sign-in: everything here is public. Every read comes from the database
(``market.data``), never from this worker's engine, so any worker answers the same.
A book is named by its asset and currency: a malformed asset id or currency is 422
(``asset_id_*``, ``currency_malformed``), one that does not exist 404
(``unknown_asset``, ``unknown_currency``); a book no order has opened yet reads empty.

The stream (``GET .../stream``, Server-Sent Events) sends the book's ``depth`` at once,
then each ``trade`` and each new ``depth`` as any worker stores them; every event's
``id`` is a journal seq, so a client that reconnects with ``Last-Event-ID`` gets the
trades since and a fresh depth. One poller per worker feeds every stream
(``market.data.hub``); it starts with the first subscriber and stops after the last.
A worker that is told to stop (SIGTERM, SIGINT) ends its streams, so that the server
does not wait on them; the client reconnects, to another worker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import weakref
from collections.abc import AsyncIterator
from types import FrameType
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event

from api.deps import LedgerDep
from api.problems import PROBLEM_RESPONSES, ApiProblem
from api.schemas.common import Time
from api.schemas.markets import (
    BookOut,
    CandleOut,
    CandlesOut,
    MarketOut,
    MarketsOut,
    StatsOut,
    TapeOut,
    depth_event_out,
    tape_trade_out,
)
from ledger.core import EntryKind
from ledger.db.engine import read_connection
from ledger.journal.write import Ledger
from market.data import (
    CANDLES_PAGE_DEFAULT,
    CANDLES_PAGE_MAX,
    DEPTH_LEVELS_DEFAULT,
    DEPTH_LEVELS_MAX,
    MARKETS_PAGE_DEFAULT,
    MARKETS_PAGE_MAX,
    TAPE_PAGE_DEFAULT,
    TAPE_PAGE_MAX,
    StreamEnd,
    StreamEvent,
    StreamHub,
    Subscription,
    TradeEvent,
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
from market.engine import BookKey

router = APIRouter(prefix="/v1", tags=["market"], responses=PROBLEM_RESPONSES)

HEARTBEAT_S: Final = 15.0
"""A stream with nothing to say sends a comment this often (proxies drop idle ones)."""
STREAM_LIFETIME_S: Final = 3_600.0
"""A stream ends after this long (the client reconnects with ``Last-Event-ID``): it
bounds what a worker that cannot hear a stop signal waits for, and spreads long-lived
streams over the workers."""
RETRY_MS: Final = 2_000
"""How long an ``EventSource`` waits before reconnecting (sent first on each stream)."""
EVENT_STREAM: Final = "text/event-stream"
_DEPTH_EVENT = "depth"
_TRADE_EVENT = EntryKind.TRADE.value  # a trade is named as its journal entry's kind
_OVERFLOW_EVENT = StreamEnd.OVERFLOW.value
_STREAMS = "market_streams"  # the app's hubs, one per event loop (app.state)


class EventStreamResponse(StreamingResponse):
    """Server-Sent Events (FastAPI's own ``EventSourceResponse`` would have the route be
    a generator, which can then no longer answer a problem before the stream starts)."""

    media_type = EVENT_STREAM


AssetPath = Annotated[str, Path(min_length=1, max_length=32, description="the asset's id")]
CurrencyPath = Annotated[str, Path(min_length=1, max_length=16, description="e.g. USD")]
TimeQuery = Annotated[Time | None, Query(description="RFC 3339, with a zone")]


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


@router.get(
    "/markets/{asset_id}/{currency}/stream",
    response_class=EventStreamResponse,
    responses={
        200: {"description": "Server-Sent Events: `depth` and `trade`, each with its seq."},
        406: {**PROBLEM_RESPONSES[404], "description": "the client does not accept SSE"},
    },
)
async def market_stream(
    request: Request,
    asset_id: AssetPath,
    currency: CurrencyPath,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, le=2**63 - 1, description="the last id seen"),
    ] = None,
) -> EventStreamResponse:
    """A live stream of the book (``Accept: text/event-stream``, as ``EventSource``
    sends; else 406 ``stream_not_accepted``). First a ``depth`` event (``{seq, bids,
    asks}``), after the trades since ``Last-Event-ID`` if the client sends one (the
    latest 500 at most; the tape has them all); then every ``trade`` (as on the tape)
    and ``depth`` of the book, with ``id:`` the journal seq. A comment comes every 15 s
    when nothing else does. A client that does not keep up is sent ``overflow`` and
    disconnected; a worker serves 1,000 streams at most (503 ``stream_full``)."""
    if EVENT_STREAM not in request.headers.get("accept", ""):
        raise ApiProblem(406, "stream_not_accepted", f"send Accept: {EVENT_STREAM}")
    ledger: Ledger = request.app.state.ledger
    book = await asyncio.to_thread(_book, ledger, asset_id, currency)
    subscription = await _hub(request.app, ledger).subscribe(book, last_event_id)
    return EventStreamResponse(
        _frames(subscription), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def _book(ledger: Ledger, asset_id: str, currency: str) -> BookKey:
    with read_connection(ledger.engine, snapshot=False) as conn:
        return require_book(conn, asset_id, currency)


async def _frames(subscription: Subscription) -> AsyncIterator[bytes]:
    """The stream's bytes; the subscription is closed however the stream ends."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + STREAM_LIFETIME_S
    try:
        yield format_sse_event(retry=RETRY_MS)
        while (left := ends_at - loop.time()) > 0:
            events = await subscription.next(min(HEARTBEAT_S, left))
            if events:
                yield b"".join(_frame(e) for e in events)
            elif subscription.ended is StreamEnd.OVERFLOW:
                detail = json.dumps({"detail": "the client did not keep up: reconnect"})
                yield format_sse_event(event=_OVERFLOW_EVENT, data_str=detail)
                return
            elif subscription.ended is not None:
                return
            else:
                yield format_sse_event(comment="heartbeat")
    finally:
        subscription.close()


def _frame(event: StreamEvent) -> bytes:
    if isinstance(event, TradeEvent):
        data = tape_trade_out(event.trade).model_dump_json()
        return format_sse_event(event=_TRADE_EVENT, id=str(event.seq), data_str=data)
    data = depth_event_out(event.seq, event.depth).model_dump_json()
    return format_sse_event(event=_DEPTH_EVENT, id=str(event.seq), data_str=data)


def _hub(app: FastAPI, ledger: Ledger) -> StreamHub:
    """The app's hub on the running event loop, made by the first stream (the app's
    lifespan is not this module's). Kept by loop in a weak mapping: a loop that ends
    takes its hub along."""
    hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamHub] | None = getattr(
        app.state, _STREAMS, None
    )
    if hubs is None:
        hubs = weakref.WeakKeyDictionary()
        setattr(app.state, _STREAMS, hubs)
    loop = asyncio.get_running_loop()
    hub = hubs.get(loop)
    if hub is None:
        hub = hubs[loop] = StreamHub(ledger.engine)
        _close_on_exit_signals(hub)
    return hub


def _close_on_exit_signals(hub: StreamHub) -> None:
    """Have SIGTERM and SIGINT close the hub's streams, then reach the handler that was
    there (uvicorn's): it waits for every open response before it stops, and a stream
    never ends by itself. Only where a Python handler is set, from the main thread (a
    server in a thread of its own, as in tests, installs none)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue  # the default action, or ignored: nothing to chain to

        def on_exit(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
            hub.request_close()  # only sets a flag: safe in a signal handler
            previous(sig, frame)

        signal.signal(signum, on_exit)
