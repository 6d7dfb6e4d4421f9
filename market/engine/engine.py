"""The market engine: orders in, held, matched, settled and stored, one batch at a time.

**One sequence per book, across workers.** Every write to the journal holds the journal
lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), and every command
a book applies is recorded by a journal entry and a row of the order log in the same
transaction. So the engine matches only while it holds that lock: each batch opens a
write transaction, first applies to its in-memory books the commands other workers
stored since its last batch (``catch up``: one indexed read of ``market_commands``),
then runs its own. Whatever worker an order reaches, the books it meets are exactly
the stored history, and no order can fill twice or a unit sell twice: the second
worker's batch waits for the first's commit and then replays it.

The cost: one sequence for all books, the journal's. A batch of any size is one
transaction, and a worker's committer takes every request waiting when it gets the lock
(up to ``BATCH_MAX``), so under load each lock turn carries hundreds of orders; the
catch-up read is one query per batch (empty with one worker). Books spread over several
machines would need the journal split (one journal, one lock and one order log per group
of books, with cash moved between journals by transfer entries); see the README.

Engines taking turns on the lock pay for each turn: the catch-up, and every balance and
hold read again (another engine may have moved them). So ``dpn serve --workers N`` runs
one engine, in a process of its own that the workers hand orders to
(``market.engine.remote``); the lock stays, and keeps any second engine exact.

**Durable and exact.** A request is answered only after its transaction commits. After a
crash, or if a transaction fails, the engine forgets its state and rebuilds it: the order
log replayed into new books (``rebuild``), the open orders read back from
``market_orders``; a book's state hash then equals the one its stored commands give.

**The clock.** GTD orders expire by the engine's own thread at their time, not only when
someone trades: it wakes at the earliest expiry on any book (and every ``POLL_S`` to
catch up on other workers' orders), and expires what is due in a batch of its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from copy import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ledger.core import AccountKey, Entry, EntryKind
from ledger.core.accounts import currency_of, member_holder, units_of
from ledger.core.errors import Conflict, IntegrityFailure, InvalidInput, LedgerError
from ledger.core.timestamps import ms_of
from ledger.db.engine import read_connection
from ledger.journal.entries import load_entries
from ledger.journal.write import Carried, Ledger
from market.book import Book, Event
from market.engine.codec import OpenBook, decode
from market.engine.requests import (
    AmendRequest,
    CancelRequest,
    OrderRequest,
    Request,
    TermsRequest,
    UnitTransferRequest,
)
from market.engine.rows import MarketRows
from market.engine.session import (
    FEE_BPS_MAX,
    Outcome,
    Session,
    TermsSet,
    new_order,
    order_payload,
)
from market.engine.state import BookKey, EngineState

__all__ = [
    "BATCH_MAX",
    "FAILURE_PAUSE_MAX_S",
    "IDLE_S",
    "POLL_S",
    "EngineStatus",
    "MarketEngine",
]

BATCH_MAX = 1024
"""The most requests one transaction carries."""
POLL_S = 1.0
"""How often an idle engine looks for other workers' commands (and due expiries)."""

IDLE_S = 2.0
"""An engine not ``start`` ed ends its thread after this long without a request."""
CARRIED_MAX = 200_000
"""The most accounts and holds a batch hands on to the next; beyond, the next reads them."""
FAILURE_PAUSE_MAX_S = 5.0
"""The longest an engine that cannot read its books waits before trying again."""

log = logging.getLogger("dpn.market.engine")
_DONE = None  # what an expiry-only batch answers
Answer = Outcome | TermsSet | Entry | None
"""What a request's future gives: an order's outcome, an asset's terms, a unit
transfer's entry, or (for a batch that only expires orders) None."""


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """For ``/readyz``: whether the engine runs, its books and orders, its last error."""

    running: bool
    books: int
    open_orders: int
    applied_seq: int
    waiting: int
    last_error: str | None


