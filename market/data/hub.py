"""Live streams of the books for every subscriber of one worker, fed by one poller.

Orders reach whatever worker a client talks to, and a stream must show them all: so a
stream is fed from the database, never from the engine of its own worker. One hub per
worker (per event loop) runs one poller task while it has subscribers: every
``poll_s`` it reads the order log after the last seq it saw (``feed.changed_books``,
one indexed statement); for each changed book with subscribers it reads the new
trades and the depth in one snapshot (``feed.book_updates``) and hands them to each
subscriber's bounded queue. The first subscriber starts the task; it ends once the
last has left, or when the hub is closed.

**Each subscriber gets every trade after its snapshot, once, in order.** A subscriber
is registered first, then reads its snapshot (depth at journal seq ``H``, and with a
``Last-Event-ID`` the trades since it); every event of seq ``H`` or below is dropped
from its queue. A trade the poller read before the registration was committed before
the snapshot, so its id is at most ``H``; a trade committed after the snapshot is also
after every read of the log so far, so a later round finds its book changed and reads
it, and the queue has it. (A book the hub starts watching has its trades read from the
log's last seq the poller saw: what is older, the snapshot covers.)

**A slow subscriber does not hold anyone up**: its queue holds ``queue_max`` events;
one more ends its subscription (``StreamEnd.OVERFLOW``), and the hub forgets it. The
hub also forgets a subscription no one holds any more (it keeps them in weak sets),
so a response dropped before it ran does not count against ``subscribers_max``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, NamedTuple

from sqlalchemy import Engine

from ledger.core.errors import Unavailable
from ledger.db.engine import read_connection
from market.book import Depth
from market.data.books import DEPTH_LEVELS_DEFAULT
from market.data.feed import (
    COMMANDS_READ_MAX,
    TRADES_READ_MAX,
    BookUpdate,
    Changes,
    book_snapshot,
    book_updates,
    changed_books,
    command_head,
)
from market.data.tape import TapeTrade
from market.engine import BookKey

__all__ = [
    "STREAM_POLL_S",
    "STREAM_QUEUE_MAX",
    "STREAM_REPLAY_TRADES_MAX",
    "STREAM_SUBSCRIBERS_MAX",
    "DepthEvent",
    "StreamEnd",
    "StreamEvent",
    "StreamHub",
    "Subscription",
    "TradeEvent",
]

STREAM_POLL_S: Final = 0.15
"""How often the poller reads the order log while anyone subscribes."""
STREAM_SUBSCRIBERS_MAX: Final = 1_000
"""Subscribers one hub (one worker) serves at once; one more is 503 ``stream_full``."""
STREAM_QUEUE_MAX: Final = 1_000
"""Events a subscriber may leave waiting; one more ends it (overflow)."""
STREAM_REPLAY_TRADES_MAX: Final = TRADES_READ_MAX
"""Trades sent after a ``Last-Event-ID`` on reconnecting: the latest of them."""
STREAM_RETRY_S: Final = 0.5
"""How long the poller waits after a failed round (the database away, say), doubling
with each failure that follows, up to ``STREAM_RETRY_MAX_S``."""
STREAM_RETRY_MAX_S: Final = 5.0

log = logging.getLogger("dpn.market.data")


class TradeEvent(NamedTuple):
    """A trade of the book; its seq is its id."""

    book: BookKey
    trade: TapeTrade

    @property
    def seq(self) -> int:
        """The journal seq of the trade."""
        return self.trade.id


class DepthEvent(NamedTuple):
    """The book's depth as of journal seq ``seq``."""

    book: BookKey
    seq: int
    depth: Depth


StreamEvent = TradeEvent | DepthEvent


class StreamEnd(StrEnum):
    """Why a subscription ended: its queue overflowed, or it (or the hub) was closed."""

    OVERFLOW = "overflow"
    CLOSED = "closed"


