"""Outputs and entitlements: an asset's operator terms and output kinds, its production
periods, the holders' requests and the plan, production and the entitlements it gives,
deliveries, waivers and sell-backs, and the reports.

Who may write: output terms, an admin; kinds, periods, production and deliveries, the
asset's operator (or an admin: ``require_asset_operator``); requests, waivers and
sell-backs, every member for itself, the ledger checking that it had rights at the
record time (403 ``no_rights``) or holds the entitlement. Everything else is public:
plans, entitlements, settlements and yields are for everyone to read, buyers included.

Every PUT and POST takes an ``Idempotency-Key`` and keeps its answer
(``api.idempotency.once``, scoped to the caller): a repeat gets the first answer, the
key with another body 409 ``idempotency_conflict``. The ledger's entries are keyed too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ModelT, keyed_once
from api.policy import require_admin, require_asset_operator, require_output_operator
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, Page, amount_text
from api.schemas.outputs import (
    AssetOutputsOut,
    DeliveryIn,
    HolderEntitlementsOut,
    OpenPeriodOut,
    OutputKindIn,
    OutputKindOut,
    OutputTermsIn,
    OutputTermsOut,
    PastPeriodOut,
    PeriodDetailOut,
    PeriodIn,
    PeriodOut,
    PlanOut,
    ProductionIn,
    ProductionOut,
    RequestIn,
    RequestOut,
    SettlementIn,
    SettlementLineOut,
    SettlementOut,
    YieldLineOut,
    holder_out,
    kind_out,
    period_out,
    plan_out,
    production_out,
    settlement_out,
    terms_out,
)
from ledger.core import validate_asset_id
from ledger.db.engine import read_connection
from ledger.journal.write import Ledger
from ledger.outputs.operators import (
    define_output_kind,
    list_output_kinds,
    operator_of,
    set_output_terms,
)
from ledger.outputs.periods import (
    PERIODS_PAGE_MAX,
    PeriodTimes,
    get_period,
    list_periods,
    open_period,
)
from ledger.outputs.production import Buyback, record_production
from ledger.outputs.reports import (
    REPORT_PAGE_MAX,
    asset_outputs,
    holder_entitlements,
    period_entitlements,
    period_production,
    period_settlements,
)
from ledger.outputs.requests import plan_of, submit_request
from ledger.outputs.settlements import SettlementRecord, deliver, sell_back, waive

router = APIRouter(prefix="/v1", tags=["outputs"], responses=PROBLEM_RESPONSES)
AssetPath = Annotated[str, Path(min_length=1, max_length=32, description="the asset's id")]
PeriodPath = Annotated[int, Path(ge=1, le=2**62, description="the period's id")]
AddressPath = Annotated[str, Path(min_length=1, max_length=64, description="a member's address")]


def _once(
    ledger: Ledger,
    caller_address: str,
    key: str,
    request: dict[str, Any],
    status: int,
    run: Callable[[str], ModelT],
    answer: type[ModelT],
) -> ModelT:
    return keyed_once(
        ledger, area="outputs", caller=caller_address, key=key, request=request,
        status=status, run=run, answer=answer,
    )  # fmt: skip


def _operator_of(ledger: Ledger, period_id: int) -> str:
    """The operator the period's asset is run by (its terms'), who pays and delivers."""
    with read_connection(ledger.engine) as conn:
        return operator_of(conn, get_period(conn, period_id).asset_id).operator


# -- operator terms and kinds -------------------------------------------------------------


@router.put("/assets/{asset_id}/output-terms", response_model=OutputTermsOut)
def put_output_terms(
    asset_id: AssetPath, body: OutputTermsIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> OutputTermsOut:
    """Set who operates an asset no project brought in and its share taken first (admin;
    403 ``not_admin``). 409 ``terms_from_project`` for an asset from a project, 404
    ``unknown_member`` for an operator who is not a member. The operator role is
    granted apart (``POST /v1/assets/{asset_id}/operators``)."""
    require_admin(caller)
    asset_id = validate_asset_id(asset_id)

    def run(scoped: str) -> OutputTermsOut:
        made = set_output_terms(
            ledger,
            asset_id,
            body.operator,
            body.operator_share_bp,
            key=scoped,
            actor=caller.address,
        )
        return terms_out(asset_id, made)

    request = {"terms": [asset_id, body.model_dump(mode="json")]}
    return _once(ledger, caller.address, key, request, 200, run, OutputTermsOut)


@router.post("/assets/{asset_id}/output-kinds", response_model=OutputKindOut, status_code=201)
def post_output_kind(
    asset_id: AssetPath, body: OutputKindIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> OutputKindOut:
    """Define a kind of output of the asset (its operator; 403 ``not_operator``). 409
    ``output_kind_exists``; 422 ``too_many_output_kinds`` past 20."""
    require_asset_operator(caller, validate_asset_id(asset_id))

    def run(scoped: str) -> OutputKindOut:
        return kind_out(
            define_output_kind(
                ledger,
                asset_id,
                body.name,
                body.unit,
                body.description,
                key=scoped,
                actor=caller.address,
            )
        )

    request = {"kind": [asset_id, body.model_dump(mode="json")]}
    return _once(ledger, caller.address, key, request, 201, run, OutputKindOut)


@router.get("/assets/{asset_id}/output-kinds", response_model=list[OutputKindOut])
def get_output_kinds(asset_id: AssetPath, ledger: LedgerDep) -> list[OutputKindOut]:
    """The asset's output kinds (public; at most 20)."""
    with read_connection(ledger.engine) as conn:
        return [kind_out(k) for k in list_output_kinds(conn, asset_id)]