class MarketEngine:
    """Places, cancels and amends orders; expires them on time (see the module docstring).

    ``fee_bps``: the network's fee on each trade, in basis points of its value, paid by
    the seller. ``now_ms``: the clock (milliseconds since the epoch), the ledger's by
    default.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        fee_bps: int = 0,
        batch_max: int = BATCH_MAX,
        now_ms: Callable[[], int] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        if type(fee_bps) is not int or not 0 <= fee_bps <= FEE_BPS_MAX:
            raise InvalidInput("fee_bps_range", f"the market fee is 0..{FEE_BPS_MAX} basis points")
        self.ledger = ledger
        self.fee_bps = fee_bps
        self._batch_max = batch_max
        self._now_ms = now_ms or (lambda: ms_of(ledger.clock()))
        self._poll_s = poll_s
        self._state: EngineState | None = None
        self._lock = threading.Lock()  # the state, while a batch or a catch-up runs
        self._changed = threading.Condition()
        self._waiting: deque[tuple[Request | None, Future[Answer]]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._kept = False  # started by start(): the thread runs until stop()
        self._last_now_ms = 0
        self._last_error: str | None = None
        self._carried: Carried | None = None  # balances and holds as the last batch left them

    # -- the public face -----------------------------------------------------------------

    def submit(self, request: Request) -> Future[Answer]:
        """Queue ``request`` for the next batch; the future gives its ``Outcome`` once
        stored, or raises its error (a ``LedgerError`` with a stable code)."""
        future: Future[Answer] = Future()
        with self._changed:
            if self._stopping:
                raise RuntimeError("the market engine is stopping")
            self._waiting.append((request, future))
            self._ensure_thread()
            self._changed.notify()
        return future

    async def ask(self, request: Request) -> Answer:
        """What ``submit``'s future gives, awaited on the running event loop (the face
        ``RemoteEngine.ask`` shares)."""
        return await asyncio.wrap_future(self.submit(request))

    def place(self, request: OrderRequest) -> Outcome:
        """Place an order and wait for it to be stored."""
        return _answered(self.submit(request))

    def cancel(self, request: CancelRequest) -> Outcome:
        """Cancel an order and wait for it to be stored."""
        return _answered(self.submit(request))

    def amend(self, request: AmendRequest) -> Outcome:
        """Amend an order and wait for it to be stored."""
        return _answered(self.submit(request))

    def transfer(self, request: UnitTransferRequest) -> Entry:
        """Move units to another member and wait for the entry to be stored."""
        moved = self.submit(request).result()
        if not isinstance(moved, Entry):  # pragma: no cover - a request of another kind
            raise TypeError(f"a unit transfer was answered with {moved!r}")
        return moved

    def set_terms(self, request: TermsRequest) -> TermsSet:
        """Set an asset's tick and lot (``market_busy`` while an order rests on any of its
        books) and wait for it to be stored."""
        terms = self.submit(request).result()
        if not isinstance(terms, TermsSet):  # pragma: no cover - a request of another kind
            raise TypeError(f"a terms request was answered with {terms!r}")
        return terms

    def expire_now(self) -> None:
        """Run one batch that only expires what is due (the clock does this by itself)."""
        future: Future[Answer] = Future()
        with self._changed:
            self._waiting.append((None, future))
            self._ensure_thread()
            self._changed.notify()
        future.result()

    def start(self) -> None:
        """Start the engine's thread now and keep it until ``stop`` (a server does, so
        expiries run on time from the start). Without it, the thread starts with the
        first request and ends after ``IDLE_S`` without any, holding nothing idle."""
        with self._changed:
            self._stopping = False
            self._kept = True
            self._ensure_thread()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batches waiting, then stop the thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def status(self) -> EngineStatus:
        """What ``/readyz`` shows of the engine."""
        state = self._state
        return EngineStatus(
            running=self._thread is not None and self._thread.is_alive(),
            books=0 if state is None else len(state.books),
            open_orders=0 if state is None else len(state.orders),
            applied_seq=0 if state is None else state.applied_seq,
            waiting=len(self._waiting),
            last_error=self._last_error,
        )

    def state_hashes(self) -> dict[BookKey, str]:
        """Each book's state hash, caught up with everything stored."""
        with self._lock:
            with read_connection(self.ledger.engine) as conn:  # see _catch_up_idle
                state = self._current(conn)
            return state.state_hashes()

    def books(self) -> dict[BookKey, Book]:
        """The books as they stand (for reads and tests; do not change them)."""
        with self._lock, read_connection(self.ledger.engine) as conn:  # see _catch_up_idle
            return dict(self._current(conn).books)

    def forget(self) -> None:
        """Drop the in-memory state; the next batch rebuilds it from the database."""
        with self._lock:
            self._state = None

    # -- the thread ----------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="dpn-market-engine", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failures = 0
        try:  # rebuild before the first batch, outside the journal lock
            self._catch_up_idle()
        except Exception as error:  # the first batch tries again
            failures = self._failed(error, failures)
        while True:
            with self._changed:
                if not self._waiting and not self._stopping:
                    wait_s = self._wait_s() if self._kept else min(self._wait_s(), IDLE_S)
                    self._changed.wait(wait_s)
                    if not self._waiting and not self._kept and not self._expiry_due():
                        self._thread = None  # idle, and nobody asked to keep it
                        return
                if self._stopping and not self._waiting:
                    self._thread = None
                    return
                count = min(self._batch_max, len(self._waiting))
                taken = [self._waiting.popleft() for _ in range(count)]
            batch = [(r, f) for r, f in taken if f.set_running_or_notify_cancel()]
            try:
                if batch or self._expiry_due():
                    self._commit(batch)
                else:
                    self._catch_up_idle()
                failures = 0
            except Exception as error:  # the thread must outlive any failure
                failures = self._failed(error, failures)

    def _failed(self, error: Exception, failures: int) -> int:
        """Note a failure outside a batch (a database that is down or not migrated) and
        wait before the next try, doubling up to ``FAILURE_PAUSE_MAX_S``. Logged in one
        line, without a traceback: on Python 3.11 formatting one parses source (for its
        carets), which in a background thread can collide with a parse in the main one;
        ``/readyz`` shows the error."""
        self._last_error = f"{type(error).__name__}: {_one_line(str(error))}"
        log.error("market engine cannot read its books (%d): %s", failures + 1, self._last_error)
        with self._changed:
            if not self._stopping:
                self._changed.wait(min(FAILURE_PAUSE_MAX_S, 0.05 * 2**failures))
        return failures + 1

    def _wait_s(self) -> float:
        state = self._state
        try:
            due = None if state is None else state.next_expiry_ms()
        except Exception:  # never let the wake-up kill the thread: poll instead
            return self._poll_s
        if due is None:
            return self._poll_s
        return max(0.0, min(self._poll_s, (due - self._now_ms()) / 1000))

    def _expiry_due(self) -> bool:
        state = self._state
        due = None if state is None else state.next_expiry_ms()
        return due is not None and due <= self._now_ms()

    def _catch_up_idle(self) -> None:
        # One snapshot: a rebuild or catch-up reads the order log and then the orders'
        # rows, and another worker may commit in between (no journal lock is held here).
        with self._lock, read_connection(self.ledger.engine) as conn:
            self._current(conn)

    # -- a batch -------------------------------------------------------------------------

    def _commit(self, batch: list[tuple[Request | None, Future[Answer]]]) -> None:
        results: list[Answer | LedgerError | int] = []
        try:
            keys = [r.key for r, _ in batch if r is not None]
            with self._lock:
                try:
                    with self.ledger.write(keys) as tx:  # the keys read with the lock
                        tx.resume(self._carried)
                        self._carried = None
                        state = self._current(tx.conn, tx.head_seq)
                        now_ms = max(self._now_ms(), self._last_now_ms)
                        session = Session(state, tx, MarketRows(tx.conn), now_ms, self.fee_bps)
                        tx.preload(_accounts_named(state, batch))
                        session.expire_due()
                        replays = self._replays(tx.conn, tx.stored_requests(keys), batch)
                        seen: dict[str, tuple[Request, int | TermsSet | Entry]] = {}
                        for index, (request, _) in enumerate(batch):
                            results.append(self._one(session, request, replays, seen, index))
                        session.flush()
                        carried = tx.carry_over()
                    state.applied_seq = tx.head_seq
                    if carried.size <= CARRIED_MAX:
                        self._carried = carried
                    self._last_now_ms = now_ms
                    self._last_error = None
                except BaseException:
                    self._state = None  # its books may hold what was rolled back
                    self._carried = None
                    raise
        except BaseException as error:
            for _, future in batch:
                future.set_exception(error)
            if isinstance(error, Exception):
                self._last_error = f"{type(error).__name__}: {error}"
                return
            raise
        for (request, future), result in zip(batch, results, strict=True):
            if isinstance(result, LedgerError):
                future.set_exception(result)
            elif isinstance(result, int):
                try:
                    future.set_result(self._replayed(result, request))
                except LedgerError as error:
                    future.set_exception(error.as_answer())
            else:  # an Outcome (copied by _one), terms set, or None for an expiry batch
                future.set_result(result)

    def _one(
        self,
        session: Session,
        request: Request | None,
        replays: dict[str, int | LedgerError | TermsSet],
        seen: dict[str, tuple[Request, int | TermsSet | Entry]],
        index: int,
    ) -> Answer | LedgerError | int:
        if request is None:
            return _DONE
        replay = replays.get(request.key)
        if replay is not None:
            return replay
        first = seen.get(request.key)
        if first is not None:  # the same key twice in one batch: a replay, or a conflict
            asked, answer = first
            return answer if asked == request else _key_conflict()
        try:
            if isinstance(request, TermsRequest):
                terms: TermsSet = session.set_terms(request)
                seen[request.key] = (request, terms)
                return terms
            if isinstance(request, UnitTransferRequest):
                moved = session.transfer(request)
                seen[request.key] = (request, moved)
                return moved
            if isinstance(request, OrderRequest):
                outcome = session.place(request)
            elif isinstance(request, CancelRequest):
                outcome = session.cancel(request)
            else:
                outcome = session.amend(request)
        except IntegrityFailure:
            raise  # the books and the orders disagree: nothing of the batch may stand
        except LedgerError as error:
            return error.as_answer()
        seen[request.key] = (request, outcome.order.id)
        # A copy, now: later requests of the batch, and later batches, change the order.
        return Outcome(copy(outcome.order), outcome.trades, leases=outcome.leases)

    def _replays(
        self,
        conn: Connection,
        stored: dict[str, int],
        batch: Sequence[tuple[Request | None, Any]],
    ) -> dict[str, int | LedgerError | TermsSet]:
        """For each request whose key is stored: the order it placed or named, or a
        conflict when the key was used for another request."""
        if not stored:
            return {}
        entries = {e.seq: e for e in load_entries(conn, sorted(set(stored.values())))}
        found: dict[str, int | LedgerError | TermsSet] = {}
        for request, _ in batch:
            if request is None or request.key not in stored:
                continue
            if isinstance(request, UnitTransferRequest):
                continue  # the session replays it (WriteTx.replay_of)
            entry = entries[stored[request.key]]
            payload = dict(entry.payload)
            if isinstance(request, TermsRequest):
                if entry.kind != EntryKind.MARKET_TERMS:
                    found[request.key] = _key_conflict()
                    continue
                recorded = (
                    str(payload["asset_id"]),
                    int(str(payload["tick_size_minor"])),
                    int(str(payload["lot_size_units"])),
                    payload.get("lease_period"),
                )
                asked = (
                    request.asset_id, request.tick_size_minor, request.lot_size_units,
                    request.lease_period,
                )  # fmt: skip
                period = MarketRows(conn).terms_of(request.asset_id)[2]
                found[request.key] = (
                    TermsSet(*asked[:3], entry.seq, period)
                    if asked == recorded
                    else _key_conflict()
                )
                continue
            same = False
            order_id = entry.seq
            if isinstance(request, OrderRequest) and entry.kind == EntryKind.ORDER_PLACE:
                same = payload == _order_payload_of(request) and entry.actor == request.actor
            elif isinstance(request, CancelRequest) and entry.kind == EntryKind.ORDER_CANCEL:
                order_id = int(str(payload["order_id"]))
                same = order_id == request.order_id
            elif isinstance(request, AmendRequest) and entry.kind == EntryKind.ORDER_AMEND:
                order_id = int(str(payload["order_id"]))
                same = order_id == request.order_id and all(
                    asked is None or asked == payload[name]
                    for name, asked in (
                        ("price_minor", request.price_minor),
                        ("qty_units", request.qty_units),
                    )
                )
            found[request.key] = order_id if same else _key_conflict()
        return found

    def _replayed(self, order_id: int, request: Request | None) -> Outcome:
        """The order a replayed request placed or named, as it stands, of the kind the
        request names (a cancel or amendment replayed on the other kind's route finds
        ``unknown_order``, as a fresh one would)."""
        from market.engine.reads import order_outcome  # reads import the engine's rows

        kind: bool | None = None  # a lease order (True), a trading order (False), either
        if isinstance(request, OrderRequest):
            kind = bool(request.term)
        elif isinstance(request, CancelRequest | AmendRequest):
            kind = request.lease
        with read_connection(self.ledger.engine, snapshot=False) as conn:
            outcome = order_outcome(conn, order_id, lease=kind)
        outcome.replayed = True
        return outcome

    # -- state: rebuild and catch up -----------------------------------------------------

    def _current(self, conn: Connection, head_seq: int | None = None) -> EngineState:
        """The state, rebuilt if need be, caught up with every stored command. Given the
        journal's ``head_seq`` (read under the journal lock), a state that has applied
        everything up to it is current without a query: nothing was written since."""
        if self._state is None:
            self._state = rebuild(conn, self._now_ms())
        elif head_seq is None or self._state.applied_seq < head_seq:
            catch_up(self._state, conn)
            # Another writer may have set an asset's terms (with no book to log them
            # on) or funded its project: its facts are read again when next named.
            self._state.assets.clear()
        if head_seq is not None:  # every command up to the head is applied now
            self._state.applied_seq = max(self._state.applied_seq, head_seq)
        return self._state


