"""Output and usage rights by the clock (``ledger.rights``): who has the use of an
asset's units at an instant, leases counted. Public, as the cap table is: both are read
from the journal anyone may verify.

``at`` is an ISO 8601 time with its zone (now when absent; a naive time is 422
``time_naive``); an instant before the asset was registered is 404 ``unknown_asset``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import LedgerDep
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import Time
from ledger.db.engine import read_connection
from ledger.rights import HolderRights, holder_rights, rights_table

router = APIRouter(prefix="/v1", tags=["leasing"], responses=PROBLEM_RESPONSES)
AssetPath = Annotated[str, Path(max_length=32)]
AddressPath = Annotated[str, Path(max_length=64)]
AtQuery = Annotated[Time | None, Query(description="the instant; now when absent")]
RIGHTS_PAGE_DEFAULT: Final = 100
RIGHTS_PAGE_MAX: Final = 1_000


class RightsOut(BaseModel):
    """One holder's units of the asset at the instant (amounts as decimal strings)."""

    holder: str = Field(description="the account holder: a member, or the asset's unissued pool")
    owned: str
    leased_out: str
    leased_in: str
    rights: str = Field(description="owned - leased_out + leased_in")


class RightsTableOut(BaseModel):
    """A page of the rights table: holders in order; ``next_cursor`` asks for the next."""

    asset_id: str
    total_units: str
    at: datetime
    as_of_seq: int = Field(description="the journal seq the instant is read at")
    rows: list[RightsOut]
    next_cursor: str | None


def _out(row: HolderRights) -> RightsOut:
    return RightsOut(
        holder=row.holder,
        owned=str(row.owned),
        leased_out=str(row.leased_out),
        leased_in=str(row.leased_in),
        rights=str(row.rights),
    )


@router.get("/assets/{asset_id}/rights", response_model=RightsTableOut)
def asset_rights(
    asset_id: AssetPath,
    ledger: LedgerDep,
    at: AtQuery = None,
    cursor: Annotated[str | None, Query(max_length=80, description="the last holder seen")] = None,
    limit: Annotated[int, Query(ge=1, le=RIGHTS_PAGE_MAX)] = RIGHTS_PAGE_DEFAULT,
) -> RightsTableOut:
    """Every holder's rights in the asset's units at ``at``: what it owned then, less
    what it had leased out over ``at``, plus what it had leased in. All pages of one
    instant sum to ``total_units``."""
    moment = ledger.clock() if at is None else at
    with read_connection(ledger.engine) as conn:
        table = rights_table(conn, asset_id, moment)
    rows = [r for r in table.rows if cursor is None or r.holder > cursor]
    page = rows[:limit]
    return RightsTableOut(
        asset_id=table.asset_id,
        total_units=str(table.total_units),
        at=moment,
        as_of_seq=table.seq,
        rows=[_out(r) for r in page],
        next_cursor=page[-1].holder if len(rows) > limit else None,
    )


@router.get("/assets/{asset_id}/rights/{address}", response_model=RightsOut)
def member_rights(
    asset_id: AssetPath, address: AddressPath, ledger: LedgerDep, at: AtQuery = None
) -> RightsOut:
    """One member's rights in the asset's units at ``at`` (zeros for a member with
    none). 422 for a malformed address."""
    moment = ledger.clock() if at is None else at
    with read_connection(ledger.engine) as conn:
        return _out(holder_rights(conn, asset_id, address, moment))
