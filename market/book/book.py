"""The matching book: one per (asset, currency); commands in, events out.

Pure and deterministic: standard library only, no I/O, no clock, no randomness. Time is
``now_ms`` on each command. The same commands into a new book give the same events and
the same ``state_hash()``.

Every command first expires the GTD orders due at its ``now_ms`` (``Expired`` events, in
order of expiry then order id), so an expired order never trades. Then it is checked, and
the first failing check is the ``Rejected`` reason: for a place, the checks of
``market.book.admission`` and then, for a limit order, post-only would not cross, FOK
fillable, room in the book (GTC/GTD only); for a cancel or amend, that the order rests,
then for an amend ``admission.amend_rejection`` and post-only would not cross.

``place_limit`` has a fast path for the most common command, a plain GTC order (default
terms, small ints) with nothing due to expire: one chained test stands in for the
admission checks it makes redundant. It matches with ``matching.take_plain``, the
general ``take`` specialised to a plain order's self-trade prevention (a test holds the
two to the same trades, events and state), and rests what is left in place. The checks
that depend on the book (crossing, room) and every event are the same as on the general
path, which handles everything else.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Sequence
from heapq import heapify, heappop, heappush

from market.book.admission import amend_rejection, limit_terms, market_rejection
from market.book.commands import Amend, Cancel, Command, Expire, PlaceLimit, PlaceMarket
from market.book.errors import BookInvariantError, UnknownCommand
from market.book.events import ACCEPTED, Amended, Cancelled, Event, Expired, Rejected
from market.book.level import (
    BUY_GTC,
    COMPACT_DEAD_MIN,
    OWNER,
    QTY,
    RANK,
    SELL_GTC,
    TERMS,
    Level,
    OrderTerms,
)
from market.book.matching import fok_fillable, take, take_plain, take_spend
from market.book.reasons import CancelReason, RejectReason
from market.book.state import EXPIRES_AT, BookState
from market.book.terms import (
    ORDER_ID_MAX,
    PRICE_MAX_MINOR,
    QTY_MAX_UNITS,
    Owner,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

__all__ = ["Book"]

_BUY = Side.BUY
_SELL = Side.SELL
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_FOK = TimeInForce.FOK
_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
_USER = CancelReason.USER
_GTD_SLACK = 1024
"""Stale expiry entries tolerated beyond twice the resting orders before a rebuild."""
_SMALL = 1 << 30
"""Below every limit of ``market.book.terms``; ints under it are one CPython digit and
compare fastest, so the fast path takes only those (larger ones go the general path)."""
if min(ORDER_ID_MAX, PRICE_MAX_MINOR, QTY_MAX_UNITS) < _SMALL:  # pragma: no cover
    raise BookInvariantError("fast_path_bound", "_SMALL must not exceed any limit")
_new = tuple.__new__  # builds a NamedTuple event without its Python-level __new__
_ACCEPTED_ONLY: tuple[Event, ...] = (ACCEPTED,)
"""What placing an order that simply rests returns: shared, immutable, allocation-free."""


class Book(BookState):
    """A price-time priority order book for one (asset, currency) pair.

    ``Book(tick_size_minor=1, lot_size_units=1, orders_max=ORDERS_MAX_DEFAULT)``; the
    reads (best prices, depth, orders, ``state_hash``) come from ``BookState``. Every
    command method returns the sequence of events it caused (see ``market.book.events``);
    none raises for a bad order.
    """

    __slots__ = ()

    def apply(self, command: Command) -> Sequence[Event]:
        """Apply any command (see ``market.book.commands``) and return its events."""
        if type(command) is PlaceLimit:
            limit = command
            return self.place_limit(
                limit.order_id, limit.owner, limit.side, limit.price_minor, limit.qty_units,
                limit.tif, limit.expires_at_ms, limit.post_only, limit.stp, limit.now_ms,
            )  # fmt: skip
        if type(command) is Cancel:
            return self.cancel(command.order_id, command.now_ms)
        if type(command) is PlaceMarket:
            market = command
            return self.place_market(
                market.order_id, market.owner, market.side, market.qty_units,
                market.spend_minor, market.stp, market.now_ms,
            )  # fmt: skip
        if type(command) is Amend:
            amend = command
            return self.amend(amend.order_id, amend.price_minor, amend.qty_units, amend.now_ms)
        if type(command) is Expire:
            return self.expire(command.now_ms)
        raise UnknownCommand("unknown_command", f"not a market command: {command!r}")

    def place_limit(
        self,
        order_id: int,
        owner: Owner,
        side: Side,
        price_minor: int,
        qty_units: int,
        tif: TimeInForce = _GTC,
        expires_at_ms: int | None = None,
        post_only: bool = False,
        stp: SelfTradePrevention = _CANCEL_NEWEST,
        now_ms: int = 0,
    ) -> Sequence[Event]:
        """Place a limit order (fields as ``PlaceLimit``); it trades at resting prices up
        to ``price_minor``, then rests (GTC/GTD) or has its rest cancelled (IOC)."""
        orders = self._orders
        expiries = self._gtd
        if not (
            tif is _GTC
            and expires_at_ms is None
            and stp is _CANCEL_NEWEST
            and not post_only
            and not (expiries and expiries[0][EXPIRES_AT] <= now_ms)
            and int is type(order_id) is type(price_minor) is type(qty_units)
            and 0 < order_id < _SMALL
            and 0 < price_minor < _SMALL
            and 0 < qty_units < _SMALL
            and order_id not in orders
            and not price_minor % self._tick
            and not qty_units % self._lot
        ):
            return self._place_limit_checked(
                order_id, owner, side, price_minor, qty_units, tif, expires_at_ms, post_only,
                stp, now_ms,
            )  # fmt: skip
        if side is _BUY:
            opposite = self._asks
            own = self._bids
            limit_rank = -price_minor
            terms = BUY_GTC
        elif side is _SELL:
            opposite = self._bids
            own = self._asks
            limit_rank = price_minor
            terms = SELL_GTC
        else:  # e.g. the plain string "buy"
            return self._place_limit_checked(
                order_id, owner, side, price_minor, qty_units, tif, expires_at_ms, post_only,
                stp, now_ms,
            )  # fmt: skip
        if len(orders) >= self._orders_max:
            return [Rejected(order_id, RejectReason.BOOK_FULL)]
        events: Sequence[Event] = _ACCEPTED_ONLY
        ranks = opposite.ranks
        if ranks and ranks[-1] >= limit_rank:
            events = [ACCEPTED]
            qty_units = take_plain(
                opposite, orders, order_id, owner, side, limit_rank, qty_units, events
            )
            if not qty_units:
                return events
        # BookSide.add, written out: resting a plain order is the most frequent path of
        # all, and calling it here costs 4 % more instructions per benchmark event, which
        # `dpn bench market`'s ratio to the floor book cannot spare. test_matching holds
        # the two to the same levels and records.
        rank = -limit_rank
        order = [qty_units, order_id, owner, rank, terms]
        own_level = own.levels.get(rank)
        if own_level is None:
            own_level = own.levels[rank] = Level(price_minor)
            insort(own.ranks, rank)
        own_level.append(order)
        own_level.qty_units += qty_units
        orders[order_id] = order
        return events

    def place_market(
        self,
        order_id: int,
        owner: Owner,
        side: Side,
        qty_units: int = 0,
        spend_minor: int = 0,
        stp: SelfTradePrevention = _CANCEL_NEWEST,
        now_ms: int = 0,
    ) -> Sequence[Event]:
        """Place a market order (fields as ``PlaceMarket``): a sell trades up to
        ``qty_units``, a buy up to ``spend_minor`` of value; the rest is cancelled."""
        events: list[Event] = []
        if self._gtd and self._gtd[0][EXPIRES_AT] <= now_ms:
            self._expire_due(now_ms, events)
        checked = market_rejection(
            order_id, side, qty_units, spend_minor, stp, self._orders, self._lot
        )
        if not isinstance(checked, tuple):
            events.append(Rejected(order_id, checked))
            return events
        side_, stp_ = checked
        events.append(ACCEPTED)
        if side_ is _BUY:
            spend_left = take_spend(
                self._asks, self._orders, order_id, owner, spend_minor, self._lot, stp_, events
            )
            if spend_left:
                events.append(Cancelled(order_id, owner, CancelReason.MARKET_REMAINDER, 0, 0))
            return events
        left = take(self._bids, self._orders, order_id, owner, side_, 0, qty_units, stp_, events)
        if left:
            events.append(Cancelled(order_id, owner, CancelReason.MARKET_REMAINDER, left, 0))
        return events

    def cancel(self, order_id: int, now_ms: int = 0) -> Sequence[Event]:
        """Cancel a resting order: one ``Cancelled`` (reason ``user``) or ``unknown_order``."""
        gtd = self._gtd
        if gtd and gtd[0][EXPIRES_AT] <= now_ms:
            expired: list[Event] = []
            self._expire_due(now_ms, expired)
            expired.extend(self.cancel(order_id, now_ms))
            return expired
        order = self._orders.pop(order_id, None)
        if order is None:
            return (Rejected(order_id, RejectReason.UNKNOWN_ORDER),)
        qty = order[QTY]
        rank = order[RANK]
        side = self._bids if rank > 0 else self._asks
        level = side.levels[rank]
        dead = level.dead + 1
        if dead < COMPACT_DEAD_MIN and dead < len(level):
            # The common case of BookSide.remove, inlined: the level stays, uncompacted.
            level.qty_units -= qty
            order[QTY] = 0
            level.dead = dead
        else:
            side.remove(order)
        return (_new(Cancelled, (order_id, order[OWNER], _USER, qty, 0)),)

    def amend(
        self,
        order_id: int,
        price_minor: int | None = None,
        qty_units: int | None = None,
        now_ms: int = 0,
    ) -> Sequence[Event]:
        """Amend a resting order (fields as ``Amend``): ``Amended``, then any trades.

        Only a lower quantity at the same price (or no change) keeps queue priority. A
        new price that crosses trades at once under the order's own STP mode; what is
        left rests at the back of its level.
        """
        events: list[Event] = []
        if self._gtd and self._gtd[0][EXPIRES_AT] <= now_ms:
            self._expire_due(now_ms, events)
        order = self._orders.get(order_id)
        if order is None:
            events.append(Rejected(order_id, RejectReason.UNKNOWN_ORDER))
            return events
        reason = amend_rejection(price_minor, qty_units, self._tick, self._lot)
        if reason is not None:
            events.append(Rejected(order_id, reason))
            return events
        terms: OrderTerms = order[TERMS]
        owner: Owner = order[OWNER]
        old_price: int = abs(order[RANK])
        old_qty: int = order[QTY]
        price = old_price if price_minor is None else price_minor
        qty = old_qty if qty_units is None else qty_units
        own, opposite = (self._bids, self._asks) if terms.side is _BUY else (self._asks, self._bids)
        if price == old_price and qty <= old_qty:
            own.reduce(order, qty)
            events.append(Amended(order_id, owner, price, qty, old_price, old_qty, True))
            return events
        limit_rank = -price if terms.side is _BUY else price
        ranks = opposite.ranks
        crosses = bool(ranks) and ranks[-1] >= limit_rank
        if crosses and terms.post_only:
            events.append(Rejected(order_id, RejectReason.POST_ONLY_WOULD_CROSS))
            return events
        own.remove(order)  # the old record stays in its queue, dead
        del self._orders[order_id]
        events.append(Amended(order_id, owner, price, qty, old_price, old_qty, False))
        left = qty
        if crosses:
            left = take(
                opposite, self._orders, order_id, owner, terms.side, limit_rank, qty,
                terms.stp, events,
            )  # fmt: skip
            if not left:
                return events
        replacement = [left, order_id, owner, -limit_rank, terms]
        own.add(replacement)
        self._orders[order_id] = replacement
        return events

    def expire(self, now_ms: int) -> Sequence[Event]:
        """Expire every GTD order with ``expires_at_ms <= now_ms``: one ``Expired`` each."""
        events: list[Event] = []
        if self._gtd and self._gtd[0][EXPIRES_AT] <= now_ms:
            self._expire_due(now_ms, events)
        return events

    # ----------------------------------------------------------------- internals

    def _place_limit_checked(
        self,
        order_id: int,
        owner: Owner,
        side: Side,
        price_minor: int,
        qty_units: int,
        tif: TimeInForce,
        expires_at_ms: int | None,
        post_only: bool,
        stp: SelfTradePrevention,
        now_ms: int,
    ) -> Sequence[Event]:
        """``place_limit`` for any limit order, every check in the documented order."""
        events: list[Event] = []
        if self._gtd and self._gtd[0][EXPIRES_AT] <= now_ms:
            self._expire_due(now_ms, events)
        orders = self._orders
        terms = limit_terms(
            order_id, side, price_minor, qty_units, tif, expires_at_ms, post_only, stp,
            now_ms, orders, self._tick, self._lot,
        )  # fmt: skip
        if not isinstance(terms, OrderTerms):
            events.append(Rejected(order_id, terms))
            return events
        if terms.side is _BUY:
            opposite, own, limit_rank = self._asks, self._bids, -price_minor
        else:
            opposite, own, limit_rank = self._bids, self._asks, price_minor
        ranks = opposite.ranks
        crosses = bool(ranks) and ranks[-1] >= limit_rank
        tif_ = terms.tif
        rests = tif_ is _GTC or tif_ is _GTD
        if crosses and terms.post_only:
            reason: RejectReason | None = RejectReason.POST_ONLY_WOULD_CROSS
        elif tif_ is _FOK and not (
            crosses and fok_fillable(opposite, owner, limit_rank, qty_units, terms.stp)
        ):
            reason = RejectReason.FOK_UNFILLABLE
        elif rests and len(orders) >= self._orders_max:
            reason = RejectReason.BOOK_FULL
        else:
            reason = None
        if reason is not None:
            events.append(Rejected(order_id, reason))
            return events
        events.append(ACCEPTED)
        left = qty_units
        if crosses:
            left = take(
                opposite, orders, order_id, owner, terms.side, limit_rank, left, terms.stp,
                events,
            )  # fmt: skip
        if not left:
            return events
        if rests:
            order = [left, order_id, owner, -limit_rank, terms]
            own.add(order)
            orders[order_id] = order
            if terms.expires_at_ms is not None:
                self._remember_expiry(terms.expires_at_ms, order_id)
        elif tif_ is _FOK:
            raise BookInvariantError("fok_partial", f"FOK order {order_id} left {left} units")
        else:
            events.append(Cancelled(order_id, owner, CancelReason.IOC_REMAINDER, left, 0))
        return events

    def _expire_due(self, now_ms: int, events: list[Event]) -> None:
        gtd = self._gtd
        orders = self._orders
        while gtd and gtd[0][EXPIRES_AT] <= now_ms:
            expires_at_ms, order_id = heappop(gtd)
            order = orders.get(order_id)
            if order is None or order[TERMS].expires_at_ms != expires_at_ms:
                continue  # stale: the order already left, or the id was reused
            del orders[order_id]
            qty = order[QTY]
            (self._bids if order[RANK] > 0 else self._asks).remove(order)
            events.append(Expired(order_id, order[OWNER], qty))

    def _remember_expiry(self, expires_at_ms: int, order_id: int) -> None:
        gtd = self._gtd
        heappush(gtd, (expires_at_ms, order_id))
        if len(gtd) > 2 * len(self._orders) + _GTD_SLACK:
            # Entries of orders that traded or were cancelled; rebuild from the live ones.
            gtd[:] = [
                (o[TERMS].expires_at_ms, oid)
                for oid, o in self._orders.items()
                if o[TERMS].expires_at_ms is not None
            ]
            heapify(gtd)
