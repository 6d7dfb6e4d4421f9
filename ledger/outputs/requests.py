"""Output requests and the plan: what the rights holders of a period would like produced.

A rights holder at a period's record time states its preferred mix of the asset's output
kinds, a weight in basis points per kind summing to exactly 10,000 (``output.request``).
Requests are taken from the record time (the rights are known) until the request
deadline; a new request replaces the holder's last one. The **plan** is the
rights-weighted aggregate of the requests, public: per kind ``sum(rights x weight_bp)``
and that weight's share of the whole in basis points by the largest remainder method
(kinds in name order break ties), so the shares are integers summing to 10,000 (or all
0 while nobody has asked).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Final

from sqlalchemy import Connection, delete, select

from ledger.core import EntryDraft, EntryKind, JsonValue
from ledger.core.entitlements import BP_WHOLE
from ledger.core.errors import Forbidden, InvalidInput, Refused
from ledger.core.shares import largest_remainder
from ledger.core.timestamps import format_time, to_utc
from ledger.db.bulk import bulk_insert
from ledger.db.params import chunks
from ledger.db.schema import OutputRequest, table
from ledger.journal.write import Ledger
from ledger.outputs.operators import OUTPUT_KINDS_PER_ASSET_MAX, OutputKindRecord, list_output_kinds
from ledger.outputs.periods import PeriodRecord, PeriodState, get_period
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset
from ledger.rights import holder_rights

__all__ = [
    "Plan",
    "PlanLine",
    "RequestRecord",
    "plan_of",
    "plans_of",
    "request_of",
    "requests_window",
    "submit_request",
]

_requests = table(OutputRequest)
_REQUEST_COLUMNS: Final = (
    "period_id",
    "holder",
    "kind",
    "weight_bp",
    "rights_units",
    "requested_seq",
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A holder's request for a period: its mix (kind -> basis points) and its rights at
    the record time, as of the entry ``requested_seq``."""

    period_id: int
    holder: str
    mix: dict[str, int]
    rights_units: int
    requested_seq: int


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One kind in the plan: its rights-weighted weight and its share of the plan."""

    kind: str
    unit: str
    weight: int  # sum over requests of rights x weight_bp
    share_bp: int


@dataclass(frozen=True, slots=True)
class Plan:
    """A period's plan: a line per output kind of the asset (by name), how many holders
    asked and with how many rights, of the asset's ``total_units``."""

    period_id: int
    lines: list[PlanLine]
    requesters: int
    requested_rights: int
    total_units: int


def _checked_mix(mix: Mapping[str, int]) -> dict[str, int]:
    """The mix, or ``InvalidInput``: ``mix_empty``, ``mix_too_long``, ``mix_weight``
    (a weight not a whole 0..10,000), ``mix_not_whole`` (weights not summing to 10,000)."""
    if not isinstance(mix, Mapping) or not mix:
        raise InvalidInput("mix_empty", "name at least one kind and its weight")
    if len(mix) > OUTPUT_KINDS_PER_ASSET_MAX:
        raise InvalidInput(
            "mix_too_long", f"a mix names at most {OUTPUT_KINDS_PER_ASSET_MAX} kinds"
        )
    for kind, weight in mix.items():
        if (
            not isinstance(kind, str)
            or isinstance(weight, bool)
            or not isinstance(weight, int)
            or not 0 <= weight <= BP_WHOLE
        ):
            raise InvalidInput("mix_weight", f"each weight is a whole 0..{BP_WHOLE} basis points")
    if sum(mix.values()) != BP_WHOLE:
        raise InvalidInput("mix_not_whole", f"the weights must sum to exactly {BP_WHOLE}")
    return dict(sorted(mix.items()))


def requests_window(period: PeriodRecord, now_utc: datetime) -> None:
    """Raise unless requests are taken now: ``Refused(requests_not_open)`` before the
    record time, ``Refused(request_deadline_passed)`` from the deadline on (or once the
    period is produced)."""
    times = period.times
    if period.state is not PeriodState.OPEN or now_utc >= times.request_deadline:
        raise Refused(
            "request_deadline_passed",
            f"requests for period {period.id} closed at {format_time(times.request_deadline)}",
        )
    if now_utc < times.record_at:
        raise Refused(
            "requests_not_open",
            f"requests for period {period.id} open at its record time "
            f"{format_time(times.record_at)}",
        )


