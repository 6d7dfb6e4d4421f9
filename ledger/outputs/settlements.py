"""What becomes of an entitlement: delivered by the operator, waived by its holder, or
sold back by its holder to the operator for cash.

Each is one entry (``output.deliver``, ``output.waive``, ``output.sell_back``), one
``output_settlements`` row at its seq, and the entitlement row's counter moved. None
goes beyond what is outstanding (``entitled - delivered - waived - sold_back``):
``Refused(beyond_entitlement)``, nothing changes. A sell-back pays ``quantity x`` the
buy-back price the operator offered when it recorded the production, from the
operator (as that production's entry names it) to the holder, in the same entry: the
ledger refuses it (``insufficient_funds``) if the operator lacks the cash.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import Connection, insert, select, update

from ledger.core import (
    AccountKey,
    EntryDraft,
    EntryKind,
    JsonValue,
    Posting,
    check_amount,
    check_display_text,
)
from ledger.core.accounts import currency_of, member_holder
from ledger.core.errors import InvalidInput, NotFound, Refused
from ledger.db.schema import OutputEntitlement, OutputProduction, OutputSettlement, table
from ledger.journal.entries import load_entries
from ledger.journal.write import Ledger
from ledger.outputs.periods import PeriodState, get_period
from ledger.outputs.production import PRODUCED_MAX
from ledger.registry.address import validate_address

__all__ = [
    "NOTE_LEN_MAX",
    "SettlementAction",
    "SettlementRecord",
    "deliver",
    "sell_back",
    "waive",
]

NOTE_LEN_MAX: Final = 200
_entitlements = table(OutputEntitlement)
_production = table(OutputProduction)
_settlements = table(OutputSettlement)


class SettlementAction(StrEnum):
    """What was done with part of an entitlement."""

    DELIVER = "deliver"
    WAIVE = "waive"
    SELL_BACK = "sell_back"


_KINDS: Final = {
    SettlementAction.DELIVER: EntryKind.OUTPUT_DELIVER,
    SettlementAction.WAIVE: EntryKind.OUTPUT_WAIVE,
    SettlementAction.SELL_BACK: EntryKind.OUTPUT_SELL_BACK,
}
_COUNTERS: Final = {
    SettlementAction.DELIVER: "delivered",
    SettlementAction.WAIVE: "waived",
    SettlementAction.SELL_BACK: "sold_back",
}


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A delivery, waiver or sell-back (its entry's ``seq``), with the cash a sell-back
    paid (in ``currency``), and the entitlement's outstanding quantity after it."""

    seq: int
    period_id: int
    kind: str
    holder: str
    action: SettlementAction
    quantity: int
    cash_minor: int | None
    currency: str | None
    note: str
    outstanding: int


def deliver(
    ledger: Ledger,
    period_id: int,
    holder: str,
    kind: str,
    quantity: int,
    note: str = "",
    *,
    key: str,
    actor: str,
) -> SettlementRecord:
    """Record that the operator delivered ``quantity`` of ``kind`` to ``holder``
    (``output.deliver``). Refusals: see ``_settle``."""
    return _settle(
        ledger,
        SettlementAction.DELIVER,
        period_id,
        holder,
        kind,
        quantity,
        note,
        key=key,
        actor=actor,
    )


def waive(
    ledger: Ledger, period_id: int, holder: str, kind: str, quantity: int, *, key: str, actor: str
) -> SettlementRecord:
    """Record that ``holder`` gives up ``quantity`` of its entitlement to ``kind``
    (``output.waive``). Refusals: see ``_settle``."""
    return _settle(
        ledger, SettlementAction.WAIVE, period_id, holder, kind, quantity, "", key=key, actor=actor
    )


def sell_back(
    ledger: Ledger, period_id: int, holder: str, kind: str, quantity: int, *, key: str, actor: str
) -> SettlementRecord:
    """Sell ``quantity`` of ``holder``'s entitlement to ``kind`` back to the operator at
    its buy-back price, the cash moving in the same entry (``output.sell_back``). Also
    refuses ``Refused(no_buyback)`` (no price offered for the kind),
    ``Refused(sell_back_to_self)`` (the operator itself), ``Refused(insufficient_funds)``
    (the operator lacks the cash). Refusals: see ``_settle``."""
    return _settle(
        ledger,
        SettlementAction.SELL_BACK,
        period_id,
        holder,
        kind,
        quantity,
        "",
        key=key,
        actor=actor,
    )


