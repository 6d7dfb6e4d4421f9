"""Storing sealed entries: the journal rows, balances and holds of one write transaction.

The rows go to the driver directly (``COPY`` on PostgreSQL, ``executemany`` on
SQLite): SQLAlchemy's per-row parameter processing costs more than the inserts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, Table

from ledger.core import AccountKey, Entry, HoldOp, LedgerState
from ledger.core.canonical import payload_text
from ledger.db.bulk import bulk_insert
from ledger.db.params import pg_int_array, pg_nullable_int_array, pg_text_array
from ledger.db.schema import Balance, Hold, JournalEntry, JournalHoldChange, JournalPosting, table
from ledger.db.types import amount_param, time_param

__all__ = ["StoreRows"]

_BULK_ROWS_MIN = 2  # PostgreSQL: from this many balances on, one UPDATE over arrays
_PG_BULK_BALANCE_UPDATE = (
    "UPDATE balances AS b SET balance = v.balance, held = v.held, last_seq = v.last_seq"
    " FROM unnest(%s::numeric[], %s::numeric[], %s::bigint[], %s::bigint[])"
    " AS v(balance, held, last_seq, account_id) WHERE b.account_id = v.account_id"
)
_PG_BULK_HOLD_UPDATE = (
    "UPDATE holds AS h SET remaining = v.remaining, closed_seq = v.closed_seq"
    " FROM unnest(%s::numeric[], %s::bigint[], %s::text[]) AS v(remaining, closed_seq, id)"
    " WHERE h.id = v.id"
)

_entries = table(JournalEntry)
_postings = table(JournalPosting)
_hold_rows = table(JournalHoldChange)
_balances = table(Balance)
_holds = table(Hold)


class StoreRows:
    """The storing half of a write transaction (``WriteTx`` is the deciding half)."""

    conn: Connection
    _state: LedgerState
    _balance_rows: set[int]
    _id: Callable[[AccountKey], int]

    def _store(
        self,
        entries: Sequence[Entry],
        request_hashes: Sequence[str],
        payload_texts: Sequence[str] | None = None,
    ) -> None:
        """Store sealed ``entries`` with their request hashes and (if the caller has them)
        their payloads' canonical text."""
        if not entries:
            return
        sql = _statements(self.conn.dialect.name)
        amount, moment = sql.amount, sql.time
        texts = payload_texts or [payload_text(e.payload) for e in entries]
        last_seq = _last_seq_by_account(entries)
        # Each account's id looked up once per call, not once per posting.
        account_id = {key: self._id(key) for key in last_seq}.__getitem__
        self._insert(
            _entries,
            sql.insert_entry,
            [
                (
                    e.seq,
                    e.id,
                    e.kind,
                    text,
                    moment(e.effective_at),
                    moment(e.recorded_at),
                    e.actor,
                    e.idempotency_key,
                    h,
                    e.reverses,
                    e.prev_hash,
                    e.hash,
                )
                for e, h, text in zip(entries, request_hashes, texts, strict=True)
            ],
        )
        posting_rows = [
            (e.seq, i, account_id(p.account), amount(p.amount))
            for e in entries
            for i, p in enumerate(e.postings)
        ]
        if posting_rows:
            self._insert(_postings, sql.insert_posting, posting_rows)
        hold_rows = [
            (e.seq, i, h.hold_id, account_id(h.account), h.op.value, amount(h.amount))
            for e in entries
            for i, h in enumerate(e.hold_changes)
        ]
        if hold_rows:
            self._insert(_hold_rows, sql.insert_hold_change, hold_rows)
            self._store_holds(entries, sql)
        self._store_balances(last_seq, account_id, sql)

    def _insert(self, target: Table, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Insert rows in column order: on PostgreSQL by ``bulk_insert`` (one statement
        over arrays, or COPY for many rows), by executemany on SQLite."""
        if self.conn.dialect.name == "postgresql":
            bulk_insert(self.conn, target, [c.name for c in target.columns], rows)
            return
        # One row: a plain execute; executemany would open a pipeline for it.
        self.conn.exec_driver_sql(sql, rows[0] if len(rows) == 1 else list(rows))

    def _store_balances(
        self,
        last_seq: dict[AccountKey, int],
        id_of: Callable[[AccountKey], int],
        sql: _Statements,
    ) -> None:
        """Write the balance of every account touched: update the rows that exist,
        insert the others."""
        updates: list[tuple[int, int, int, int]] = []  # balance, held, last_seq, account_id
        inserts: list[tuple[object, ...]] = []
        accounts = self._state.accounts
        for key, seq in last_seq.items():
            state = accounts[key]
            account_id = id_of(key)
            if account_id in self._balance_rows:
                updates.append((state.balance, state.held, seq, account_id))
            else:
                inserts.append((account_id, sql.amount(state.balance), sql.amount(state.held), seq))
                self._balance_rows.add(account_id)
        if updates and self.conn.dialect.name == "postgresql" and len(updates) >= _BULK_ROWS_MIN:
            # One statement over arrays instead of a round of single-row updates.
            self.conn.exec_driver_sql(
                _PG_BULK_BALANCE_UPDATE,
                tuple(pg_int_array(column) for column in zip(*updates, strict=True)),
            )
        elif updates:
            amount = sql.amount
            self.conn.exec_driver_sql(
                sql.update_balance, [(amount(b), amount(h), s, i) for b, h, s, i in updates]
            )
        if inserts:
            self.conn.exec_driver_sql(sql.insert_balance, inserts)

    def _store_holds(self, entries: Sequence[Entry], sql: _Statements) -> None:
        """Write every hold the entries name as it stands after them: a hold placed by
        one of them is inserted as it stands (most of the market's holds are placed and
        closed in one batch: one row written, not written and then updated); the others
        are updated."""
        last_seq: dict[str, int] = {}
        placed: list[tuple[str, AccountKey, int, int]] = []
        place = HoldOp.PLACE
        for e in entries:
            seq = e.seq
            for h in e.hold_changes:
                last_seq[h.hold_id] = seq
                if h.op is place:
                    placed.append((h.hold_id, h.account, h.amount, seq))
        holds = self._state.holds
        amount = sql.amount
        fresh: set[str] = set()
        rows: list[tuple[object, ...]] = []
        for hold_id, account, held, seq in placed:
            fresh.add(hold_id)
            still_open = holds.get(hold_id)
            rows.append((
                hold_id, self._id(account), amount(held),
                amount(still_open.remaining if still_open else 0), seq,
                None if still_open else last_seq[hold_id],
            ))  # fmt: skip
        if rows:
            self._insert(_holds, sql.insert_hold, rows)
        changes: list[tuple[int, int | None, str]] = []  # remaining, closed_seq, id
        for hold_id, seq in last_seq.items():
            if hold_id in fresh:
                continue
            still_open = holds.get(hold_id)
            changes.append(
                (still_open.remaining, None, hold_id) if still_open else (0, seq, hold_id)
            )
        if not changes:
            return
        if self.conn.dialect.name == "postgresql" and len(changes) >= _BULK_ROWS_MIN:
            remaining, closed, ids = zip(*changes, strict=True)
            self.conn.exec_driver_sql(
                _PG_BULK_HOLD_UPDATE,
                (pg_int_array(remaining), pg_nullable_int_array(closed), pg_text_array(ids)),
            )
        else:
            self.conn.exec_driver_sql(sql.update_hold, [(amount(r), c, i) for r, c, i in changes])


def _last_seq_by_account(entries: Sequence[Entry]) -> dict[AccountKey, int]:
    """Every account the entries post to or hold on, with the last seq that touches it."""
    last_seq: dict[AccountKey, int] = {}
    for e in entries:
        for p in e.postings:
            last_seq[p.account] = e.seq
        for h in e.hold_changes:
            last_seq[h.account] = e.seq
    return last_seq


@dataclass(frozen=True, slots=True)
class _Statements:
    """The hot statements in the driver's own parameter style, and value converters."""

    insert_entry: str
    insert_posting: str
    insert_hold_change: str
    insert_balance: str
    insert_hold: str
    update_balance: str
    update_hold: str
    amount: Callable[[int], object]
    time: Callable[[datetime], object]


@cache
def _statements(dialect_name: str) -> _Statements:
    mark = "?" if dialect_name == "sqlite" else "%s"

    def insert_into(t: Table) -> str:
        names = [c.name for c in t.columns]
        return (
            f"INSERT INTO {t.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
        )

    return _Statements(
        insert_entry=insert_into(_entries),
        insert_posting=insert_into(_postings),
        insert_hold_change=insert_into(_hold_rows),
        insert_balance=insert_into(_balances),
        insert_hold=insert_into(_holds),
        update_balance=(
            f"UPDATE balances SET balance = {mark}, held = {mark}, last_seq = {mark}"
            f" WHERE account_id = {mark}"
        ),
        update_hold=f"UPDATE holds SET remaining = {mark}, closed_seq = {mark} WHERE id = {mark}",
        amount=amount_param(dialect_name),
        time=time_param(dialect_name),
    )
