"""Buy-out plans on the wire.

A proposal names the asset, the currency and its installments; the buyer is the caller.
``price_minor`` (the price of one unit) comes in as every amount does
(``api.schemas.funding.AmountIn``: a string of digits, or a JSON integer up to 2**53 - 1)
and leaves as a string of digits; ``units`` is a JSON integer. Times are RFC 3339 text.
The bounds here are the boundary's; the ledger checks every one again.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.common import Address, AmountText, AssetId, Integer, Strict, Time, amount_text
from api.schemas.funding import AmountIn
from ledger.core import limits
from ledger.outputs.buyout_records import BuyoutRecord, InstallmentState, PlanState
from ledger.outputs.buyouts import INSTALLMENTS_MAX

__all__ = [
    "BuyoutIn",
    "BuyoutOut",
    "InstallmentIn",
    "InstallmentOut",
    "SellerOut",
    "buyout_out",
]


class InstallmentIn(Strict):
    """One installment: ``units`` of ``seller``'s at ``price_minor`` a unit, due at
    ``due_at`` (after now, within ten years)."""

    seller: Address
    due_at: Time
    units: Integer = Field(ge=1, le=limits.TOTAL_UNITS_MAX)
    price_minor: AmountIn


class BuyoutIn(Strict):
    """A buy-out plan the caller proposes to buy under."""

    asset_id: AssetId
    currency: str = Field(min_length=1, max_length=10)
    installments: list[InstallmentIn] = Field(min_length=1, max_length=INSTALLMENTS_MAX)


class SellerOut(BaseModel):
    """A seller named in the plan: its units under it, and whether (in which entry) it
    accepted."""

    seller: str
    units: int
    accepted: bool
    accepted_seq: int | None
    hold_id: str | None


class InstallmentOut(BaseModel):
    """An installment and how it stands: its state, the attempts to settle it, when the
    next is due (``next_attempt_at``) and the entry that paid or defaulted it."""

    number: int
    seller: str
    due_at: datetime
    units: int
    price_minor: AmountText
    cash_minor: AmountText
    state: InstallmentState
    attempts: int
    next_attempt_at: datetime | None
    settled_seq: int | None


class BuyoutOut(BaseModel):
    """A buy-out plan as it stands."""

    id: int
    asset_id: str
    buyer: str
    currency: str
    state: PlanState
    created_seq: int
    state_seq: int
    sellers: list[SellerOut]
    installments: list[InstallmentOut]


_WAITING = (InstallmentState.SCHEDULED, InstallmentState.MISSED)


def buyout_out(plan: BuyoutRecord) -> BuyoutOut:
    """A plan's wire form (``next_attempt_at`` only for an installment still to settle)."""
    return BuyoutOut(
        id=plan.id,
        asset_id=plan.asset_id,
        buyer=plan.buyer,
        currency=plan.currency,
        state=plan.state,
        created_seq=plan.created_seq,
        state_seq=plan.state_seq,
        sellers=[
            SellerOut(
                seller=s.seller,
                units=s.units,
                accepted=s.accepted,
                accepted_seq=s.accepted_seq,
                hold_id=s.hold_id,
            )
            for s in plan.sellers
        ],
        installments=[
            InstallmentOut(
                number=i.number,
                seller=i.seller,
                due_at=i.due_at,
                units=i.units,
                price_minor=amount_text(i.price_minor),
                cash_minor=amount_text(i.cash_minor),
                state=i.state,
                attempts=i.attempts,
                next_attempt_at=i.next_attempt_at if i.state in _WAITING else None,
                settled_seq=i.settled_seq,
            )
            for i in plan.installments
        ],
    )