class Subscription:
    """One subscriber's stream of a book: ``next`` gives what came, in order."""

    def __init__(self, hub: StreamHub, book: BookKey, queue_max: int) -> None:
        self.book = book
        self.ended: StreamEnd | None = None
        self._hub = hub
        self._queue_max = queue_max
        self._events: deque[StreamEvent] = deque()
        self._ready = asyncio.Event()
        self._floor: int | None = None  # the seq of its snapshot, once it has one

    async def next(self, timeout_s: float) -> list[StreamEvent]:
        """The events waiting, or those that come within ``timeout_s``; none when the
        time passed, or the subscription ended (``ended`` says why)."""
        if not self._events and self.ended is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout_s)
        self._ready.clear()
        events = list(self._events)
        self._events.clear()
        return events

    def close(self) -> None:
        """Leave the hub (the stream's own cleanup)."""
        self._hub._leave(self)
        self._end(StreamEnd.CLOSED)

    def _begin(self, first: Sequence[StreamEvent], floor: int) -> None:
        """Put the snapshot first and drop what it already covers."""
        later = [e for e in self._events if e.seq > floor]
        self._events.clear()
        self._events.extend([*first, *later])
        self._floor = floor
        self._ready.set()

    def _push(self, events: Sequence[StreamEvent]) -> None:
        if self.ended is not None:
            return
        if self._floor is not None:
            events = [e for e in events if e.seq > self._floor]
        if not events:
            return
        if len(self._events) + len(events) > self._queue_max:
            self._hub._leave(self)
            self._events.clear()
            self._end(StreamEnd.OVERFLOW)
            return
        self._events.extend(events)
        self._ready.set()

    def _end(self, why: StreamEnd) -> None:
        if self.ended is None:
            self.ended = why
        self._ready.set()


@dataclass(eq=False)
class _Watch:
    """A book the hub follows: the last trade id sent, and who subscribes."""

    after_trade_id: int
    due: bool = False  # read at the next round, changed or not (trades are waiting)
    subscribers: weakref.WeakSet[Subscription] = field(default_factory=weakref.WeakSet)


