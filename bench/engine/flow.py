"""The order flow: what the traders ask, and the threads that ask it.

A slot of the flow is an order, or a cancel of one of the asking thread's own resting
orders (an order stands in when it has none). The default mix, seeded: 70 % limit GTC,
10 % limit IOC, 8 % market (half buys spending about 1.2 x the mid's worth, half
sells), 12 % cancels; sides half and half; prices a whole number of ticks from the
book's mid, bids from 40 ticks under it to 8 over it and asks the mirror image, so
a good share cross and trade; 1 to 100 units.

The lease flow (``lease_slots``) is the same mix on lease books (``LeaseMarket``):
each traded book's asset and currency over each of a few terms, a unit's rent for a
term around ``RENT_PER_MILLE`` of its price. A lease offer is a sell and a bid a buy;
each owner is, on each lease book, a lessor or a lessee, never both (its bid would
meet its own offer: ``lease_to_self``), drawn once by seed.

``run_flow`` hands each thread its own owners and slots (built before the clock runs)
and keeps up to ``window`` requests of each waiting on the engine, as many clients
would: whatever waits when the engine takes its next batch goes in it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final

from bench.engine.traders import Market, TradedBook
from ledger.core.errors import LedgerError
from market.book import Side, TimeInForce
from market.engine import CancelRequest, MarketEngine, OrderRequest, OrderType, Outcome

__all__ = [
    "LeaseBook",
    "LeaseMarket",
    "Mix",
    "Slot",
    "Tally",
    "lease_market",
    "lease_slots",
    "resting_slots",
    "run_flow",
    "trading_slots",
]

ACTOR: Final = "bench"
QTY_MAX_UNITS: Final = 100
BID_UNDER_TICKS: Final = 40  # a limit buy is priced mid - 40 .. mid + 8 ticks
BID_OVER_TICKS: Final = 8
MARKET_SPEND_PER_MILLE: Final = 1_200  # a market buy spends up to 1.2 x the mid's worth
REST_LEVELS: Final = 500  # resting orders spread over 500 prices a side
JOIN_TIMEOUT_S: Final = 3_600.0
RENT_PER_MILLE: Final = 50  # a unit's rent for a term: about 5 % of its price


@dataclass(frozen=True, slots=True)
class LeaseBook:
    """One lease book: an asset and currency over a term, and the rent mid (of a unit,
    for the whole term) its orders gather around."""

    asset_id: str
    currency: str
    term: str
    mid_minor: int


@dataclass(frozen=True, slots=True)
class LeaseMarket:
    """The lease books, and who offers on which: (owner, index of the book) pairs; the
    other owners bid there."""

    books: tuple[LeaseBook, ...]
    lessors: frozenset[tuple[str, int]]


def lease_market(market: Market, terms: Sequence[str], seed: int) -> LeaseMarket:
    """A lease book for each of ``market``'s books over each of ``terms``, and each
    owner a lessor on about half of them, drawn by ``seed``."""
    books = tuple(
        LeaseBook(b.asset_id, b.currency, term, max(b.mid_minor * RENT_PER_MILLE // 1000, 1))
        for term in terms
        for b in market.books
    )
    rng = random.Random(seed)
    lessors = frozenset(
        (owner, n) for owner in market.owners for n in range(len(books)) if rng.random() < 0.5
    )
    return LeaseMarket(books, lessors)


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares, in per mille, of the slots that are IOC limits, market orders and
    cancels; the rest are GTC limits."""

    ioc: int = 100
    market: int = 80
    cancel: int = 120


@dataclass(frozen=True, slots=True)
class Slot:
    """One request of a thread: ``order``, or with ``cancel`` a cancel of one of the
    thread's resting orders (``order`` if it has none)."""

    order: OrderRequest
    cancel: bool = False


