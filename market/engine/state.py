"""What the engine keeps in memory: its books, and the orders resting on them.

``EngineState`` is rebuilt from the database (the order log replayed into new books,
the open orders' rows read back) and kept in step with it: by the engine's own
transactions, and by catching up on the commands other workers stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ledger.core import AccountKey, HoldChange, HoldOp
from ledger.core.accounts import currency_of, member_holder, units_of
from market.book import Book, SelfTradePrevention, Side, TimeInForce
from market.engine.lease_terms import Span, term_span
from market.engine.requests import OrderType

__all__ = [
    "FINISHED_KEPT_MAX",
    "AssetFacts",
    "BookKey",
    "EngineState",
    "OrderState",
    "OrderStatus",
]


class BookKey(NamedTuple):
    """A book: one per (asset, currency) to trade, and one per (asset, currency, term)
    to lease, ``term`` being the lease term's key (``YYYY-MM-DD/YYYY-MM-DD``; see
    ``market.engine.lease_terms``). The trading book's term is empty."""

    asset_id: str
    currency: str
    term: str = ""


class OrderStatus:
    """Where an order stands. ``open``: it rests; the others are final."""

    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What the engine needs to know of an asset before an order touches its book."""

    tick_size_minor: int
    lot_size_units: int
    operator: str | None
    retained_min_units: int
    lease_period: str = "quarter"


@dataclass(slots=True)
class OrderState:
    """An order as the engine sees it: a ``market_orders`` row, kept while it rests.

    ``hold_left`` is what remains of its hold: for a resting sell its remaining units,
    for a resting limit buy its price times its remaining units (price improvement is
    given back as it trades), for a market buy what is left of its budget.
    """

    id: int
    asset_id: str
    currency: str
    owner: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price_minor: int | None
    qty_units: int
    spend_minor: int | None
    remaining_units: int
    filled_units: int
    filled_minor: int
    status: str
    reason: str | None
    post_only: bool
    self_trade: SelfTradePrevention
    expires_at_ms: int | None
    hold_id: str
    hold_left: int
    placed_ms: int
    updated_seq: int

    @property
    def book(self) -> BookKey:
        """The book it belongs to."""
        return BookKey(self.asset_id, self.currency, self.term)

    held_on: AccountKey | None = None
    term: str = ""  # a lease order's term key; empty for a trading order

    @property
    def hold_account(self) -> AccountKey:
        """The account its hold reserves on: units for a sell, cash for a buy."""
        key = self.held_on
        if key is None:
            instrument = (
                units_of(self.asset_id) if self.side is Side.SELL else currency_of(self.currency)
            )
            key = self.held_on = AccountKey(member_holder(self.owner), instrument)
        return key

    def __copy__(self) -> OrderState:
        """A shallow copy (``copy.copy``), field by field: the generic copy of a slotted
        dataclass costs several times more, and the engine copies every order it
        answers. (The tests hold it to copy every field.)"""
        return OrderState(
            self.id, self.asset_id, self.currency, self.owner, self.side, self.type,
            self.time_in_force, self.price_minor, self.qty_units, self.spend_minor,
            self.remaining_units, self.filled_units, self.filled_minor, self.status,
            self.reason, self.post_only, self.self_trade, self.expires_at_ms, self.hold_id,
            self.hold_left, self.placed_ms, self.updated_seq, self.held_on, self.term,
        )  # fmt: skip

    def release(self, amount: int | None = None) -> list[HoldChange]:
        """Give back ``amount`` of its hold (all that is left if None): the hold change to
        write, none for nothing."""
        amount = self.hold_left if amount is None else amount
        self.hold_left -= amount
        return (
            [HoldChange(self.hold_id, self.hold_account, HoldOp.RELEASE, amount)] if amount else []
        )

    def need(self) -> int:
        """What its hold must still cover for what rests (zero once it is done)."""
        if self.status != OrderStatus.OPEN:
            return 0
        if self.side is Side.SELL:
            return self.remaining_units
        if self.price_minor is None:
            return self.hold_left  # a market buy never rests; it needs its whole budget
        return self.price_minor * self.remaining_units


FINISHED_KEPT_MAX = 65_536
"""How many finished orders the engine remembers (owner and final status), newest kept:
a cancel of one answers without a read."""


class EngineState:
    """The books, the open orders and the member ids the engine has met."""

    def __init__(self) -> None:
        self.books: dict[BookKey, Book] = {}
        self.orders: dict[int, OrderState] = {}
        self.open_by_owner: dict[str, int] = {}
        self.applied_seq = 0
        self.member_ids: dict[str, int] = {}  # a member's id is its owner key on every book
        self.assets: dict[str, AssetFacts] = {}
        self.currencies: set[str] = set()  # currencies known to exist (never removed)
        # (owner, status, term) of orders this engine finished lately: none changes again.
        self.finished: dict[int, tuple[str, str, str]] = {}
        # Leasing: the resting lease orders of each (owner, asset), and the leases out of
        # each (lessor, asset) whose term had not ended when they were read or made.
        self.lease_orders: dict[tuple[str, str], set[int]] = {}
        self.leases_out: dict[tuple[str, str], list[Span]] = {}

    def add_open(self, order: OrderState) -> None:
        """Keep ``order`` as resting."""
        self.orders[order.id] = order
        self.open_by_owner[order.owner] = self.open_by_owner.get(order.owner, 0) + 1
        if order.term:
            self.lease_orders.setdefault((order.owner, order.asset_id), set()).add(order.id)

    def drop(self, order_id: int) -> None:
        """Forget an order that no longer rests."""
        order = self.orders.pop(order_id, None)
        if order is not None:
            left = self.open_by_owner[order.owner] - 1
            if left:
                self.open_by_owner[order.owner] = left
            else:
                del self.open_by_owner[order.owner]
            if order.term:
                mine = self.lease_orders[order.owner, order.asset_id]
                mine.discard(order.id)
                if not mine:
                    del self.lease_orders[order.owner, order.asset_id]

    def lease_spans(self, owner: str, asset_id: str, now_ms: int) -> list[Span]:
        """What ``owner`` has promised of its units of ``asset_id`` over time, from now
        on: its leases out whose term has not ended, and the units its resting lease
        offers still offer, over their terms."""
        leases = self.leases_out.get((owner, asset_id), [])
        spans = [s for s in leases if s.ends_ms > now_ms]
        if len(spans) < len(leases):  # ended: forget them
            if spans:
                self.leases_out[owner, asset_id] = spans[:]
            else:
                del self.leases_out[owner, asset_id]
        for order_id in self.lease_orders.get((owner, asset_id), ()):
            order = self.orders[order_id]
            if order.side is Side.SELL and order.remaining_units:
                starts_ms, ends_ms = term_span(order.term)
                spans.append(Span(starts_ms, ends_ms, order.remaining_units))
        return spans

    def offered_units(self, owner: str, asset_id: str) -> int:
        """The units ``owner``'s resting lease offers on ``asset_id`` hold."""
        return sum(
            self.orders[i].hold_left
            for i in self.lease_orders.get((owner, asset_id), ())
            if self.orders[i].side is Side.SELL
        )

    def finish(self, order: OrderState) -> None:
        """Forget ``order``, which no longer rests, and remember its owner, (final)
        status and term; the oldest such memory goes beyond ``FINISHED_KEPT_MAX``."""
        self.drop(order.id)
        finished = self.finished
        finished[order.id] = (order.owner, order.status, order.term)
        if len(finished) > FINISHED_KEPT_MAX:
            del finished[next(iter(finished))]

    def next_expiry_ms(self) -> int | None:
        """The earliest time any GTD order on any book falls due, if one may."""
        books = tuple(self.books.values())  # a reader's catch-up may add a book meanwhile
        due = [t for t in (b.next_expiry_ms() for b in books) if t is not None]
        return min(due) if due else None

    def state_hashes(self) -> dict[BookKey, str]:
        """Each book's state hash."""
        return {key: book.state_hash() for key, book in sorted(self.books.items())}
