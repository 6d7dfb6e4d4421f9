"""Outputs on the wire: operator terms, output kinds, periods, requests and the plan,
production and entitlements, settlements, and an asset's outputs page.

Quantities are whole smallest units of a kind (``g``, ``Wh``): JSON integers up to
10**15. Money (a buy-back price, a sell-back's cash) travels as a string of digits.
Times are RFC 3339. Every string and map has a limit, checked here and again by the
ledger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Address, AmountText, Integer, Strict, Time, amount_text
from ledger.core.entitlements import BP_WHOLE
from ledger.outputs.operators import (
    KIND_DESCRIPTION_LEN_MAX,
    KIND_NAME_PATTERN,
    KIND_UNIT_LEN_MAX,
    OUTPUT_KINDS_PER_ASSET_MAX,
    OperatorTerms,
    OutputKindRecord,
)
from ledger.outputs.periods import PERIOD_NAME_LEN_MAX, PeriodRecord
from ledger.outputs.production import PRODUCED_MAX, ProductionRecord
from ledger.outputs.reports import HolderEntitlements
from ledger.outputs.requests import Plan
from ledger.outputs.settlements import NOTE_LEN_MAX, SettlementRecord

__all__ = [
    "AssetOutputsOut",
    "BuybackIn",
    "DeliveryIn",
    "EntitlementLineOut",
    "HolderEntitlementsOut",
    "OpenPeriodOut",
    "OutputKindIn",
    "OutputKindOut",
    "OutputTermsIn",
    "OutputTermsOut",
    "PastPeriodOut",
    "PeriodDetailOut",
    "PeriodIn",
    "PeriodOut",
    "PlanLineOut",
    "PlanOut",
    "ProductionIn",
    "ProductionOut",
    "RequestIn",
    "RequestOut",
    "SettlementIn",
    "SettlementLineOut",
    "SettlementOut",
    "YieldLineOut",
    "holder_out",
    "kind_out",
    "period_out",
    "plan_out",
    "production_out",
    "settlement_out",
    "terms_out",
]

KindName = Annotated[str, StringConstraints(pattern=KIND_NAME_PATTERN)]
Bp = Annotated[Integer, Field(ge=0, le=BP_WHOLE)]
Quantity = Annotated[Integer, Field(ge=0, le=PRODUCED_MAX)]
PositiveQuantity = Annotated[Integer, Field(ge=1, le=PRODUCED_MAX)]
CurrencyCode = Annotated[str, StringConstraints(min_length=2, max_length=10)]


class OutputTermsIn(Strict):
    """Who operates an asset no project brought in, and its share taken first."""

    operator: Address
    operator_share_bp: Bp


class OutputTermsOut(BaseModel):
    """An asset's operator and share, and where they come from (``project`` or
    ``output_terms``)."""

    asset_id: str
    operator: str
    operator_share_bp: int
    source: str


class OutputKindIn(Strict):
    """A kind of output, counted in whole ``unit`` (its smallest unit: ``g``, ``Wh``)."""

    name: KindName = Field(examples=["tomato"])
    unit: str = Field(min_length=1, max_length=KIND_UNIT_LEN_MAX, examples=["g"])
    description: str = Field(default="", max_length=KIND_DESCRIPTION_LEN_MAX)


class OutputKindOut(BaseModel):
    name: str
    unit: str
    description: str
    defined_seq: int


class PeriodIn(Strict):
    """A production period: what it covers, when rights are read, when requests end."""

    name: str = Field(min_length=1, max_length=PERIOD_NAME_LEN_MAX, examples=["2027-Q1"])
    starts_at: Time
    ends_at: Time
    record_at: Time
    request_deadline: Time


class PeriodOut(BaseModel):
    id: int
    asset_id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    record_at: datetime
    request_deadline: datetime
    state: str
    opened_seq: int
    produced_seq: int | None


class RequestIn(Strict):
    """Your preferred mix: basis points per kind, summing to exactly 10,000."""

    mix: dict[KindName, Bp] = Field(
        max_length=OUTPUT_KINDS_PER_ASSET_MAX, examples=[{"tomato": 7000, "basil": 3000}]
    )


class RequestOut(BaseModel):
    period_id: int
    holder: str
    mix: dict[str, int]
    rights_units: int
    requested_seq: int


class PlanLineOut(BaseModel):
    kind: str
    unit: str
    weight: str  # sum of rights x basis points: may pass 2**53
    share_bp: int


class PlanOut(BaseModel):
    """The rights-weighted aggregate of a period's requests."""

    period_id: int
    lines: list[PlanLineOut]
    requesters: int
    requested_rights: int
    total_units: int


class BuybackIn(Strict):
    """The price of one smallest unit at which the operator buys entitlements back."""

    currency: CurrencyCode
    price_minor: AmountText


class ProductionIn(Strict):
    """What the period produced of every kind of the asset, and buy-back prices."""

    produced: dict[KindName, Quantity] = Field(max_length=OUTPUT_KINDS_PER_ASSET_MAX)
    buyback: dict[KindName, BuybackIn] = Field(
        default_factory=dict, max_length=OUTPUT_KINDS_PER_ASSET_MAX
    )


class ProductionKindOut(BaseModel):
    kind: str
    produced: int
    operator_first: int
    buyback_currency: str | None = None
    buyback_price_minor: str | None = None


