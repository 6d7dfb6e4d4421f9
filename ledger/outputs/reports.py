"""Public reads of outputs: a period's entitlements per holder (entitled, delivered,
waived, sold back, outstanding), its settlements, and an asset's outputs page: its
kinds, operator and share, the open periods with their plan ("what is being grown this
period") and the past periods with what each unit of rights yielded, so that buyers can
compare assets.

The yield per unit of rights of a kind in a period is what the holders shared (produced
less the operator's share first) over the rights at the record time (the asset's
``total_units``): given exactly as ``numerator`` / ``denominator``, and as a decimal
string rounded down to ``YIELD_DECIMALS`` places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, select

from ledger.core.errors import InvalidInput, LedgerError
from ledger.db.schema import OutputEntitlement, OutputPeriod, OutputSettlement, table
from ledger.journal.entries import load_payloads
from ledger.outputs.operators import OperatorTerms, OutputKindRecord, list_output_kinds, operator_of
from ledger.outputs.periods import PeriodRecord, PeriodState, get_period, get_periods
from ledger.outputs.production import ProductionRecord, production_of
from ledger.outputs.requests import Plan, plans_of
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset

__all__ = [
    "ASSET_PAGE_PERIODS_MAX",
    "REPORT_PAGE_MAX",
    "YIELD_DECIMALS",
    "AssetOutputs",
    "EntitlementLine",
    "HolderEntitlements",
    "PastPeriod",
    "SettlementLine",
    "YieldLine",
    "asset_outputs",
    "holder_entitlements",
    "period_entitlements",
    "period_production",
    "period_productions",
    "period_settlements",
    "yield_lines",
    "yield_text",
]

REPORT_PAGE_MAX: Final = 200
ASSET_PAGE_PERIODS_MAX: Final = 20  # past periods on an asset's page, newest first
YIELD_DECIMALS: Final = 6
_entitlements = table(OutputEntitlement)
_settlements = table(OutputSettlement)
_periods = table(OutputPeriod)


@dataclass(frozen=True, slots=True)
class EntitlementLine:
    """A holder's entitlement to one kind, and what became of it."""

    kind: str
    rights_units: int
    entitled: int
    delivered: int
    waived: int
    sold_back: int

    @property
    def outstanding(self) -> int:
        """What is still owed: entitled less delivered, waived and sold back."""
        return self.entitled - self.delivered - self.waived - self.sold_back


@dataclass(frozen=True, slots=True)
class HolderEntitlements:
    """A holder's entitlements in a period, a line per kind (by name)."""

    holder: str
    lines: list[EntitlementLine]


def _limit(limit: int) -> None:
    if not 1 <= limit <= REPORT_PAGE_MAX:
        raise InvalidInput("limit_out_of_range", f"limit must be 1..{REPORT_PAGE_MAX}")


def period_entitlements(
    conn: Connection, period_id: int, *, after: str | None = None, limit: int = 50
) -> list[HolderEntitlements]:
    """The period's entitlements by holder (address order), at most ``limit`` holders
    (1..``REPORT_PAGE_MAX``), those after the address ``after`` if given; empty before
    production. ``NotFound(unknown_period)``; ``InvalidInput`` for a malformed ``after``."""
    _limit(limit)
    get_period(conn, period_id)
    holders = select(_entitlements.c.holder).where(_entitlements.c.period_id == period_id)
    if after is not None:  # a holder's address: nothing else is compared in SQL
        holders = holders.where(_entitlements.c.holder > validate_address(after))
    page = [
        h for (h,) in conn.execute(holders.distinct().order_by(_entitlements.c.holder).limit(limit))
    ]
    if not page:
        return []
    rows = conn.execute(
        select(_entitlements)
        .where(_entitlements.c.period_id == period_id, _entitlements.c.holder.in_(page))
        .order_by(_entitlements.c.holder, _entitlements.c.kind)
    ).all()
    found: dict[str, list[EntitlementLine]] = {h: [] for h in page}
    for r in rows:
        found[r.holder].append(
            EntitlementLine(r.kind, r.rights_units, r.entitled, r.delivered, r.waived, r.sold_back)
        )
    return [HolderEntitlements(h, lines) for h, lines in found.items()]


def holder_entitlements(conn: Connection, period_id: int, address: str) -> HolderEntitlements:
    """``address``'s entitlements in the period (no lines if it has none);
    ``NotFound(unknown_period)``, ``InvalidInput`` for a malformed address."""
    address = validate_address(address)
    get_period(conn, period_id)
    rows = conn.execute(
        select(_entitlements)
        .where(_entitlements.c.period_id == period_id, _entitlements.c.holder == address)
        .order_by(_entitlements.c.kind)
    ).all()
    lines = [
        EntitlementLine(r.kind, r.rights_units, r.entitled, r.delivered, r.waived, r.sold_back)
        for r in rows
    ]
    return HolderEntitlements(address, lines)


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """A delivery, waiver or sell-back as listed."""

    seq: int
    kind: str
    holder: str
    action: str
    quantity: int
    cash_minor: int | None
    note: str


