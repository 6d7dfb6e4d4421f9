"""Reading the ledger: balances and cap tables now or as of any seq or time, pages of
the journal, and the digest ``(seq, head hash)``; holders' balances now for many holders
in one statement, shared between concurrent readers (``holdings_now``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, Select, bindparam, func, select, union

from ledger.core import AccountKey, AccountState, Entry, format_time, validate_asset_id
from ledger.core.accounts import EXTERNAL_PREFIX
from ledger.core.errors import InvalidInput
from ledger.db.engine import read_connection
from ledger.db.params import IN_CHUNK, chunks
from ledger.db.schema import (
    Account,
    Balance,
    JournalEntry,
    JournalHoldChange,
    JournalPosting,
    table,
)
from ledger.journal.entries import load_entries
from ledger.journal.group_read import BATCH_MAX, GroupRead
from ledger.money import currency_of
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset, pool_holder, units_of
from ledger.registry.members import member_holder

__all__ = [
    "HOLDERS_PER_READ_MAX",
    "JOURNAL_PAGE_MAX",
    "CapTable",
    "CapTableRow",
    "Digest",
    "Holdings",
    "account_state",
    "cap_table",
    "cap_table_of",
    "digest",
    "holder_balances",
    "holders_balances",
    "holdings_now",
    "journal_page",
    "seq_at",
]

JOURNAL_PAGE_MAX = 500
HOLDERS_PER_READ_MAX = 1_000  # bounds the statement's list of bound holders

Holdings = list[tuple[AccountKey, AccountState]]  # a holder's accounts, in account order

_entries = table(JournalEntry)
_postings = table(JournalPosting)
_hold_rows = table(JournalHoldChange)
_accounts = table(Account)
_balances = table(Balance)


@dataclass(frozen=True, slots=True)
class Digest:
    """The head of the journal: publish it, and anyone with a copy can check history."""

    seq: int
    head_hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.head_hash}"


@dataclass(frozen=True, slots=True)
class CapTableRow:
    holder: str
    units: int


@dataclass(frozen=True, slots=True)
class CapTable:
    """Who held an asset's units after entry ``seq``."""

    asset_id: str
    total_units: int
    seq: int
    rows: list[CapTableRow]


def digest(conn: Connection) -> Digest:
    """The current ``(seq, head hash)``; ``(0, 64 zeros)`` for an empty journal."""
    row = conn.execute(
        select(_entries.c.seq, _entries.c.hash).order_by(_entries.c.seq.desc()).limit(1)
    ).first()
    return Digest(row.seq, row.hash) if row else Digest(0, "0" * 64)


def seq_at(conn: Connection, moment: datetime) -> int:
    """The seq of the last entry recorded at or before ``moment`` (0 if none). Recorded
    times never go back along the chain, so this names a prefix of the journal."""
    format_time(moment)  # refuses a naive time
    found = conn.execute(
        select(func.max(_entries.c.seq)).where(_entries.c.recorded_at <= moment)
    ).scalar()
    return int(found or 0)


def _as_of(conn: Connection, seq: int | None, moment: datetime | None) -> int | None:
    """The seq a read "as of" is taken at: None for now; the seq given; or for a time,
    the last entry recorded by then (the head, for a time still to come). A seq beyond
    the head is refused: it would read a past that can still change."""
    if seq is not None and moment is not None:
        raise InvalidInput("as_of_ambiguous", "give as_of_seq or as_of_time, not both")
    if moment is not None:
        return seq_at(conn, moment)
    if seq is None:
        return None
    if seq < 0:
        raise InvalidInput("as_of_seq", "as_of_seq must not be negative")
    head = digest(conn).seq
    if seq > head:
        raise InvalidInput(
            "as_of_seq_beyond_head",
            f"as_of_seq {seq} is beyond the head of the journal ({head}): the past it"
            " names has not happened yet",
            head_seq=head,
        )
    return seq


_PG_IN_CHUNK = 20_000  # account ids a statement on PostgreSQL (it takes 65,535 at most)


def _sum_as_of(conn: Connection, account_ids: list[int], seq: int) -> dict[int, AccountState]:
    # Amounts are exact integers in Python; SQLite stores them as text, so sum here.
    # The ids go in slices a statement's parameters can hold (PostgreSQL takes at most
    # 65,535; old SQLite builds 999): an asset may have 100,000s of holders.
    states = {i: AccountState() for i in account_ids}
    size = IN_CHUNK if conn.dialect.name == "sqlite" else _PG_IN_CHUNK
    for part in chunks(account_ids, size):
        for account_id, amount in conn.execute(
            select(_postings.c.account_id, _postings.c.amount).where(
                _postings.c.account_id.in_(part), _postings.c.seq <= seq
            )
        ):
            states[account_id].balance += amount
        for account_id, op, amount in conn.execute(
            select(_hold_rows.c.account_id, _hold_rows.c.op, _hold_rows.c.amount).where(
                _hold_rows.c.account_id.in_(part), _hold_rows.c.seq <= seq
            )
        ):
            states[account_id].held += amount if op == "place" else -amount
    return states


