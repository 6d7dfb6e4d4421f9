"""Moving value: transfers between members, money in and out, holds, and reversals.

Every function here builds an entry draft and hands it to the one write path.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from ledger.core import (
    AccountKey,
    Entry,
    EntryDraft,
    EntryKind,
    HoldChange,
    HoldOp,
    Posting,
    check_amount,
    check_display_text,
    limits,
)
from ledger.core.accounts import DEPOSITS, currency_of, member_holder
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused
from ledger.core.kinds import REVERSIBLE_KINDS
from ledger.db.engine import read_connection
from ledger.db.schema import Account, Currency, Hold, JournalEntry, table
from ledger.journal.entries import entry_by_key, load_entries
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address

__all__ = [
    "DEPOSITS",
    "KnownCurrency",
    "currency_of",
    "deposit",
    "list_currencies",
    "place_hold",
    "release_hold",
    "reverse",
    "transfer",
    "transfer_draft",
    "withdraw",
]

_MEMO_LEN_MAX = limits.TEXT_LEN_MAX


def _memo(memo: str, what: str = "memo") -> str:
    return check_display_text(what, memo, _MEMO_LEN_MAX)


@dataclass(frozen=True)
class KnownCurrency:
    """A currency money is kept in: its code, its minor-unit decimals and its name."""

    code: str
    decimals: int
    name: str


def list_currencies(conn: Connection) -> list[KnownCurrency]:
    """Every currency money may be kept in, by code."""
    currencies = table(Currency)
    rows = conn.execute(select(currencies).order_by(currencies.c.code))
    return [KnownCurrency(r.code, r.decimals, r.name) for r in rows]


def _currency_instrument(ledger: Ledger, code: str) -> str:
    instrument = currency_of(code)
    with read_connection(ledger.engine, snapshot=False) as conn:
        found = conn.execute(select(table(Currency).c.code).where(table(Currency).c.code == code))
        if found.first() is None:
            raise NotFound("unknown_currency", f"no currency {code!r}")
    return instrument


def transfer_draft(
    *,
    sender: str,
    recipient: str,
    instrument: str,
    amount: int,
    key: str,
    actor: str,
    consume_hold: str | None = None,
    memo: str = "",
) -> EntryDraft:
    """The entry draft of a transfer (checked addresses and amount), ready to append."""
    validate_address(sender)
    validate_address(recipient)
    if sender == recipient:
        raise InvalidInput("transfer_to_self", "sender and recipient are the same member")
    check_amount(amount)
    source = AccountKey(member_holder(sender), instrument)
    holds: tuple[HoldChange, ...] = ()
    if consume_hold is not None:
        holds = (HoldChange(consume_hold, source, HoldOp.CONSUME, amount),)
    return EntryDraft(
        kind=EntryKind.TRANSFER,
        idempotency_key=key,
        actor=actor,
        payload={"memo": _memo(memo)} if memo else {},
        postings=(
            Posting(source, -amount),
            Posting(AccountKey(member_holder(recipient), instrument), amount),
        ),
        hold_changes=holds,
    )


def transfer(
    ledger: Ledger,
    *,
    sender: str,
    recipient: str,
    instrument: str,
    amount: int,
    key: str,
    actor: str,
    consume_hold: str | None = None,
    memo: str = "",
) -> Entry:
    """Move ``amount`` of ``instrument`` (``units:<asset>`` or ``ccy:<code>``) from one
    member to another, optionally spending a hold the sender placed for it."""
    draft = transfer_draft(
        sender=sender,
        recipient=recipient,
        instrument=instrument,
        amount=amount,
        key=key,
        actor=actor,
        consume_hold=consume_hold,
        memo=memo,
    )
    return ledger.append(draft).entry


def deposit(
    ledger: Ledger,
    *,
    member: str,
    currency: str,
    amount: int,
    reference: str,
    key: str,
    actor: str,
) -> Entry:
    """Record money entering the system for a member (a bank transfer, cash, a chain
    transaction), with the outside reference it arrived under."""
    validate_address(member)
    check_amount(amount)
    instrument = _currency_instrument(ledger, currency)
    draft = EntryDraft(
        kind=EntryKind.CASH_DEPOSIT,
        idempotency_key=key,
        actor=actor,
        payload={"reference": _memo(reference, "reference")},
        postings=(
            Posting(AccountKey(DEPOSITS, instrument), -amount),
            Posting(AccountKey(member_holder(member), instrument), amount),
        ),
    )
    return ledger.append(draft).entry


def withdraw(
    ledger: Ledger,
    *,
    member: str,
    currency: str,
    amount: int,
    reference: str,
    key: str,
    actor: str,
) -> Entry:
    """Record money leaving the system from a member's available balance."""
    validate_address(member)
    check_amount(amount)
    instrument = _currency_instrument(ledger, currency)
    draft = EntryDraft(
        kind=EntryKind.CASH_WITHDRAW,
        idempotency_key=key,
        actor=actor,
        payload={"reference": _memo(reference, "reference")},
        postings=(
            Posting(AccountKey(member_holder(member), instrument), -amount),
            Posting(AccountKey(DEPOSITS, instrument), amount),
        ),
    )
    return ledger.append(draft).entry


