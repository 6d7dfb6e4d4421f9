"""An asset's trading terms: its tick (prices) and lot (quantities), on all its books
(to trade and to lease), and the period its lease terms fall on."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key
from api.policy import require_asset_operator
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import Strict
from api.schemas.funding import AmountIn
from ledger.core import validate_asset_id
from ledger.db.engine import read_connection
from market.engine import TermsRequest, TermsSet
from market.engine.rows import MarketRows

router = APIRouter(prefix="/v1", tags=["market"], responses=PROBLEM_RESPONSES)
AssetPath = Path(min_length=1, max_length=32)


class TermsIn(Strict):
    """A tick in minor currency units per unit and a lot in units (integers or strings);
    the lease period (``month`` or ``quarter``) if it is to change."""

    tick_size_minor: AmountIn
    lot_size_units: AmountIn
    lease_period: Literal["month", "quarter"] | None = None


class TermsOut(BaseModel):
    """An asset's trading terms."""

    asset_id: str
    tick_size_minor: str
    lot_size_units: str
    lease_period: str


@router.get("/markets/{asset_id}/terms", response_model=TermsOut)
def get_terms(ledger: LedgerDep, asset_id: str = AssetPath) -> TermsOut:
    """The asset's tick and lot (1 and 1 until its operator sets them)."""
    validate_asset_id(asset_id)
    with read_connection(ledger.engine, snapshot=False) as conn:
        tick, lot, period = MarketRows(conn).terms_of(asset_id)
    return TermsOut(
        asset_id=asset_id, tick_size_minor=str(tick), lot_size_units=str(lot), lease_period=period
    )


@router.put("/markets/{asset_id}/terms", response_model=TermsOut)
async def put_terms(
    request: Request, body: TermsIn, caller: Caller, key: IdempotencyKey, asset_id: str = AssetPath
) -> TermsOut:
    """Set the asset's tick and lot, for every currency it trades in (and, if named, the
    period its lease terms fall on): its operator or an admin, and only while no order
    rests on any of its books, lease books included (``market_busy``)."""
    validate_asset_id(asset_id)
    require_asset_operator(caller, asset_id)
    terms = TermsRequest(
        asset_id=asset_id,
        tick_size_minor=body.tick_size_minor,
        lot_size_units=body.lot_size_units,
        key=ledger_key(caller.address, key),
        actor=caller.address,
        lease_period=body.lease_period,
    )
    done = await request.app.state.market.ask(terms)
    if not isinstance(done, TermsSet):  # pragma: no cover - the engine answers in kind
        raise TypeError(f"terms answered with {done!r}")
    return TermsOut(
        asset_id=done.asset_id,
        tick_size_minor=str(done.tick_size_minor),
        lot_size_units=str(done.lot_size_units),
        lease_period=done.lease_period,
    )
