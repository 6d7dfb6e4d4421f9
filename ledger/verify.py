"""``dpn verify``: rebuild every balance from the journal and check every invariant.

Streams the journal in seq order, holding one chunk of entries and one state per
account, so memory does not grow with the length of history. Stops at the first bad
entry and names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from ledger.core import GENESIS_HASH, AccountKey, LedgerState, check_draft
from ledger.core.entry import Entry, EntryDraft
from ledger.db.schema import Account, Asset, Balance, Hold, table
from ledger.entries import stream_entries
from ledger.errors import LedgerError
from ledger.journal import ASSET_REGISTER_KIND

__all__ = ["VerifyReport", "verify"]


@dataclass(slots=True)
class VerifyReport:
    """What ``verify`` found: ok, or the first problem and the entry it is in."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    accounts: int = 0
    problems: list[str] = field(default_factory=list)
    bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Bad(Exception):
    def __init__(self, seq: int | None, message: str) -> None:
        super().__init__(message)
        self.seq = seq


def verify(conn: Connection, *, against: tuple[int, str] | None = None) -> VerifyReport:
    """Check the hash chain, every entry's rules, the materialized balances and holds,
    the units of every asset, and (if given) that a published digest ``(seq, hash)``
    is still part of history."""
    report = VerifyReport()
    if against is not None and against[0] <= 0:
        if against != (0, GENESIS_HASH):
            report.problems.append(f"digest mismatch: before entry 1 the head is {GENESIS_HASH}")
        return report
    state = LedgerState()
    total_units: dict[str, int] = {}
    try:
        for entry in _chain(conn, report):
            _check_entry(entry, state, total_units)
            if against is not None and entry.seq == against[0] and entry.hash != against[1]:
                raise _Bad(entry.seq, f"digest mismatch: published {against[1]}, now {entry.hash}")
        if against is not None and against[0] > report.head_seq:
            raise _Bad(
                None, f"digest names seq {against[0]} but the journal ends at {report.head_seq}"
            )
        _check_materialized(conn, state)
        _check_assets(conn, state, total_units)
    except _Bad as bad:
        report.problems.append(str(bad))
        report.bad_seq = bad.seq
    report.accounts = len(state.accounts)
    return report


def _chain(conn: Connection, report: VerifyReport) -> Iterator[Entry]:
    prev_hash, expected_seq = GENESIS_HASH, 1
    for entry in stream_entries(conn):
        if entry.seq != expected_seq:
            raise _Bad(entry.seq, f"seq gap: expected {expected_seq}, found {entry.seq}")
        if entry.prev_hash != prev_hash:
            raise _Bad(entry.seq, f"chain broken: prev_hash {entry.prev_hash} != {prev_hash}")
        if entry.computed_hash() != entry.hash:
            raise _Bad(entry.seq, "hash mismatch: the entry's content was altered")
        yield entry
        prev_hash, expected_seq = entry.hash, expected_seq + 1
        report.entries += 1
        report.head_seq, report.head_hash = entry.seq, entry.hash


def _check_entry(entry: Entry, state: LedgerState, total_units: dict[str, int]) -> None:
    try:
        check_draft(
            EntryDraft(
                kind=entry.kind,
                idempotency_key=entry.idempotency_key,
                actor=entry.actor,
                postings=entry.postings,
                hold_changes=entry.hold_changes,
                payload=entry.payload,
            )
        )
        state.apply(entry.postings, entry.hold_changes)
    except LedgerError as exc:
        raise _Bad(entry.seq, f"entry breaks a rule: {exc}") from None
    for posting in entry.postings:
        if posting.account.is_units and posting.account.is_external:
            if entry.kind != ASSET_REGISTER_KIND:
                raise _Bad(entry.seq, "units entered or left outside an asset registration")
            asset_id = posting.account.instrument.removeprefix("units:")
            if asset_id in total_units:
                raise _Bad(entry.seq, f"asset {asset_id} registered twice")
            total_units[asset_id] = -posting.amount
    if entry.reverses is not None and not 0 < entry.reverses < entry.seq:
        raise _Bad(entry.seq, f"reverses entry {entry.reverses}, which is not before it")


def _check_materialized(conn: Connection, state: LedgerState) -> None:
    accounts, balances, holds = table(Account), table(Balance), table(Hold)
    stored: dict[AccountKey, tuple[int, int, int]] = {}
    for holder, instrument, balance, held, last_seq in conn.execute(
        select(
            accounts.c.holder,
            accounts.c.instrument,
            balances.c.balance,
            balances.c.held,
            balances.c.last_seq,
        ).join(balances, balances.c.account_id == accounts.c.id)
    ):
        stored[AccountKey(holder, instrument)] = (balance, held, last_seq)
    for key, account in state.accounts.items():
        balance, held, last_seq = stored.pop(key, (0, 0, 0))
        if (balance, held) != (account.balance, account.held):
            raise _Bad(
                last_seq or None,
                f"balance mismatch on {key}: stored {balance} (held {held}),"
                f" journal gives {account.balance} (held {account.held})",
            )
    for key, (balance, held, last_seq) in stored.items():
        if balance or held:
            raise _Bad(last_seq, f"balance mismatch on {key}: stored {balance}, journal gives 0")
    open_holds = {
        hold_id: (remaining, placed_seq)
        for hold_id, remaining, placed_seq in conn.execute(
            select(holds.c.id, holds.c.remaining, holds.c.placed_seq).where(
                holds.c.closed_seq.is_(None)
            )
        )
    }
    for hold_id, hold in state.holds.items():
        remaining, _placed = open_holds.pop(hold_id, (None, None))
        if remaining != hold.remaining:
            raise _Bad(
                None, f"hold {hold_id!r}: stored {remaining}, journal gives {hold.remaining}"
            )
    for hold_id, (_remaining, placed_seq) in open_holds.items():
        raise _Bad(placed_seq, f"hold {hold_id!r} is open in storage but closed by the journal")


def _check_assets(conn: Connection, state: LedgerState, total_units: dict[str, int]) -> None:
    assets = table(Asset)
    registered = {
        r.id: r.total_units for r in conn.execute(select(assets.c.id, assets.c.total_units))
    }
    if registered != total_units:
        raise _Bad(None, "assets table and asset registrations in the journal disagree")
    held_units: dict[str, int] = dict.fromkeys(total_units, 0)
    for key, account in state.accounts.items():
        if key.is_units and not key.is_external:
            asset_id = key.instrument.removeprefix("units:")
            held_units[asset_id] = held_units.get(asset_id, 0) + account.balance
    for asset_id, units in held_units.items():
        if units != total_units.get(asset_id):
            raise _Bad(
                None,
                f"asset {asset_id}: owners and pool hold {units} units,"
                f" not {total_units.get(asset_id)}",
            )