def rebuild(conn: Connection, now_ms: int = 0) -> EngineState:
    """The engine's state from the database: the order log replayed into new books, the
    open orders read back (``IntegrityFailure`` if the two disagree), and the leases
    whose term had not ended by ``now_ms``."""
    state = EngineState()
    rows = MarketRows(conn)
    for seq, key, body in rows.log(0):
        _apply(state, key, body, None)
        state.applied_seq = seq
    for order in rows.open_orders():
        state.add_open(order)
    state.leases_out = rows.leases_out(now_ms)
    resting = {order_id for book in state.books.values() for order_id in book.order_ids()}
    if resting != state.orders.keys():
        raise IntegrityFailure(
            "order_log_mismatch",
            f"{len(resting ^ state.orders.keys())} orders rest on the replayed books"
            " but not in market_orders, or the reverse",
        )
    return state


def catch_up(state: EngineState, conn: Connection) -> int:
    """Apply the commands stored since ``state.applied_seq``; returns how many."""
    rows = MarketRows(conn)
    touched: set[int] = set()
    leased: set[str] = set()  # assets whose lease books moved: their leases are read again
    count = 0
    for seq, key, body in rows.log(state.applied_seq):
        _apply(state, key, body, touched)
        state.applied_seq = seq
        count += 1
        if key.term:
            leased.add(key.asset_id)
    if touched:
        for order_id in touched:
            state.drop(order_id)
        for order in rows.open_orders(touched):
            state.add_open(order)
    if leased:
        for lessor_asset in [k for k in state.leases_out if k[1] in leased]:
            del state.leases_out[lessor_asset]
        state.leases_out.update(rows.leases_out(0, leased))
    return count


