"""Matching an incoming order against one side of the book, in price-time priority.

These functions are the hot path. They bind what they use to locals and build events
with ``tuple.__new__`` (what a NamedTuple's constructor does, minus one Python call), but
they leave nothing out: every maker is checked for self-trade, dead records are skipped,
levels are dropped the moment they empty, and every trade and cancel is an event.
"""

from __future__ import annotations

from market.book.events import Cancelled, Event, Trade
from market.book.level import ID, OWNER, QTY, BookSide, Level, RestingOrder
from market.book.reasons import CancelReason
from market.book.terms import Owner, SelfTradePrevention, Side

__all__ = ["fok_fillable", "take", "take_plain", "take_spend"]

_SELF_TRADE = CancelReason.SELF_TRADE
_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
_CANCEL_OLDEST = SelfTradePrevention.CANCEL_OLDEST
_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
_DECREMENT = SelfTradePrevention.DECREMENT
_new = tuple.__new__


def take(
    opposite: BookSide,
    orders: dict[int, RestingOrder],
    taker_id: int,
    owner: Owner,
    taker_side: Side,
    limit_rank: int,
    qty_units: int,
    stp: SelfTradePrevention,
    events: list[Event],
) -> int:
    """Trade up to ``qty_units`` against levels of ``opposite`` ranked ``>= limit_rank``.

    Appends the trades and self-trade cancels to ``events`` and returns the units left to
    rest or cancel. When self-trade prevention stops the incoming order, its rest is
    cancelled here (an event) and 0 is returned. Makers that fill leave ``orders``.
    """
    levels = opposite.levels
    ranks = opposite.ranks
    append = events.append
    left = qty_units
    halted = False
    while ranks:
        rank = ranks[-1]
        if rank < limit_rank:
            return left
        level = levels[rank]
        price = level.price_minor
        while True:
            maker = level[0]
            made = maker[QTY]
            if not made:  # dead: cancelled, expired or amended away earlier
                level.popleft()
                level.dead -= 1
                continue
            if maker[OWNER] == owner:
                left, halted = _prevent_self_trade(
                    level, maker, orders, taker_id, owner, left, stp, events
                )
                if halted or not left or len(level) == level.dead:
                    break
                continue
            if made <= left:
                level.popleft()
                maker[QTY] = 0
                del orders[maker[ID]]
                level.qty_units -= made
                left -= made
                append(
                    _new(Trade, (maker[ID], taker_id, maker[OWNER], owner, price, made, taker_side))
                )
                if not left or len(level) == level.dead:
                    break
            else:
                maker[QTY] = made - left
                level.qty_units -= left
                append(
                    _new(Trade, (maker[ID], taker_id, maker[OWNER], owner, price, left, taker_side))
                )
                left = 0
                break
        if len(level) == level.dead:
            del levels[rank]
            ranks.pop()
        if halted:
            append(Cancelled(taker_id, owner, _SELF_TRADE, left, 0))
            return 0
        if not left:
            return 0
    return left


def take_plain(
    opposite: BookSide,
    orders: dict[int, RestingOrder],
    taker_id: int,
    owner: Owner,
    taker_side: Side,
    limit_rank: int,
    qty_units: int,
    events: list[Event],
) -> int:
    """``take`` with ``stp`` CANCEL_NEWEST, every plain order's mode: the same trades,
    cancels and state, without the branches of the other modes.

    The first own order met stops the incoming order: its rest is cancelled here (an
    event) and 0 is returned. The book's fast path for plain GTC orders uses this; a test
    holds it to ``take``.
    """
    levels = opposite.levels
    ranks = opposite.ranks
    append = events.append
    left = qty_units
    while ranks:
        rank = ranks[-1]
        if rank < limit_rank:
            return left
        level = levels[rank]
        price = level.price_minor
        while True:
            maker = level[0]
            made = maker[QTY]
            if not made:  # dead: cancelled, expired or amended away earlier
                level.popleft()
                level.dead -= 1
                continue
            if maker[OWNER] == owner:  # the newest order, the incoming one, is cancelled
                append(Cancelled(taker_id, owner, _SELF_TRADE, left, 0))
                return 0
            if made <= left:
                level.popleft()
                maker[QTY] = 0
                del orders[maker[ID]]
                level.qty_units -= made
                left -= made
                append(
                    _new(Trade, (maker[ID], taker_id, maker[OWNER], owner, price, made, taker_side))
                )
                if not left or len(level) == level.dead:
                    break
            else:
                maker[QTY] = made - left
                level.qty_units -= left
                append(
                    _new(Trade, (maker[ID], taker_id, maker[OWNER], owner, price, left, taker_side))
                )
                return 0
        if len(level) == level.dead:
            del levels[rank]
            ranks.pop()
        if not left:
            return 0
    return left


