"""Market data read from the database (``market.data``) against what the engine holds
and what it traded, on SQLite and PostgreSQL.

Depth and best prices equal the engine's own book after every step of a random
sequence of orders, cancels and amendments; the tape pages oldest first without a gap
or a repeat; every interval's candles are the exact fold of the trades in their bucket;
the 24 hours are the 1-minute candles since a day before. The live stream's hub
(``market.data.hub``) hands every subscriber the depth, then each trade once, in order,
whatever engine stored it; a subscriber that does not keep up is cut off; the poller
stops after the last subscriber.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection

from ledger.core.asset_id import with_check_character
from ledger.core.errors import InvalidInput, LedgerError, NotFound, Unavailable
from ledger.db.engine import read_connection
from ledger.journal.reads import digest
from ledger.journal.write import Ledger
from ledger.money import deposit
from market.book import Side
from market.data import (
    CANDLE_INTERVALS,
    DAY_MS,
    Candle,
    DepthEvent,
    StreamEnd,
    StreamEvent,
    StreamHub,
    Subscription,
    TapeTrade,
    TradeEvent,
    Window,
    book_depth,
    book_of_cursor,
    book_snapshot,
    book_stats,
    book_updates,
    candles,
    changed_books,
    cursor_of_book,
    depth_of,
    last_trade,
    latest_trades,
    markets,
    require_book,
    trades_after,
    window_24h,
    window_of,
)
from market.data.books import best_prices
from market.engine import (
    AmendRequest,
    BookKey,
    CancelRequest,
    MarketEngine,
    OrderRequest,
    OrderType,
    Outcome,
    TradeRow,
)
from market.engine.reads import order_outcome
from tests.integration.network import ANN, ASSET, BOB, CAT, DAN, build_network

USD = BookKey(ASSET, "USD")
EUR = BookKey(ASSET, "EUR")
START_MS = 1_798_761_600_000  # 2027-01-01T00:00:00Z
MINUTE_MS = 60_000
T = TypeVar("T")


class Market:
    """A network, an engine on a clock the test moves, and ways to trade on it."""

    def __init__(self, ledger: Ledger) -> None:
        build_network(ledger, cash_minor=10**9)
        self.ledger = ledger
        self.now_ms = START_MS
        self.engine = MarketEngine(ledger, now_ms=lambda: self.now_ms)
        self._keys = itertools.count()

    def place(
        self,
        owner: str,
        side: Side,
        price: int | None,
        qty: int | None,
        *,
        book: BookKey = USD,
        engine: MarketEngine | None = None,
        **more: Any,
    ) -> Outcome:
        order_type = OrderType.LIMIT if price is not None else OrderType.MARKET
        request = OrderRequest(
            owner, book.asset_id, book.currency, side, order_type, key=f"o{next(self._keys)}",
            actor="test", price_minor=price, qty_units=qty, **more,
        )  # fmt: skip
        return (engine or self.engine).place(request)

    def trade(
        self, at_ms: int, price: int, qty: int, *, engine: MarketEngine | None = None
    ) -> TradeRow:
        """One trade at ``at_ms``: ANN rests a sell, DAN buys it."""
        self.now_ms = at_ms
        self.place(ANN, Side.SELL, price, qty, engine=engine)
        (trade,) = self.place(DAN, Side.BUY, price, qty, engine=engine).trades
        return trade

    def read(self, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with read_connection(self.ledger.engine) as conn:
            return read(conn, *args, **kwargs)


@pytest.fixture
def market(ledger: Ledger) -> Iterator[Market]:
    m = Market(ledger)
    yield m
    m.engine.stop()


def head_seq(conn: Connection) -> int:
    """The journal's head seq."""
    return digest(conn).seq


def _tape(t: TradeRow) -> TapeTrade:
    return TapeTrade(
        t.id, t.price_minor, t.qty_units, t.maker_order_id, t.taker_order_id,
        Side(t.taker_side), t.executed_ms,
    )  # fmt: skip


# -- depth ---------------------------------------------------------------------------------