def submit_request(
    ledger: Ledger, period_id: int, holder: str, mix: Mapping[str, int], *, key: str, actor: str
) -> RequestRecord:
    """Record ``holder``'s preferred mix for the period, replacing its last request;
    journaled as ``output.request`` (period, holder, mix), the rows keeping its rights at
    the record time.

    Refuses, writing nothing: a malformed mix (``_checked_mix``'s codes) or a kind the
    asset does not produce (``InvalidInput(unknown_output_kind)``); an unknown period
    (``NotFound(unknown_period)``); before the record time or from the deadline on
    (``requests_window``); a holder without rights at the record time
    (``Forbidden(no_rights)``). A replay of the key returns the request as it stands."""
    holder = validate_address(holder)
    wanted = _checked_mix(mix)
    payload: dict[str, JsonValue] = {"period_id": period_id, "holder": holder, "mix": dict(wanted)}
    draft = EntryDraft(
        kind=EntryKind.OUTPUT_REQUEST, idempotency_key=key, actor=actor, payload=payload
    )
    with ledger.write() as tx:

        def write(seq: int) -> None:
            period = get_period(tx.conn, period_id)
            known = {k.name for k in list_output_kinds(tx.conn, period.asset_id)}
            unknown = sorted(set(wanted) - known)
            if unknown:
                raise InvalidInput(
                    "unknown_output_kind",
                    f"{period.asset_id} produces no {unknown[0]!r}",
                    kinds=",".join(unknown)[:200],
                )
            requests_window(period, to_utc(tx.ledger.clock()))
            rights = holder_rights(tx.conn, period.asset_id, holder, period.times.record_at)
            if rights.rights <= 0:
                raise Forbidden(
                    "no_rights",
                    f"{holder} had no rights in {period.asset_id} at the period's record time",
                )
            tx.conn.execute(
                delete(_requests).where(
                    _requests.c.period_id == period_id, _requests.c.holder == holder
                )
            )
            rows = [(period_id, holder, k, w, rights.rights, seq) for k, w in wanted.items()]
            bulk_insert(tx.conn, _requests, _REQUEST_COLUMNS, rows)

        tx.append_once(draft, write)
        found = request_of(tx.conn, period_id, holder)
    if found is None:  # pragma: no cover - written above, or by the replayed entry
        raise RuntimeError(f"the request of {holder} for period {period_id} is not stored")
    return found


def request_of(conn: Connection, period_id: int, holder: str) -> RequestRecord | None:
    """``holder``'s current request for the period, or None."""
    rows = conn.execute(
        select(_requests)
        .where(_requests.c.period_id == period_id, _requests.c.holder == holder)
        .order_by(_requests.c.kind)
    ).all()
    if not rows:
        return None
    return RequestRecord(
        period_id,
        holder,
        {r.kind: r.weight_bp for r in rows},
        int(rows[0].rights_units),
        int(rows[0].requested_seq),
    )


def _plan(
    period_id: int,
    kinds: Sequence[OutputKindRecord],
    total_units: int,
    rows: Iterable[tuple[str, str, int, int]],
) -> Plan:
    """The plan of the period whose request rows (holder, kind, weight_bp, rights) these
    are, the asset having ``kinds`` and ``total_units``."""
    weights = dict.fromkeys((k.name for k in kinds), 0)
    holders: dict[str, int] = {}
    for holder, kind, weight_bp, rights in rows:
        weights[kind] = weights.get(kind, 0) + int(rights) * int(weight_bp)
        holders[holder] = int(rights)
    claims = list(weights.items())
    if any(w for _, w in claims):
        shares = largest_remainder(BP_WHOLE, claims)
    else:
        shares = dict.fromkeys(weights, 0)
    units = {k.name: k.unit for k in kinds}
    return Plan(
        period_id=period_id,
        lines=[PlanLine(k, units.get(k, ""), w, shares[k]) for k, w in claims],
        requesters=len(holders),
        requested_rights=sum(holders.values()),
        total_units=total_units,
    )


def plan_of(conn: Connection, period_id: int) -> Plan:
    """The period's plan (module docstring); ``NotFound(unknown_period)``. Sums in
    Python over the period's request rows (at most ``OUTPUT_KINDS_PER_ASSET_MAX`` a
    holder), in integers."""
    (plan,) = plans_of(conn, [get_period(conn, period_id)])
    return plan


def plans_of(conn: Connection, periods: Sequence[PeriodRecord]) -> list[Plan]:
    """The plans of ``periods`` (each as ``plan_of`` gives it), in the order given: the
    request rows of all of them read together (a statement per ``IN_CHUNK`` periods, in
    period order so that one period's rows are summed at a time), the kinds and units
    once per asset."""
    assets: dict[str, tuple[list[OutputKindRecord], int]] = {
        asset_id: (list_output_kinds(conn, asset_id), get_asset(conn, asset_id).total_units)
        for asset_id in dict.fromkeys(p.asset_id for p in periods)
    }
    by_id = {p.id: p for p in periods}
    plans: dict[int, Plan] = {}
    for part in chunks(sorted(by_id)):
        rows = conn.execute(
            select(
                _requests.c.period_id,
                _requests.c.holder,
                _requests.c.kind,
                _requests.c.weight_bp,
                _requests.c.rights_units,
            )
            .where(_requests.c.period_id.in_(part))
            .order_by(_requests.c.period_id)
        )
        for period_id, group in groupby(rows, key=itemgetter(0)):
            kinds, total_units = assets[by_id[period_id].asset_id]
            plans[period_id] = _plan(period_id, kinds, total_units, (r[1:] for r in group))
    for period_id, period in by_id.items():
        if period_id not in plans:  # nobody has asked
            kinds, total_units = assets[period.asset_id]
            plans[period_id] = _plan(period_id, kinds, total_units, ())
    return [plans[p.id] for p in periods]