@dataclass
class Tally:
    """What the threads counted from the answers."""

    placed: int = 0
    cancels: int = 0
    cancels_instead_placed: int = 0
    trades: int = 0
    leases: int = 0
    resting: int = 0  # orders still open when answered
    refused: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, other: Tally) -> None:
        with self.lock:
            self.placed += other.placed
            self.cancels += other.cancels
            self.cancels_instead_placed += other.cancels_instead_placed
            self.trades += other.trades
            self.leases += other.leases
            self.resting += other.resting
            self.refused.update(other.refused)
            self.unexpected += other.unexpected


def _side(rng: random.Random) -> Side:
    return Side.BUY if rng.random() < 0.5 else Side.SELL


def _limit(
    rng: random.Random,
    owner: str,
    book: TradedBook | LeaseBook,
    key: str,
    tif: TimeInForce,
    side: Side,
) -> OrderRequest:
    offset = rng.randint(-BID_UNDER_TICKS, BID_OVER_TICKS)
    price = max(book.mid_minor + (offset if side is Side.BUY else -offset), 1)
    term = book.term if isinstance(book, LeaseBook) else ""
    return OrderRequest(
        owner, book.asset_id, book.currency, side, OrderType.LIMIT, key, ACTOR,
        price_minor=price, qty_units=rng.randint(1, QTY_MAX_UNITS), time_in_force=tif,
        term=term,
    )  # fmt: skip


def _market(
    rng: random.Random, owner: str, book: TradedBook | LeaseBook, key: str, side: Side | None
) -> OrderRequest:
    qty = rng.randint(1, QTY_MAX_UNITS)
    side = side or _side(rng)  # drawn after the quantity, as the trading flow always has
    term = book.term if isinstance(book, LeaseBook) else ""
    if side is Side.BUY:
        spend = book.mid_minor * qty * MARKET_SPEND_PER_MILLE // 1000
        return OrderRequest(
            owner, book.asset_id, book.currency, Side.BUY, OrderType.MARKET, key, ACTOR,
            spend_minor=spend, time_in_force=TimeInForce.IOC, term=term,
        )  # fmt: skip
    return OrderRequest(
        owner, book.asset_id, book.currency, Side.SELL, OrderType.MARKET, key, ACTOR,
        qty_units=qty, time_in_force=TimeInForce.IOC, term=term,
    )  # fmt: skip


def _slot(
    rng: random.Random,
    mix: Mix,
    owner: str,
    book: TradedBook | LeaseBook,
    key: str,
    side: Side | None,
) -> Slot:
    """One slot of ``mix``: on ``side`` when given (a lease book's), else either."""
    roll = rng.randrange(1000)
    if roll < mix.cancel:
        order = _limit(rng, owner, book, key, TimeInForce.GTC, side or _side(rng))
        return Slot(order, cancel=True)
    if roll < mix.cancel + mix.market:
        return Slot(_market(rng, owner, book, key, side))
    tif = TimeInForce.IOC if roll < mix.cancel + mix.market + mix.ioc else TimeInForce.GTC
    return Slot(_limit(rng, owner, book, key, tif, side or _side(rng)))


