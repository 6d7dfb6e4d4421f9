"""``dpn verify``: rebuild every balance from the journal and check every invariant.

Streams the journal in seq order, holding one chunk of entries, one state per account
and the open holds, so memory does not grow with the length of history: what a check
needs from further back (the entry a reversal undoes, an earlier use of a hold id or of
a reversal's target) is looked up once per chunk, among entries already checked. Stops
at the first bad entry and names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import Connection, func, select

from ledger.core import (
    GENESIS_HASH,
    AccountKey,
    EntryKind,
    HoldOp,
    LedgerState,
    check_draft,
    entry_id_for,
)
from ledger.core.accounts import parse_instrument
from ledger.core.entry import Entry, EntryDraft
from ledger.core.errors import LedgerError
from ledger.core.kinds import REVERSIBLE_KINDS
from ledger.db.params import chunks
from ledger.db.schema import Account, Asset, Balance, Hold, JournalEntry, JournalHoldChange, table
from ledger.journal.entries import ENTRY_CHUNK, load_entries, stream_entries

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
    # Where the first problem is: "entry <seq>", "materialized state" (balances, holds,
    # assets disagree with the journal) or "digest" (a published digest does not fit).
    where: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Bad(Exception):
    def __init__(self, seq: int | None, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        self.where = where or (f"entry {seq}" if seq is not None else "materialized state")


def verify(conn: Connection, *, against: tuple[int, str] | None = None) -> VerifyReport:
    """Check the hash chain, every entry's rules, the materialized balances and holds,
    the units of every asset, and (if given) that a published digest ``(seq, hash)``
    is still part of history."""
    report = VerifyReport()
    if against is not None and against[0] <= 0:
        if against != (0, GENESIS_HASH):
            report.problems.append(f"digest mismatch: before entry 1 the head is {GENESIS_HASH}")
            report.where = "digest"
        return report
    state = LedgerState()
    total_units: dict[str, int] = {}
    try:
        for entry in _chain(conn, report):
            _check_entry(entry, state, total_units)
            # A closed hold's id may never be placed again; ``_History`` checks that
            # against the stored journal, so the ids need not pile up in memory.
            state.closed_holds.clear()
            if against is not None and entry.seq == against[0] and entry.hash != against[1]:
                raise _Bad(entry.seq, f"digest mismatch: published {against[1]}, now {entry.hash}")
        if against is not None and against[0] > report.head_seq:
            raise _Bad(
                None,
                f"the journal has {report.head_seq} entries, fewer than the {against[0]}"
                " the digest claims: entries were removed, or the digest is of another journal",
                where="digest",
            )
        _check_materialized(conn, state)
        _check_assets(conn, state, total_units)
    except _Bad as bad:
        report.problems.append(str(bad))
        report.bad_seq, report.where = bad.seq, bad.where
    report.accounts = len(state.accounts)
    return report


def _chain(conn: Connection, report: VerifyReport) -> Iterator[Entry]:
    """The entries in seq order, each on the chain and checked against history before
    it: a hold id is placed once, a reversal undoes its entry exactly, and once."""
    prev_hash, expected_seq = GENESIS_HASH, 1
    entries = stream_entries(conn)
    while chunk := list(islice(entries, ENTRY_CHUNK)):
        history = _History(conn, chunk)
        for entry in chunk:
            if entry.seq != expected_seq:
                raise _Bad(entry.seq, f"seq gap: expected {expected_seq}, found {entry.seq}")
            if entry.prev_hash != prev_hash:
                raise _Bad(entry.seq, f"chain broken: prev_hash {entry.prev_hash} != {prev_hash}")
            try:
                computed = entry.computed_hash()
            except LedgerError as exc:  # stored text no database should hold (NUL, say)
                raise _Bad(entry.seq, f"entry cannot be encoded: {exc}") from None
            if computed != entry.hash:
                raise _Bad(entry.seq, "hash mismatch: the entry's content was altered")
            history.check(entry)
            yield entry
            prev_hash, expected_seq = entry.hash, expected_seq + 1
            report.entries += 1
            report.head_seq, report.head_hash = entry.seq, entry.hash


class _History:
    """What the checks of one chunk of entries need from the journal before them.

    Read from storage, not remembered: a row about an entry earlier than the one being
    checked belongs to an entry whose hash has already been checked in this run."""

    def __init__(self, conn: Connection, chunk: list[Entry]) -> None:
        entries, hold_changes = table(JournalEntry), table(JournalHoldChange)
        placed = sorted({h.hold_id for e in chunk for h in e.hold_changes if h.op is HoldOp.PLACE})
        self.first_placed: dict[str, int] = {}
        for hold_ids in chunks(placed):
            for hold_id, first in conn.execute(
                select(hold_changes.c.hold_id, func.min(hold_changes.c.seq))
                .where(hold_changes.c.op == HoldOp.PLACE.value)
                .where(hold_changes.c.hold_id.in_(hold_ids))
                .group_by(hold_changes.c.hold_id)
            ):
                self.first_placed[hold_id] = first
        targets = sorted({e.reverses for e in chunk if e.reverses is not None and e.reverses > 0})
        self.first_reversed_by: dict[int, int] = {}
        for seqs in chunks(targets):
            for target, first in conn.execute(
                select(entries.c.reverses, func.min(entries.c.seq))
                .where(entries.c.reverses.in_(seqs))
                .group_by(entries.c.reverses)
            ):
                self.first_reversed_by[target] = first
        self.originals = {e.seq: e for e in load_entries(conn, targets)}

    def check(self, entry: Entry) -> None:
        for change in entry.hold_changes:
            first = self.first_placed.get(change.hold_id, entry.seq)
            if change.op is HoldOp.PLACE and first < entry.seq:
                raise _Bad(
                    entry.seq, f"hold {change.hold_id!r} placed again (first by entry {first})"
                )
        if entry.reverses is None:
            if entry.kind == EntryKind.REVERSAL:
                raise _Bad(entry.seq, "a reversal that names no entry it reverses")
            return
        target = entry.reverses
        if not 0 < target < entry.seq:
            raise _Bad(entry.seq, f"reverses entry {target}, which is not before it")
        first = self.first_reversed_by.get(target, entry.seq)
        if first < entry.seq:
            raise _Bad(entry.seq, f"entry {target} reversed again (first by entry {first})")
        original = self.originals.get(target)
        if original is None:  # not possible on an unbroken chain: every seq before is there
            raise _Bad(entry.seq, f"reverses entry {target}, which is missing")
        if original.kind not in REVERSIBLE_KINDS:
            raise _Bad(entry.seq, f"reverses entry {target}, a {original.kind}: not reversible")
        undone = {p.account: -p.amount for p in original.postings}
        if {p.account: p.amount for p in entry.postings} != undone or entry.hold_changes:
            raise _Bad(
                entry.seq,
                f"reversal does not negate entry {target}: its postings and hold changes"
                " must be exactly the original postings with opposite signs",
            )
        named = entry.payload.get("reverses_id", original.id)
        if named != original.id:
            raise _Bad(entry.seq, f"reversal names entry id {named}, not entry {target}'s")


def _check_entry(entry: Entry, state: LedgerState, total_units: dict[str, int]) -> None:
    # Entry ids are unique because they derive from the (unique) idempotency key: the
    # database keeps no index of its own on them.
    if entry.id != entry_id_for(entry.idempotency_key):
        raise _Bad(entry.seq, f"entry id {entry.id} is not the one its idempotency key gives")
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
            if entry.kind != EntryKind.ASSET_REGISTER:
                raise _Bad(entry.seq, "units entered or left outside an asset registration")
            asset_id = parse_instrument(posting.account.instrument).name
            if asset_id in total_units:
                raise _Bad(entry.seq, f"asset {asset_id} registered twice")
            total_units[asset_id] = -posting.amount


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
            asset_id = parse_instrument(key.instrument).name
            held_units[asset_id] = held_units.get(asset_id, 0) + account.balance
    for asset_id, units in held_units.items():
        if units != total_units.get(asset_id):
            raise _Bad(
                None,
                f"asset {asset_id}: owners and pool hold {units} units,"
                f" not {total_units.get(asset_id)}",
            )