# -- periods, requests, the plan ----------------------------------------------------------


@router.post("/assets/{asset_id}/periods", response_model=PeriodOut, status_code=201)
def post_period(
    asset_id: AssetPath, body: PeriodIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> PeriodOut:
    """Open a production period (the asset's operator). 422 ``period_ends_before_start``,
    ``period_too_long``, ``record_after_deadline``, ``request_deadline_passed``,
    ``period_too_far``, ``no_output_kinds``; 409 ``period_exists``."""
    require_asset_operator(caller, validate_asset_id(asset_id))
    times = PeriodTimes(body.starts_at, body.ends_at, body.record_at, body.request_deadline)

    def run(scoped: str) -> PeriodOut:
        return period_out(
            open_period(ledger, asset_id, body.name, times, key=scoped, actor=caller.address)
        )

    request = {"period": [asset_id, body.model_dump(mode="json")]}
    return _once(ledger, caller.address, key, request, 201, run, PeriodOut)


@router.get("/assets/{asset_id}/periods", response_model=Page[PeriodOut])
def get_periods(
    asset_id: AssetPath,
    ledger: LedgerDep,
    cursor: Annotated[int | None, Query(ge=1, le=2**62, description="the last id seen")] = None,
    limit: Annotated[int, Query(ge=1, le=PERIODS_PAGE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[PeriodOut]:
    """The asset's periods, newest first (public)."""
    with read_connection(ledger.engine) as conn:
        found = list_periods(conn, asset_id, before_id=cursor, limit=limit)
    return Page[PeriodOut].of([period_out(p) for p in found], found, limit, lambda p: p.id)


@router.get("/periods/{period_id}", response_model=PeriodDetailOut)
def get_a_period(period_id: PeriodPath, ledger: LedgerDep) -> PeriodDetailOut:
    """A period with its plan, and its production once recorded (public)."""
    with read_connection(ledger.engine) as conn:
        period = get_period(conn, period_id)
        plan = plan_of(conn, period_id)
        production = period_production(conn, period)
    return PeriodDetailOut(
        period=period_out(period),
        plan=plan_out(plan),
        production=None if production is None else production_out(production),
    )


@router.put("/periods/{period_id}/request", response_model=RequestOut)
def put_request(
    period_id: PeriodPath, body: RequestIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> RequestOut:
    """Your preferred mix for the period, replacing your last one: from its record time
    (422 ``requests_not_open``) until its deadline (422 ``request_deadline_passed``),
    only with rights at the record time (403 ``no_rights``). Weights in basis points
    summing to 10,000 (422 ``mix_not_whole``) over the asset's kinds (422
    ``unknown_output_kind``)."""

    def run(scoped: str) -> RequestOut:
        made = submit_request(
            ledger, period_id, caller.address, body.mix, key=scoped, actor=caller.address
        )
        return RequestOut(
            period_id=made.period_id,
            holder=made.holder,
            mix=made.mix,
            rights_units=made.rights_units,
            requested_seq=made.requested_seq,
        )

    request = {"request": [period_id, body.model_dump(mode="json")]}
    return _once(ledger, caller.address, key, request, 200, run, RequestOut)


@router.get("/periods/{period_id}/plan", response_model=PlanOut)
def get_plan(period_id: PeriodPath, ledger: LedgerDep) -> PlanOut:
    """The plan: the rights-weighted aggregate of the requests, per kind (public)."""
    with read_connection(ledger.engine) as conn:
        return plan_out(plan_of(conn, period_id))


# -- production and settlements -----------------------------------------------------------


@router.post("/periods/{period_id}/production", response_model=ProductionOut, status_code=201)
def post_production(
    period_id: PeriodPath,
    body: ProductionIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
) -> ProductionOut:
    """Record what the period produced of every kind and share it as entitlements (the
    asset's operator). 422 ``period_not_open`` (produced already),
    ``requests_still_open``, ``unknown_output_kind``, ``produced_incomplete``,
    ``project_not_funded``."""
    require_output_operator(caller, _operator_of(ledger, period_id))
    offers = {k: Buyback(o.currency, int(o.price_minor)) for k, o in body.buyback.items()}

    def run(scoped: str) -> ProductionOut:
        return production_out(
            record_production(
                ledger, period_id, body.produced, offers, key=scoped, actor=caller.address
            )
        )

    request = {"production": [period_id, body.model_dump(mode="json")]}
    return _once(ledger, caller.address, key, request, 201, run, ProductionOut)


@router.post("/periods/{period_id}/deliveries", response_model=SettlementOut, status_code=201)
def post_delivery(
    period_id: PeriodPath, body: DeliveryIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> SettlementOut:
    """Record a delivery to a holder (the asset's operator). 422 ``beyond_entitlement``,
    ``period_not_produced``; 404 ``no_entitlement``."""
    require_output_operator(caller, _operator_of(ledger, period_id))
    return _settled(ledger, caller.address, key, "deliver", period_id, body, lambda scoped: deliver(
        ledger, period_id, body.holder, body.kind, body.quantity, body.note, key=scoped,
        actor=caller.address,
    ))  # fmt: skip


@router.post("/periods/{period_id}/waivers", response_model=SettlementOut, status_code=201)
def post_waiver(
    period_id: PeriodPath,
    body: SettlementIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
) -> SettlementOut:
    """Give up part of your own entitlement. 422 ``beyond_entitlement``; 404
    ``no_entitlement``."""
    return _settled(ledger, caller.address, key, "waive", period_id, body, lambda scoped: waive(
        ledger, period_id, caller.address, body.kind, body.quantity, key=scoped,
        actor=caller.address,
    ))  # fmt: skip


@router.post("/periods/{period_id}/sell-backs", response_model=SettlementOut, status_code=201)
def post_sell_back(
    period_id: PeriodPath,
    body: SettlementIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
) -> SettlementOut:
    """Sell part of your own entitlement back to the operator at its buy-back price, the
    cash in the same entry. 422 ``no_buyback``, ``sell_back_to_self``,
    ``insufficient_funds``, ``beyond_entitlement``."""
    return _settled(ledger, caller.address, key, "sell_back", period_id, body, lambda scoped: (
        sell_back(ledger, period_id, caller.address, body.kind, body.quantity, key=scoped,
                  actor=caller.address)
    ))  # fmt: skip


def _settled(
    ledger: Ledger,
    caller: str,
    key: str,
    action: str,
    period_id: int,
    body: BaseModel,
    settle: Callable[[str], SettlementRecord],
) -> SettlementOut:
    """A delivery, waiver or sell-back (``settle``, given the journal key), its answer
    kept under the caller's ``key``."""
    request = {action: [period_id, body.model_dump(mode="json")]}

    def run(scoped: str) -> SettlementOut:
        return settlement_out(settle(scoped))

    return _once(ledger, caller, key, request, 201, run, SettlementOut)


# -- reports ------------------------------------------------------------------------------


@router.get("/periods/{period_id}/entitlements", response_model=Page[HolderEntitlementsOut])
def get_entitlements(
    period_id: PeriodPath,
    ledger: LedgerDep,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=64, description="the last holder seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=REPORT_PAGE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[HolderEntitlementsOut]:
    """The period's entitlements by holder: entitled, delivered, waived, sold back and
    outstanding per kind (public)."""
    with read_connection(ledger.engine) as conn:
        found = period_entitlements(conn, period_id, after=cursor, limit=limit)
    return Page[HolderEntitlementsOut].of(
        [holder_out(h) for h in found], found, limit, lambda h: h.holder
    )


@router.get("/periods/{period_id}/entitlements/{address}", response_model=HolderEntitlementsOut)
def get_holder_entitlements(
    period_id: PeriodPath, address: AddressPath, ledger: LedgerDep
) -> HolderEntitlementsOut:
    """One holder's entitlements in the period (public; no lines if it has none)."""
    with read_connection(ledger.engine) as conn:
        return holder_out(holder_entitlements(conn, period_id, address))


@router.get("/periods/{period_id}/settlements", response_model=Page[SettlementLineOut])
def get_settlements(
    period_id: PeriodPath,
    ledger: LedgerDep,
    cursor: Annotated[int | None, Query(ge=1, le=2**62, description="the last seq seen")] = None,
    limit: Annotated[int, Query(ge=1, le=REPORT_PAGE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[SettlementLineOut]:
    """The period's deliveries, waivers and sell-backs, oldest first (public)."""
    with read_connection(ledger.engine) as conn:
        found = period_settlements(conn, period_id, after_seq=cursor, limit=limit)
    items = [
        SettlementLineOut(
            seq=s.seq,
            kind=s.kind,
            holder=s.holder,
            action=s.action,
            quantity=s.quantity,
            note=s.note,
            cash_minor=None if s.cash_minor is None else amount_text(s.cash_minor),
        )
        for s in found
    ]
    return Page[SettlementLineOut].of(items, found, limit, lambda s: s.seq)


@router.get("/assets/{asset_id}/outputs", response_model=AssetOutputsOut)
def get_asset_outputs(asset_id: AssetPath, ledger: LedgerDep) -> AssetOutputsOut:
    """The asset's outputs page (public): its kinds, operator and share, what is being
    grown this period (the open periods' plans), and what each unit of rights yielded
    in past periods."""
    with read_connection(ledger.engine) as conn:
        page = asset_outputs(conn, asset_id)
    return AssetOutputsOut(
        asset_id=page.asset_id,
        total_units=page.total_units,
        kinds=[kind_out(k) for k in page.kinds],
        operator=None if page.operator is None else terms_out(asset_id, page.operator),
        open_periods=[
            OpenPeriodOut(period=period_out(p), plan=plan_out(plan))
            for p, plan in page.open_periods
        ],
        past_periods=[
            PastPeriodOut(
                period=period_out(x.period),
                yields=[
                    YieldLineOut(
                        kind=y.kind,
                        produced=y.produced,
                        operator_first=y.operator_first,
                        per_unit=y.per_unit,
                        numerator=y.numerator,
                        denominator=y.denominator,
                    )
                    for y in x.lines
                ],
            )
            for x in page.past_periods
        ],
    )
