"""Storing sealed entries: the journal rows, balances and holds of one write transaction.

The rows go to the driver directly (``COPY`` on PostgreSQL, ``executemany`` on
SQLite): SQLAlchemy's per-row parameter processing costs more than the inserts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Table, bindparam, insert, update

from ledger.core import AccountKey, Entry, HoldOp, LedgerState
from ledger.core.canonical import canonical_bytes
from ledger.db.schema import Balance, Hold, JournalEntry, JournalHoldChange, JournalPosting, table
from ledger.db.types import amount_param, time_param

__all__ = ["StoreRows", "pg_int_array", "pg_text_array"]

_BULK_ROWS_MIN = 2  # PostgreSQL: from this many balances on, one UPDATE over arrays
_ONE_TRIP_ENTRIES_MAX = 64  # PostgreSQL: batches up to this size are stored in one trip
_ONE_TRIP_PARAMETERS_MAX = 30_000  # the protocol allows 65,535 parameters a statement
_PG_BULK_BALANCE_UPDATE = (
    "UPDATE balances AS b SET balance = v.balance, held = v.held, last_seq = v.last_seq"
    " FROM unnest(%s::numeric[], %s::numeric[], %s::bigint[], %s::bigint[])"
    " AS v(balance, held, last_seq, account_id) WHERE b.account_id = v.account_id"
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

    def _store(self, entries: Sequence[Entry], request_hashes: Sequence[str]) -> None:
        if not entries:
            return
        sql = _statements(self.conn.dialect.name)
        amount, moment = sql.amount, sql.time
        last_seq = _last_seq_by_account(entries)
        # Each account's id looked up once per call, not once per posting.
        account_id = {key: self._id(key) for key in last_seq}.__getitem__
        entry_rows = [
            (
                e.seq,
                e.id,
                e.kind,
                canonical_bytes(dict(e.payload)).decode() if e.payload else "{}",
                moment(e.effective_at),
                moment(e.recorded_at),
                e.actor,
                e.idempotency_key,
                h,
                e.reverses,
                e.prev_hash,
                e.hash,
            )
            for e, h in zip(entries, request_hashes, strict=True)
        ]
        posting_rows = [
            (e.seq, i, account_id(p.account), amount(p.amount))
            for e in entries
            for i, p in enumerate(e.postings)
        ]
        hold_rows = [
            (e.seq, i, h.hold_id, account_id(h.account), h.op.value, amount(h.amount))
            for e in entries
            for i, h in enumerate(e.hold_changes)
        ]
        updates, inserts = self._balance_rows_of(last_seq, account_id, sql)
        inserted = ((_entries, entry_rows), (_postings, posting_rows), (_hold_rows, hold_rows))
        if self.conn.dialect.name == "postgresql" and _fits_one_round_trip(inserted):
            self._store_in_one_round_trip(inserted, updates, inserts)
        else:
            for target, rows in inserted:
                if rows:
                    self._insert(target, rows, sql)
            self._write_balances(updates, inserts, sql)
        if hold_rows:
            self._store_holds(entries)

    def _insert(self, target: Table, rows: Sequence[tuple[object, ...]], sql: _Statements) -> None:
        """Insert rows in column order: on PostgreSQL by COPY, whose rows psycopg writes
        in C (a third of executemany's CPU even for 8 rows), by executemany on SQLite."""
        if self.conn.dialect.name == "postgresql":
            columns = ", ".join(c.name for c in target.columns)
            cursor = _driver(self.conn).cursor()
            with cursor.copy(f"COPY {target.name} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        # One row: a plain execute; executemany would open a pipeline for it.
        statement = sql.insert_into(target)
        self.conn.exec_driver_sql(statement, rows[0] if len(rows) == 1 else list(rows))

    def _store_in_one_round_trip(
        self,
        inserted: Sequence[tuple[Table, Sequence[tuple[object, ...]]]],
        updates: Sequence[tuple[int, int, int, int]],
        inserts: Sequence[tuple[object, ...]],
    ) -> None:
        """PostgreSQL, a batch of a few entries (group commit's usual): every row and
        balance in one pipeline, one round trip. Each COPY costs two; while a
        transaction holds the journal lock, its round trips are what other writers
        wait for."""
        driver = _driver(self.conn)
        with driver.pipeline():
            for target, rows in inserted:
                if rows:
                    driver.execute(_values_insert(target, len(rows)), _flat(rows))
            if updates:
                driver.execute(_PG_BULK_BALANCE_UPDATE, _columns_as_arrays(updates))
            if inserts:
                driver.execute(_values_insert(_balances, len(inserts)), _flat(inserts))

    def _balance_rows_of(
        self,
        last_seq: dict[AccountKey, int],
        id_of: Callable[[AccountKey], int],
        sql: _Statements,
    ) -> tuple[list[tuple[int, int, int, int]], list[tuple[object, ...]]]:
        """The balance of every account touched: ``(balance, held, last_seq,
        account_id)`` for the rows that exist, whole rows for those to insert."""
        updates: list[tuple[int, int, int, int]] = []
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
        return updates, inserts

    def _write_balances(
        self,
        updates: Sequence[tuple[int, int, int, int]],
        inserts: Sequence[tuple[object, ...]],
        sql: _Statements,
    ) -> None:
        if updates and self.conn.dialect.name == "postgresql" and len(updates) >= _BULK_ROWS_MIN:
            # One statement over arrays instead of a round of single-row updates.
            self.conn.exec_driver_sql(_PG_BULK_BALANCE_UPDATE, _columns_as_arrays(updates))
        elif updates:
            amount = sql.amount
            self.conn.exec_driver_sql(
                sql.update_balance, [(amount(b), amount(h), s, i) for b, h, s, i in updates]
            )
        if inserts:
            self.conn.exec_driver_sql(sql.insert_balance, list(inserts))

    def _store_holds(self, entries: Sequence[Entry]) -> None:
        placed: list[dict[str, object]] = []
        last_seq: dict[str, int] = {}
        for e in entries:
            for h in e.hold_changes:
                last_seq[h.hold_id] = e.seq
                if h.op is HoldOp.PLACE:
                    placed.append(
                        {
                            "id": h.hold_id,
                            "account_id": self._id(h.account),
                            "amount": h.amount,
                            "remaining": h.amount,
                            "placed_seq": e.seq,
                            "closed_seq": None,
                        }
                    )
        if placed:
            self.conn.execute(insert(_holds), placed)
        changes = []
        for hold_id, seq in last_seq.items():
            still_open = self._state.holds.get(hold_id)
            changes.append(
                {
                    "h_id": hold_id,
                    "remaining": still_open.remaining if still_open else 0,
                    "closed_seq": None if still_open else seq,
                }
            )
        self.conn.execute(
            update(_holds)
            .where(_holds.c.id == bindparam("h_id"))
            .values(remaining=bindparam("remaining"), closed_seq=bindparam("closed_seq")),
            changes,
        )


def pg_int_array(values: Iterable[int]) -> str:
    """The text of a PostgreSQL array of integers, to be sent as one parameter and cast
    (``%s::bigint[]``). psycopg adapts a list element by element in Python, which costs
    several times more than joining the digits: a batch sends thousands of them."""
    return "{" + ",".join(map(str, values)) + "}"


def pg_text_array(values: Iterable[str]) -> str:
    """The text of a PostgreSQL array of strings (see ``pg_int_array``). Every element
    is quoted, its backslashes and double quotes escaped, so that any text, commas,
    braces, ``NULL`` and white space included, reads back as itself."""
    return (
        "{"
        + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values])
        + "}"
    )


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"PostgreSQL through psycopg 3 expected, not {type(driver).__name__}")
    return driver