def test_depth_and_best_prices_are_the_engines_book(market: Market) -> None:
    rng = random.Random(7)
    sellers, buyers = (ANN, BOB), (CAT, DAN)
    for step in range(60):
        market.now_ms += 1_000
        book = market.engine.books().get(USD)
        resting = [] if book is None else book.resting()
        roll = rng.random()
        if resting and roll < 0.2:
            order = rng.choice(resting)
            owner = market.read(order_outcome, order.order_id).order.owner
            market.engine.cancel(CancelRequest(owner, order.order_id, f"c{step}", "t"))
        elif resting and roll < 0.35:
            order = rng.choice(resting)
            owner = market.read(order_outcome, order.order_id).order.owner
            change: dict[str, int] = (
                {"qty_units": max(1, order.qty_units // 2)}
                if rng.random() < 0.5
                else {"price_minor": rng.randint(95, 110)}
            )
            amend = AmendRequest(
                owner,
                order.order_id,
                f"a{step}",
                "t",
                price_minor=change.get("price_minor"),
                qty_units=change.get("qty_units"),
            )
            market.engine.amend(amend)
        elif roll < 0.42:
            market.place(BOB, Side.SELL, None, rng.randint(1, 15))
        else:
            side = Side.SELL if rng.random() < 0.5 else Side.BUY
            owner = rng.choice(sellers if side is Side.SELL else buyers)
            market.place(owner, side, rng.randint(95, 110), rng.randint(1, 30))
        book = market.engine.books()[USD]
        for levels in (1, 2, 5, 20, 1_000):
            assert market.read(depth_of, USD, levels) == book.depth(levels), (step, levels)
        assert tuple(market.read(best_prices, USD)) == (book.best_bid(), book.best_ask())
    depth = market.engine.books()[USD].depth(1_000)
    assert depth.bids and depth.asks  # both sides were exercised


def test_depth_names_the_seq_it_reflects(market: Market) -> None:
    market.place(ANN, Side.SELL, 105, 10)
    before = market.read(book_depth, USD)
    outcome = market.place(DAN, Side.BUY, 106, 4)
    after = market.read(book_depth, USD)
    assert before.seq < outcome.trades[0].id <= after.seq == market.read(head_seq)
    assert after.depth.asks[0].qty_units == 6 and not after.depth.bids
    with pytest.raises(InvalidInput) as refused:
        market.read(depth_of, USD, 1_001)
    assert refused.value.code == "levels_out_of_range"


# -- the books -----------------------------------------------------------------------------


def test_a_book_is_named_by_an_asset_and_a_currency_that_exist(market: Market) -> None:
    def code(asset_id: str, currency: str) -> str:
        with pytest.raises(LedgerError) as refused:
            market.read(require_book, asset_id, currency)
        return refused.value.code

    assert code(ASSET[:-1] + "Z", "USD").startswith("asset_id_")
    assert code(ASSET, "usd") == "currency_malformed"
    assert code(with_check_character("22222222222222222"), "USD") == "unknown_asset"
    assert code(ASSET, "XYZ") == "unknown_currency"
    with pytest.raises(NotFound):
        market.read(require_book, ASSET, "XYZ")
    # A book no order has opened reads empty.
    assert market.read(require_book, ASSET, "EUR") == EUR
    assert market.read(depth_of, EUR).bids == () and market.read(trades_after, EUR, None) == []
    stats = market.read(book_stats, EUR, market.now_ms)
    assert stats.last_price_minor is None and stats.day == Window(None, None, None, None, 0, 0, 0)
    assert stats.change_minor is None and stats.change_bps is None


def test_the_list_of_books_pages_through_every_book(market: Market) -> None:
    deposit(
        market.ledger, member=CAT, currency="EUR", amount=10**6, reference="w", key="e", actor="t"
    )
    market.trade(START_MS + 5_000, 100, 3)
    market.place(ANN, Side.SELL, 120, 2, book=EUR)
    market.place(CAT, Side.BUY, 90, 2, book=EUR)
    now = START_MS + 60_000
    first = market.read(markets, now, limit=1)
    assert [s.book for s in first] == [EUR]  # "EUR" < "USD"
    assert first[0].last_price_minor is None and first[0].volume_24h_units == 0
    assert tuple(first[0].best) == (90, 120)
    after = book_of_cursor(cursor_of_book(first[0].book))
    second = market.read(markets, now, after=after, limit=1)
    assert [(s.book, s.last_price_minor, s.volume_24h_units, s.trades_24h) for s in second] == [
        (USD, 100, 3, 1)
    ]
    assert market.read(markets, now, after=USD, limit=5) == []
    assert market.read(markets, now, limit=5) == [*first, *second]
    for cursor in ("", "USD", "a/b/c", "x y/USD", "é/USD"):
        with pytest.raises(InvalidInput) as refused:
            book_of_cursor(cursor)
        assert refused.value.code == "cursor_malformed", cursor


# -- the tape ------------------------------------------------------------------------------


def test_the_tape_pages_oldest_first_without_gaps_or_repeats(market: Market) -> None:
    made: list[TradeRow] = []
    for n in range(8):
        market.now_ms += 1_000
        for price in (100 + n, 101 + n, 102 + n):
            market.place(ANN, Side.SELL, price, 2)
        made += market.place(DAN, Side.BUY, 102 + n, 6).trades  # three trades a sweep
    assert len(made) == 24
    paged: list[TapeTrade] = []
    cursor = None
    while page := market.read(trades_after, USD, cursor, 5):
        paged += page
        cursor = page[-1].id
    assert paged == [_tape(t) for t in sorted(made, key=lambda t: t.id)]
    assert market.read(latest_trades, USD, made[3].id, 4) == paged[-4:]
    assert market.read(latest_trades, USD, paged[-3].id, 10) == paged[-2:]
    assert market.read(last_trade, USD) == paged[-1]
    with pytest.raises(InvalidInput):
        market.read(trades_after, USD, None, 1_001)


# -- candles and the 24 hours --------------------------------------------------------------


def _expected(trades: Sequence[TradeRow], interval_s: int) -> list[Candle]:
    """The candles of ``trades`` by hand."""
    span = interval_s * 1_000
    buckets: dict[int, list[TradeRow]] = {}
    for t in sorted(trades, key=lambda t: t.id):
        buckets.setdefault(t.executed_ms // span * span, []).append(t)
    return [
        Candle(
            start, ts[0].price_minor, max(t.price_minor for t in ts),
            min(t.price_minor for t in ts), ts[-1].price_minor, sum(t.qty_units for t in ts),
            sum(t.price_minor * t.qty_units for t in ts), len(ts),
        )
        for start, ts in sorted(buckets.items())
    ]  # fmt: skip


def _trade_through_days(market: Market, count: int) -> list[TradeRow]:
    """``count`` trades some 43 minutes apart (plus a few seconds), prices wandering."""
    rng = random.Random(3)
    made, at, price = [], START_MS, 1_000
    for _ in range(count):
        at += 43 * MINUTE_MS + rng.randint(0, 59_999)
        price = max(1, price + rng.randint(-30, 30))
        made.append(market.trade(at, price, rng.randint(1, 40)))
    return made


def test_every_intervals_candles_fold_its_trades_exactly(market: Market) -> None:
    made = _trade_through_days(market, 45)  # about 32 hours: two days, hours, minutes
    market.now_ms += 2_000  # and a sweep: three trades in one bucket, one price each
    for price in (2_000, 2_001, 2_002):
        market.place(ANN, Side.SELL, price, 5)
    made += market.place(DAN, Side.BUY, 2_002, 15).trades
    for name, interval_s in CANDLE_INTERVALS.items():
        expected = _expected(made, interval_s)
        assert market.read(candles, USD, interval_s, from_ms=0, limit=1_000) == expected, name
        assert market.read(candles, USD, interval_s, limit=2) == expected[-2:], name
        middle = expected[len(expected) // 2].start_ms
        assert market.read(candles, USD, interval_s, from_ms=middle, limit=1) == [
            expected[len(expected) // 2]
        ]
        assert market.read(candles, USD, interval_s, to_ms=middle) == [
            c for c in expected if c.start_ms < middle
        ]
    assert len(_expected(made, 86_400)) == 2


def test_the_24_hours_are_the_minute_candles_since_a_day_before(market: Market) -> None:
    made = _trade_through_days(market, 45)
    minutes = market.read(candles, USD, 60, from_ms=0, limit=1_000)
    last = made[-1]
    for now in (
        last.executed_ms,
        last.executed_ms + 1,
        START_MS + 26 * 3_600_000,  # on the hour: no minute candles before the hour
        START_MS + 26 * 3_600_000 + 17 * MINUTE_MS + 1_234,
        START_MS + 12 * 3_600_000,  # less than a day of trades yet
        START_MS + 60 * 3_600_000,  # long after the last trade
    ):
        since = now - DAY_MS
        expected = window_of(c for c in minutes if c.start_ms >= since)
        by_hand = window_of(
            _expected([t for t in made if t.executed_ms // 60_000 * 60_000 >= since], 60)
        )
        assert market.read(window_24h, [USD], now) == {USD: expected} and expected == by_hand, now
        stats = market.read(book_stats, USD, now)
        assert stats.day == expected and stats.last_price_minor == last.price_minor
        if expected.open_minor is not None:
            change = last.price_minor - expected.open_minor
            bps = abs(change) * 10_000 // expected.open_minor
            assert (stats.change_minor, stats.change_bps) == (change, bps if change >= 0 else -bps)
        (summary,) = market.read(markets, now, limit=10)
        assert (summary.volume_24h_units, summary.trades_24h) == (
            expected.volume_units,
            expected.trades,
        )
    assert market.read(window_24h, [], last.executed_ms) == {}


# -- what a stream reads -------------------------------------------------------------------


def test_changed_books_come_in_seq_order_however_the_read_is_cut(market: Market) -> None:
    start = market.read(head_seq)
    market.trade(START_MS + 1_000, 100, 2)
    market.place(ANN, Side.SELL, 130, 1)
    whole = market.read(changed_books, start)
    assert whole.books == {USD} and not whole.more and whole.seq > start
    for limit in (1, 2):
        seq, more = start, True
        books: set[BookKey] = set()
        while more:
            changes = market.read(changed_books, seq, limit)
            seq, more = changes.seq, changes.more
            books |= changes.books
        assert (seq, books) == (whole.seq, {USD})
    assert market.read(changed_books, whole.seq) == (whole.seq, frozenset(), False)


def test_an_update_holds_the_depth_back_until_its_trades_are_read(market: Market) -> None:
    start = market.read(head_seq)
    for price in range(100, 105):
        market.place(ANN, Side.SELL, price, 1)
    made = market.place(DAN, Side.BUY, 110, 7).trades
    got: list[TapeTrade] = []
    after = start
    while True:
        (update,) = market.read(book_updates, {USD: after}, 20, 2)
        got += update.trades
        if update.depth is not None:
            break
        after = update.trades[-1].id
    assert got == [_tape(t) for t in made]
    assert update.depth == market.engine.books()[USD].depth(20)
    snapshot = market.read(book_snapshot, USD, made[1].id, 20, 2)
    assert snapshot.trades == got[-2:] and snapshot.depth == update.depth
    assert market.read(book_snapshot, USD, None).trades == []


# -- the hub -------------------------------------------------------------------------------

WAIT_S = 30.0  # a bound, not a measure: a stream that never delivers fails, not hangs


async def _until(
    subscription: Subscription, done: Callable[[list[StreamEvent]], bool]
) -> list[StreamEvent]:
    got: list[StreamEvent] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not done(got):
        if loop.time() > deadline or subscription.ended is not None:
            raise AssertionError(f"the stream stopped short ({subscription.ended}): {got}")
        got += await subscription.next(0.2)
    return got


def _trades_of(events: Sequence[StreamEvent]) -> list[TapeTrade]:
    return [e.trade for e in events if isinstance(e, TradeEvent)]


def _depth_after(trade_id: int) -> Callable[[list[StreamEvent]], bool]:
    return lambda got: any(isinstance(e, DepthEvent) and e.seq >= trade_id for e in got)


def _hub(market: Market, **options: Any) -> StreamHub:
    options.setdefault("poll_s", 0.02)
    return StreamHub(market.ledger.engine, **options)


def test_a_subscriber_gets_the_depth_then_each_trade_once_from_any_engine(
    market: Market,
) -> None:
    other = MarketEngine(market.ledger, now_ms=lambda: market.now_ms)  # another worker's

    async def scenario() -> None:
        market.place(ANN, Side.SELL, 105, 10)
        hub = _hub(market)
        subscription = await hub.subscribe(USD)
        (first,) = await subscription.next(WAIT_S)
        assert isinstance(first, DepthEvent) and first.depth == market.read(depth_of, USD)
        made = (await asyncio.to_thread(market.place, DAN, Side.BUY, 105, 4)).trades
        made += (await asyncio.to_thread(market.place, CAT, Side.BUY, 105, 3, engine=other)).trades
        got = await _until(subscription, _depth_after(made[-1].id))
        assert _trades_of(got) == [_tape(t) for t in made]
        assert [e.seq for e in got] == sorted(e.seq for e in got)
        assert got[-1] == DepthEvent(USD, got[-1].seq, market.read(depth_of, USD))
        assert hub.subscribers == 1 and hub.running
        subscription.close()
        await hub.stopped()
        assert not hub.running and hub.subscribers == 0

    try:
        asyncio.run(scenario())
    finally:
        other.stop()


def test_a_late_subscriber_gets_what_followed_its_last_event_and_no_more(market: Market) -> None:
    async def scenario() -> None:
        hub = _hub(market)
        early = await hub.subscribe(USD)
        first = [
            await asyncio.to_thread(market.trade, START_MS + n * 1_000, 100 + n, 1)
            for n in range(3)
        ]
        await _until(early, _depth_after(first[-1].id))
        late = await hub.subscribe(USD, last_event_id=first[0].id)
        opening = await _until(late, lambda got: any(isinstance(e, DepthEvent) for e in got))
        assert _trades_of(opening) == [_tape(t) for t in first[1:]]
        assert isinstance(opening[-1], DepthEvent) and opening[-1].seq >= first[-1].id
        then = [await asyncio.to_thread(market.trade, START_MS + 9_000, 120, 2)]
        for subscription in (early, late):
            got = await _until(subscription, _depth_after(then[-1].id))
            assert _trades_of(got) == [_tape(t) for t in then]
        fresh = await hub.subscribe(USD)  # no Last-Event-ID: no trades, the depth now
        assert [type(e) for e in await fresh.next(WAIT_S)] == [DepthEvent]
        hub.close()

    asyncio.run(scenario())


def test_what_a_subscribers_snapshot_shows_is_not_sent_to_it_again(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No round but those the test runs: each order of events is made to happen.
    async def scenario() -> None:
        hub = _hub(market, poll_s=3_600)
        early = await hub.subscribe(USD)
        await early.next(WAIT_S)
        # The trade is stored, then a subscriber's snapshot shows it, then a round
        # reads it: the round's events reach the subscriber after its snapshot.
        made = await asyncio.to_thread(market.trade, START_MS + 1_000, 100, 1)
        late = await hub.subscribe(USD)
        (snapshot,) = await late.next(WAIT_S)
        assert isinstance(snapshot, DepthEvent) and snapshot.seq >= made.id
        await hub.poll()
        assert _trades_of(await early.next(WAIT_S)) == [_tape(made)]
        assert await late.next(0) == []
        # The trade is stored, a round reads it and hands it to a subscriber still
        # reading its snapshot, which shows the trade: the queue gives way to it.
        made = await asyncio.to_thread(market.trade, START_MS + 2_000, 101, 1)
        gate = threading.Event()
        read_snapshot = hub._snapshot

        def snapshot_after_the_round(book: BookKey, last_event_id: int | None) -> Any:
            gate.wait(WAIT_S)
            return read_snapshot(book, last_event_id)

        monkeypatch.setattr(hub, "_snapshot", snapshot_after_the_round)
        joining = asyncio.create_task(hub.subscribe(USD))
        await asyncio.sleep(0)  # registered, reading its snapshot
        await hub.poll()
        gate.set()
        last = await joining
        assert [type(e) for e in await last.next(0)] == [DepthEvent]
        assert _trades_of(await early.next(WAIT_S)) == [_tape(made)]
        hub.close()

    asyncio.run(scenario())


def test_many_trades_come_in_order_and_the_depth_after_them(market: Market) -> None:
    async def scenario() -> None:
        hub = _hub(market, trades_read_max=2)
        subscription = await hub.subscribe(USD)
        await subscription.next(WAIT_S)
        for price in range(100, 107):
            await asyncio.to_thread(market.place, ANN, Side.SELL, price, 1)
        await _until(subscription, _depth_after(market.read(head_seq)))
        made = (await asyncio.to_thread(market.place, DAN, Side.BUY, 110, 7)).trades
        got = await _until(subscription, _depth_after(made[-1].id))
        after_trades = got[next(i for i, e in enumerate(got) if isinstance(e, TradeEvent)) :]
        assert _trades_of(after_trades) == [_tape(t) for t in made]
        kinds = [type(e) for e in after_trades]
        assert kinds == [TradeEvent] * 7 + [DepthEvent]  # never a depth between them
        hub.close()

    asyncio.run(scenario())


def test_a_subscriber_that_does_not_keep_up_is_cut_off(market: Market) -> None:
    async def scenario() -> None:
        hub = _hub(market, queue_max=3)
        slow = await hub.subscribe(USD)  # its depth waits, unread
        for price in (100, 101, 102):
            await asyncio.to_thread(market.place, ANN, Side.SELL, price, 1)
        await asyncio.to_thread(market.place, DAN, Side.BUY, 102, 3)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while slow.ended is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert slow.ended is StreamEnd.OVERFLOW
        assert await slow.next(0.01) == [] and hub.subscribers == 0
        await hub.stopped()

    asyncio.run(scenario())


def test_a_hub_serves_its_maximum_and_stops_after_the_last(market: Market) -> None:
    async def scenario() -> None:
        hub = _hub(market, subscribers_max=1)
        one = await hub.subscribe(USD)
        with pytest.raises(Unavailable) as refused:
            await hub.subscribe(EUR)
        assert refused.value.code == "stream_full"
        one.close()
        await hub.stopped()
        assert not hub.running
        again = await hub.subscribe(USD)  # the poller starts again, from the log's end
        assert hub.running
        await again.next(WAIT_S)
        made = await asyncio.to_thread(market.trade, START_MS + 1_000, 100, 1)
        assert _trades_of(await _until(again, _depth_after(made.id))) == [_tape(made)]
        del again  # dropped, never closed: the hub forgets it
        gc.collect()
        assert hub.subscribers == 0
        await hub.stopped()

    asyncio.run(scenario())


def test_a_stream_outlives_rounds_that_fail(
    market: Market, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        hub = _hub(market)
        subscription = await hub.subscribe(USD)
        await subscription.next(WAIT_S)
        read_changes = hub._changes
        failed: list[int] = []

        def unavailable_twice(after_seq: int) -> Any:
            if len(failed) < 2:
                failed.append(after_seq)
                raise Unavailable("database_unavailable", "the database is not available")
            return read_changes(after_seq)

        monkeypatch.setattr(hub, "_changes", unavailable_twice)
        made = await asyncio.to_thread(market.trade, START_MS + 1_000, 100, 1)
        got = await _until(subscription, _depth_after(made.id))
        assert _trades_of(got) == [_tape(made)] and len(failed) == 2
        hub.close()

    with caplog.at_level("WARNING", logger="dpn.market.data"):
        asyncio.run(scenario())
    # The first failure with its traceback, the next in one line.
    assert [r.exc_info is not None for r in caplog.records] == [True, False]


def test_closing_the_hub_ends_every_stream(market: Market) -> None:
    async def scenario() -> None:
        hub = _hub(market)
        streams = [await hub.subscribe(USD), await hub.subscribe(EUR)]
        hub.request_close()  # as a signal handler would: the next round closes
        await hub.stopped()
        for subscription in streams:
            assert len(await subscription.next(WAIT_S)) == 1  # its depth, still delivered
            assert subscription.ended is StreamEnd.CLOSED
        with pytest.raises(Unavailable) as refused:
            await hub.subscribe(USD)
        assert refused.value.code == "stream_closed"

    asyncio.run(scenario())