def _settle(
    ledger: Ledger,
    action: SettlementAction,
    period_id: int,
    holder: str,
    kind: str,
    quantity: int,
    note: str,
    *,
    key: str,
    actor: str,
) -> SettlementRecord:
    """Record ``action`` on ``quantity`` of ``holder``'s entitlement to ``kind``.

    Refuses, writing nothing: a quantity not a whole 1..10**15, a note over 200
    characters or not showable, a malformed address (``InvalidInput``); an unknown
    period (``NotFound(unknown_period)``); a period not produced yet
    (``Refused(period_not_produced)``); no entitlement of the holder to the kind
    (``NotFound(no_entitlement)``); more than is outstanding
    (``Refused(beyond_entitlement)``). A replay of the key returns the same record."""
    holder = validate_address(holder)
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 1 <= quantity <= PRODUCED_MAX
    ):
        raise InvalidInput("quantity_out_of_range", f"a quantity is a whole 1..{PRODUCED_MAX}")
    if not isinstance(kind, str) or not 1 <= len(kind) <= 32:
        raise InvalidInput("kind_name_malformed", "a kind's name is 1..32 characters")
    if note:
        check_display_text("note", note, NOTE_LEN_MAX)
    payload: dict[str, JsonValue] = {
        "period_id": period_id,
        "kind": kind,
        "holder": holder,
        "quantity": quantity,
    }
    if note:
        payload["note"] = note
    with ledger.write() as tx:
        period = get_period(tx.conn, period_id)
        if period.state is not PeriodState.PRODUCED:
            raise Refused("period_not_produced", f"period {period_id} has no production yet")
        postings: tuple[Posting, ...] = ()
        cash: int | None = None
        currency: str | None = None
        if action is SettlementAction.SELL_BACK:
            operator, currency, price = _buyback(tx.conn, period_id, period.produced_seq, kind)
            if operator == holder:
                raise Refused("sell_back_to_self", "the operator cannot sell back to itself")
            cash = quantity * price
            check_amount(cash, "sell-back cash")
            instrument = currency_of(currency)
            postings = (
                Posting(AccountKey(member_holder(operator), instrument), -cash),
                Posting(AccountKey(member_holder(holder), instrument), cash),
            )
            payload |= {"operator": operator, "currency": currency, "cash_minor": str(cash)}
        draft = EntryDraft(_KINDS[action], key, actor, postings=postings, payload=payload)
        where = (
            _entitlements.c.period_id == period_id,
            _entitlements.c.kind == kind,
            _entitlements.c.holder == holder,
        )
        counter = _entitlements.c[_COUNTERS[action]]

        def write(seq: int) -> None:
            row = tx.conn.execute(select(_entitlements).where(*where)).first()
            if row is None:
                raise NotFound(
                    "no_entitlement",
                    f"{holder} has no entitlement to {kind!r} in period {period_id}",
                )
            outstanding = row.entitled - row.delivered - row.waived - row.sold_back
            if quantity > outstanding:
                raise Refused(
                    "beyond_entitlement",
                    f"{quantity} is more than the {outstanding} outstanding",
                    outstanding=str(outstanding),
                )
            tx.conn.execute(
                update(_entitlements)
                .where(*where)
                .values({counter: counter + quantity, "updated_seq": seq})
            )
            tx.conn.execute(
                insert(_settlements).values(
                    seq=seq,
                    period_id=period_id,
                    kind=kind,
                    holder=holder,
                    action=action.value,
                    quantity=quantity,
                    cash_minor=cash,
                    note=note,
                )
            )

        appended = tx.append_once(draft, write)
        seq = appended.entry.seq
        row = tx.conn.execute(select(_entitlements).where(*where)).one()
        return SettlementRecord(
            seq,
            period_id,
            kind,
            holder,
            action,
            quantity,
            cash,
            currency,
            note,
            row.entitled - row.delivered - row.waived - row.sold_back,
        )


def _buyback(
    conn: Connection, period_id: int, produced_seq: int | None, kind: str
) -> tuple[str, str, int]:
    """``(operator, currency, price_minor)`` of the buy-back offered for ``kind`` in the
    period, the operator as its production entry names it; ``Refused(no_buyback)``."""
    if produced_seq is None:  # pragma: no cover - a produced period has its seq
        raise RuntimeError(f"period {period_id} is produced without a production entry")
    row = conn.execute(
        select(_production.c.buyback_currency, _production.c.buyback_price_minor).where(
            _production.c.period_id == period_id, _production.c.kind == kind
        )
    ).first()
    if row is None or row.buyback_currency is None or row.buyback_price_minor is None:
        raise Refused("no_buyback", f"the operator buys no {kind!r} back in period {period_id}")
    (entry,) = load_entries(conn, [produced_seq])
    return str(entry.payload["operator"]), row.buyback_currency, int(row.buyback_price_minor)
