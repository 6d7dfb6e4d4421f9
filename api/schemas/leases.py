"""Lease orders, leases and lease books on the wire.

A lease order is an order on a lease book: ``side`` is ``offer`` (the lessor offers the
output and usage rights of its units over the term; the engine's sell) or ``bid`` (the
lessee's; the engine's buy), and ``price_minor`` is the rent of one unit for the whole
term. Its amounts come in as an order's do (``api.schemas.orders``): strings of digits
or JSON integers up to 2**53 - 1, never floats; their ranges are the engine's to check.

A term is always written as its key, ``YYYY-MM-DD/YYYY-MM-DD``: ``[start, end)``, both
midnight UTC on the first day of a period of the asset's (``month`` or ``quarter``). A
lease also shows the two instants as ``starts_at`` and ``ends_at``. Every amount leaves
as a string of digits; times as RFC 3339 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import amount_text
from api.schemas.markets import LevelOut
from api.schemas.orders import (
    OrderFieldsIn,
    OrderStatusName,
    TimeInForceName,
    order_summary_out,
)
from ledger.core.timestamps import time_of_ms
from market.book import Depth, SelfTradePrevention, Side
from market.engine import OrderState, OrderType
from market.engine.lease_reads import LeaseBook, LeaseRole
from market.engine.rows import LeaseRow

__all__ = [
    "TERM_LEN_MAX",
    "LeaseBookDepthOut",
    "LeaseBookOut",
    "LeaseMarketOut",
    "LeaseOrderIn",
    "LeaseOrderOut",
    "LeaseOrderSummaryOut",
    "LeaseOut",
    "LeaseSideName",
    "LeaseTapeOut",
    "MyLeaseOut",
    "TapeLeaseOut",
    "engine_side",
    "lease_book_out",
    "lease_order_out",
    "lease_order_summary_out",
    "lease_out",
    "my_lease_out",
    "tape_lease_out",
]

TERM_LEN_MAX = 32
"""A term's key is 21 characters; a little more is the engine's to call malformed
(``term_malformed``), much more is not a term at all (``request_invalid``)."""
TermKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TERM_LEN_MAX),
    Field(description="YYYY-MM-DD/YYYY-MM-DD: the term [start, end), each the first day"
          " of one of the asset's lease periods", examples=["2027-04-01/2027-07-01"]),
]  # fmt: skip
LeaseSideName = Literal["offer", "bid"]
_ENGINE_SIDE: dict[LeaseSideName, Side] = {"offer": Side.SELL, "bid": Side.BUY}
_SIDE_NAME: dict[Side, LeaseSideName] = {Side.SELL: "offer", Side.BUY: "bid"}


def engine_side(side: LeaseSideName) -> Side:
    """The engine's side of a lease order's: an offer sells, a bid buys."""
    return _ENGINE_SIDE[side]


class LeaseOrderIn(OrderFieldsIn):
    """A lease order the signed-in member places for itself (there is no owner field).

    A limit order names ``price_minor`` (the rent of a unit for the whole term) and
    ``qty_units``; a market offer ``qty_units``; a market bid ``spend_minor``, the most
    it pays in all. A resting lease order rests at most until its term ends (a GTC one
    comes back as GTD, expiring then)."""

    term: TermKey
    side: LeaseSideName


class LeaseOut(BaseModel):
    """A lease: ``id`` is the seq of the journal entry that settled it. The lessor keeps
    the units and gives their output and usage rights to the lessee over [``starts_at``,
    ``ends_at``); the lessee paid ``rent_minor`` (``price_minor`` times ``qty_units``,
    the price being the resting order's), of which the lessor got all but ``fee_minor``.
    ``taker_side`` is the side of the order that met the resting one."""

    id: int
    asset_id: str
    currency: str
    term: str
    starts_at: datetime
    ends_at: datetime
    price_minor: str
    qty_units: str
    rent_minor: str
    fee_minor: str
    lessor: str
    lessee: str
    maker_order_id: int
    taker_order_id: int
    taker_side: LeaseSideName
    executed_at: datetime


class MyLeaseOut(LeaseOut):
    """One of your leases: whether you are its lessor or its lessee, and which of your
    orders made it."""

    role: LeaseRole
    order_id: int


class LeaseOrderSummaryOut(BaseModel):
    """A lease order as it stands: the fields of an order (``GET /v1/orders``) with its
    ``term``, and ``side`` as ``offer`` or ``bid``. ``filled_units`` are the units leased
    so far, ``filled_minor`` the rent they came to."""

    id: int
    asset_id: str
    currency: str
    term: str
    side: LeaseSideName
    type: OrderType
    time_in_force: TimeInForceName
    price_minor: str | None
    qty_units: str | None
    spend_minor: str | None
    status: OrderStatusName
    filled_units: str
    remaining_units: str
    filled_minor: str
    reason: str | None
    post_only: bool
    self_trade: SelfTradePrevention
    expires_at: datetime | None
    placed_at: datetime


class LeaseOrderOut(LeaseOrderSummaryOut):
    """A lease order with its leases: those the request just made (placing, amending);
    on a replay and on ``GET``, the order's leases so far (its first 100)."""

    leases: list[LeaseOut]


class TapeLeaseOut(BaseModel):
    """A lease on a book's tape (the two members are not shown)."""

    id: int
    price_minor: str
    qty_units: str
    rent_minor: str
    maker_order_id: int
    taker_order_id: int
    taker_side: LeaseSideName
    executed_at: datetime


class LeaseTapeOut(BaseModel):
    """A page of a lease book's tape, oldest first. ``next_cursor`` is the last lease's
    id (or the cursor given, when none came): pass it back for the leases after; a page
    shorter than the limit has reached the newest lease."""

    asset_id: str
    currency: str
    term: str
    items: list[TapeLeaseOut]
    next_cursor: str | None = Field(default=None, max_length=32)


class LeaseBookOut(BaseModel):
    """A lease book that exists, with its best bid and ask (null when none rests)."""

    currency: str
    term: str
    starts_at: datetime
    ends_at: datetime
    best_bid_minor: str | None
    best_ask_minor: str | None


class LeaseMarketOut(BaseModel):
    """An asset's leasing: the period its terms fall on, the next one-period terms it
    offers (the one under way first), and its lease books whose term has not ended."""

    asset_id: str
    lease_period: str
    next_terms: list[str]
    books: list[LeaseBookOut]


class LeaseBookDepthOut(BaseModel):
    """A lease book's L2 depth: bids highest first, asks (offers) lowest first, as of
    journal seq ``seq``."""

    asset_id: str
    currency: str
    term: str
    seq: int
    bids: list[LevelOut]
    asks: list[LevelOut]

    @classmethod
    def of(
        cls, asset_id: str, currency: str, term: str, seq: int, depth: Depth
    ) -> LeaseBookDepthOut:
        """A lease book's depth on the wire."""
        return cls(
            asset_id=asset_id,
            currency=currency,
            term=term,
            seq=seq,
            bids=[LevelOut.of(level) for level in depth.bids],
            asks=[LevelOut.of(level) for level in depth.asks],
        )


def _order_fields(order: OrderState) -> dict[str, Any]:
    """An order's fields as ``GET /v1/orders`` shows them, its side named for leasing."""
    if not order.term:  # the reads keep the two kinds apart; this one slipped through
        raise ValueError(f"order {order.id} is a trading order, not a lease order")
    fields = order_summary_out(order).model_dump()
    return fields | {"term": order.term, "side": _SIDE_NAME[order.side]}


def lease_order_summary_out(order: OrderState) -> LeaseOrderSummaryOut:
    """The lease order on the wire, without its leases."""
    return LeaseOrderSummaryOut(**_order_fields(order))


def lease_order_out(order: OrderState, leases: list[LeaseRow]) -> LeaseOrderOut:
    """The lease order on the wire, with ``leases``."""
    return LeaseOrderOut(**_order_fields(order), leases=[lease_out(x) for x in leases])


def _lease_fields(lease: LeaseRow) -> dict[str, Any]:
    return {
        "id": lease.id,
        "asset_id": lease.asset_id,
        "currency": lease.currency,
        "term": lease.term,
        "starts_at": time_of_ms(lease.starts_ms),
        "ends_at": time_of_ms(lease.ends_ms),
        "price_minor": amount_text(lease.price_minor),
        "qty_units": amount_text(lease.qty_units),
        "rent_minor": amount_text(lease.price_minor * lease.qty_units),
        "fee_minor": amount_text(int(lease.fee_minor)),
        "lessor": lease.lessor,
        "lessee": lease.lessee,
        "maker_order_id": lease.maker_order_id,
        "taker_order_id": lease.taker_order_id,
        "taker_side": _SIDE_NAME[Side(lease.taker_side)],
        "executed_at": time_of_ms(lease.executed_ms),
    }


def lease_out(lease: LeaseRow) -> LeaseOut:
    """A lease on the wire."""
    return LeaseOut(**_lease_fields(lease))


def my_lease_out(lease: LeaseRow, me: str) -> MyLeaseOut:
    """One of ``me``'s leases on the wire, from ``me``'s side."""
    role: LeaseRole = "lessor" if lease.lessor == me else "lessee"
    mine = Side.SELL if role == "lessor" else Side.BUY
    taker = Side(lease.taker_side) is mine
    return MyLeaseOut(
        **_lease_fields(lease),
        role=role,
        order_id=lease.taker_order_id if taker else lease.maker_order_id,
    )


def tape_lease_out(lease: LeaseRow) -> TapeLeaseOut:
    """A lease on a book's tape."""
    return TapeLeaseOut(
        id=lease.id,
        price_minor=amount_text(lease.price_minor),
        qty_units=amount_text(lease.qty_units),
        rent_minor=amount_text(lease.price_minor * lease.qty_units),
        maker_order_id=lease.maker_order_id,
        taker_order_id=lease.taker_order_id,
        taker_side=_SIDE_NAME[Side(lease.taker_side)],
        executed_at=time_of_ms(lease.executed_ms),
    )


def lease_book_out(book: LeaseBook) -> LeaseBookOut:
    """A lease book in an asset's list."""
    return LeaseBookOut(
        currency=book.currency,
        term=book.term,
        starts_at=time_of_ms(book.starts_ms),
        ends_at=time_of_ms(book.ends_ms),
        best_bid_minor=None if book.best_bid_minor is None else amount_text(book.best_bid_minor),
        best_ask_minor=None if book.best_ask_minor is None else amount_text(book.best_ask_minor),
    )
