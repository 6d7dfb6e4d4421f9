"""Orders and trades on the wire.

Prices, quantities and budgets come in as the funding routes' amounts do
(``api.schemas.funding.AmountIn``): a string of 1..40 decimal digits, or a JSON integer
up to 2**53 - 1; never a float, an exponent, a sign, spaces or ``true``. Their ranges
(a price above zero and within a BIGINT, a quantity up to 10**12, the tick and the lot)
are the engine's to check, each with its own code. Every amount leaves as a string of
digits; times leave as RFC 3339 in UTC (the engine keeps milliseconds since 1970).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from api.schemas.common import AssetId, Strict, ZonedTime, amount_text
from api.schemas.funding import AMOUNT_DIGITS_MAX, SAFE_INTEGER_MAX, AmountIn
from ledger.core.timestamps import ms_of, time_of_ms
from market.book import SelfTradePrevention, Side, TimeInForce
from market.engine import AmendRequest, OrderRequest, OrderState, OrderStatus, OrderType, TradeRow

__all__ = [
    "AmendIn",
    "MyTradeOut",
    "OrderIn",
    "OrderOut",
    "OrderStatusName",
    "OrderSummaryOut",
    "TradeOut",
    "expires_at_ms",
    "my_trade_out",
    "order_out",
    "order_summary_out",
    "trade_out",
]

CURRENCY_LEN_MAX = 16  # the engine checks the code itself (unknown_currency)
CurrencyCode = Annotated[str, StringConstraints(min_length=1, max_length=CURRENCY_LEN_MAX)]
OrderStatusName = Literal["open", "filled", "cancelled", "expired"]
TimeInForceName = Literal["GTC", "IOC", "FOK", "GTD"]
# Time in force is written upper case (GTC) or lower case (gtc), nothing in between.
_TIME_IN_FORCE = {
    **{tif.value.upper(): tif for tif in TimeInForce},
    **{tif.value: tif for tif in TimeInForce},
}


def _time_in_force_in(value: object) -> object:
    if isinstance(value, str) and value in _TIME_IN_FORCE:
        return _TIME_IN_FORCE[value]
    raise ValueError("time_in_force is one of GTC, IOC, FOK, GTD (or gtc, ioc, fok, gtd)")


# A quantity comes in as an amount does; only its description differs.
UnitsIn = Annotated[
    AmountIn,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^[0-9]{{1,{AMOUNT_DIGITS_MAX}}}$"},
                {"type": "integer", "minimum": 0, "maximum": SAFE_INTEGER_MAX},
            ],
            "description": "units: a string of digits, or a JSON integer up to 2**53 - 1",
        },
        mode="validation",
    ),
]
TimeInForceIn = Annotated[
    TimeInForce,
    BeforeValidator(_time_in_force_in),
    WithJsonSchema({"type": "string", "enum": sorted(_TIME_IN_FORCE)}, mode="validation"),
]


class OrderFieldsIn(Strict):
    """What every order body names but its side (and, for a lease, its term): the
    fields of ``POST /v1/orders`` and ``POST /v1/lease-orders`` alike."""

    asset_id: AssetId
    currency: CurrencyCode
    type: OrderType = OrderType.LIMIT
    price_minor: AmountIn | None = None
    qty_units: UnitsIn | None = None
    spend_minor: AmountIn | None = None
    time_in_force: TimeInForceIn = TimeInForce.GTC
    expires_at: ZonedTime | None = None
    post_only: StrictBool = False
    self_trade: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST

    def request(self, owner: str, key: str, side: Side, term: str = "") -> OrderRequest:
        """The engine's request: ``owner`` placing for itself under journal ``key``."""
        return OrderRequest(
            owner=owner, asset_id=self.asset_id, currency=self.currency, side=side,
            type=self.type, key=key, actor=owner, price_minor=self.price_minor,
            qty_units=self.qty_units, spend_minor=self.spend_minor,
            time_in_force=self.time_in_force, expires_at_ms=expires_at_ms(self.expires_at),
            post_only=self.post_only, self_trade=self.self_trade, term=term,
        )  # fmt: skip


class OrderIn(OrderFieldsIn):
    """An order the signed-in member places for itself (there is no owner field).

    A limit order names ``price_minor`` and ``qty_units``; a market sell ``qty_units``;
    a market buy ``spend_minor``, the most it pays in all (what it holds). ``expires_at``
    goes with ``GTD`` only. What does not fit together is the engine's to refuse, each
    with its code (``spend_with_limit``, ``expiry_missing``, ``bad_time_in_force`` ...).
    """

    side: Side


class AmendIn(Strict):
    """A resting order's new price and/or remaining quantity: a smaller quantity keeps
    its place in the queue; a new price or a larger quantity loses it."""

    price_minor: AmountIn | None = None
    qty_units: UnitsIn | None = None

    def request(self, owner: str, order_id: int, key: str, *, lease: bool) -> AmendRequest:
        """The engine's request: ``owner`` amending its order (of the kind ``lease``
        names) under journal ``key``."""
        return AmendRequest(
            owner=owner, order_id=order_id, key=key, actor=owner,
            price_minor=self.price_minor, qty_units=self.qty_units, lease=lease,
        )  # fmt: skip