def _fits_one_round_trip(inserted: Sequence[tuple[Table, Sequence[tuple[object, ...]]]]) -> bool:
    """Whether the rows are few enough for ``_store_in_one_round_trip``: a batch of at
    most ``_ONE_TRIP_ENTRIES_MAX`` entries, under the protocol's parameter limit."""
    entries = len(inserted[0][1])
    parameters = sum(len(rows) * len(target.columns) for target, rows in inserted)
    return entries <= _ONE_TRIP_ENTRIES_MAX and parameters <= _ONE_TRIP_PARAMETERS_MAX


@lru_cache(maxsize=1_024)
def _values_insert(target: Table, rows: int) -> str:
    """``INSERT INTO target (columns) VALUES (%s, ...), ...`` for ``rows`` rows."""
    names = [c.name for c in target.columns]
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    return f"INSERT INTO {target.name} ({', '.join(names)}) VALUES " + ", ".join([row] * rows)


def _flat(rows: Sequence[tuple[object, ...]]) -> list[object]:
    return [value for row in rows for value in row]


def _columns_as_arrays(rows: Sequence[tuple[int, ...]]) -> tuple[str, ...]:
    return tuple(pg_int_array(column) for column in zip(*rows, strict=True))


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

    inserts: dict[str, str]  # by table name
    update_balance: str
    amount: Callable[[int], object]
    time: Callable[[datetime], object]

    def insert_into(self, target: Table) -> str:
        return self.inserts[target.name]

    @property
    def insert_balance(self) -> str:
        return self.inserts[_balances.name]


@cache
def _statements(dialect_name: str) -> _Statements:
    mark = "?" if dialect_name == "sqlite" else "%s"

    def insert_into(t: Table) -> str:
        names = [c.name for c in t.columns]
        return (
            f"INSERT INTO {t.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
        )

    return _Statements(
        inserts={t.name: insert_into(t) for t in (_entries, _postings, _hold_rows, _balances)},
        update_balance=(
            f"UPDATE balances SET balance = {mark}, held = {mark}, last_seq = {mark}"
            f" WHERE account_id = {mark}"
        ),
        amount=amount_param(dialect_name),
        time=time_param(dialect_name),
    )
