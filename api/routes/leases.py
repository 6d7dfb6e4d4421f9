"""Leasing: lease orders and leases of the signed-in member, and the public lease books.

A lease order goes to the engine exactly as a trading order does (``api.routes.orders``:
the same engine, the same idempotency, the same refusals with their codes), with its
term: an ``offer`` holds the units it offers, a ``bid`` the rent it would pay, and a
match is a lease, which pays the rent and leaves the units where they were, promised
to the lessee over the term (``units_leased_out`` refuses what would sell or lease them
again). The two kinds of order are kept apart: ``/v1/lease-orders`` reads, cancels and
amends lease orders only (any other id is 404 ``unknown_order``), and ``/v1/orders``
lists trading orders only.

The lease books are public, named by asset, currency and term (its start and end days
as two path segments): ``GET /v1/lease-markets/{asset_id}`` lists an asset's, and each
has its depth and its tape. A malformed asset id, currency or term is 422, one that does
not exist 404, a book no order has opened reads empty.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key
from api.problems import PROBLEM_RESPONSES
from api.routes.orders import CursorQuery, LimitQuery, OptionalKey, OrderPath
from api.schemas.common import PAGE_SIZE_DEFAULT, Page
from api.schemas.leases import (
    LeaseBookDepthOut,
    LeaseMarketOut,
    LeaseOrderIn,
    LeaseOrderOut,
    LeaseOrderSummaryOut,
    LeaseTapeOut,
    MyLeaseOut,
    engine_side,
    lease_book_out,
    lease_order_out,
    lease_order_summary_out,
    my_lease_out,
    tape_lease_out,
)
from api.schemas.orders import AmendIn, OrderStatusName
from ledger.core.errors import InvalidInput
from ledger.core.timestamps import ms_of
from ledger.db.engine import read_connection
from market.data import DEPTH_LEVELS_DEFAULT, DEPTH_LEVELS_MAX, book_depth, require_book
from market.engine import (
    AmendRequest,
    BookKey,
    CancelRequest,
    MarketEngine,
    OrderRequest,
    Outcome,
)
from market.engine.lease_reads import (
    LEASE_TAPE_PAGE_DEFAULT,
    LEASE_TAPE_PAGE_MAX,
    LeaseRole,
    book_leases,
    lease_books,
    member_leases,
)
from market.engine.lease_terms import next_terms, term_key
from market.engine.reads import member_orders, order_outcome
from market.engine.remote import RemoteEngine
from market.engine.rows import MarketRows

router = APIRouter(prefix="/v1", tags=["leasing"], responses=PROBLEM_RESPONSES)

NEXT_TERMS_SHOWN: int = 4
"""``GET /v1/lease-markets/{asset_id}`` names this many one-period terms ahead."""
AssetPath = Annotated[str, Path(min_length=1, max_length=32, description="the asset's id")]
CurrencyPath = Annotated[str, Path(min_length=1, max_length=16, description="e.g. EUR")]
DayPath = Annotated[str, Path(min_length=1, max_length=10, description="YYYY-MM-DD")]


def _term(start: str, end: str) -> str:
    """The key of the term [``start``, ``end``) named by two path segments; 422
    ``term_malformed`` unless each is a day written ``YYYY-MM-DD``. Whether the asset
    offers that term is not asked: a book no order opened reads empty."""
    try:
        days = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise InvalidInput("term_malformed", "a term's days are written YYYY-MM-DD") from None
    key = term_key(*days)
    if key != f"{start}/{end}":  # fromisoformat takes 20270401 and other spellings
        raise InvalidInput("term_malformed", "a term's days are written YYYY-MM-DD")
    return key


async def _engine_answer(
    request: Request, asked: OrderRequest | CancelRequest | AmendRequest
) -> LeaseOrderOut:
    """``asked``'s outcome, from the engine, on the wire. A replay (the same request
    again) answers the order as it stands by then, with its leases so far."""
    market: MarketEngine | RemoteEngine = request.app.state.market
    outcome = await market.ask(asked)
    if not isinstance(outcome, Outcome):  # pragma: no cover - the engine answers in kind
        raise TypeError(f"the engine answered an order request with {outcome!r}")
    return lease_order_out(outcome.order, outcome.leases)


# -- writes -------------------------------------------------------------------------------


@router.post("/lease-orders", response_model=LeaseOrderOut, status_code=201)
async def place_lease_order(
    body: LeaseOrderIn, request: Request, caller: Caller, key: IdempotencyKey
) -> LeaseOrderOut:
    """Offer your units' output and usage rights over a term, or bid for another's. An
    offer holds its units and a bid its rent (a market bid its ``spend_minor``); it
    leases at once as far as it crosses, at the resting orders' prices, and what is left
    rests until its term ends at the latest (GTC, GTD) or is cancelled (IOC, market).
    Refusals, each changing nothing: 422 ``term_malformed``, ``term_off_boundary``,
    ``term_in_past``, ``term_ends_before_start``, ``term_too_long``, ``term_too_far``,
    ``units_leased_out``, ``lease_to_self``, and those of ``POST /v1/orders``
    (``price_off_tick``, ``insufficient_units``, ``insufficient_funds`` ...); 404
    ``unknown_asset``, ``unknown_currency``; 409 ``idempotency_conflict``."""
    asked = body.request(
        caller.address, ledger_key(caller.address, key), engine_side(body.side), body.term
    )
    return await _engine_answer(request, asked)


@router.delete("/lease-orders/{order_id}", response_model=LeaseOrderOut)
async def cancel_lease_order(
    order_id: OrderPath, request: Request, caller: Caller, key: OptionalKey
) -> LeaseOrderOut:
    """Cancel what rests of your lease order; its hold is released. 422
    ``order_not_open`` (unless this is a repeat: see ``DELETE /v1/orders/{id}``); 403
    ``not_your_order``; 404 ``unknown_order`` (a trading order included)."""
    asked = CancelRequest(
        owner=caller.address,
        order_id=order_id,
        key=ledger_key(caller.address, key or f"cancel/{order_id}"),
        actor=caller.address,
        lease=True,  # the engine answers unknown_order for a trading order
    )
    return await _engine_answer(request, asked)


@router.patch("/lease-orders/{order_id}", response_model=LeaseOrderOut)
async def amend_lease_order(
    order_id: OrderPath, body: AmendIn, request: Request, caller: Caller, key: IdempotencyKey
) -> LeaseOrderOut:
    """Give your resting lease order a new price and/or remaining quantity, as ``PATCH
    /v1/orders/{id}`` does; more units offered must be free over the term (422
    ``units_leased_out``). 403 ``not_your_order``; 404 ``unknown_order`` (a trading
    order included)."""
    asked = body.request(caller.address, order_id, ledger_key(caller.address, key), lease=True)
    return await _engine_answer(request, asked)


# -- the member's reads -------------------------------------------------------------------


@router.get("/lease-orders", response_model=Page[LeaseOrderSummaryOut])
def my_lease_orders(
    caller: Caller,
    ledger: LedgerDep,
    status: Annotated[OrderStatusName | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[LeaseOrderSummaryOut]:
    """Your lease orders, newest first (in ``status`` if given), without their leases."""
    with read_connection(ledger.engine) as conn:
        found = member_orders(
            conn, caller.address, status=status, before_id=cursor, limit=limit, lease=True
        )
    return Page.of([lease_order_summary_out(o) for o in found], found, limit, lambda o: o.id)


@router.get("/lease-orders/{order_id}", response_model=LeaseOrderOut)
def my_lease_order(order_id: OrderPath, caller: Caller, ledger: LedgerDep) -> LeaseOrderOut:
    """One of your lease orders as it stands, with its first 100 leases (``/v1/leases``
    pages through all). 403 ``not_your_order``; 404 ``unknown_order`` (a trading order
    included)."""
    with read_connection(ledger.engine) as conn:
        found = order_outcome(conn, order_id, owner=caller.address, lease=True)
    return lease_order_out(found.order, found.leases)


@router.get("/leases", response_model=Page[MyLeaseOut])
def my_leases(
    caller: Caller,
    ledger: LedgerDep,
    role: Annotated[LeaseRole | None, Query(description="lessor or lessee; both if none")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[MyLeaseOut]:
    """Your leases, as lessor or lessee (or as ``role`` only), newest first."""
    with read_connection(ledger.engine) as conn:
        found = member_leases(conn, caller.address, role=role, before_id=cursor, limit=limit)
    return Page.of([my_lease_out(x, caller.address) for x in found], found, limit, lambda x: x.id)


# -- public: the lease books --------------------------------------------------------------


@router.get("/lease-markets/{asset_id}", response_model=LeaseMarketOut)
def lease_market(asset_id: AssetPath, ledger: LedgerDep) -> LeaseMarketOut:
    """The asset's leasing: the period its terms fall on (``month`` or ``quarter``), the
    next four one-period terms (the one under way first), and its lease books whose
    term has not ended, by currency and term, with their best bid and ask. 422
    ``asset_id_*``; 404 ``unknown_asset``; 422 ``project_not_funded`` for the asset of a
    project not funded yet."""
    now_ms = ms_of(ledger.clock())
    with read_connection(ledger.engine) as conn:
        period = MarketRows(conn).asset_facts(asset_id).lease_period
        books = lease_books(conn, asset_id, now_ms)
    return LeaseMarketOut(
        asset_id=asset_id,
        lease_period=period,
        next_terms=next_terms(period, now_ms, NEXT_TERMS_SHOWN),
        books=[lease_book_out(b) for b in books],
    )


@router.get(
    "/lease-markets/{asset_id}/{currency}/{start}/{end}/book", response_model=LeaseBookDepthOut
)
def lease_book(
    asset_id: AssetPath,
    currency: CurrencyPath,
    start: DayPath,
    end: DayPath,
    ledger: LedgerDep,
    levels: Annotated[int, Query(ge=1, le=DEPTH_LEVELS_MAX)] = DEPTH_LEVELS_DEFAULT,
) -> LeaseBookDepthOut:
    """L2 depth of the lease book from its open orders: per side the best ``levels``
    prices (rents a unit), best first, with the units resting at each and the number of
    orders; ``seq`` is the journal seq the depth reflects."""
    term = _term(start, end)
    with read_connection(ledger.engine) as conn:
        book = require_book(conn, asset_id, currency)
        found = book_depth(conn, BookKey(book.asset_id, book.currency, term), levels)
    return LeaseBookDepthOut.of(book.asset_id, book.currency, term, found.seq, found.depth)


@router.get(
    "/lease-markets/{asset_id}/{currency}/{start}/{end}/leases", response_model=LeaseTapeOut
)
def lease_tape(
    asset_id: AssetPath,
    currency: CurrencyPath,
    start: DayPath,
    end: DayPath,
    ledger: LedgerDep,
    cursor: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="the last lease id seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=LEASE_TAPE_PAGE_MAX)] = LEASE_TAPE_PAGE_DEFAULT,
) -> LeaseTapeOut:
    """The lease book's tape, oldest first: its leases after ``cursor`` (from the first,
    without one)."""
    term = _term(start, end)
    with read_connection(ledger.engine) as conn:
        book = require_book(conn, asset_id, currency)
        found = book_leases(conn, book.asset_id, book.currency, term, after_id=cursor, limit=limit)
    last = found[-1].id if found else cursor
    return LeaseTapeOut(
        asset_id=book.asset_id,
        currency=book.currency,
        term=term,
        items=[tape_lease_out(x) for x in found],
        next_cursor=None if last is None else str(last),
    )