class TradeOut(BaseModel):
    """A trade: ``id`` is the seq of the journal entry that settled it; the price is the
    resting (maker) order's; the seller pays ``fee_minor`` out of the trade's value."""

    id: int
    asset_id: str
    currency: str
    price_minor: str
    qty_units: str
    maker_order_id: int
    taker_order_id: int
    taker_side: Side
    executed_at: datetime
    fee_minor: str


class MyTradeOut(TradeOut):
    """One of your trades: which of your orders made it, on which side, as maker or
    taker."""

    order_id: int
    side: Side
    liquidity: Literal["maker", "taker"]


class OrderSummaryOut(BaseModel):
    """An order as it stands. ``id`` is the seq of its ``order.place`` entry.
    ``qty_units`` is null for a market buy (it names ``spend_minor`` instead), and
    ``price_minor`` for a market order. ``reason`` says why an order ended other than
    filled (``user``, ``expired``, ``ioc_remainder``, ``market_remainder``, a self-trade
    mode ...). A market buy that bought all its budget could (what is left cannot pay
    for one lot at the best ask) is ``filled``; one that found too few asks is
    ``cancelled`` with ``market_remainder``."""

    id: int
    asset_id: str
    currency: str
    side: Side
    type: OrderType
    time_in_force: TimeInForceName
    price_minor: str | None
    qty_units: str | None
    spend_minor: str | None
    status: OrderStatusName
    filled_units: str
    remaining_units: str
    filled_minor: str = Field(description="what the trades of this order came to, in all")
    reason: str | None
    post_only: bool
    self_trade: SelfTradePrevention
    expires_at: datetime | None
    placed_at: datetime


class OrderOut(OrderSummaryOut):
    """An order with its trades: those the request just made (placing, amending); on a
    replay and on ``GET``, the order's trades so far (its first 100)."""

    trades: list[TradeOut]


def expires_at_ms(when: datetime | None) -> int | None:
    """``when`` in whole milliseconds since 1970 (rounded down), as the engine keeps it."""
    return None if when is None else ms_of(when)


def order_summary_out(order: OrderState) -> OrderSummaryOut:
    """The order on the wire, without its trades."""
    return OrderSummaryOut(**_order_fields(order))


def order_out(order: OrderState, trades: list[TradeRow]) -> OrderOut:
    """The order on the wire, with ``trades``."""
    return OrderOut(**_order_fields(order), trades=[trade_out(t) for t in trades])


def _order_fields(order: OrderState) -> dict[str, Any]:
    market_buy = order.type is OrderType.MARKET and order.side is Side.BUY
    return {
        "id": order.id,
        "asset_id": order.asset_id,
        "currency": order.currency,
        "side": order.side,
        "type": order.type,
        "time_in_force": _TIME_IN_FORCE_NAME[order.time_in_force],
        "price_minor": None if order.price_minor is None else amount_text(order.price_minor),
        "qty_units": None if market_buy else amount_text(order.qty_units),
        "spend_minor": None if order.spend_minor is None else amount_text(order.spend_minor),
        "status": _status_name(order.status),
        "filled_units": amount_text(order.filled_units),
        "remaining_units": amount_text(order.remaining_units),
        "filled_minor": amount_text(order.filled_minor),
        "reason": order.reason,
        "post_only": order.post_only,
        "self_trade": order.self_trade,
        "expires_at": None if order.expires_at_ms is None else time_of_ms(order.expires_at_ms),
        "placed_at": time_of_ms(order.placed_ms),
    }


def trade_out(trade: TradeRow) -> TradeOut:
    """A trade on the wire (the two owners are not shown)."""
    return TradeOut(**_trade_fields(trade))


def my_trade_out(trade: TradeRow, me: str) -> MyTradeOut:
    """One of ``me``'s trades on the wire, from ``me``'s side."""
    taker = trade.taker_owner == me
    taker_side = Side(trade.taker_side)
    other = Side.SELL if taker_side is Side.BUY else Side.BUY
    return MyTradeOut(
        **_trade_fields(trade),
        order_id=trade.taker_order_id if taker else trade.maker_order_id,
        side=taker_side if taker else other,
        liquidity="taker" if taker else "maker",
    )


def _trade_fields(trade: TradeRow) -> dict[str, Any]:
    return {
        "id": trade.id,
        "asset_id": trade.asset_id,
        "currency": trade.currency,
        "price_minor": amount_text(trade.price_minor),
        "qty_units": amount_text(trade.qty_units),
        "maker_order_id": trade.maker_order_id,
        "taker_order_id": trade.taker_order_id,
        "taker_side": Side(trade.taker_side),
        "executed_at": time_of_ms(trade.executed_ms),
        "fee_minor": amount_text(trade.fee_minor),
    }


_TIME_IN_FORCE_NAME: dict[TimeInForce, TimeInForceName] = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.GTD: "GTD",
}
_STATUS_NAMES: dict[str, OrderStatusName] = {
    OrderStatus.OPEN: "open",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
}


def _status_name(status: str) -> OrderStatusName:
    found = _STATUS_NAMES.get(status)
    if found is None:
        raise ValueError(f"an order in a status the API does not know: {status!r}")
    return found
