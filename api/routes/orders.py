"""Orders and trades of the signed-in member: place, cancel, amend, read.

A member acts for itself only: every order's owner is the caller. The engine
(``app.state.market``: a ``market.engine.MarketEngine``, or with several workers a
``market.engine.remote.RemoteEngine`` handing requests to the one engine process)
decides everything: the checks, the hold, the match, the settlement, each refusal with
its stable code; the routes here hand it a request and shape its answer, awaiting it on
the event loop (no thread is held while the order waits for its batch).

Idempotency is the engine's own: a request's ``Idempotency-Key``, scoped to the caller
(``ledger_key``), is the journal key of the entry it writes, so a repeat with the same
body answers the same order (201 for a placement, as the first answer; the order as it
stands by then) and one with another body 409 ``idempotency_conflict``. A cancel may come
without a key: its key is then derived from the order (``cancel/<id>``, which no key a
client sends can spell), so cancelling the same order twice answers the cancelled order.

Someone else's order is 403 ``not_your_order`` on every route, reads included (the
engine's answer to a cancel or an amendment): an order's id and owner are in the public
journal anyway, so a 404 would hide nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request

from api.deps import IDEMPOTENCY_KEY_HEADER, Caller, IdempotencyKey, LedgerDep, idempotency_key
from api.direct import DirectRoute
from api.idempotency import ledger_key
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Page
from api.schemas.orders import (
    AmendIn,
    MyTradeOut,
    OrderIn,
    OrderOut,
    OrderStatusName,
    OrderSummaryOut,
    my_trade_out,
    order_out,
    order_summary_out,
)
from ledger.db.engine import read_connection
from market.engine import (
    AmendRequest,
    CancelRequest,
    MarketEngine,
    OrderRequest,
    Outcome,
)
from market.engine.reads import member_orders, member_trades, order_outcome
from market.engine.remote import RemoteEngine

router = APIRouter(prefix="/v1", tags=["market"], responses=PROBLEM_RESPONSES)
OrderPath = Annotated[int, Path(ge=1, le=2**62, description="the order's id")]
CursorQuery = Annotated[
    int | None, Query(ge=1, le=2**62, description="the last id of the page before")
]
LimitQuery = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]


async def _optional_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_KEY_HEADER,
            description="Optional here: without one, a repeated cancel of the same order"
            " answers the cancelled order. With one, as on every POST.",
        ),
    ] = None,
) -> str | None:
    return None if key is None else await idempotency_key(request, key)


OptionalKey = Annotated[str | None, Depends(_optional_key)]


async def _engine_answer(
    request: Request, asked: OrderRequest | CancelRequest | AmendRequest
) -> OrderOut:
    """``asked``'s outcome, from the engine (which answers with a copy of the order as it
    stood when the request was done), on the wire."""
    market: MarketEngine | RemoteEngine = request.app.state.market
    outcome = await market.ask(asked)
    if not isinstance(outcome, Outcome):  # pragma: no cover - the engine answers in kind
        raise TypeError(f"the engine answered an order request with {outcome!r}")
    return order_out(outcome.order, outcome.trades)


# -- writes -------------------------------------------------------------------------------


async def place_order(
    body: OrderIn, request: Request, caller: Caller, key: IdempotencyKey
) -> OrderOut:
    """Place an order for yourself. A sell holds its units and a buy its cash (a market
    buy its ``spend_minor``) before it meets the book; it trades at once as far as it
    crosses, at the resting orders' prices, and what is left rests (GTC, GTD) or is
    cancelled (IOC, market). Refusals, each changing nothing: 422 ``price_off_tick``,
    ``qty_off_lot``, ``price_out_of_range``, ``qty_out_of_range``, ``order_expired``,
    ``expiry_missing``, ``bad_time_in_force``, ``insufficient_units``,
    ``insufficient_funds``, ``operator_retained_minimum``, ``project_not_funded``,
    ``post_only_would_cross``, ``fok_unfillable``, ``too_many_open_orders``; 404
    ``unknown_asset``, ``unknown_currency``; 409 ``idempotency_conflict``."""
    asked = body.request(caller.address, ledger_key(caller.address, key), body.side)
    return await _engine_answer(request, asked)


# The busiest route of all: answered without FastAPI's dependency solving (``api.direct``).
router.add_api_route(
    "/orders",
    place_order,
    methods=["POST"],
    response_model=OrderOut,
    status_code=201,
    route_class_override=DirectRoute,
)


@router.delete("/orders/{order_id}", response_model=OrderOut)
async def cancel_order(
    order_id: OrderPath, request: Request, caller: Caller, key: OptionalKey
) -> OrderOut:
    """Cancel what rests of your order; its hold is released. 422 ``order_not_open``
    for an order filled, cancelled or expired (unless this is a repeat: see the
    module's docstring); 403 ``not_your_order``; 404 ``unknown_order``."""
    asked = CancelRequest(
        owner=caller.address,
        order_id=order_id,
        key=ledger_key(caller.address, key or f"cancel/{order_id}"),
        actor=caller.address,
        lease=False,  # a lease order is cancelled at /v1/lease-orders
    )
    return await _engine_answer(request, asked)


@router.patch("/orders/{order_id}", response_model=OrderOut)
async def amend_order(
    order_id: OrderPath, body: AmendIn, request: Request, caller: Caller, key: IdempotencyKey
) -> OrderOut:
    """Give your resting order a new price and/or remaining quantity; its hold follows.
    A smaller quantity keeps its place in the queue, a new price or a larger quantity
    loses it (and may trade at once). 422 ``not_amendable`` (nothing named),
    ``order_not_open``, ``price_off_tick``, ``qty_off_lot``, ``insufficient_units``,
    ``insufficient_funds``; 403 ``not_your_order``; 404 ``unknown_order``."""
    asked = body.request(caller.address, order_id, ledger_key(caller.address, key), lease=False)
    return await _engine_answer(request, asked)


# -- reads --------------------------------------------------------------------------------


@router.get("/orders", response_model=Page[OrderSummaryOut])
def my_orders(
    caller: Caller,
    ledger: LedgerDep,
    status: Annotated[OrderStatusName | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[OrderSummaryOut]:
    """Your orders, newest first (in ``status`` if given), without their trades."""
    with read_connection(ledger.engine) as conn:
        found = member_orders(conn, caller.address, status=status, before_id=cursor, limit=limit)
    return Page.of([order_summary_out(o) for o in found], found, limit, lambda o: o.id)


@router.get("/orders/{order_id}", response_model=OrderOut)
def my_order(order_id: OrderPath, caller: Caller, ledger: LedgerDep) -> OrderOut:
    """One of your orders as it stands, with its first 100 trades (``/v1/trades`` pages
    through all). 403 ``not_your_order``; 404 ``unknown_order``."""
    with read_connection(ledger.engine) as conn:
        found = order_outcome(conn, order_id, owner=caller.address)
    return order_out(found.order, found.trades)


@router.get("/trades", response_model=Page[MyTradeOut])
def my_trades(
    caller: Caller,
    ledger: LedgerDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[MyTradeOut]:
    """Your trades, as maker or taker, newest first."""
    with read_connection(ledger.engine) as conn:
        found = member_trades(conn, caller.address, before_id=cursor, limit=limit)
    return Page.of([my_trade_out(t, caller.address) for t in found], found, limit, lambda t: t.id)