class ProductionOut(BaseModel):
    """A period's production as its ``output.produce`` entry records it;
    ``entitlements_sha256`` checks the entitlement table (see ``ledger.outputs.production``)."""

    period_id: int
    seq: int
    operator: str
    operator_share_bp: int
    rights_seq: int
    holders: int
    entitlements_sha256: str
    kinds: list[ProductionKindOut]


class PeriodDetailOut(BaseModel):
    period: PeriodOut
    plan: PlanOut
    production: ProductionOut | None


class SettlementIn(Strict):
    """Part of your own entitlement to waive or sell back."""

    kind: KindName
    quantity: PositiveQuantity


class DeliveryIn(Strict):
    """A delivery against a holder's entitlement."""

    holder: Address
    kind: KindName
    quantity: PositiveQuantity
    note: str = Field(default="", max_length=NOTE_LEN_MAX)


class SettlementOut(BaseModel):
    seq: int
    period_id: int
    kind: str
    holder: str
    action: str
    quantity: int
    cash_minor: str | None
    currency: str | None
    note: str
    outstanding: int


class EntitlementLineOut(BaseModel):
    kind: str
    rights_units: int
    entitled: int
    delivered: int
    waived: int
    sold_back: int
    outstanding: int


class HolderEntitlementsOut(BaseModel):
    holder: str
    lines: list[EntitlementLineOut]


class SettlementLineOut(BaseModel):
    seq: int
    kind: str
    holder: str
    action: str
    quantity: int
    cash_minor: str | None
    note: str


class OpenPeriodOut(BaseModel):
    period: PeriodOut
    plan: PlanOut


class YieldLineOut(BaseModel):
    """What a unit of rights yielded of a kind: ``numerator / denominator`` smallest
    units exactly, and ``per_unit`` rounded down to 6 decimals."""

    kind: str
    produced: int
    operator_first: int
    per_unit: str
    numerator: int
    denominator: int


class PastPeriodOut(BaseModel):
    period: PeriodOut
    yields: list[YieldLineOut]


class AssetOutputsOut(BaseModel):
    asset_id: str
    total_units: int
    kinds: list[OutputKindOut]
    operator: OutputTermsOut | None
    open_periods: list[OpenPeriodOut]
    past_periods: list[PastPeriodOut]


# -- from the ledger's records ---------------------------------------------------------


def terms_out(asset_id: str, terms: OperatorTerms) -> OutputTermsOut:
    return OutputTermsOut(
        asset_id=asset_id,
        operator=terms.operator,
        operator_share_bp=terms.operator_share_bp,
        source=terms.source.value,
    )


def kind_out(kind: OutputKindRecord) -> OutputKindOut:
    return OutputKindOut(
        name=kind.name, unit=kind.unit, description=kind.description, defined_seq=kind.defined_seq
    )


def period_out(p: PeriodRecord) -> PeriodOut:
    t = p.times
    return PeriodOut(
        id=p.id,
        asset_id=p.asset_id,
        name=p.name,
        starts_at=t.starts_at,
        ends_at=t.ends_at,
        record_at=t.record_at,
        request_deadline=t.request_deadline,
        state=p.state.value,
        opened_seq=p.opened_seq,
        produced_seq=p.produced_seq,
    )


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        period_id=plan.period_id,
        lines=[
            PlanLineOut(kind=x.kind, unit=x.unit, weight=str(x.weight), share_bp=x.share_bp)
            for x in plan.lines
        ],
        requesters=plan.requesters,
        requested_rights=plan.requested_rights,
        total_units=plan.total_units,
    )


def production_out(p: ProductionRecord) -> ProductionOut:
    kinds = []
    for kind, produced in p.produced.items():
        offer = p.buyback.get(kind)
        kinds.append(
            ProductionKindOut(
                kind=kind,
                produced=produced,
                operator_first=p.operator_first[kind],
                buyback_currency=None if offer is None else offer.currency,
                buyback_price_minor=None if offer is None else amount_text(offer.price_minor),
            )
        )
    return ProductionOut(
        period_id=p.period_id,
        seq=p.seq,
        operator=p.operator,
        operator_share_bp=p.operator_share_bp,
        rights_seq=p.rights_seq,
        holders=p.holders,
        entitlements_sha256=p.entitlements_sha256,
        kinds=kinds,
    )


def holder_out(h: HolderEntitlements) -> HolderEntitlementsOut:
    return HolderEntitlementsOut(
        holder=h.holder,
        lines=[
            EntitlementLineOut(
                kind=x.kind,
                rights_units=x.rights_units,
                entitled=x.entitled,
                delivered=x.delivered,
                waived=x.waived,
                sold_back=x.sold_back,
                outstanding=x.outstanding,
            )
            for x in h.lines
        ],
    )


def settlement_out(s: SettlementRecord) -> SettlementOut:
    return SettlementOut(
        seq=s.seq,
        period_id=s.period_id,
        kind=s.kind,
        holder=s.holder,
        action=s.action.value,
        quantity=s.quantity,
        cash_minor=None if s.cash_minor is None else amount_text(s.cash_minor),
        currency=s.currency,
        note=s.note,
        outstanding=s.outstanding,
    )
