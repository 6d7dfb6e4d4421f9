"""Reading sealed entries back from the journal tables, in seq order, in bounded chunks."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from ledger.core import AccountKey, Entry, HoldChange, HoldOp, Posting
from ledger.db.params import chunks
from ledger.db.schema import Account, JournalEntry, JournalHoldChange, JournalPosting, table

__all__ = ["ENTRY_CHUNK", "entry_by_key", "load_entries", "load_payloads", "stream_entries"]

ENTRY_CHUNK = 1_000

_entries = table(JournalEntry)
_postings = table(JournalPosting)
_holds = table(JournalHoldChange)
_accounts = table(Account)


def _assemble(conn: Connection, entry_rows: Sequence[Row[Any]], lo: int, hi: int) -> list[Entry]:
    """Join entries in ``[lo, hi]`` with their postings and hold changes."""
    postings: dict[int, list[Posting]] = defaultdict(list)
    for seq, holder, instrument, amount in conn.execute(
        select(_postings.c.seq, _accounts.c.holder, _accounts.c.instrument, _postings.c.amount)
        .join(_accounts, _accounts.c.id == _postings.c.account_id)
        .where(_postings.c.seq.between(lo, hi))
        .order_by(_postings.c.seq, _postings.c.idx)
    ):
        postings[seq].append(Posting(AccountKey(holder, instrument), amount))
    holds: dict[int, list[HoldChange]] = defaultdict(list)
    for seq, hold_id, holder, instrument, op, amount in conn.execute(
        select(
            _holds.c.seq,
            _holds.c.hold_id,
            _accounts.c.holder,
            _accounts.c.instrument,
            _holds.c.op,
            _holds.c.amount,
        )
        .join(_accounts, _accounts.c.id == _holds.c.account_id)
        .where(_holds.c.seq.between(lo, hi))
        .order_by(_holds.c.seq, _holds.c.idx)
    ):
        holds[seq].append(HoldChange(hold_id, AccountKey(holder, instrument), HoldOp(op), amount))
    return [
        Entry(
            seq=row.seq,
            id=row.id,
            kind=row.kind,
            payload=json.loads(row.payload),
            postings=tuple(postings.get(row.seq, ())),
            hold_changes=tuple(holds.get(row.seq, ())),
            effective_at=row.effective_at,
            recorded_at=row.recorded_at,
            actor=row.actor,
            idempotency_key=row.idempotency_key,
            reverses=row.reverses,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
        for row in entry_rows
    ]


def stream_entries(
    conn: Connection, first_seq: int = 1, last_seq: int | None = None, chunk: int = ENTRY_CHUNK
) -> Iterator[Entry]:
    """Yield entries ``first_seq..last_seq`` in seq order, holding one chunk in memory."""
    if last_seq is None:
        last_seq = (
            conn.execute(select(_entries.c.seq).order_by(_entries.c.seq.desc()).limit(1)).scalar()
            or 0
        )
    lo = first_seq
    while lo <= last_seq:
        hi = min(lo + chunk - 1, last_seq)
        rows = conn.execute(
            select(_entries).where(_entries.c.seq.between(lo, hi)).order_by(_entries.c.seq)
        ).all()
        yield from _assemble(conn, rows, lo, hi)
        lo = hi + 1


def load_entries(conn: Connection, seqs: Sequence[int]) -> list[Entry]:
    """The entries with the given seqs, in the order asked (missing ones left out)."""
    if not seqs:
        return []
    found: dict[int, Entry] = {}
    wanted = sorted(set(seqs))
    for part in chunks(wanted):
        rows = conn.execute(select(_entries).where(_entries.c.seq.in_(part))).all()
        for entry in _assemble(conn, rows, part[0], part[-1]):
            found[entry.seq] = entry
    return [found[s] for s in seqs if s in found]


def load_payloads(conn: Connection, seqs: Sequence[int]) -> dict[int, Any]:
    """The payloads of the entries with the given seqs, by seq (missing ones left out):
    for a reader that needs nothing else of them (``load_entries`` also reads the
    postings and hold changes of every entry between the first seq and the last)."""
    found: dict[int, Any] = {}
    for part in chunks(sorted(set(seqs))):
        for seq, payload in conn.execute(
            select(_entries.c.seq, _entries.c.payload).where(_entries.c.seq.in_(part))
        ):
            found[seq] = json.loads(payload)
    return found


def entry_by_key(conn: Connection, idempotency_key: str) -> Entry | None:
    """The entry recorded under ``idempotency_key``, if any."""
    seq = conn.execute(
        select(_entries.c.seq).where(_entries.c.idempotency_key == idempotency_key)
    ).scalar()
    return load_entries(conn, [seq])[0] if seq is not None else None
