"""The checks an order must pass before it touches the book, each with its reason code.

Pure functions of the command and the book's fixed terms (tick, lot, the ids resting);
the checks that depend on the book's prices (post-only, FOK, room) live in the book.
The order of the checks is part of the interface (``market.book.book`` lists it): the first
failing one is the ``Rejected`` reason, in the book and in any model of it.
"""

from __future__ import annotations

from collections.abc import Container

from market.book.level import OrderTerms
from market.book.reasons import RejectReason
from market.book.terms import (
    ORDER_ID_MAX,
    PRICE_MAX_MINOR,
    QTY_MAX_UNITS,
    SPEND_MAX_MINOR,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

__all__ = ["amend_rejection", "limit_terms", "market_rejection"]

_R = RejectReason
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
# Plain strings ("buy", "gtc") from JSON map to the members, anything else to None.
_SIDES: dict[object, Side] = {s: s for s in Side}
_TIFS: dict[object, TimeInForce] = {t: t for t in TimeInForce}
_STPS: dict[object, SelfTradePrevention] = {m: m for m in SelfTradePrevention}


def _id_rejection(order_id: int, resting: Container[int]) -> RejectReason | None:
    if type(order_id) is not int or not 0 < order_id <= ORDER_ID_MAX:
        return _R.ORDER_ID_OUT_OF_RANGE
    if order_id in resting:
        return _R.DUPLICATE_ORDER_ID
    return None


def _price_rejection(price_minor: int, tick_minor: int) -> RejectReason | None:
    if type(price_minor) is not int or not 0 < price_minor <= PRICE_MAX_MINOR:
        return _R.PRICE_OUT_OF_RANGE
    if price_minor % tick_minor:
        return _R.BAD_TICK
    return None


def _qty_rejection(qty_units: int, lot_units: int) -> RejectReason | None:
    if type(qty_units) is not int or not 0 < qty_units <= QTY_MAX_UNITS:
        return _R.QTY_OUT_OF_RANGE
    if qty_units % lot_units:
        return _R.BAD_LOT
    return None


def limit_terms(
    order_id: int,
    side: Side,
    price_minor: int,
    qty_units: int,
    tif: TimeInForce,
    expires_at_ms: int | None,
    post_only: bool,
    stp: SelfTradePrevention,
    now_ms: int,
    resting: Container[int],
    tick_minor: int,
    lot_units: int,
) -> OrderTerms | RejectReason:
    """A limit order's terms, or the first reason it is refused: id in range and not
    resting; side; price in range and on the tick; quantity in range and on the lot; time
    in force known, expiry given exactly for GTD, post-only not with IOC/FOK; a GTD expiry
    after ``now_ms``; STP mode known."""
    side_ = _SIDES.get(side)
    tif_ = _TIFS.get(tif)
    stp_ = _STPS.get(stp)
    reason = (
        _id_rejection(order_id, resting)
        or (_R.BAD_SIDE if side_ is None else None)
        or _price_rejection(price_minor, tick_minor)
        or _qty_rejection(qty_units, lot_units)
    )
    if reason is not None:
        return reason
    if (
        tif_ is None
        or (tif_ is _GTD) != (type(expires_at_ms) is int)
        or (tif_ is not _GTD and expires_at_ms is not None)
        or (post_only and (tif_ is _IOC or tif_ is _FOK))
    ):
        return _R.BAD_TIME_IN_FORCE
    if expires_at_ms is not None and expires_at_ms <= now_ms:
        return _R.EXPIRED
    if stp_ is None or side_ is None:
        return _R.BAD_STP
    return OrderTerms(side_, tif_, expires_at_ms, stp_, bool(post_only))


def market_rejection(
    order_id: int,
    side: Side,
    qty_units: int,
    spend_minor: int,
    stp: SelfTradePrevention,
    resting: Container[int],
    lot_units: int,
) -> tuple[Side, SelfTradePrevention] | RejectReason:
    """A market order's side and STP mode, or the first reason it is refused: id in range
    and not resting; side; for a sell, quantity in range and on the lot and no budget; for
    a buy, budget in range and no quantity; STP mode known (not DECREMENT for a buy)."""
    side_ = _SIDES.get(side)
    stp_ = _STPS.get(stp)
    reason = _id_rejection(order_id, resting)
    if reason is not None:
        return reason
    if side_ is None:
        return _R.BAD_SIDE
    if side_ is Side.BUY:
        if type(spend_minor) is not int or not 0 < spend_minor <= SPEND_MAX_MINOR:
            return _R.SPEND_OUT_OF_RANGE
        if qty_units != 0:
            return _R.QTY_OUT_OF_RANGE
        if stp_ is SelfTradePrevention.DECREMENT:
            return _R.BAD_STP
    else:
        reason = _qty_rejection(qty_units, lot_units)
        if reason is not None:
            return reason
        if spend_minor != 0:
            return _R.SPEND_OUT_OF_RANGE
    if stp_ is None:
        return _R.BAD_STP
    return side_, stp_


def amend_rejection(
    price_minor: int | None, qty_units: int | None, tick_minor: int, lot_units: int
) -> RejectReason | None:
    """Why an amend of a resting order is refused before looking at the book, or None:
    it names a new price or quantity; the price in range and on the tick; the quantity
    in range and on the lot."""
    if price_minor is None and qty_units is None:
        return _R.NOT_AMENDABLE
    if price_minor is not None:
        reason = _price_rejection(price_minor, tick_minor)
        if reason is not None:
            return reason
    if qty_units is not None:
        return _qty_rejection(qty_units, lot_units)
    return None
