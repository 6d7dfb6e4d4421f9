"""What ``dpn verify`` checks of outputs, beside the journal's own invariants.

- Every kind of a produced period was shared exactly: its entitlements sum to what was
  produced, and the operator's share first is within what was produced.
- No entitlement was settled beyond itself: delivered + waived + sold back never exceeds
  what it entitled to, and none of them is negative.
- The settlements recorded against each entitlement add up to its counters.
- Each buy-out seller's hold holds exactly the units of its installments still to
  settle (scheduled or missed) under a plan not cancelled, and nothing once none is.
- Each produced period's entitlement rows are the ones its ``output.produce`` entry
  hashed (``entitlements_sha256``): a row changed, moved or dropped behind the ledger
  is found even when the sums still agree.

Each check is one grouped query over the tables; a problem is named by period, kind and
holder so it can be found.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, func, select

from ledger.db.schema import (
    BuyoutInstallment,
    BuyoutPlan,
    BuyoutSeller,
    Hold,
    OutputEntitlement,
    OutputPeriod,
    OutputProduction,
    OutputSettlement,
    table,
)
from ledger.journal.entries import load_entries
from ledger.outputs.buyout_records import InstallmentState, PlanState
from ledger.outputs.production import entitlements_digest

__all__ = ["audit_outputs"]

_plans = table(BuyoutPlan)
_sellers = table(BuyoutSeller)
_installments = table(BuyoutInstallment)
_holds = table(Hold)
_STILL_DUE = (InstallmentState.SCHEDULED.value, InstallmentState.MISSED.value)
_CANCELLED = PlanState.CANCELLED.value
_periods = table(OutputPeriod)
_production = table(OutputProduction)
_entitlements = table(OutputEntitlement)
_settlements = table(OutputSettlement)

# The columns of an entitlement's counters, by the settlement action that moves each.
_COUNTERS = {"deliver": "delivered", "waive": "waived", "sell_back": "sold_back"}


def audit_outputs(conn: Connection) -> list[str]:
    """Every problem found (empty when sound), one line each."""
    problems: list[str] = []
    shared: dict[tuple[int, str], int] = {}
    for period, kind, total in conn.execute(
        select(
            _entitlements.c.period_id, _entitlements.c.kind, func.sum(_entitlements.c.entitled)
        ).group_by(_entitlements.c.period_id, _entitlements.c.kind)
    ):
        shared[(period, kind)] = int(total)  # PostgreSQL sums BIGINT as NUMERIC
    for period, kind, quantity, first in conn.execute(
        select(
            _production.c.period_id,
            _production.c.kind,
            _production.c.quantity,
            _production.c.operator_quantity,
        )
    ):
        if shared.get((period, kind), 0) != quantity:
            problems.append(
                f"outputs: period {period} {kind}: entitlements sum to"
                f" {shared.get((period, kind), 0)}, production was {quantity}"
            )
        if not 0 <= first <= quantity:
            problems.append(
                f"outputs: period {period} {kind}: operator's share {first} of {quantity}"
            )
    settled: defaultdict[tuple[int, str, str, str], int] = defaultdict(int)
    for period, kind, holder, action, quantity in conn.execute(
        select(
            _settlements.c.period_id,
            _settlements.c.kind,
            _settlements.c.holder,
            _settlements.c.action,
            func.sum(_settlements.c.quantity),
        ).group_by(
            _settlements.c.period_id,
            _settlements.c.kind,
            _settlements.c.holder,
            _settlements.c.action,
        )
    ):
        settled[(period, kind, holder, action)] = int(quantity)
    seen: set[tuple[int, str, str, str]] = set()
    for row in conn.execute(
        select(
            _entitlements.c.period_id,
            _entitlements.c.kind,
            _entitlements.c.holder,
            _entitlements.c.entitled,
            _entitlements.c.delivered,
            _entitlements.c.waived,
            _entitlements.c.sold_back,
        )
    ):
        where = f"outputs: period {row.period_id} {row.kind} {row.holder}"
        counters = {"delivered": row.delivered, "waived": row.waived, "sold_back": row.sold_back}
        if row.entitled < 0 or any(value < 0 for value in counters.values()):
            problems.append(f"{where}: a negative amount")
        if sum(counters.values()) > row.entitled:
            problems.append(f"{where}: settled {sum(counters.values())} of {row.entitled}")
        for action, column in _COUNTERS.items():
            key = (row.period_id, row.kind, row.holder, action)
            seen.add(key)
            if settled.get(key, 0) != counters[column]:
                problems.append(
                    f"{where}: {column} {counters[column]}, settlements say {settled.get(key, 0)}"
                )
    for key in settled.keys() - seen:
        problems.append(f"outputs: period {key[0]} {key[1]} {key[2]}: settled, never entitled")
    problems.extend(_buyout_holds(conn))
    problems.extend(_hashed_as_journaled(conn))
    return problems


def _buyout_holds(conn: Connection) -> list[str]:
    """Each accepted seller's hold against what it has left to deliver."""
    left = (
        select(
            _sellers.c.hold_id,
            func.coalesce(func.sum(_installments.c.units), 0).label("units"),
        )
        .join(_plans, _plans.c.id == _sellers.c.plan_id)
        .outerjoin(
            _installments,
            (_installments.c.plan_id == _sellers.c.plan_id)
            & (_installments.c.seller == _sellers.c.seller)
            & _installments.c.state.in_(_STILL_DUE),
        )
        .where(_sellers.c.hold_id.is_not(None), _plans.c.state != _CANCELLED)
        .group_by(_sellers.c.hold_id)
    )
    wanted = {hold_id: int(units) for hold_id, units in conn.execute(left)}
    held = {
        hold_id: int(remaining)
        for hold_id, remaining in conn.execute(
            select(_holds.c.id, _holds.c.remaining)
            .join(_sellers, _sellers.c.hold_id == _holds.c.id)
            .where(_holds.c.closed_seq.is_(None))
        )
    }
    return [
        f"buy-outs: hold {hold_id} holds {held.get(hold_id, 0)} units,"
        f" its seller has {wanted.get(hold_id, 0)} left to deliver"
        for hold_id in sorted(wanted.keys() | held.keys())
        if wanted.get(hold_id, 0) != held.get(hold_id, 0)
    ]


def _hashed_as_journaled(conn: Connection) -> list[str]:
    """Each produced period whose entitlement rows do not hash to what its entry says:
    the rows ordered as production made them (by kind, then holder, in Python's order
    of strings, not the database's collation)."""
    produced = dict(
        conn.execute(
            select(_periods.c.id, _periods.c.produced_seq).where(
                _periods.c.produced_seq.is_not(None)
            )
        ).all()
    )
    entries = {e.seq: e for e in load_entries(conn, sorted(produced.values()))}
    problems = []
    for period_id, seq in sorted(produced.items()):
        rows = sorted(
            (kind, holder, int(entitled))
            for kind, holder, entitled in conn.execute(
                select(
                    _entitlements.c.kind, _entitlements.c.holder, _entitlements.c.entitled
                ).where(_entitlements.c.period_id == period_id)
            )
        )
        found = entitlements_digest([(holder, kind, entitled) for kind, holder, entitled in rows])
        if found != entries[seq].payload.get("entitlements_sha256"):
            problems.append(
                f"outputs: period {period_id}: its entitlements are not those entry {seq} hashed"
            )
    return problems