def take_spend(
    asks: BookSide,
    orders: dict[int, RestingOrder],
    taker_id: int,
    owner: Owner,
    spend_minor: int,
    lot_units: int,
    stp: SelfTradePrevention,
    events: list[Event],
) -> int:
    """Buy whole lots from ``asks``, best first, paying at most ``spend_minor`` in total.

    Stops at the first level where not even one lot is affordable; returns the budget
    left, or 0 after cancelling the order (an event) when self-trade prevention stops it.
    ``stp`` must not be DECREMENT (a budget has no quantity to decrement; the book
    rejects that combination).
    """
    levels = asks.levels
    ranks = asks.ranks
    left = spend_minor
    halted = False
    while ranks and not halted:
        rank = ranks[-1]
        level = levels[rank]
        price = level.price_minor
        affordable = left // price
        affordable -= affordable % lot_units
        if not affordable:
            break
        while affordable:
            maker = level[0]
            made = maker[QTY]
            if not made:
                level.popleft()
                level.dead -= 1
                continue
            if maker[OWNER] == owner:
                _, halted = _prevent_self_trade(
                    level, maker, orders, taker_id, owner, affordable, stp, events
                )
                if halted or len(level) == level.dead:
                    break
                continue
            qty = made if made <= affordable else affordable
            maker[QTY] = made - qty
            level.qty_units -= qty
            if qty == made:
                level.popleft()
                del orders[maker[ID]]
            affordable -= qty
            left -= qty * price
            events.append(Trade(maker[ID], taker_id, maker[OWNER], owner, price, qty, Side.BUY))
            if len(level) == level.dead:
                break
        if len(level) == level.dead:
            del levels[rank]
            ranks.pop()
    if halted:
        events.append(Cancelled(taker_id, owner, _SELF_TRADE, 0, 0))
        return 0
    return left


def fok_fillable(
    opposite: BookSide,
    owner: Owner,
    limit_rank: int,
    qty_units: int,
    stp: SelfTradePrevention,
) -> bool:
    """Whether ``take`` with these arguments would trade all of ``qty_units``.

    Own orders would be cancelled (CANCEL_OLDEST: skipped here) or would stop or shrink
    the incoming order without a trade (every other mode: not fillable past them).
    """
    need = qty_units
    levels = opposite.levels
    for rank in reversed(opposite.ranks):
        if rank < limit_rank:
            return False
        for maker in levels[rank]:
            made = maker[QTY]
            if not made:
                continue
            if maker[OWNER] == owner:
                if stp is _CANCEL_OLDEST:
                    continue
                return False
            need -= made
            if need <= 0:
                return True
    return False


def _prevent_self_trade(
    level: Level,
    maker: RestingOrder,
    orders: dict[int, RestingOrder],
    taker_id: int,
    owner: Owner,
    left: int,
    stp: SelfTradePrevention,
    events: list[Event],
) -> tuple[int, bool]:
    """Apply ``stp`` to ``maker`` (at the front of ``level``), an order of the taker's owner.

    Returns the taker's new remaining quantity and whether the taker must stop.
    """
    if stp is _CANCEL_NEWEST:
        return left, True
    made: int = maker[QTY]
    # DECREMENT: both lose the smaller remaining quantity, without a trade.
    cut = made if stp is not _DECREMENT or made < left else left
    level.qty_units -= cut
    maker[QTY] = made - cut
    if cut == made:
        level.popleft()
        del orders[maker[ID]]
    events.append(Cancelled(maker[ID], maker[OWNER], _SELF_TRADE, cut, made - cut))
    if stp is _CANCEL_OLDEST:
        return left, False
    if stp is _CANCEL_BOTH:
        return left, True
    events.append(Cancelled(taker_id, owner, _SELF_TRADE, cut, left - cut))
    return left - cut, False
