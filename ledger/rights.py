"""Output and usage rights by the clock: who has the use of an asset's units at a time.

A holder's rights at ``t`` are the units it owns at ``t``, less the units it has
leased out over ``t``, plus the units leased in over ``t`` (DESIGN.md, "Market:
leasing fractions"). A lease covers ``t`` when ``starts_ms <= t < ends_ms``. Nothing
runs when a term ends: rights are computed whenever they are read.

"At ``t``" means the ledger as it stood then, one point for ownership and leases
alike: the journal up to the last entry recorded at or before ``t`` (``seq_at``), and
the leases settled by an entry of that prefix (a lease's ``id`` is the seq of its
entry). For ``t`` at or after the latest entry, that is the ledger now (the
materialized balances, and every lease). So the rights at a past instant never change
afterwards: a trade or a lease matched after ``t`` does not move them.

Every unit has exactly one rights holder at every instant from the asset's registration
on (before it, the asset is unknown): a lease moves rights from the lessor to the
lessee, never makes or destroys them, so the rights of a table's rows sum to the
asset's ``total_units`` (the unissued pool is a row like any owner).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, func, select

from ledger.core import AccountKey, validate_asset_id
from ledger.core.accounts import EXTERNAL_PREFIX, member_holder, pool_holder, units_of
from ledger.core.errors import NotFound, Refused
from ledger.core.timestamps import format_time, ms_of
from ledger.db.collector import collector_held
from ledger.db.schema import Account, Balance, JournalPosting, MarketLease, table
from ledger.journal.reads import account_state, cap_table_of, digest, seq_at
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset

__all__ = [
    "HolderRights",
    "RightsTable",
    "check_record_time",
    "holder_rights",
    "members_rights",
    "rights_table",
]

_leases = table(MarketLease)
_accounts = table(Account)
_balances = table(Balance)
_postings = table(JournalPosting)

# The units of an instrument each holder has now; external accounts hold no units.
_UNITS_NOW = (
    select(_accounts.c.holder, _balances.c.balance)
    .join_from(_accounts, _balances, _balances.c.account_id == _accounts.c.id)
    .where(
        _accounts.c.instrument == bindparam("instrument"),
        _accounts.c.holder.not_like(EXTERNAL_PREFIX + "%"),
    )
)

# The postings of an instrument's owners after a seq (the journal's primary key bounds
# the scan to them).
_UNITS_AFTER = (
    select(_accounts.c.holder, _postings.c.amount)
    .join_from(_postings, _accounts, _accounts.c.id == _postings.c.account_id)
    .where(
        _postings.c.seq > bindparam("seq"),
        _accounts.c.instrument == bindparam("instrument"),
        _accounts.c.holder.not_like(EXTERNAL_PREFIX + "%"),
    )
)


class HolderRights(NamedTuple):
    """One holder's units of an asset at an instant: ``rights = owned - leased_out +
    leased_in``. ``holder`` is the account holder's name (``member:0x...``, or the
    asset's unissued pool ``pool:<asset id>``), as in the cap table. (A tuple, not a
    dataclass: a table makes one for each of maybe 100,000 holders, and a frozen
    dataclass takes several times as long to make.)"""

    holder: str
    owned: int
    leased_out: int
    leased_in: int
    rights: int


@dataclass(frozen=True, slots=True)
class RightsTable:
    """Who had the output and usage rights of an asset's units at ``at_ms``
    (milliseconds since 1970), read from the journal as of entry ``seq``: the head for
    an instant at or after the latest entry. Rows: every holder that owns units or has
    leased some in or out at that instant, in holder order, the unissued pool last;
    their rights sum to ``total_units``."""

    asset_id: str
    total_units: int
    at_ms: int
    seq: int
    rows: list[HolderRights]


# The leases in force at :t that the journal up to :seq had settled, summed per side.
# ix_market_leases_asset_ends bounds the scan to the asset's leases not yet ended at :t.
_IN_FORCE = (
    _leases.c.asset_id == bindparam("asset_id"),
    _leases.c.ends_ms > bindparam("t"),
    _leases.c.starts_ms <= bindparam("t"),
    _leases.c.id <= bindparam("seq"),
)
_OUT_BY_LESSOR = (
    select(_leases.c.lessor, func.sum(_leases.c.qty_units))
    .where(*_IN_FORCE)
    .group_by(_leases.c.lessor)
)
_IN_BY_LESSEE = (
    select(_leases.c.lessee, func.sum(_leases.c.qty_units))
    .where(*_IN_FORCE)
    .group_by(_leases.c.lessee)
)
_OUT_OF_ONE = select(func.sum(_leases.c.qty_units)).where(
    *_IN_FORCE, _leases.c.lessor == bindparam("member")
)
_IN_OF_ONE = select(func.sum(_leases.c.qty_units)).where(
    *_IN_FORCE, _leases.c.lessee == bindparam("member")
)


def _point(conn: Connection, at: datetime) -> tuple[int, int, int]:
    """``(at in ms, the seq the journal stood at then, the head's seq)``; the two seqs
    are equal for a read of now. Refuses a naive ``at`` (``time_naive``)."""
    at_ms = ms_of(at)
    head = digest(conn).seq
    seq = seq_at(conn, at)
    if seq >= head:  # at or after the latest entry (or one appended since: the head read)
        return at_ms, head, head
    return at_ms, seq, head


def _registered_by(conn: Connection, asset_id: str, seq: int, at: datetime) -> int:
    """The asset's ``total_units``; ``NotFound(unknown_asset)`` unless it is registered,
    and was by entry ``seq``: before its registration it had no units to hold."""
    asset = get_asset(conn, asset_id)
    registered_seq = asset.registered_seq
    if registered_seq > seq:
        raise NotFound(
            "unknown_asset",
            f"asset {asset_id} was registered after {format_time(at)}",
            registered_seq=str(registered_seq),
        )
    return asset.total_units


def check_record_time(conn: Connection, asset_id: str, record_at: datetime, now: datetime) -> None:
    """Refuse a record time (a period's, a proposal's) at which ``asset_id`` was not yet
    registered: nobody had rights then, so nothing read at it could ever be decided
    (``Refused(record_before_asset)``). A record time still to come is not checked."""
    if record_at < now and seq_at(conn, record_at) < get_asset(conn, asset_id).registered_seq:
        raise Refused("record_before_asset", f"{asset_id} was registered after the record time")


def rights_table(conn: Connection, asset_id: str, at: datetime) -> RightsTable:
    """The rights of every holder of ``asset_id``'s units at ``at`` (an aware time): what
    each owned then (as of the last entry recorded by ``at``), less what it had leased
    out over ``at``, plus what it had leased in (a lessee who owns nothing has a row).
    The rows' rights sum to the asset's ``total_units``.

    ``InvalidInput`` for a malformed asset ID or a naive time, ``NotFound``
    (``unknown_asset``) for an asset that is not registered, or was not yet at ``at``.
    Read it in one snapshot (``ledger.db.engine.read_connection``) so that ownership
    and leases agree. Leases are summed in the database: one indexed range of the
    leases not ended at ``at``."""
    validate_asset_id(asset_id)
    with collector_held():  # a row, and a tuple or two, for each of maybe 100,000
        at_ms, seq, head = _point(conn, at)
        total_units = _registered_by(conn, asset_id, seq, at)
        if seq == head:
            owned = _owned_now(conn, asset_id)
        elif head - seq <= seq:  # nearer the head than the start: undo what came after
            owned = _owned_before(conn, asset_id, seq)
        else:
            caps = cap_table_of(conn, asset_id, as_of_seq=seq)
            owned = {row.holder: row.units for row in caps.rows}
        params = {"asset_id": asset_id, "t": at_ms, "seq": seq}
        out: defaultdict[str, int] = defaultdict(int)
        into: defaultdict[str, int] = defaultdict(int)
        for lessor, units in conn.execute(_OUT_BY_LESSOR, params):
            out[member_holder(lessor)] += int(units)  # PostgreSQL sums BIGINT as NUMERIC
        for lessee, units in conn.execute(_IN_BY_LESSEE, params):
            into[member_holder(lessee)] += int(units)
        rows = [HolderRights(holder, units, 0, 0, units) for holder, units in owned.items()]
        if out or into:  # only the few rows leases touch are made again
            at_index = {row.holder: i for i, row in enumerate(rows)}
            for holder in {*out, *into}:
                units = owned.get(holder, 0)
                row = HolderRights(
                    holder, units, out[holder], into[holder], units - out[holder] + into[holder]
                )
                i = at_index.get(holder)
                if i is None:  # a lessee who owns nothing (or, were the rule broken, a lessor)
                    rows.append(row)
                else:
                    rows[i] = row
        rows.sort()  # by holder, each in one row; "pool:" sorts after "member:"
        return RightsTable(asset_id, total_units, at_ms, seq, rows)


def _owned_now(conn: Connection, asset_id: str) -> dict[str, int]:
    """Each holder's units of the asset now, zeros left out: the materialized balances.

    Not ``cap_table_of``, for speed: at 100,000 holders its account keys and states,
    built and sorted for every row, cost over a second; the rights table needs only
    holder and balance (issue 13: the table of such an asset in well under 1 s)."""
    found: dict[str, int] = {}
    for holder, balance in conn.execute(_UNITS_NOW, {"instrument": units_of(asset_id)}).all():
        if balance:
            found[holder] = balance
    return found


def _owned_before(conn: Connection, asset_id: str, seq: int) -> dict[str, int]:
    """Each holder's units of the asset just after entry ``seq``, zeros left out: the
    balances now, less every posting of the asset's units after ``seq``.

    For a record time shortly before now (a period's, a vote's), a few postings to undo
    instead of every posting since the start: 100,000 holders' rights a moment ago read
    about as fast as now's (issue 14: entitlements for 100,000 holders in under 2 s)."""
    owned = _owned_now(conn, asset_id)
    for holder, amount in conn.execute(
        _UNITS_AFTER, {"instrument": units_of(asset_id), "seq": seq}
    ):
        owned[holder] = owned.get(holder, 0) - amount
    return {holder: units for holder, units in owned.items() if units}


def members_rights(conn: Connection, asset_id: str, at: datetime) -> int:
    """The rights of every member together in ``asset_id``'s units at ``at``: the asset's
    ``total_units`` less what its unissued pool held then (a lease moves rights between
    members only, and the pool never leases), read without the table. Errors as
    ``rights_table``."""
    validate_asset_id(asset_id)
    _, seq, head = _point(conn, at)
    total_units = _registered_by(conn, asset_id, seq, at)
    pool = AccountKey(pool_holder(asset_id), units_of(asset_id))
    return total_units - account_state(conn, pool, as_of_seq=None if seq == head else seq).balance


def holder_rights(
    conn: Connection, asset_id: str, holder_address: str, at: datetime
) -> HolderRights:
    """The rights of one member (``holder_address``, checksummed) in ``asset_id``'s
    units at ``at``: its row of ``rights_table`` (all zeros for a member with none),
    read without the rest of the table. Errors as ``rights_table``, and
    ``InvalidInput`` for a malformed address."""
    validate_asset_id(asset_id)
    address = validate_address(holder_address)
    at_ms, seq, head = _point(conn, at)
    _registered_by(conn, asset_id, seq, at)
    holder = member_holder(address)
    owned = account_state(
        conn, AccountKey(holder, units_of(asset_id)), as_of_seq=None if seq == head else seq
    ).balance
    params = {"asset_id": asset_id, "t": at_ms, "seq": seq, "member": address}
    leased_out = int(conn.execute(_OUT_OF_ONE, params).scalar() or 0)
    leased_in = int(conn.execute(_IN_OF_ONE, params).scalar() or 0)
    return HolderRights(holder, owned, leased_out, leased_in, owned - leased_out + leased_in)