def trading_slots(
    market: Market, threads: int, n: int, mix: Mix, seed: int, tag: str
) -> list[list[Slot]]:
    """``n`` slots of the mix shared among ``threads`` threads; thread ``t`` trades as
    the owners ``t``, ``t + threads``, ... and its keys start with ``tag``."""
    out: list[list[Slot]] = []
    for t in range(threads):
        rng = random.Random(seed * 1_000 + t)
        owners = market.owners[t::threads]
        slots = []
        for i in range(n // threads + (t < n % threads)):
            owner, book = rng.choice(owners), rng.choice(market.books)
            slots.append(_slot(rng, mix, owner, book, f"{tag}{t}-{i}", None))
        out.append(slots)
    return out


def lease_slots(
    market: Market, leases: LeaseMarket, threads: int, n: int, mix: Mix, seed: int, tag: str
) -> list[list[Slot]]:
    """``n`` slots of the mix on ``leases``' books, shared among ``threads`` threads as
    ``trading_slots`` shares them; an owner offers on the books it is a lessor on and
    bids on the others."""
    out: list[list[Slot]] = []
    for t in range(threads):
        rng = random.Random(seed * 1_000 + 500 + t)
        owners = market.owners[t::threads]
        slots = []
        for i in range(n // threads + (t < n % threads)):
            owner, at = rng.choice(owners), rng.randrange(len(leases.books))
            side = Side.SELL if (owner, at) in leases.lessors else Side.BUY
            slots.append(_slot(rng, mix, owner, leases.books[at], f"{tag}{t}-{i}", side))
        out.append(slots)
    return out


def resting_slots(market: Market, threads: int, n: int, seed: int, tag: str) -> list[list[Slot]]:
    """``n`` GTC limits that never cross: bids 1..``REST_LEVELS`` ticks under each
    book's mid, asks as far over it; owners in turn, so each holds ``n / owners``."""
    out: list[list[Slot]] = [[] for _ in range(threads)]
    rng = random.Random(seed)
    for i in range(n):
        owner = market.owners[i % len(market.owners)]
        book = market.books[(i // len(market.owners)) % len(market.books)]
        side = Side.BUY if i % 2 else Side.SELL
        away = rng.randint(1, REST_LEVELS)
        price = book.mid_minor - away if side is Side.BUY else book.mid_minor + away
        order = OrderRequest(
            owner, book.asset_id, book.currency, side, OrderType.LIMIT, f"{tag}{i}", ACTOR,
            price_minor=price, qty_units=rng.randint(1, QTY_MAX_UNITS),
        )  # fmt: skip
        out[i % threads].append(Slot(order))
    return out


def _asker(
    engine: MarketEngine,
    slots: Sequence[Slot],
    window: int,
    seed: int,
    start: threading.Event,
    total: Tally,
) -> None:
    """One thread: submit its slots, keeping ``window`` waiting; count the answers."""
    rng = random.Random(seed)
    tally = Tally()
    resting: list[tuple[int, str]] = []  # (id, owner) of its orders last seen open
    waiting: deque[tuple[bool, Future[Any]]] = deque()

    def settle() -> None:
        is_cancel, future = waiting.popleft()
        # exception() rather than raising from result(): a raise would add this frame,
        # which holds the future, to the error's traceback, and make a reference cycle
        error = future.exception()
        if isinstance(error, LedgerError):
            tally.refused[error.code] += 1
            return
        if error is not None:  # a broken batch: the figures would be wrong
            tally.unexpected.append(f"{type(error).__name__}: {error}")
            return
        outcome = future.result()
        if not isinstance(outcome, Outcome):
            tally.unexpected.append(f"a request was answered with {outcome!r}")
            return
        tally.trades += len(outcome.trades)
        tally.leases += len(outcome.leases)
        if not is_cancel and outcome.order.status == "open":
            tally.resting += 1
            resting.append((outcome.order.id, outcome.order.owner))

    start.wait()
    for slot in slots:
        if len(waiting) >= window:
            settle()
        request: OrderRequest | CancelRequest = slot.order
        is_cancel = False
        if slot.cancel and resting:
            victim, owner = resting.pop(rng.randrange(len(resting)))
            request = CancelRequest(owner, victim, slot.order.key, ACTOR)
            is_cancel = True
        tally.cancels += is_cancel
        tally.cancels_instead_placed += slot.cancel and not is_cancel
        tally.placed += not is_cancel
        waiting.append((is_cancel, engine.submit(request)))
    while waiting:
        settle()
    total.add(tally)


def run_flow(engine: MarketEngine, per_thread: Sequence[Sequence[Slot]], window: int) -> Tally:
    """Submit every thread's slots from a thread each, all starting together; return
    once every request is answered. The caller times it."""
    total = Tally()
    start = threading.Event()
    threads = [
        threading.Thread(
            target=_asker,
            args=(engine, slots, window, 7_000 + t, start, total),
            name=f"bench-asker-{t}",
        )
        for t, slots in enumerate(per_thread)
    ]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"{thread.name} still waits on the engine")
    return total
