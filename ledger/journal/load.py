"""Reading what a write transaction's drafts need: the requests already stored under
their idempotency keys, the balances of the accounts they touch and the holds they name.

A batch reads a thousand keys at a time, so the hot reads go to the driver as SQL
text: building the statements through SQLAlchemy costs more than running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Column, Connection
from sqlalchemy.dialects import postgresql

from ledger.core import AccountKey, AccountState, EntryDraft, HoldOp, HoldState, LedgerState
from ledger.db.params import chunks, pg_int_array, pg_text_array
from ledger.db.schema import Account, Balance, Hold, JournalEntry, table

__all__ = ["LoadRows"]

_entries = table(JournalEntry)
_accounts = table(Account)
_balances = table(Balance)
_holds = table(Hold)


class LoadRows:
    """The reading half of a write transaction (``WriteTx`` decides, ``StoreRows``
    stores)."""

    conn: Connection
    _state: LedgerState
    _balance_rows: set[int]

    def _stored_requests(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """``(seq, request_hash)`` of those idempotency keys already in the journal."""
        found = self._rows_by_key(*_STORED_REQUESTS, list(dict.fromkeys(keys)))
        return {key: (seq, request_hash) for key, seq, request_hash in found}

    def _rows_by_key(
        self, key: Column[Any], columns: Sequence[Column[Any]], values: Sequence[Any]
    ) -> list[Any]:
        """``(key, *columns)`` of the rows whose unique ``key`` is one of ``values``.

        By driver SQL: a write transaction looks up a thousand keys a batch, and
        building the statement through SQLAlchemy costs more than running it. SQLite
        takes ``IN`` lists of up to ``IN_CHUNK`` parameters. PostgreSQL takes one
        array, and looks each value up in the key's index (a nested loop, which the
        ``LIMIT`` inside ``LATERAL`` keeps the planner from flattening): given the same
        array as ``= ANY``, it scanned the whole journal once the array held more
        values than the stale statistics of a growing table made an index look worth.
        """
        if not values:
            return []
        if self.conn.dialect.name == "postgresql":
            return list(self.conn.exec_driver_sql(*pg_rows_by_key(key, columns, values)).all())
        names = ", ".join(c.name for c in columns)
        rows: list[Any] = []
        for part in chunks(values):
            sql = (
                f"SELECT {key.name}, {names} FROM {key.table.name}"
                f" WHERE {key.name} IN ({', '.join('?' * len(part))})"
            )
            rows += self.conn.exec_driver_sql(sql, tuple(part)).all()
        return rows

    def _load_balances(self, ids: dict[AccountKey, int]) -> None:
        """Load the balances of those stored accounts this transaction has not seen yet."""
        accounts = self._state.accounts
        wanted = {account_id: key for key, account_id in ids.items() if key not in accounts}
        found = self._rows_by_key(
            _balances.c.account_id, (_balances.c.balance, _balances.c.held), list(wanted)
        )
        for account_id, balance, held in found:
            # Driver values: decimal text on SQLite, NUMERIC on PostgreSQL; exact either way.
            accounts[wanted[account_id]] = AccountState(int(balance), int(held))
            self._balance_rows.add(account_id)

    def _load_holds(self, drafts: Sequence[EntryDraft], *, skip_placed: bool = False) -> None:
        """Load the holds the drafts name that this transaction has not seen yet
        (``skip_placed``: but not those they place, which the caller knows are new)."""
        known, closed = self._state.holds, self._state.closed_holds
        named = {
            h.hold_id
            for d in drafts
            for h in d.hold_changes
            if not (skip_placed and h.op is HoldOp.PLACE)
            and h.hold_id not in known
            and h.hold_id not in closed
        }
        if not named:
            return
        found = self._rows_by_key(
            _holds.c.id, (_holds.c.account_id, _holds.c.remaining, _holds.c.closed_seq), list(named)
        )
        open_on = {account_id for _, account_id, _, closed_seq in found if closed_seq is None}
        keys = self._account_keys(open_on)
        for hold_id, account_id, remaining, closed_seq in found:
            if closed_seq is None:
                self._state.holds[hold_id] = HoldState(keys[account_id], int(remaining))
            else:
                self._state.closed_holds.add(hold_id)

    def _account_keys(self, ids: set[int]) -> dict[int, AccountKey]:
        """The holder and instrument of those stored accounts."""
        found = self._rows_by_key(
            _accounts.c.id, (_accounts.c.holder, _accounts.c.instrument), list(ids)
        )
        return {
            account_id: AccountKey(holder, instrument) for account_id, holder, instrument in found
        }


_STORED_REQUESTS: tuple[Column[Any], tuple[Column[Any], ...]] = (
    _entries.c.idempotency_key,
    (_entries.c.seq, _entries.c.request_hash),
)


def pg_stored_requests(keys: Sequence[str]) -> tuple[str, tuple[str]]:
    """PostgreSQL's statement and parameters for ``(key, seq, request_hash)`` of those
    idempotency ``keys`` already in the journal (``_stored_requests``'s query), for a
    caller that sends it in a pipeline."""
    return pg_rows_by_key(*_STORED_REQUESTS, list(dict.fromkeys(keys)))


def pg_rows_by_key(
    key: Column[Any], columns: Sequence[Column[Any]], values: Sequence[Any]
) -> tuple[str, tuple[str]]:
    """PostgreSQL's statement and parameters for ``LoadRows._rows_by_key``."""
    array = pg_int_array(values) if key.type.python_type is int else pg_text_array(values)
    return _pg_rows_by_key_sql(key, tuple(columns)), (array,)


@cache
def _pg_rows_by_key_sql(key: Column[Any], columns: tuple[Column[Any], ...]) -> str:
    names = ", ".join(c.name for c in columns)
    array_type = key.type.compile(postgresql.dialect())  # type: ignore[no-untyped-call]
    return (
        f"SELECT k.v, t.* FROM unnest(%s::{array_type}[])"
        f" AS k(v) CROSS JOIN LATERAL (SELECT {names} FROM {key.table.name}"
        f" WHERE {key.name} = k.v LIMIT 1) AS t"
    )
