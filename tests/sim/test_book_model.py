"""The matching book against a plain reference model, step by step (Hypothesis stateful).

The model keeps resting orders in one list and sorts it whenever it needs priority
order; it is written for clarity, not speed, and shares no code with ``market`` besides
the event, reason and term types. Every step checks that book and model emit identical
events and hold identical state (depth, resting orders, state hash); that the book is
never crossed and is internally consistent; and that quantity is conserved. Each run
ends by replaying its commands into a new book, which must give the same events and the
same state hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from market import (
    ACCEPTED,
    ORDER_ID_MAX,
    PRICE_MAX_MINOR,
    QTY_MAX_UNITS,
    SPEND_MAX_MINOR,
    Amend,
    Amended,
    Book,
    Cancel,
    Cancelled,
    CancelReason,
    Command,
    Event,
    Expire,
    Expired,
    PlaceLimit,
    PlaceMarket,
    Rejected,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    Trade,
)

TICK = 2
LOT = 5
ORDERS_MAX = 12
BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
CN = SelfTradePrevention.CANCEL_NEWEST
CO = SelfTradePrevention.CANCEL_OLDEST
CB = SelfTradePrevention.CANCEL_BOTH
DC = SelfTradePrevention.DECREMENT
R = RejectReason
C = CancelReason
E = TypeVar("E", bound=Enum)


@dataclass
class ModelOrder:
    order_id: int
    owner: int
    side: Side
    price: int
    qty: int
    tif: TimeInForce
    expires_at_ms: int | None
    stp: SelfTradePrevention
    post_only: bool
    seq: int  # arrival in its queue: lower goes first at the same price


@dataclass
class Model:
    """The book's rules, spelled out one by one over a plain list of resting orders."""

    resting: list[ModelOrder] = field(default_factory=list)
    next_seq: int = 0

    # ------------------------------------------------------------------- reading
    def side(self, side: Side) -> list[ModelOrder]:
        """Resting orders of a side, best first (price, then arrival)."""
        mine = [o for o in self.resting if o.side is side]
        if side is BUY:
            return sorted(mine, key=lambda o: (-o.price, o.seq))
        return sorted(mine, key=lambda o: (o.price, o.seq))

    def find(self, order_id: int) -> ModelOrder | None:
        return next((o for o in self.resting if o.order_id == order_id), None)

    def depth(self, levels: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        def one(side: Side) -> list[tuple[int, int, int]]:
            out: list[tuple[int, int, int]] = []
            for o in self.side(side):
                if out and out[-1][0] == o.price:
                    price, qty, count = out[-1]
                    out[-1] = (price, qty + o.qty, count + 1)
                else:
                    out.append((o.price, o.qty, 1))
            return out[:levels]

        return one(BUY), one(SELL)

    def state_hash(self) -> str:
        digest = hashlib.sha256()
        for o in self.side(BUY) + self.side(SELL):
            digest.update(
                f"{o.side.value}|{o.price}|{o.order_id}|{o.owner}|{o.qty}|{o.tif.value}|"
                f"{o.expires_at_ms}|{int(o.post_only)}|{o.stp.value}\n".encode()
            )
        return digest.hexdigest()

    # ----------------------------------------------------------------- commands
    def expire_due(self, now: int, out: list[Event]) -> None:
        due = [o for o in self.resting if o.expires_at_ms is not None and o.expires_at_ms <= now]
        for o in sorted(due, key=lambda o: (o.expires_at_ms, o.order_id)):
            self.resting.remove(o)
            out.append(Expired(o.order_id, o.owner, o.qty))

    def crosses(self, side: Side, price: int) -> bool:
        other = self.side(SELL if side is BUY else BUY)
        if not other:
            return False
        return other[0].price <= price if side is BUY else other[0].price >= price

    def rest(self, o: ModelOrder) -> None:
        o.seq = self.next_seq
        self.next_seq += 1
        self.resting.append(o)

    def match(
        self, order_id: int, owner: int, side: Side, limit: int | None, qty: int,
        stp: SelfTradePrevention, out: list[Event],
    ) -> int:  # fmt: skip
        """Trade up to qty; return what is left (0 once self-trade prevention stopped it)."""
        while qty:
            other = self.side(SELL if side is BUY else BUY)
            if not other:
                return qty
            maker = other[0]
            if limit is not None and (maker.price > limit if side is BUY else maker.price < limit):
                return qty
            if maker.owner == owner:
                if stp is CN:
                    out.append(Cancelled(order_id, owner, C.SELF_TRADE, qty, 0))
                    return 0
                if stp is CO or stp is CB:
                    self.resting.remove(maker)
                    out.append(Cancelled(maker.order_id, maker.owner, C.SELF_TRADE, maker.qty, 0))
                    if stp is CB:
                        out.append(Cancelled(order_id, owner, C.SELF_TRADE, qty, 0))
                        return 0
                    continue
                cut = min(maker.qty, qty)  # DECREMENT
                maker.qty -= cut
                qty -= cut
                if maker.qty == 0:
                    self.resting.remove(maker)
                out.append(Cancelled(maker.order_id, maker.owner, C.SELF_TRADE, cut, maker.qty))
                out.append(Cancelled(order_id, owner, C.SELF_TRADE, cut, qty))
                continue
            traded = min(maker.qty, qty)
            maker.qty -= traded
            qty -= traded
            if maker.qty == 0:
                self.resting.remove(maker)
            out.append(
                Trade(maker.order_id, order_id, maker.owner, owner, maker.price, traded, side)
            )
        return 0

    def fok_fillable(
        self, owner: int, side: Side, limit: int, qty: int, stp: SelfTradePrevention
    ) -> bool:
        need = qty
        for maker in self.side(SELL if side is BUY else BUY):
            if maker.price > limit if side is BUY else maker.price < limit:
                return False
            if maker.owner == owner:
                if stp is CO:
                    continue
                return False
            need -= maker.qty
            if need <= 0:
                return True
        return False

    def place_limit(self, c: PlaceLimit) -> list[Event]:
        out: list[Event] = []
        self.expire_due(c.now_ms, out)
        side, tif, stp = (_member(Side, c.side), _member(TimeInForce, c.tif),
                          _member(SelfTradePrevention, c.stp))  # fmt: skip
        reason = None
        if not _int_in(c.order_id, 1, ORDER_ID_MAX):
            reason = R.ORDER_ID_OUT_OF_RANGE
        elif self.find(c.order_id) is not None:
            reason = R.DUPLICATE_ORDER_ID
        elif side is None:
            reason = R.BAD_SIDE
        elif not _int_in(c.price_minor, 1, PRICE_MAX_MINOR):
            reason = R.PRICE_OUT_OF_RANGE
        elif c.price_minor % TICK:
            reason = R.BAD_TICK
        elif not _int_in(c.qty_units, 1, QTY_MAX_UNITS):
            reason = R.QTY_OUT_OF_RANGE
        elif c.qty_units % LOT:
            reason = R.BAD_LOT
        elif (
            tif is None
            or (tif is GTD and type(c.expires_at_ms) is not int)
            or (tif is not GTD and c.expires_at_ms is not None)
            or (c.post_only and tif in (IOC, FOK))
        ):
            reason = R.BAD_TIME_IN_FORCE
        elif c.expires_at_ms is not None and c.expires_at_ms <= c.now_ms:
            reason = R.EXPIRED
        elif stp is None:
            reason = R.BAD_STP
        if reason is None and side is not None and stp is not None:
            crosses = self.crosses(side, c.price_minor)
            if crosses and c.post_only:
                reason = R.POST_ONLY_WOULD_CROSS
            elif tif is FOK and not (
                crosses and self.fok_fillable(c.owner, side, c.price_minor, c.qty_units, stp)
            ):
                reason = R.FOK_UNFILLABLE
            elif tif in (GTC, GTD) and len(self.resting) >= ORDERS_MAX:
                reason = R.BOOK_FULL
        if reason is not None or side is None or tif is None or stp is None:
            out.append(Rejected(c.order_id, reason or R.BAD_STP))
            return out
        out.append(ACCEPTED)
        left = self.match(c.order_id, c.owner, side, c.price_minor, c.qty_units, stp, out)
        if left and tif in (GTC, GTD):
            self.rest(ModelOrder(c.order_id, c.owner, side, c.price_minor, left, tif,
                                 c.expires_at_ms, stp, bool(c.post_only), 0))  # fmt: skip
        elif left:
            out.append(Cancelled(c.order_id, c.owner, C.IOC_REMAINDER, left, 0))
        return out

    def place_market(self, c: PlaceMarket) -> list[Event]:
        out: list[Event] = []
        self.expire_due(c.now_ms, out)
        side, stp = _member(Side, c.side), _member(SelfTradePrevention, c.stp)
        reason = None
        if not _int_in(c.order_id, 1, ORDER_ID_MAX):
            reason = R.ORDER_ID_OUT_OF_RANGE
        elif self.find(c.order_id) is not None:
            reason = R.DUPLICATE_ORDER_ID
        elif side is None:
            reason = R.BAD_SIDE
        elif side is BUY:
            if not _int_in(c.spend_minor, 1, SPEND_MAX_MINOR):
                reason = R.SPEND_OUT_OF_RANGE
            elif c.qty_units != 0:
                reason = R.QTY_OUT_OF_RANGE
            elif stp is DC:
                reason = R.BAD_STP
        elif not _int_in(c.qty_units, 1, QTY_MAX_UNITS):
            reason = R.QTY_OUT_OF_RANGE
        elif c.qty_units % LOT:
            reason = R.BAD_LOT
        elif c.spend_minor != 0:
            reason = R.SPEND_OUT_OF_RANGE
        if reason is None and stp is None:
            reason = R.BAD_STP
        if reason is not None or side is None or stp is None:
            out.append(Rejected(c.order_id, reason or R.BAD_STP))
            return out
        out.append(ACCEPTED)
        if side is SELL:
            left = self.match(c.order_id, c.owner, SELL, None, c.qty_units, stp, out)
            if left:
                out.append(Cancelled(c.order_id, c.owner, C.MARKET_REMAINDER, left, 0))
            return out
        spend = c.spend_minor
        while True:
            asks = self.side(SELL)
            if not asks:
                break
            maker = asks[0]
            affordable = spend // maker.price // LOT * LOT
            if affordable == 0:
                break
            if maker.owner == c.owner:
                if stp is CN:
                    out.append(Cancelled(c.order_id, c.owner, C.SELF_TRADE, 0, 0))
                    return out
                self.resting.remove(maker)
                out.append(Cancelled(maker.order_id, maker.owner, C.SELF_TRADE, maker.qty, 0))
                if stp is CB:
                    out.append(Cancelled(c.order_id, c.owner, C.SELF_TRADE, 0, 0))
                    return out
                continue
            traded = min(maker.qty, affordable)
            maker.qty -= traded
            spend -= traded * maker.price
            if maker.qty == 0:
                self.resting.remove(maker)
            out.append(Trade(maker.order_id, c.order_id, maker.owner, c.owner, maker.price,
                             traded, BUY))  # fmt: skip
        if spend:
            out.append(Cancelled(c.order_id, c.owner, C.MARKET_REMAINDER, 0, 0))
        return out

    def cancel(self, c: Cancel) -> list[Event]:
        out: list[Event] = []
        self.expire_due(c.now_ms, out)
        o = self.find(c.order_id)
        if o is None:
            out.append(Rejected(c.order_id, R.UNKNOWN_ORDER))
            return out
        self.resting.remove(o)
        out.append(Cancelled(o.order_id, o.owner, C.USER, o.qty, 0))
        return out

    def amend(self, c: Amend) -> list[Event]:
        out: list[Event] = []
        self.expire_due(c.now_ms, out)
        o = self.find(c.order_id)
        reason = None
        if o is None:
            reason = R.UNKNOWN_ORDER
        elif c.price_minor is None and c.qty_units is None:
            reason = R.NOT_AMENDABLE
        elif c.price_minor is not None and not _int_in(c.price_minor, 1, PRICE_MAX_MINOR):
            reason = R.PRICE_OUT_OF_RANGE
        elif c.price_minor is not None and c.price_minor % TICK:
            reason = R.BAD_TICK
        elif c.qty_units is not None and not _int_in(c.qty_units, 1, QTY_MAX_UNITS):
            reason = R.QTY_OUT_OF_RANGE
        elif c.qty_units is not None and c.qty_units % LOT:
            reason = R.BAD_LOT
        if reason is not None or o is None:
            out.append(Rejected(c.order_id, reason or R.UNKNOWN_ORDER))
            return out
        price = o.price if c.price_minor is None else c.price_minor
        qty = o.qty if c.qty_units is None else c.qty_units
        if price == o.price and qty <= o.qty:
            out.append(Amended(o.order_id, o.owner, price, qty, o.price, o.qty, True))
            o.qty = qty
            return out
        crosses = self.crosses(o.side, price)
        if crosses and o.post_only:
            out.append(Rejected(o.order_id, R.POST_ONLY_WOULD_CROSS))
            return out
        self.resting.remove(o)
        out.append(Amended(o.order_id, o.owner, price, qty, o.price, o.qty, False))
        left = self.match(o.order_id, o.owner, o.side, price, qty, o.stp, out)
        if left:
            o.price, o.qty = price, left
            self.rest(o)
        return out

    def expire(self, c: Expire) -> list[Event]:
        out: list[Event] = []
        self.expire_due(c.now_ms, out)
        return out

    def apply(self, c: Command) -> list[Event]:
        if isinstance(c, PlaceLimit):
            return self.place_limit(c)
        if isinstance(c, PlaceMarket):
            return self.place_market(c)
        if isinstance(c, Cancel):
            return self.cancel(c)
        if isinstance(c, Amend):
            return self.amend(c)
        return self.expire(c)


def _int_in(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _member(enum: type[E], value: object) -> E | None:
    try:
        return enum(value)
    except ValueError:
        return None


def _named(events: Sequence[Event]) -> list[tuple[str, tuple[object, ...]]]:
    # NamedTuples compare as plain tuples: keep the type in the comparison.
    return [(type(e).__name__, tuple(e)) for e in events]


# ------------------------------------------------------------------------- the machine

# Mostly well-formed values, with a few of every kind of malformed one mixed in.
order_ids = st.sampled_from([*range(1, 17), *range(1, 17), 0, -1, ORDER_ID_MAX + 1])
owners = st.integers(1, 3)
sides = st.sampled_from([BUY, SELL] * 6 + ["buy", "sell", "sideways"])
prices = st.sampled_from([2 * p for p in range(45, 56)] * 4 + [0, 97, -4])
quantities = st.sampled_from([5 * q for q in range(1, 9)] * 4 + [0, 7, QTY_MAX_UNITS + 5])
tifs = st.sampled_from([GTC] * 6 + [IOC, FOK, GTD, GTD, "gtc", "never"])
stps = st.sampled_from([CN] * 3 + [CO, CB, DC, "cancel_oldest"])


class BookVersusModel(RuleBasedStateMachine):
    """Drives ``Book`` and ``Model`` with the same commands and compares everything."""

    def __init__(self) -> None:
        super().__init__()
        self.book = Book(tick_size_minor=TICK, lot_size_units=LOT, orders_max=ORDERS_MAX)
        self.model = Model()
        self.now_ms = 0
        self.commands: list[Command] = []
        self.outputs: list[list[tuple[str, tuple[object, ...]]]] = []
        self.placed_units = 0
        self.traded_units = 0  # counted once for each side that had a quantity
        self.removed_units = 0  # cancelled or expired

    def run(self, command: Command) -> None:
        got = list(self.book.apply(command))
        want = self.model.apply(command)
        assert _named(got) == _named(want), (command, got, want)
        self.commands.append(command)
        self.outputs.append(_named(got))
        self.account(command, got)

    def account(self, command: Command, events: list[Event]) -> None:
        spend_based = isinstance(command, PlaceMarket) and command.side in (BUY, "buy")
        if ACCEPTED in events and isinstance(command, PlaceLimit | PlaceMarket):
            self.placed_units += command.qty_units
        for e in events:
            if isinstance(e, Trade):
                self.traded_units += e.qty_units if spend_based else 2 * e.qty_units
            elif isinstance(e, Cancelled | Expired):
                self.removed_units += e.qty_units
            elif isinstance(e, Amended):
                self.placed_units += e.qty_units - e.old_qty_units

    @rule(step=st.integers(0, 3))
    def clock(self, step: int) -> None:
        self.now_ms += step

    @rule(
        order_id=order_ids, owner=owners, side=sides, price=prices, qty=quantities, tif=tifs,
        expiry=st.one_of(st.none(), st.integers(-1, 8)), post_only=st.booleans(), stp=stps,
    )  # fmt: skip
    def place_limit(
        self, order_id: int, owner: int, side: Side, price: int, qty: int, tif: TimeInForce,
        expiry: int | None, post_only: bool, stp: SelfTradePrevention,
    ) -> None:  # fmt: skip
        # Mostly well-formed: an expiry exactly for GTD, post-only rarely and not with IOC/FOK.
        expires_at_ms = None if expiry is None else self.now_ms + expiry
        if tif is GTD and expires_at_ms is None:
            expires_at_ms = self.now_ms + 5
        elif tif is not GTD and expiry is not None and expiry > 0:
            expires_at_ms = None
        post_only = post_only and tif in (GTC, GTD) and qty % 2 == 0
        self.run(PlaceLimit(order_id, owner, side, price, qty, tif, expires_at_ms, post_only,
                            stp, self.now_ms))  # fmt: skip

    @rule(
        order_id=st.integers(1, 16), owner=owners, side=st.sampled_from([BUY, SELL]),
        price=st.integers(47, 53).map(lambda p: 2 * p), qty=st.integers(1, 6).map(lambda q: 5 * q),
    )  # fmt: skip
    def place_plain(self, order_id: int, owner: int, side: Side, price: int, qty: int) -> None:
        """A valid GTC limit order near the middle: the fast path, and most trades."""
        self.run(PlaceLimit(order_id, owner, side, price, qty, now_ms=self.now_ms))

    @rule(
        order_id=st.integers(17, 32), owner=owners, side=st.sampled_from([BUY, SELL]),
        price=st.integers(47, 53).map(lambda p: 2 * p), qty=st.integers(1, 6).map(lambda q: 5 * q),
    )  # fmt: skip
    def place_plain_more(self, order_id: int, owner: int, side: Side, price: int, qty: int) -> None:
        """The same again, so that plain orders make up much of every run."""
        self.run(PlaceLimit(order_id, owner, side, price, qty, now_ms=self.now_ms))

    @rule(
        order_id=order_ids, owner=owners, side=sides, qty=quantities,
        spend=st.sampled_from([0, 1, 95, 300, 1000, 5000]), stp=stps,
        shape_ok=st.sampled_from([True] * 5 + [False]),
    )  # fmt: skip
    def place_market(
        self, order_id: int, owner: int, side: Side, qty: int, spend: int,
        stp: SelfTradePrevention, shape_ok: bool,
    ) -> None:  # fmt: skip
        if shape_ok:  # a buy names a budget, a sell a quantity
            qty, spend = (0, spend) if side in (BUY, "buy") else (qty, 0)
        self.run(PlaceMarket(order_id, owner, side, qty, spend, stp, self.now_ms))

    @rule(order_id=order_ids)
    def cancel(self, order_id: int) -> None:
        self.run(Cancel(order_id, self.now_ms))

    @precondition(lambda self: len(self.book) > 0)
    @rule(data=st.data())
    def cancel_resting(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.book.resting()))
        self.run(Cancel(order.order_id, self.now_ms))

    @rule(
        order_id=order_ids,
        price=st.one_of(st.none(), prices),
        qty=st.one_of(st.none(), quantities),
    )
    def amend(self, order_id: int, price: int | None, qty: int | None) -> None:
        self.run(Amend(order_id, price, qty, self.now_ms))

    @precondition(lambda self: len(self.book) > 0)
    @rule(data=st.data())
    def amend_resting(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.book.resting()))
        price = data.draw(st.sampled_from([None, order.price_minor, order.price_minor + TICK,
                                           order.price_minor - TICK, 100]))  # fmt: skip
        qty = data.draw(st.sampled_from([None, order.qty_units, LOT, order.qty_units + LOT]))
        self.run(Amend(order.order_id, price, qty, self.now_ms))

    @rule()
    def expire(self) -> None:
        self.run(Expire(self.now_ms))

    @invariant()
    def same_state(self) -> None:
        self.book.check_invariants()  # consistent, and never crossed
        bid, ask = self.book.best_bid(), self.book.best_ask()
        assert bid is None or ask is None or bid < ask
        depth = self.book.depth(5)
        assert ([tuple(lv) for lv in depth.bids], [tuple(lv) for lv in depth.asks]) == (
            self.model.depth(5)
        )
        assert self.book.state_hash() == self.model.state_hash()
        assert len(self.book) == len(self.model.resting)

    @invariant()
    def quantity_is_conserved(self) -> None:
        resting_units = sum(o.qty_units for o in self.book.resting())
        assert self.placed_units == self.traded_units + self.removed_units + resting_units

    def teardown(self) -> None:
        fresh = Book(tick_size_minor=TICK, lot_size_units=LOT, orders_max=ORDERS_MAX)
        replayed = [_named(list(fresh.apply(c))) for c in self.commands]
        assert replayed == self.outputs
        assert fresh.state_hash() == self.book.state_hash()
        assert fresh.resting() == self.book.resting()


BookVersusModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookVersusModel = BookVersusModel.TestCase
