"""What owners ask of the engine: place, cancel and amend an order, and its limits.

Each request names the member acting (``owner``), the journal idempotency key its
entries are recorded under (``key``) and the actor written on them. ``check_*`` refuse
a malformed request with a stable code before the engine looks at any book; the checks
that need a book (its tick and lot, the owner's balances, the operator's minimum) are
the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ledger.core.errors import InvalidInput
from ledger.core.limits import IDEMPOTENCY_KEY_LEN_MAX
from market.book import QTY_MAX_UNITS, SelfTradePrevention, Side, TimeInForce
from market.engine.lease_terms import check_lease_period

__all__ = [
    "EXPIRES_AHEAD_MAX_MS",
    "OPEN_ORDERS_PER_OWNER_MAX",
    "PRICE_MAX_MINOR",
    "SPEND_MAX_MINOR",
    "AmendRequest",
    "CancelRequest",
    "OrderRequest",
    "OrderType",
    "Request",
    "TermsRequest",
    "UnitTransferRequest",
    "check_amend",
    "check_key",
    "check_order",
    "check_terms",
]

PRICE_MAX_MINOR: Final = 2**63 - 1
"""The engine's largest price, narrower than the book's: prices are sortable BIGINTs in
the database (in wei, 9.2 ETH a unit; an asset of a million units worth 9.2M ETH)."""
SPEND_MAX_MINOR: Final = 10**30
"""The largest budget of a market buy."""
EXPIRES_AHEAD_MAX_MS: Final = 366 * 24 * 3600 * 1000
"""A GTD order lives at most a year."""
OPEN_ORDERS_PER_OWNER_MAX: Final = 10_000
"""The most orders one member may have resting at once, over all books."""


class OrderType(StrEnum):
    """A limit order names its worst price; a market order takes what the book offers."""

    LIMIT = "limit"
    MARKET = "market"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """Place an order on the book of (``asset_id``, ``currency``).

    A limit order names ``price_minor`` and ``qty_units``. A market sell names
    ``qty_units``; a market buy names ``spend_minor``, the most it pays in all, which is
    what it holds. ``expires_at_ms`` goes with GTD only.
    """

    owner: str
    asset_id: str
    currency: str
    side: Side
    type: OrderType
    key: str
    actor: str
    price_minor: int | None = None
    qty_units: int | None = None
    spend_minor: int | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expires_at_ms: int | None = None
    post_only: bool = False
    self_trade: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    term: str = ""
    """A lease order's term key (``market.engine.lease_terms``): a sell offers the output
    and usage rights of its units over the term, a buy bids for them, and the price is
    the rent of a unit for the whole term. Empty for a trading order."""


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel what rests of one of the owner's orders."""

    owner: str
    order_id: int
    key: str
    actor: str
    lease: bool | None = None
    """The kind of order named: a lease order (True), a trading order (False) or either
    (None); an open order of the other kind is ``unknown_order``."""


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """Give a resting order of the owner's a new price and/or remaining quantity."""

    owner: str
    order_id: int
    key: str
    actor: str
    price_minor: int | None = None
    qty_units: int | None = None
    lease: bool | None = None  # as CancelRequest's


@dataclass(frozen=True, slots=True)
class TermsRequest:
    """Set an asset's tick and lot, for all its books (only while none holds an order)."""

    asset_id: str
    tick_size_minor: int
    lot_size_units: int
    key: str
    actor: str
    lease_period: str | None = None  # the period lease terms fall on; None keeps it


@dataclass(frozen=True, slots=True)
class UnitTransferRequest:
    """Move ``qty_units`` of the owner's units of ``asset_id`` to ``recipient`` (a
    ``transfer`` entry, as ``POST /v1/transfers`` writes): through the engine, so that
    units leased out or offered for lease stay (``units_leased_out``), as they do
    from a sell."""

    owner: str
    recipient: str
    asset_id: str
    qty_units: int
    key: str
    actor: str
    memo: str = ""


Request = OrderRequest | CancelRequest | AmendRequest | TermsRequest | UnitTransferRequest


def _int_in(what: str, value: object, high: int, code: str) -> int:
    if type(value) is not int or not 0 < value <= high:
        raise InvalidInput(code, f"{what} must be an integer in 1..{high}, not {value!r}")
    return value


def check_key(key: str) -> None:
    """An idempotency key fits the journal's limit."""
    if not key or len(key) > IDEMPOTENCY_KEY_LEN_MAX:
        raise InvalidInput("idempotency_key_length", "the idempotency key is 1..128 characters")


def check_order(r: OrderRequest, now_ms: int) -> None:
    """Refuse an order whose own fields do not make sense (the book is not consulted)."""
    check_key(r.key)
    if r.type is OrderType.LIMIT:
        _int_in("price_minor", r.price_minor, PRICE_MAX_MINOR, "price_out_of_range")
        _int_in("qty_units", r.qty_units, QTY_MAX_UNITS, "qty_out_of_range")
        if r.spend_minor is not None:
            raise InvalidInput("spend_with_limit", "spend_minor goes with a market buy only")
    else:
        if r.price_minor is not None:
            raise InvalidInput("price_with_market", "a market order names no price")
        if r.time_in_force not in (TimeInForce.IOC, TimeInForce.GTC) or r.post_only:
            raise InvalidInput(
                "bad_time_in_force", "a market order never rests: no GTD, FOK or post-only"
            )
        if r.side is Side.BUY:
            _int_in("spend_minor", r.spend_minor, SPEND_MAX_MINOR, "spend_out_of_range")
            if r.qty_units is not None:
                raise InvalidInput("qty_with_market_buy", "a market buy names spend_minor")
            if r.self_trade is SelfTradePrevention.DECREMENT:
                raise InvalidInput("bad_self_trade", "a market buy cannot decrement")
        else:
            _int_in("qty_units", r.qty_units, QTY_MAX_UNITS, "qty_out_of_range")
            if r.spend_minor is not None:
                raise InvalidInput("spend_with_sell", "a market sell names qty_units")
    if r.time_in_force is TimeInForce.GTD:
        expires = r.expires_at_ms
        if type(expires) is not int:
            raise InvalidInput("expiry_missing", "a GTD order names expires_at")
        if expires <= now_ms:
            raise InvalidInput("order_expired", "expires_at is not in the future")
        if expires - now_ms > EXPIRES_AHEAD_MAX_MS:
            raise InvalidInput("expiry_too_far", "a GTD order lives at most 366 days")
    elif r.expires_at_ms is not None:
        raise InvalidInput("expiry_without_gtd", "expires_at goes with GTD only")
    if r.post_only and r.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        raise InvalidInput("bad_time_in_force", "a post-only order must be able to rest")


def check_amend(r: AmendRequest) -> None:
    """Refuse an amendment that names nothing to change or a value out of range."""
    check_key(r.key)
    if r.price_minor is None and r.qty_units is None:
        raise InvalidInput("not_amendable", "an amendment names a new price or quantity")
    if r.price_minor is not None:
        _int_in("price_minor", r.price_minor, PRICE_MAX_MINOR, "price_out_of_range")
    if r.qty_units is not None:
        _int_in("qty_units", r.qty_units, QTY_MAX_UNITS, "qty_out_of_range")


def check_terms(r: TermsRequest) -> None:
    """Refuse a tick or lot out of range."""
    check_key(r.key)
    _int_in("tick_size_minor", r.tick_size_minor, PRICE_MAX_MINOR, "tick_size_out_of_range")
    _int_in("lot_size_units", r.lot_size_units, QTY_MAX_UNITS, "lot_size_out_of_range")
    if r.lease_period is not None:
        check_lease_period(r.lease_period)
