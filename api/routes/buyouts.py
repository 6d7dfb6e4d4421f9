"""Buy-out plans: a buyer proposes to buy named sellers' units in installments, the
sellers accept (their units under the plan are then held), either side may cancel a
proposal; installments settle by the clock (``ledger.outputs.buyout_clock``: in the server
and ``dpn buyouts run``), not by a route.

Reading a plan needs no sign-in; listing one's plans does. Every POST takes an
``Idempotency-Key`` and keeps its answer (``api.idempotency.once``, scoped to the
caller): a plan moves on, so a retry gets the answer the first request got. Who may act
is the ledger's rule (``ledger.outputs.buyouts``): the caller is the buyer of what it
proposes; only a seller of the plan accepts (403 ``not_seller``); only its buyer or a
seller cancels (403 ``not_party``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import keyed_once
from api.problems import PROBLEM_RESPONSES
from api.schemas.buyouts import BuyoutIn, BuyoutOut, buyout_out
from api.schemas.common import PAGE_SIZE_DEFAULT, AssetId, Page
from ledger.db.engine import read_connection
from ledger.journal.write import Ledger
from ledger.outputs.buyout_records import BUYOUT_PAGE_MAX, PlanRole, get_plan, list_plans
from ledger.outputs.buyouts import (
    BuyoutTerms,
    InstallmentTerms,
    accept_plan,
    cancel_plan,
    propose_plan,
)

router = APIRouter(prefix="/v1", tags=["buy-outs"], responses=PROBLEM_RESPONSES)
PlanPath = Annotated[int, Path(ge=1, le=2**62, description="the plan's id")]
CursorQuery = Annotated[
    int | None, Query(ge=1, le=2**62, description="the last id of the page before")
]
LimitQuery = Annotated[int, Query(ge=1, le=BUYOUT_PAGE_MAX)]


def _once(
    ledger: Ledger,
    caller: str,
    key: str,
    request: Any,
    status: int,
    run: Callable[[str], BuyoutOut],
) -> BuyoutOut:
    return keyed_once(
        ledger, area="buyouts", caller=caller, key=key, request=request, status=status,
        run=run, answer=BuyoutOut,
    )  # fmt: skip


@router.post("/buyouts", response_model=BuyoutOut, status_code=201)
def propose(body: BuyoutIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey) -> BuyoutOut:
    """Propose a buy-out plan with the caller as buyer; it is ``proposed`` until every
    seller has accepted. 404 ``unknown_asset``, ``unknown_currency``, ``unknown_member``;
    422 ``project_not_funded``, ``buyout_self`` (the caller among the sellers),
    ``due_passed``, ``due_too_far``, ``installment_out_of_range``, ``amount_over_limit``,
    and ``buyout_exceeds_holding`` for a seller whose installments sum to more units than
    it has available now. Nothing is written on a refusal."""
    terms = BuyoutTerms(
        asset_id=body.asset_id,
        currency=body.currency,
        installments=tuple(
            InstallmentTerms(i.seller, i.due_at, i.units, i.price_minor) for i in body.installments
        ),
    )

    def run(scoped: str) -> BuyoutOut:
        return buyout_out(
            propose_plan(ledger, caller.address, terms, key=scoped, actor=caller.address)
        )

    return _once(ledger, caller.address, key, {"propose": body.model_dump(mode="json")}, 201, run)


@router.post("/buyouts/{plan_id}/accept", response_model=BuyoutOut)
def accept(plan_id: PlanPath, caller: Caller, ledger: LedgerDep, key: IdempotencyKey) -> BuyoutOut:
    """Accept a proposed plan as one of its sellers (others: 403 ``not_seller``): all of
    the caller's units under the plan are held from now on, so they cannot be sold or
    leased elsewhere; the last seller's acceptance makes the plan ``active``. 409
    ``already_accepted``; 422 ``plan_not_proposed``, ``insufficient_units`` (no longer
    available), ``units_leased_out`` (the hold would leave units leased out uncovered)."""

    def run(scoped: str) -> BuyoutOut:
        return buyout_out(
            accept_plan(ledger, plan_id, seller=caller.address, key=scoped, actor=caller.address)
        )

    return _once(ledger, caller.address, key, {"accept": plan_id}, 200, run)


@router.post("/buyouts/{plan_id}/cancel", response_model=BuyoutOut)
def cancel(plan_id: PlanPath, caller: Caller, ledger: LedgerDep, key: IdempotencyKey) -> BuyoutOut:
    """Cancel a proposed plan, as its buyer or one of its sellers (others: 403
    ``not_party``), releasing every hold placed; 422 ``plan_active`` once it is active or
    completed, ``plan_cancelled`` if it is already."""

    def run(scoped: str) -> BuyoutOut:
        return buyout_out(
            cancel_plan(ledger, plan_id, by=caller.address, key=scoped, actor=caller.address)
        )

    return _once(ledger, caller.address, key, {"cancel": plan_id}, 200, run)


@router.get("/buyouts", response_model=Page[BuyoutOut])
def my_buyouts(
    caller: Caller,
    ledger: LedgerDep,
    asset_id: Annotated[AssetId | None, Query()] = None,
    role: Annotated[PlanRole | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[BuyoutOut]:
    """The caller's plans, newest first: those it buys under (``role=buyer``), sells
    under (``role=seller``), or either; of ``asset_id`` only if given."""
    with read_connection(ledger.engine) as conn:
        found = list_plans(
            conn, caller.address, role=role, asset_id=asset_id, before_id=cursor, limit=limit
        )
    return Page.of([buyout_out(p) for p in found], found, limit, lambda p: p.id)


@router.get("/buyouts/{plan_id}", response_model=BuyoutOut)
def buyout(plan_id: PlanPath, ledger: LedgerDep) -> BuyoutOut:
    """One plan: its sellers (accepted or not) and installments (state, attempts, the
    next attempt). No sign-in: a plan's terms are public, as the journal is."""
    with read_connection(ledger.engine) as conn:
        return buyout_out(get_plan(conn, plan_id))