@dataclass(frozen=True, slots=True)
class _Scope:
    """A set of accounts, as two prebuilt statements (building a statement costs more
    than running a cached one, and these run on every read of holdings)."""

    now: Select[str, str, int | None, int | None]  # their materialized balances
    listed: Select[int, str, str]  # their ids, for sums as of a seq

    @classmethod
    def where(cls, *criteria: ColumnElement[bool]) -> _Scope:
        now = (
            select(
                _accounts.c.holder, _accounts.c.instrument, _balances.c.balance, _balances.c.held
            )
            .join_from(_accounts, _balances, _balances.c.account_id == _accounts.c.id, isouter=True)
            .where(*criteria)
        )
        listed = select(_accounts.c.id, _accounts.c.holder, _accounts.c.instrument)
        return cls(now, listed.where(*criteria))


_OF_HOLDER = _Scope.where(_accounts.c.holder == bindparam("holder"))
_OF_HOLDERS = _Scope.where(_accounts.c.holder.in_(bindparam("holders", expanding=True)))
_OF_ACCOUNT = _Scope.where(
    _accounts.c.holder == bindparam("holder"), _accounts.c.instrument == bindparam("instrument")
)
_OF_INSTRUMENT = _Scope.where(  # its owners' accounts: external accounts hold no units
    _accounts.c.instrument == bindparam("instrument"),
    _accounts.c.holder.not_like(EXTERNAL_PREFIX + "%"),
)


def _states(
    conn: Connection,
    scope: _Scope,
    params: dict[str, str],
    as_of_seq: int | None,
) -> list[tuple[AccountKey, AccountState]]:
    """The accounts of ``scope`` (bound by ``params``) with their states now or after
    entry ``as_of_seq``, in account order."""
    if as_of_seq is None:
        found = [
            (AccountKey(holder, instrument), AccountState(balance or 0, held or 0))
            for holder, instrument, balance, held in conn.execute(scope.now, params)
        ]
        return sorted(found, key=lambda ks: ks[0])
    rows = conn.execute(scope.listed, params).all()
    keys = {r[0]: AccountKey(r[1], r[2]) for r in rows}
    if not keys:
        return []
    states = _sum_as_of(conn, list(keys), as_of_seq)
    return sorted(((keys[i], s) for i, s in states.items()), key=lambda ks: ks[0])


def account_state(
    conn: Connection,
    key: AccountKey,
    *,
    as_of_seq: int | None = None,
    as_of_time: datetime | None = None,
) -> AccountState:
    """Balance and held amount of one account, now or after entry ``as_of_seq`` (or the
    last entry recorded by ``as_of_time``)."""
    params = {"holder": key.holder, "instrument": key.instrument}
    found = _states(conn, _OF_ACCOUNT, params, _as_of(conn, as_of_seq, as_of_time))
    return found[0][1] if found else AccountState()


def holder_balances(
    conn: Connection,
    holder: str,
    *,
    as_of_seq: int | None = None,
    as_of_time: datetime | None = None,
) -> Holdings:
    """Every account of ``holder`` with something in it (a balance or a hold), with its
    balance and held amount, now or as of a seq or time; accounts empty at that point
    are left out."""
    point = _as_of(conn, as_of_seq, as_of_time)
    if point is None:
        return holders_balances(conn, [holder])[holder]
    found = _states(conn, _OF_HOLDER, {"holder": holder}, point)
    return [(k, s) for k, s in found if s.balance or s.held]


def holders_balances(conn: Connection, holders: Sequence[str]) -> dict[str, Holdings]:
    """``holder_balances`` now for each of ``holders`` (at most ``HOLDERS_PER_READ_MAX``),
    read in one statement: one consistent view of them all."""
    if len(holders) > HOLDERS_PER_READ_MAX:
        raise InvalidInput(
            "holders_too_many", f"at most {HOLDERS_PER_READ_MAX} holders are read at once"
        )
    found: dict[str, Holdings] = {h: [] for h in holders}
    if not found:
        return found
    for holder, instrument, balance, held in conn.execute(
        _OF_HOLDERS.now, {"holders": list(found)}
    ):
        if balance or held:
            found[holder].append(
                (AccountKey(holder, instrument), AccountState(balance or 0, held or 0))
            )
    for accounts in found.values():
        accounts.sort(key=lambda ks: ks[0])
    return found