class StreamHub:
    """The streams of one worker's subscribers over ``engine`` (see the module
    docstring). Use it from one event loop."""

    def __init__(
        self,
        engine: Engine,
        *,
        poll_s: float = STREAM_POLL_S,
        subscribers_max: int = STREAM_SUBSCRIBERS_MAX,
        queue_max: int = STREAM_QUEUE_MAX,
        levels: int = DEPTH_LEVELS_DEFAULT,
        replay_trades_max: int = STREAM_REPLAY_TRADES_MAX,
        trades_read_max: int = TRADES_READ_MAX,
        commands_read_max: int = COMMANDS_READ_MAX,
    ) -> None:
        self._engine = engine
        self._poll_s = poll_s
        self._subscribers_max = subscribers_max
        self._queue_max = queue_max
        self._levels = levels
        self._replay_trades_max = replay_trades_max
        self._trades_read_max = trades_read_max
        self._commands_read_max = commands_read_max
        self._watches: dict[BookKey, _Watch] = {}
        self._cursor = 0  # the order log's last seq the poller saw
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._polling = asyncio.Lock()
        self._closed = False
        self._exit_asked = False

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return sum(len(w.subscribers) for w in self._watches.values())

    @property
    def running(self) -> bool:
        """Whether the poller task runs."""
        return self._task is not None and not self._task.done()

    async def subscribe(self, book: BookKey, last_event_id: int | None = None) -> Subscription:
        """A subscription to ``book``, its first events ready: the trades after
        ``last_event_id`` (if given; the latest ``replay_trades_max``) and the depth.
        ``Unavailable`` (503) ``stream_full`` beyond ``subscribers_max``, or
        ``stream_closed`` once the hub is closed."""
        self._refuse_if_closed()
        await self._ensure_running()
        self._refuse_if_closed()
        if self.subscribers >= self._subscribers_max:
            raise Unavailable(
                "stream_full",
                f"this worker serves {self._subscribers_max} streams already; try again later",
            )
        subscription = Subscription(self, book, self._queue_max)
        watch = self._watches.get(book)
        if watch is None:
            watch = self._watches[book] = _Watch(self._cursor)
        watch.subscribers.add(subscription)
        try:
            first = await asyncio.to_thread(self._snapshot, book, last_event_id)
        except BaseException:
            subscription.close()
            raise
        if first.depth is None:  # pragma: no cover - a snapshot always reads the depth
            raise RuntimeError("a snapshot without depth")
        events: list[StreamEvent] = [TradeEvent(book, t) for t in first.trades]
        events.append(DepthEvent(book, first.seq, first.depth))
        subscription._begin(events, first.seq)
        return subscription

    def request_close(self) -> None:
        """Ask the hub to close at the poller's next round. Only sets a flag, so a
        signal handler may call it (the server is about to stop: streams must end, or
        the server waits for them)."""
        self._exit_asked = True

    def close(self) -> None:
        """End every subscription (``StreamEnd.CLOSED``) and stop the poller; new
        subscriptions are refused."""
        self._closed = True
        for watch in self._watches.values():
            for subscription in list(watch.subscribers):
                subscription._end(StreamEnd.CLOSED)
        self._watches.clear()

    async def stopped(self) -> None:
        """Wait for the poller task to end."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    # -- the poller ----------------------------------------------------------------------

    def _refuse_if_closed(self) -> None:
        if self._closed or self._exit_asked:
            raise Unavailable("stream_closed", "this worker is stopping: connect again")

    async def _ensure_running(self) -> None:
        if self.running:
            return
        async with self._starting:
            if self.running:
                return
            self._cursor = await asyncio.to_thread(self._command_head)
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="dpn-market-stream"
            )

    async def poll(self) -> bool:
        """Run one round now: read the log, and the books it names that anyone
        subscribes to, and hand out what changed (the poller does so every ``poll_s``;
        rounds never overlap). True if more is waiting."""
        async with self._polling:
            return await self._round()

    async def _run(self) -> None:
        # It sleeps first: the subscriber that started it has its snapshot already,
        # and it is registered before the check below first runs.
        busy = False
        failures = 0
        while True:
            if not busy:
                await asyncio.sleep(self._poll_s)
            if self._exit_asked and not self._closed:
                self.close()
            for book in [k for k, w in self._watches.items() if not w.subscribers]:
                del self._watches[book]
            if self._closed or not self._watches:
                return
            try:
                busy = await self.poll()
                failures = 0
            except Exception as error:  # the streams wait (heartbeats go on) and it retries
                failures += 1
                if failures == 1:
                    log.exception("market stream round failed")
                else:
                    log.warning("market stream rounds still failing (%d): %s", failures, error)
                busy = False
                await asyncio.sleep(min(STREAM_RETRY_MAX_S, STREAM_RETRY_S * 2 ** (failures - 1)))

    async def _round(self) -> bool:
        changes = await asyncio.to_thread(self._changes, self._cursor)
        self._cursor = changes.seq
        due = {
            book: watch
            for book, watch in self._watches.items()
            if watch.subscribers and (watch.due or book in changes.books)
        }
        if not due:
            return changes.more
        after = {book: watch.after_trade_id for book, watch in due.items()}
        updates = await asyncio.to_thread(self._updates, after)
        for update in updates:
            watch = due[update.book]
            if self._watches.get(update.book) is watch:  # not dropped meanwhile
                self._deliver(watch, update)
        return changes.more or any(u.depth is None for u in updates)

    def _deliver(self, watch: _Watch, update: BookUpdate) -> None:
        if update.trades:
            watch.after_trade_id = update.trades[-1].id
        watch.due = update.depth is None  # more trades to read before the depth
        events: list[StreamEvent] = [TradeEvent(update.book, t) for t in update.trades]
        if update.depth is not None:
            events.append(DepthEvent(update.book, update.seq, update.depth))
        for subscription in list(watch.subscribers):
            subscription._push(events)

    def _leave(self, subscription: Subscription) -> None:
        watch = self._watches.get(subscription.book)
        if watch is not None:
            watch.subscribers.discard(subscription)

    # -- reads, in a worker thread -------------------------------------------------------

    def _command_head(self) -> int:
        with read_connection(self._engine, snapshot=False) as conn:
            return command_head(conn)

    def _changes(self, after_seq: int) -> Changes:
        with read_connection(self._engine, snapshot=False) as conn:
            return changed_books(conn, after_seq, self._commands_read_max)

    def _updates(self, after: dict[BookKey, int]) -> list[BookUpdate]:
        with read_connection(self._engine) as conn:
            return book_updates(conn, after, self._levels, self._trades_read_max)

    def _snapshot(self, book: BookKey, last_event_id: int | None) -> BookUpdate:
        with read_connection(self._engine) as conn:
            return book_snapshot(conn, book, last_event_id, self._levels, self._replay_trades_max)