def period_settlements(
    conn: Connection, period_id: int, *, after_seq: int | None = None, limit: int = 50
) -> list[SettlementLine]:
    """The period's settlements in seq order, at most ``limit``, after ``after_seq``."""
    _limit(limit)
    get_period(conn, period_id)
    query = select(_settlements).where(_settlements.c.period_id == period_id)
    if after_seq is not None:
        query = query.where(_settlements.c.seq > after_seq)
    rows = conn.execute(query.order_by(_settlements.c.seq).limit(limit)).all()
    return [
        SettlementLine(
            r.seq,
            r.kind,
            r.holder,
            r.action,
            r.quantity,
            None if r.cash_minor is None else int(r.cash_minor),
            r.note,
        )
        for r in rows
    ]


def period_production(conn: Connection, period: PeriodRecord) -> ProductionRecord | None:
    """The period's production, if recorded."""
    (production,) = period_productions(conn, [period])
    return production


def period_productions(
    conn: Connection, periods: Sequence[PeriodRecord]
) -> list[ProductionRecord | None]:
    """Each period's production (as ``period_production``), in the order given: their
    ``output.produce`` entries read together (a statement per ``IN_CHUNK`` of them)."""
    seqs = [p.produced_seq for p in periods if p.produced_seq is not None]
    payloads = load_payloads(conn, seqs)  # nothing else of the entries is needed
    found: list[ProductionRecord | None] = []
    for period in periods:
        seq = period.produced_seq
        if seq is None:
            found.append(None)
        elif seq not in payloads:
            raise RuntimeError(f"period {period.id} is produced without a production entry")
        else:
            found.append(production_of(conn, payloads[seq], seq))
    return found


@dataclass(frozen=True, slots=True)
class YieldLine:
    """What one kind gave in a past period: produced, the operator's share first, and
    what each unit of rights yielded (``numerator / denominator`` smallest units)."""

    kind: str
    produced: int
    operator_first: int
    numerator: int
    denominator: int

    @property
    def per_unit(self) -> str:
        """The yield per unit of rights as a decimal, rounded down (``yield_text``)."""
        return yield_text(self.numerator, self.denominator)


@dataclass(frozen=True, slots=True)
class PastPeriod:
    """A produced period on an asset's page."""

    period: PeriodRecord
    lines: list[YieldLine]


@dataclass(frozen=True, slots=True)
class AssetOutputs:
    """An asset's outputs page (module docstring). ``operator`` is None while the asset
    has none (no output terms yet)."""

    asset_id: str
    total_units: int
    kinds: list[OutputKindRecord]
    operator: OperatorTerms | None
    open_periods: list[tuple[PeriodRecord, Plan]]
    past_periods: list[PastPeriod]


def yield_text(numerator: int, denominator: int) -> str:
    """``numerator / denominator`` as a decimal with ``YIELD_DECIMALS`` places, rounded
    down (both whole, the denominator positive)."""
    scaled = numerator * 10**YIELD_DECIMALS // denominator
    whole, frac = divmod(scaled, 10**YIELD_DECIMALS)
    return f"{whole}.{frac:0{YIELD_DECIMALS}d}"


def yield_lines(production: ProductionRecord, total_units: int) -> list[YieldLine]:
    """What each kind of a production yielded per unit of rights of ``total_units``."""
    return [
        YieldLine(
            kind,
            q,
            production.operator_first[kind],
            q - production.operator_first[kind],
            total_units,
        )
        for kind, q in production.produced.items()
    ]


def _newest_period_ids(conn: Connection, asset_id: str, state: PeriodState) -> list[int]:
    """The ids of the asset's newest ``ASSET_PAGE_PERIODS_MAX`` periods in ``state``,
    newest first."""
    rows = conn.execute(
        select(_periods.c.id)
        .where(_periods.c.asset_id == asset_id, _periods.c.state == state.value)
        .order_by(_periods.c.id.desc())
        .limit(ASSET_PAGE_PERIODS_MAX)
    )
    return [int(period_id) for (period_id,) in rows]


def asset_outputs(conn: Connection, asset_id: str) -> AssetOutputs:
    """The asset's outputs page: kinds, operator, its open periods (at most
    ``ASSET_PAGE_PERIODS_MAX``) with their plans, and its last ``ASSET_PAGE_PERIODS_MAX``
    produced periods with their yields. ``NotFound(unknown_asset)``."""
    asset = get_asset(conn, asset_id)
    try:
        operator: OperatorTerms | None = operator_of(conn, asset_id)
    except LedgerError:
        operator = None
    open_ids = _newest_period_ids(conn, asset_id, PeriodState.OPEN)
    produced_ids = _newest_period_ids(conn, asset_id, PeriodState.PRODUCED)
    periods = get_periods(conn, [*open_ids, *produced_ids])
    opened, produced = periods[: len(open_ids)], periods[len(open_ids) :]
    open_periods = list(zip(opened, plans_of(conn, opened), strict=True))
    past: list[PastPeriod] = []
    for period, production in zip(produced, period_productions(conn, produced), strict=True):
        if production is None:  # pragma: no cover - a produced period has its production
            continue
        past.append(PastPeriod(period, yield_lines(production, asset.total_units)))
    return AssetOutputs(
        asset_id, asset.total_units, list_output_kinds(conn, asset_id), operator, open_periods, past
    )
