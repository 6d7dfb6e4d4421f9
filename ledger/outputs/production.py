"""Production and entitlements: the operator records what a period produced, and each
kind is shared at once (DESIGN.md, "Outputs and entitlements").

Per kind, ``ledger.core.entitlements``: the operator's share first (rounded down), the
rest pro rata to the rights every holder had at the period's record time
(``ledger.rights.rights_table``), by the largest remainder method, ties going to the
lower address (claims in address order): the entitlements sum exactly to what was
produced. The asset's unissued pool holds rights nobody else does; its operator runs
those units, so the pool's rights are added to the operator's claim.

One ``output.produce`` entry records it; its payload keeps the entry small however many
holders there are: the period, its record time and the seq the rights were read at, the
operator and its share, per kind what was produced and what the operator took first
(and the buy-back price if offered), the number of entitlement rows, and
``entitlements_sha256``: the SHA-256 of the JSON text (no spaces) of the list of
``[holder, kind, entitled]`` of every row stored, ordered by kind then holder, so
anyone can check the table against the entry (``entitlements_digest``). Rows: one
``output_production`` a kind; one ``output_entitlements`` a kind for every holder with
rights, and the operator (even without rights). Written through ``bulk_insert``: 100,000
holders take well under the 2 s of issue 14's target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, select, update

from ledger.core import EntryDraft, EntryKind, JsonValue, check_amount
from ledger.core.accounts import currency_of, member_holder
from ledger.core.entitlements import entitlements
from ledger.core.errors import InvalidInput, NotFound, Refused
from ledger.core.limits import TOTAL_UNITS_MAX
from ledger.core.timestamps import format_time, to_utc
from ledger.db.bulk import bulk_insert
from ledger.db.schema import Currency, OutputEntitlement, OutputPeriod, OutputProduction, table
from ledger.journal.entries import entry_by_key
from ledger.journal.write import Ledger, WriteTx
from ledger.outputs.operators import OUTPUT_KINDS_PER_ASSET_MAX, list_output_kinds, operator_of
from ledger.outputs.periods import PeriodRecord, PeriodState, get_period
from ledger.rights import RightsTable, rights_table

__all__ = [
    "PRODUCED_MAX",
    "Buyback",
    "ProductionRecord",
    "entitlements_digest",
    "production_of",
    "record_production",
]

PRODUCED_MAX: Final = TOTAL_UNITS_MAX  # 10**15 smallest units of one kind in a period
_periods = table(OutputPeriod)
_production = table(OutputProduction)
_entitlements = table(OutputEntitlement)
_currencies = table(Currency)
_ENTITLEMENT_COLUMNS: Final = (
    "period_id",
    "kind",
    "holder",
    "rights_units",
    "entitled",
    "delivered",
    "waived",
    "sold_back",
    "updated_seq",
)
# The computed part of the payload: what a replay takes from the stored entry.
_COMPUTED: Final = (
    "record_at",
    "rights_seq",
    "operator",
    "operator_share_bp",
    "kinds",
    "holders",
    "entitlements_sha256",
    "asset_id",
)


@dataclass(frozen=True, slots=True)
class Buyback:
    """The price a smallest unit of one kind at which the operator buys entitlements back."""

    currency: str
    price_minor: int


@dataclass(frozen=True, slots=True)
class ProductionRecord:
    """A period's production as its ``output.produce`` entry (``seq``) recorded it: per
    kind ``produced``, ``operator_first`` and the buy-back price, with the operator and
    its share, the rights' seq, the entitlement rows' count and digest."""

    period_id: int
    seq: int
    operator: str
    operator_share_bp: int
    rights_seq: int
    holders: int
    entitlements_sha256: str
    produced: dict[str, int]
    operator_first: dict[str, int]
    buyback: dict[str, Buyback]


def _checked(produced: Mapping[str, int], buyback: Mapping[str, Buyback]) -> dict[str, int]:
    """The quantities by kind, or ``InvalidInput`` (``produced_empty``,
    ``produced_quantity``, ``buyback_price``, ``currency_malformed``)."""
    if not isinstance(produced, Mapping) or not produced:
        raise InvalidInput("produced_empty", "name what each kind produced")
    if len(produced) > OUTPUT_KINDS_PER_ASSET_MAX or len(buyback) > OUTPUT_KINDS_PER_ASSET_MAX:
        raise InvalidInput(
            "produced_too_long", f"an asset has at most {OUTPUT_KINDS_PER_ASSET_MAX} kinds"
        )
    for quantity in produced.values():
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidInput("produced_quantity", "a quantity is a whole number")
        if not 0 <= quantity <= PRODUCED_MAX:
            raise InvalidInput("produced_quantity", f"a quantity is 0..{PRODUCED_MAX}")
    for offer in buyback.values():
        currency_of(offer.currency)
        check_amount(offer.price_minor, "buyback price_minor")
    return dict(sorted(produced.items()))


def _claims(table_: RightsTable, operator: str) -> tuple[list[tuple[str, int]], int]:
    """``[(address, rights)]`` of every member with rights, in address order, the pool's
    rights added to the operator's (who gets a claim even with none); and those pool
    rights."""
    prefix = member_holder("")
    cut = len(prefix)
    pool = 0
    claims: list[tuple[str, int]] = []
    for row in table_.rows:
        holder, rights = row.holder, row.rights
        if holder.startswith(prefix):
            if rights > 0 or holder[cut:] == operator:
                claims.append((holder[cut:], rights))
        else:  # the asset's unissued pool: its operator's
            pool += rights
    at = next((i for i, (a, _) in enumerate(claims) if a == operator), None)
    if at is None:
        claims.append((operator, pool))
        claims.sort()
    elif pool:
        claims[at] = (operator, claims[at][1] + pool)
    return claims, pool


def entitlements_digest(rows: Sequence[tuple[str, str, int]]) -> str:
    """The SHA-256 (hex) of the JSON text without spaces of ``[[holder, kind, entitled],
    ...]``: give the rows ordered by kind, then holder."""
    text = json.dumps([list(r) for r in rows], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def record_production(
    ledger: Ledger,
    period_id: int,
    produced: Mapping[str, int],
    buyback: Mapping[str, Buyback] | None = None,
    *,
    key: str,
    actor: str,
) -> ProductionRecord:
    """Record what the period produced of each kind of its asset and share it as
    entitlements (module docstring); the period becomes ``produced``.

    Refuses, writing nothing: quantities not whole 0..10**15, a malformed buy-back
    (``InvalidInput``); an unknown period (``NotFound(unknown_period)``); a period
    produced already (``Refused(period_not_open)``); before its request deadline
    (``Refused(requests_still_open)``); a kind the asset does not produce
    (``InvalidInput(unknown_output_kind)``) or one left out
    (``InvalidInput(produced_incomplete)``); a buy-back currency unknown
    (``NotFound(unknown_currency)``); an asset without operator (``operator_of``'s
    codes, ``project_not_funded`` among them). A replay of the key returns the
    production; the key with another request is ``Conflict(idempotency_conflict)``."""
    offers = dict(buyback or {})
    quantities = _checked(produced, offers)
    asked: dict[str, JsonValue] = {
        "period_id": period_id,
        "produced": dict(quantities),
        "buyback": {
            k: {"currency": o.currency, "price_minor": str(o.price_minor)}
            for k, o in sorted(offers.items())
        },
    }
    with ledger.write() as tx:
        stored = entry_by_key(tx.conn, key)
        if stored is not None:  # a replay, or the key of another request: the ledger says
            computed = {k: stored.payload[k] for k in _COMPUTED if k in stored.payload}
            draft = EntryDraft(EntryKind.OUTPUT_PRODUCE, key, actor, payload=asked | computed)
            return production_of(tx.conn, tx.append_once(draft).entry.payload)
        period = get_period(tx.conn, period_id)
        _check_period(tx, period, quantities, offers)
        terms = operator_of(tx.conn, period.asset_id)
        rights = rights_table(tx.conn, period.asset_id, period.times.record_at)
        claims, _pool = _claims(rights, terms.operator)
        rows: list[tuple[Any, ...]] = []
        digest = hashlib.sha256(b"[")
        kinds: dict[str, JsonValue] = {}
        seq = tx.next_seq
        for kind, quantity in quantities.items():
            shared = entitlements(quantity, terms.operator, terms.operator_share_bp, claims)
            first, pro_rata = shared.operator_first, shared.pro_rata
            text: list[str] = []
            for holder, units in claims:
                entitled = pro_rata[holder] + (first if holder == terms.operator else 0)
                rows.append((period_id, kind, holder, units, entitled, 0, 0, 0, seq))
                # entitlements_digest's JSON, row by row: addresses and kind names need
                # no escaping (a kind matches KIND_NAME_PATTERN).
                text.append(f'["{holder}","{kind}",{entitled}]')
            if rows and len(rows) > len(text):
                digest.update(b",")
            digest.update(",".join(text).encode())
            del text, shared, pro_rata
            line: dict[str, JsonValue] = {"produced": quantity, "operator_first": first}
            if kind in offers:
                line["buyback"] = asked["buyback"][kind]  # type: ignore[call-overload,index]
            kinds[kind] = line
        digest.update(b"]")
        payload: dict[str, JsonValue] = asked | {
            "asset_id": period.asset_id,
            "record_at": format_time(period.times.record_at),
            "rights_seq": rights.seq,
            "operator": terms.operator,
            "operator_share_bp": terms.operator_share_bp,
            "kinds": kinds,
            "holders": len(claims),
            "entitlements_sha256": digest.hexdigest(),
        }
        draft = EntryDraft(EntryKind.OUTPUT_PRODUCE, key, actor, payload=payload)

        def write(seq: int) -> None:
            _store(tx.conn, period_id, seq, quantities, offers, kinds, rows)

        appended = tx.append_once(draft, write)
        return production_of(tx.conn, appended.entry.payload, appended.entry.seq)


def _check_period(
    tx: WriteTx, period: PeriodRecord, quantities: dict[str, int], offers: dict[str, Buyback]
) -> None:
    if period.state is not PeriodState.OPEN:
        raise Refused("period_not_open", f"period {period.id} is {period.state.value}")
    now = to_utc(tx.ledger.clock())
    if now < period.times.request_deadline:
        raise Refused(
            "requests_still_open",
            f"requests for period {period.id} are taken until "
            f"{format_time(period.times.request_deadline)}",
        )
    known = {k.name for k in list_output_kinds(tx.conn, period.asset_id)}
    unknown = sorted((set(quantities) | set(offers)) - known)
    if unknown:
        raise InvalidInput(
            "unknown_output_kind", f"{period.asset_id} produces no {unknown[0][:40]!r}"
        )
    missing = sorted(known - set(quantities))
    if missing:
        raise InvalidInput(
            "produced_incomplete", f"name what each kind produced: {missing[0]!r} is missing"
        )
    for offer in offers.values():
        found = tx.conn.execute(
            select(_currencies.c.code).where(_currencies.c.code == offer.currency)
        ).first()
        if found is None:
            raise NotFound("unknown_currency", f"no currency {offer.currency!r}")


def _store(
    conn: Connection,
    period_id: int,
    seq: int,
    quantities: dict[str, int],
    offers: dict[str, Buyback],
    kinds: dict[str, JsonValue],
    rows: list[tuple[Any, ...]],
) -> None:
    """The production rows, the entitlement rows (at ``seq``), the period produced."""
    lines = []
    for kind, quantity in quantities.items():
        offer = offers.get(kind)
        first = kinds[kind]["operator_first"]  # type: ignore[call-overload,index]
        lines.append(
            (
                period_id,
                kind,
                quantity,
                first,
                offer and offer.currency,
                offer and offer.price_minor,
                seq,
            )
        )
    bulk_insert(
        conn,
        _production,
        (
            "period_id",
            "kind",
            "quantity",
            "operator_quantity",
            "buyback_currency",
            "buyback_price_minor",
            "recorded_seq",
        ),
        lines,
    )
    bulk_insert(conn, _entitlements, _ENTITLEMENT_COLUMNS, rows)
    conn.execute(
        update(_periods)
        .where(_periods.c.id == period_id)
        .values(state=PeriodState.PRODUCED.value, produced_seq=seq)
    )


def production_of(
    conn: Connection, payload: Mapping[str, JsonValue], seq: int | None = None
) -> ProductionRecord:
    """The production an ``output.produce`` entry's ``payload`` records (``seq``: the
    entry's, read from the period when not given)."""
    period_id = int(payload["period_id"])  # type: ignore[arg-type]
    if seq is None:
        seq = int(
            conn.execute(
                select(_periods.c.produced_seq).where(_periods.c.id == period_id)
            ).scalar_one()
        )
    kinds: dict[str, Any] = dict(payload["kinds"])  # type: ignore[arg-type]
    return ProductionRecord(
        period_id=period_id,
        seq=seq,
        operator=str(payload["operator"]),
        operator_share_bp=int(payload["operator_share_bp"]),  # type: ignore[arg-type]
        rights_seq=int(payload["rights_seq"]),  # type: ignore[arg-type]
        holders=int(payload["holders"]),  # type: ignore[arg-type]
        entitlements_sha256=str(payload["entitlements_sha256"]),
        produced={k: int(v["produced"]) for k, v in kinds.items()},
        operator_first={k: int(v["operator_first"]) for k, v in kinds.items()},
        buyback={
            k: Buyback(v["buyback"]["currency"], int(v["buyback"]["price_minor"]))
            for k, v in kinds.items()
            if "buyback" in v
        },
    )