def _apply(state: EngineState, key: BookKey, body: str, touched: set[int] | None) -> None:
    for command in decode(body):
        if isinstance(command, OpenBook):
            state.books[key] = Book(command.tick_size_minor, command.lot_size_units)
            state.assets.pop(key.asset_id, None)  # its terms may have changed
            continue
        book = state.books.get(key)
        if book is None:
            raise IntegrityFailure(
                "order_log_unopened", f"a command for {key} before the book opened"
            )
        events = book.apply(command)
        if touched is not None:
            order_id = getattr(command, "order_id", None)
            if order_id is not None:
                touched.add(order_id)
            _touched_by(events, touched)


def _accounts_named(
    state: EngineState, batch: Sequence[tuple[Request | None, Any]]
) -> set[AccountKey]:
    """The accounts a batch's requests will hold on or settle to (their owners' units and
    cash on the books they name), to read in one query."""
    keys: set[AccountKey] = set()
    for request, _ in batch:
        if isinstance(request, UnitTransferRequest):
            try:
                for member in (request.owner, request.recipient):
                    keys.add(AccountKey(member_holder(member), units_of(request.asset_id)))
            except LedgerError:
                pass  # malformed: the request's own checks refuse it
            continue
        if isinstance(request, OrderRequest):
            owner, asset_id, currency = request.owner, request.asset_id, request.currency
        elif isinstance(request, CancelRequest | AmendRequest):
            order = state.orders.get(request.order_id)
            if order is None:
                continue
            owner, asset_id, currency = order.owner, order.asset_id, order.currency
        else:
            continue
        try:
            holder = member_holder(owner)
            keys.add(AccountKey(holder, units_of(asset_id)))
            keys.add(AccountKey(holder, currency_of(currency)))
        except LedgerError:
            continue  # malformed: the request's own checks refuse it
    return keys


def _touched_by(events: Sequence[Event], touched: set[int]) -> None:
    for event in events:
        for name in ("order_id", "maker_id", "taker_id"):
            value = getattr(event, name, None)
            if value is not None:
                touched.add(value)


def _order_payload_of(request: OrderRequest) -> dict[str, Any]:
    """The payload placing ``request`` was recorded with (for replays)."""
    return dict(order_payload(new_order(request, 0, 0)))


def _answered(future: Future[Answer]) -> Outcome:
    outcome = future.result()
    if not isinstance(outcome, Outcome):  # pragma: no cover - a request of another kind
        raise TypeError(f"an order request was answered with {outcome!r}")
    return outcome


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _key_conflict() -> Conflict:
    return Conflict(
        "idempotency_conflict", "this idempotency key was already used for a different request"
    )