def place_hold(
    ledger: Ledger,
    *,
    member: str,
    instrument: str,
    amount: int,
    hold_id: str,
    reason: str,
    key: str,
    actor: str,
) -> Entry:
    """Reserve ``amount`` of a member's available ``instrument`` under ``hold_id``."""
    validate_address(member)
    check_amount(amount)
    account = AccountKey(member_holder(member), instrument)
    draft = EntryDraft(
        kind=EntryKind.HOLD_PLACE,
        idempotency_key=key,
        actor=actor,
        payload={"reason": _memo(reason)},
        hold_changes=(HoldChange(hold_id, account, HoldOp.PLACE, amount),),
    )
    return ledger.append(draft).entry


def release_hold(
    ledger: Ledger, *, hold_id: str, amount: int | None = None, key: str, actor: str
) -> Entry:
    """Give back ``amount`` (default: all that remains) of an open hold."""
    holds, accounts = table(Hold), table(Account)
    with read_connection(ledger.engine) as conn:
        row = conn.execute(
            select(accounts.c.holder, accounts.c.instrument, holds.c.remaining, holds.c.closed_seq)
            .join(accounts, accounts.c.id == holds.c.account_id)
            .where(holds.c.id == hold_id[: limits.HOLD_ID_LEN_MAX + 1])
        ).first()
        prior = entry_by_key(conn, key)
    if row is None:
        raise NotFound("unknown_hold", f"no hold {hold_id[:64]!r}")
    if row.closed_seq is not None:
        # A closed hold may have been closed by this very request, asked again.
        if prior is None:
            raise Refused("hold_closed", f"hold {hold_id!r} is already closed")
        released = prior.hold_changes[0] if prior.hold_changes else None
        if (
            prior.kind == EntryKind.HOLD_RELEASE
            and released is not None
            and released.hold_id == hold_id
            and (amount is None or released.amount == amount)
        ):
            return prior
        raise Conflict(
            "idempotency_conflict",
            # Not the key itself: at the HTTP boundary it is the caller's key scoped
            # and perhaps hashed (api.idempotency.ledger_key), which is not theirs to see.
            "this idempotency key was already used for a different request",
        )
    amount = row.remaining if amount is None else amount
    check_amount(amount)
    draft = EntryDraft(
        kind=EntryKind.HOLD_RELEASE,
        idempotency_key=key,
        actor=actor,
        hold_changes=(
            HoldChange(hold_id, AccountKey(row.holder, row.instrument), HoldOp.RELEASE, amount),
        ),
    )
    return ledger.append(draft).entry


def reverse(ledger: Ledger, seq: int, *, reason: str, key: str, actor: str) -> Entry:
    """Append an entry that undoes entry ``seq``'s postings and names it. An entry is
    reversed at most once; registrations, holds and reversals are not reversible."""
    with read_connection(ledger.engine, snapshot=False) as conn:  # settled history
        found = load_entries(conn, [seq])
    if not found:
        raise NotFound("unknown_entry", f"no entry {seq}")
    original = found[0]
    if original.kind not in REVERSIBLE_KINDS:
        raise Refused(
            "not_reversible",
            f"entry {seq} is a {original.kind}; only {', '.join(sorted(REVERSIBLE_KINDS))}"
            " entries can be reversed",
        )
    draft = EntryDraft(
        kind=EntryKind.REVERSAL,
        idempotency_key=key,
        actor=actor,
        payload={"reverses_id": original.id, "reason": _memo(reason)},
        postings=tuple(Posting(p.account, -p.amount) for p in original.postings),
        reverses=seq,
    )
    with ledger.write() as tx:

        def refuse_a_second_reversal(_seq: int) -> None:
            if _already_reversed(tx.conn, seq):
                raise Conflict("already_reversed", f"entry {seq} has already been reversed")

        return tx.append_once(draft, refuse_a_second_reversal).entry


def _already_reversed(conn: Connection, seq: int) -> bool:
    entries = table(JournalEntry)
    return conn.execute(select(entries.c.seq).where(entries.c.reverses == seq)).first() is not None