def holdings_now(engine: Engine) -> GroupRead[str, Holdings]:
    """Holders' balances now, read together: ``await read(holder)`` on an event loop (or
    ``submit(holder)`` from a thread) gives what ``holder_balances`` gives for
    ``holder`` now, read in one statement with every other holder asked for meanwhile
    (``ledger.journal.group_read``)."""

    def read_many(holders: Sequence[str]) -> dict[str, Holdings]:
        with read_connection(engine, snapshot=False) as conn:
            return holders_balances(conn, holders)

    batch_max = min(BATCH_MAX, HOLDERS_PER_READ_MAX)
    return GroupRead(read_many, batch_max=batch_max, name="dpn-holdings-read")


def cap_table(
    conn: Connection,
    asset_id: str,
    *,
    as_of_seq: int | None = None,
    as_of_time: datetime | None = None,
) -> list[CapTableRow]:
    """Who holds the asset's units (owners, then the unissued pool), largest first, now
    or as of a seq or time. The rows sum to the asset's ``total_units``."""
    return cap_table_of(conn, asset_id, as_of_seq=as_of_seq, as_of_time=as_of_time).rows


def cap_table_of(
    conn: Connection,
    asset_id: str,
    *,
    as_of_seq: int | None = None,
    as_of_time: datetime | None = None,
) -> CapTable:
    """The cap table (``cap_table``) with the seq it was read at: the head for a read of
    now, so that a client can ask for the same table again later. Read it in one
    snapshot (``ledger.db.engine.read_connection``) for the head and rows to agree."""
    asset = get_asset(conn, asset_id)
    point = _as_of(conn, as_of_seq, as_of_time)
    found = _states(conn, _OF_INSTRUMENT, {"instrument": units_of(asset_id)}, point)
    rows = [CapTableRow(key.holder, state.balance) for key, state in found if state.balance]
    pool = pool_holder(asset_id)
    rows.sort(key=lambda r: (r.holder == pool, -r.units, r.holder))
    seq = digest(conn).seq if point is None else point
    return CapTable(asset_id, asset.total_units, seq, rows)


def journal_page(
    conn: Connection,
    *,
    before_seq: int | None = None,
    after_seq: int | None = None,
    limit: int = 50,
    kind: str | None = None,
    member: str | None = None,
    asset: str | None = None,
    currency: str | None = None,
) -> list[Entry]:
    """Entries, newest first (or oldest first when ``after_seq`` is given), filtered by
    kind and by the accounts they post to or hold on: a member's, an instrument's (an
    asset's units or a currency), or with both one account. At most ``JOURNAL_PAGE_MAX``
    per page."""
    if not 1 <= limit <= JOURNAL_PAGE_MAX:
        raise InvalidInput("page_size", f"limit must be within 1..{JOURNAL_PAGE_MAX}")
    if asset is not None and currency is not None:
        raise InvalidInput("filter_instrument", "filter by an asset or a currency, not both")
    holder = member_holder(validate_address(member)) if member is not None else None
    instrument = currency_of(currency) if currency is not None else None
    if asset is not None:
        instrument = units_of(validate_asset_id(asset))
    query = select(_entries.c.seq)
    if holder is not None or instrument is not None:
        touched = select(_accounts.c.id)
        if holder is not None:
            touched = touched.where(_accounts.c.holder == holder)
        if instrument is not None:
            touched = touched.where(_accounts.c.instrument == instrument)
        # An entry concerns an account if it posts to it or changes a hold on it.
        concerned = union(
            select(_postings.c.seq).where(_postings.c.account_id.in_(touched)),
            select(_hold_rows.c.seq).where(_hold_rows.c.account_id.in_(touched)),
        ).subquery()
        query = query.where(_entries.c.seq.in_(select(concerned.c.seq)))
    if kind is not None:
        query = query.where(_entries.c.kind == kind)
    if after_seq is not None:
        query = query.where(_entries.c.seq > after_seq).order_by(_entries.c.seq)
    else:
        if before_seq is not None:
            query = query.where(_entries.c.seq < before_seq)
        query = query.order_by(_entries.c.seq.desc())
    seqs = list(conn.execute(query.limit(limit)).scalars())
    return load_entries(conn, seqs)
