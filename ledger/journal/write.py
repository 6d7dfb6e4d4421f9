"""The one write path: every change of balances goes through ``WriteTx.append_many``.

It checks each draft, answers repeated idempotency keys with the original entry,
resolves (and validates) the accounts named, applies the balance rules of
``LedgerState`` to the accounts touched, seals the entries onto the hash chain and
stores entries, postings, hold changes, balances and holds in the one transaction.
A service that keeps rows of its own beside an entry (a member, an asset, a grant, a
node) appends with ``WriteTx.append_once``: nothing on a replay, else its rows at the
entry's seq and then the entry.

Writers are serialized: on PostgreSQL by a transaction-scoped advisory lock taken
before the head of the chain is read, on SQLite by ``BEGIN IMMEDIATE``. So ``seq``
is gap-free, the chain never forks and balances are read after every earlier commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    insert,
    select,
    tuple_,
)

from ledger.core import (
    GENESIS_HASH,
    AccountKey,
    AccountState,
    Entry,
    EntryDraft,
    EntryKind,
    HoldOp,
    HoldState,
    LedgerState,
    check_draft,
    seal,
    validate_asset_id,
)
from ledger.core.accounts import (
    EXTERNAL_NAMES,
    HolderKind,
    InstrumentKind,
    parse_holder,
    parse_instrument,
    units_of,
)
from ledger.core.canonical import payload_text
from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused
from ledger.db.collector import collector_held
from ledger.db.engine import pipelined, write_connection
from ledger.db.params import IN_CHUNK, chunks
from ledger.db.schema import (
    Account,
    Asset,
    Currency,
    JournalEntry,
    Member,
    table,
)
from ledger.journal.entries import load_entries
from ledger.journal.group_commit import GroupCommit
from ledger.journal.load import LoadRows, pg_stored_requests
from ledger.journal.store import StoreRows

__all__ = [
    "Appended",
    "Carried",
    "Clock",
    "Ledger",
    "WriteTx",
    "system_clock",
]

Clock = Callable[[], datetime]

# "DPNJ", and the schema: advisory locks belong to the database, and each schema holds a
# journal of its own, whose writers must not wait for another's.
_PG_JOURNAL_LOCK = 0x44504E4A

_entries = table(JournalEntry)
_accounts = table(Account)
_ASSET_ID: Column[str] = table(Asset).c.id
_CURRENCY_CODE: Column[str] = table(Currency).c.code
_MEMBER_ADDRESS: Column[str] = table(Member).c.address


def system_clock() -> datetime:
    """The wall clock in UTC (the default clock; tests and replays pass their own)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Appended:
    """The result of appending a draft: the entry, and whether it was already there."""

    entry: Entry
    replayed: bool


class Ledger:
    """The handle every ledger service takes: an engine, a clock and an account-id cache."""

    def __init__(self, engine: Engine, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock
        self._account_ids: dict[AccountKey, int] = {}
        self._group: GroupCommit[Appended] = GroupCommit(self.write)

    @contextmanager
    def write(self, keys: Sequence[str] = ()) -> Iterator[WriteTx]:
        """A write transaction holding the journal lock; committed when the block ends.
        The garbage collector waits while it holds the lock (``collector_held``).
        ``keys``: idempotency keys the transaction will look up first
        (``WriteTx.stored_requests``); on PostgreSQL they are read in the round trip
        that takes the lock."""
        with write_connection(self.engine) as conn:
            tx = WriteTx(self, conn, keys)  # holds the journal lock from here
            with collector_held():
                yield tx
        # Only ids of committed accounts enter the cache.
        self._account_ids.update(tx.new_account_ids)

    def append(self, draft: EntryDraft) -> Appended:
        """Append one draft, or raise its error. Concurrent calls share transactions
        (group commit); each draft still stands or falls alone."""
        return self.submit(draft).result()

    def submit(self, draft: EntryDraft) -> Future[Appended]:
        """Queue one draft for the next group commit and return at once: the future
        gives its ``Appended`` or raises its error. An event loop awaits it with
        ``asyncio.wrap_future``, holding no thread while the batch commits."""
        return self._group.submit(draft)


class WriteTx(LoadRows, StoreRows):
    """One write transaction on the journal. A ledger error inside it spoils it: the
    caller lets the error propagate so that the transaction rolls back."""

    def __init__(self, ledger: Ledger, conn: Connection, keys: Sequence[str] = ()) -> None:
        self.ledger = ledger
        self.conn = conn
        self.new_account_ids: dict[AccountKey, int] = {}
        self._state = LedgerState()
        self._balance_rows: set[int] = set()
        self._creatable: set[AccountKey] = set()
        # Assets, currencies and members found stored at once for accounts to be created
        # (``_look_up_owners``), by table and name. None is ever deleted.
        self._owners_found: set[tuple[str, str]] = set()
        self._unstored: set[AccountKey] = set()  # staged drafts create these accounts
        self._staged: list[tuple[Entry, str, str, _Undo | None]] = []
        self._spoiled = False
        self._stage_time: datetime | None = None  # when the staged entries are recorded
        # The keys last looked up (first those read with the lock), at the head they were
        # read at, and what was found: good while the head is still that one (the
        # transaction has added no entry since). See ``_stored_requests``.
        self._keys_known: tuple[int, frozenset[str], dict[str, tuple[int, str]]] | None = None
        if conn.dialect.name == "postgresql":
            head, stored = _locked_head_on_postgres(conn, keys)
            if keys:
                self._keys_known = (head[0] if head else 0, frozenset(keys), stored)
        else:  # BEGIN IMMEDIATE has taken the write lock already
            head = conn.execute(
                select(_entries.c.seq, _entries.c.hash, _entries.c.recorded_at)
                .order_by(_entries.c.seq.desc())
                .limit(1)
            ).first()
        self.head_seq: int = head[0] if head else 0
        self.head_hash: str = head[1] if head else GENESIS_HASH
        self._head_time: datetime | None = head[2].astimezone(UTC) if head else None

    @property
    def next_seq(self) -> int:
        """The seq the next appended entry will get."""
        return self.head_seq + 1

    def replay_of(self, draft: EntryDraft) -> Entry | None:
        """The entry already stored under the draft's idempotency key, or None if the key
        is new. Raises ``Conflict(idempotency_conflict)`` if it was used for another
        request. Services call it first so a repeated request changes nothing."""
        check_draft(draft)
        stored = self._stored_requests([draft.idempotency_key])
        if not stored:
            return None
        seq, original = stored[draft.idempotency_key]
        _same_request_or_conflict(original, draft.request_hash())
        return load_entries(self.conn, [seq])[0]

    def append_once(
        self, draft: EntryDraft, write_rows: Callable[[int], None] | None = None
    ) -> Appended:
        """Append ``draft`` once, with the rows a service keeps beside it.

        A replay (the draft's idempotency key already stored with the same request)
        returns the stored entry (``replayed=True``) and does nothing else. Otherwise
        ``write_rows(seq)`` runs first, given the seq the entry will get: it checks what
        the service must (raising before it writes anything) and writes the service's
        own rows; then the draft is appended at that seq. Raises
        ``Conflict(idempotency_conflict)`` for a key used with another request, and
        whatever ``write_rows`` or the append refuses (which spoils the transaction)."""
        prior = self.replay_of(draft)
        if prior is not None:
            return Appended(prior, replayed=True)
        if write_rows is not None:
            try:
                write_rows(self.next_seq)
            except LedgerError:
                self._spoiled = True
                raise
        return self.append(draft)

    def append(self, draft: EntryDraft) -> Appended:
        """Append one draft; see ``append_many``."""
        return self.append_many([draft])[0]

    def append_many(self, drafts: Sequence[EntryDraft]) -> list[Appended]:
        """Check, balance-check, seal and store ``drafts`` in order, or raise.

        A draft whose idempotency key is already in the journal with the same request
        yields the stored entry (``replayed=True``); with a different request, it raises
        ``Conflict(idempotency_conflict)``. Raises before writing anything of this call
        when any draft is refused.
        """
        results = self._append_guarded(drafts, tolerant=False)
        return [r for r in results if isinstance(r, Appended)]

    def append_each(self, drafts: Sequence[EntryDraft]) -> list[Appended | LedgerError]:
        """Like ``append_many``, but each draft stands alone: a refused draft yields its
        error in its place and leaves no trace, and the others are still appended."""
        return self._append_guarded(drafts, tolerant=True)

    def _append_guarded(
        self, drafts: Sequence[EntryDraft], *, tolerant: bool
    ) -> list[Appended | LedgerError]:
        if self._spoiled:
            raise RuntimeError("this write transaction was spoiled by an earlier error")
        try:
            return self._append(drafts, tolerant)
        except LedgerError:
            self._spoiled = True
            raise

    def _append(self, drafts: Sequence[EntryDraft], tolerant: bool) -> list[Appended | LedgerError]:
        outcome: dict[int, Appended | LedgerError] = {}

        def refuse(i: int, error: LedgerError) -> None:
            if not tolerant:
                raise error
            outcome[i] = error.as_answer()

        well_formed: list[int] = []
        request_bytes: dict[int, bytes] = {}
        request_hashes: dict[int, str] = {}
        payloads: dict[int, str] = {}  # each payload encoded once: checked, hashed, stored
        for i, draft in enumerate(drafts):
            try:
                payloads[i] = payload_json = payload_text(draft.payload)
                check_draft(draft, payload_json)
                _check_units_stay_inside(draft)
            except LedgerError as error:
                refuse(i, error)
                continue
            well_formed.append(i)
            request_bytes[i] = asked = draft.request_bytes(payload_json)
            request_hashes[i] = draft.request_hash(asked)
        stored = self._stored_requests([drafts[i].idempotency_key for i in well_formed])
        fresh: list[int] = []
        replay_seq: dict[int, int] = {}
        same_as: dict[int, int] = {}
        first_in_batch: dict[str, int] = {}
        for i in well_formed:
            key = drafts[i].idempotency_key
            try:
                if key in stored:
                    seq, original = stored[key]
                    _same_request_or_conflict(original, request_hashes[i])
                    replay_seq[i] = seq
                elif key in first_in_batch:
                    j = first_in_batch[key]
                    _same_request_or_conflict(request_hashes[j], request_hashes[i])
                    same_as[i] = j
                else:
                    first_in_batch[key] = i
                    fresh.append(i)
            except LedgerError as error:
                refuse(i, error)

        sealed = self._seal_fresh(fresh, drafts, request_bytes, refuse)
        self._store(
            [e for _, e in sealed],
            [request_hashes[i] for i, _ in sealed],
            [payloads[i] for i, _ in sealed],
        )
        for i, entry in sealed:
            outcome[i] = Appended(entry, replayed=False)
        replays = load_entries(self.conn, list(replay_seq.values()))
        for i, entry in zip(replay_seq, replays, strict=True):
            outcome[i] = Appended(entry, replayed=True)
        for i, j in same_as.items():
            first = outcome[j]
            outcome[i] = Appended(first.entry, True) if isinstance(first, Appended) else first
        return [outcome[i] for i in range(len(drafts))]

    def _seal_fresh(
        self,
        fresh: Sequence[int],
        drafts: Sequence[EntryDraft],
        request_bytes: dict[int, bytes],
        refuse: Callable[[int, LedgerError], None],
    ) -> list[tuple[int, Entry]]:
        keys = {p.account for i in fresh for p in drafts[i].postings}
        keys |= {h.account for i in fresh for h in drafts[i].hold_changes}
        stored_ids = self._find_accounts(keys)
        self._load_balances(stored_ids)
        self._load_holds([drafts[i] for i in fresh])
        # Accounts not stored yet; a draft naming one is checked before it may create it.
        unstored = keys - stored_ids.keys()
        if unstored:
            self._look_up_owners(unstored - self._creatable)
        now = self.ledger.clock()
        # recorded_at never goes back along the chain, even if the wall clock does.
        if self._head_time is not None and now < self._head_time:
            now = self._head_time
        sealed: list[tuple[int, Entry]] = []
        apply = self._state.apply
        for i in fresh:
            draft = drafts[i]
            try:
                if unstored:
                    self._check_new_accounts(draft, unstored)
                apply(draft.postings, draft.hold_changes)
            except LedgerError as error:
                refuse(i, error)
                continue
            entry = seal(
                draft,
                seq=self.head_seq + 1,
                prev_hash=self.head_hash,
                recorded_at=now,
                request_bytes=request_bytes[i],
            )
            sealed.append((i, entry))
            self.head_seq, self.head_hash, self._head_time = entry.seq, entry.hash, now
        if unstored:
            self._create_accounts([e for _, e in sealed], unstored)
        return sealed

    def stored_requests(self, keys: Sequence[str]) -> dict[str, int]:
        """The seq of each of ``keys`` already used as an idempotency key (see
        ``_stored_requests``). A service that stages drafts looks its callers' keys up
        first."""
        return {key: seq for key, (seq, _) in self._stored_requests(keys).items()}

    def _stored_requests(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """``(seq, request_hash)`` of those of ``keys`` already in the journal: one
        query, or none for keys looked up already at the transaction's head (those
        ``Ledger.write`` was given, read with the lock, or those of the lookup before),
        since only an entry added after could have used one. So ``append_once`` looks
        its key up once, not again as it appends."""
        known = self._keys_known
        if known is not None and known[0] == self.head_seq and known[1].issuperset(keys):
            return {key: known[2][key] for key in keys if key in known[2]}
        found = super()._stored_requests(keys)
        self._keys_known = (self.head_seq, frozenset(keys), found)
        return found

    def stage(
        self, draft: EntryDraft, *, fresh_holds: bool = False, retractable: bool = False
    ) -> Entry:
        """Check ``draft`` and seal it at the next seq, keeping it until ``flush``, or
        raise its error and change nothing. For services that decide entry by entry
        inside one transaction (the market engine): each staged draft sees the balances
        the earlier ones left, and ``retract`` takes the latest one back.

        The idempotency key is not looked up: the caller has checked its callers' keys
        (``stored_requests``) and makes its own unique, and the journal's unique key
        refuses a duplicate at ``flush``. ``fresh_holds``: the holds the draft places
        are named after its own seq, so none can exist yet and none is looked up.
        ``retractable``: keep what ``retract`` needs to take this draft back. The staged
        entries of one transaction are recorded at one time, read when the first is
        staged (as ``append_many`` seals its drafts at one time)."""
        if self._spoiled:
            raise RuntimeError("this write transaction was spoiled by an earlier error")
        payload_json = payload_text(draft.payload)
        check_draft(draft, payload_json)
        _check_units_stay_inside(draft)
        state = self._state
        # Mostly every account and hold named is known already: look for one that is not
        # before building any set.
        accounts = state.accounts
        if not _all_known(draft, accounts):
            unseen = {p.account for p in draft.postings if p.account not in accounts}
            unseen |= {h.account for h in draft.hold_changes if h.account not in accounts}
            stored_ids = self._find_accounts(unseen)
            self._load_balances(stored_ids)
            for key in unseen - stored_ids.keys():
                if key not in self._creatable:
                    self._check_account_may_exist(key)
                    self._creatable.add(key)
                    self._unstored.add(key)
        if draft.hold_changes:
            holds, closed, place = state.holds, state.closed_holds, HoldOp.PLACE
            for h in draft.hold_changes:
                hold_id = h.hold_id
                if (
                    hold_id not in holds
                    and hold_id not in closed
                    and not (fresh_holds and h.op is place)
                ):
                    self._load_holds([draft], skip_placed=fresh_holds)
                    break
        undo = None
        if retractable:
            keys = {p.account for p in draft.postings} | {h.account for h in draft.hold_changes}
            undo = _Undo.before(state, keys, draft)
        state.apply(draft.postings, draft.hold_changes)
        asked = draft.request_bytes(payload_json)
        now = self._stage_time
        if now is None:  # one time for the transaction's staged entries, as append_many
            now = self._stage_time = self.ledger.clock()
        if self._head_time is not None and now < self._head_time:
            now = self._head_time
        entry = seal(
            draft, seq=self.head_seq + 1, prev_hash=self.head_hash, recorded_at=now,
            request_bytes=asked,
        )  # fmt: skip
        if undo is not None:
            undo.head = (self.head_seq, self.head_hash, self._head_time)
        self._staged.append((entry, draft.request_hash(asked), payload_json, undo))
        self.head_seq, self.head_hash, self._head_time = entry.seq, entry.hash, now
        return entry

    def carry_over(self) -> Carried:
        """What this transaction knows of balances and holds, for the next transaction
        of the same writer to ``resume`` from (take it at the end of the block)."""
        return Carried(self.head_seq, self._state, self._balance_rows)

    def resume(self, carried: Carried | None) -> bool:
        """Start from what an earlier transaction of this writer knew, if no entry was
        written since it committed (the head is where it left it): then every balance
        and hold it read is still exact, and need not be read again. Returns whether it
        did. The closed holds it remembers are dropped (they are looked up if named)."""
        if carried is None or carried.head_seq != self.head_seq or self._staged:
            return False
        carried.state.closed_holds.clear()
        self._state = carried.state
        self._balance_rows = carried.balance_rows
        return True

    def preload(self, keys: set[AccountKey]) -> None:
        """Read the balances of those of ``keys`` this transaction has not seen, in one
        query: a service about to stage many drafts on them saves a query each."""
        unseen = {k for k in keys if k not in self._state.accounts}
        if unseen:
            self._load_balances(self._find_accounts(unseen))

    def available(self, key: AccountKey) -> int:
        """What ``key`` has available after the drafts staged so far (it must have been
        named by one of them)."""
        return self._state.account(key).available

    def retract(self) -> None:
        """Take back the latest staged draft (staged ``retractable``): balances, holds
        and the head as before it."""
        _, _, _, undo = self._staged[-1]
        if undo is None:
            raise RuntimeError("the latest staged draft was not staged retractable")
        self._staged.pop()
        undo.restore(self._state)
        self.head_seq, self.head_hash, self._head_time = undo.head

    def flush(self, then: Callable[[], None] | None = None) -> list[Entry]:
        """Store every staged entry (and the accounts they create); returns them.

        ``then`` writes more (a service's own rows) right after. On PostgreSQL the
        entries' rows and ``then``'s go in one pipeline (``pipelined``): one round trip,
        not one a table. The accounts come first, outside it: their ids are read back."""
        staged, self._staged = self._staged, []
        entries = [e for e, _, _, _ in staged]
        if self._unstored:
            self._create_accounts(entries, self._unstored)
            self._unstored = set()
        with pipelined(self.conn):
            self._store(entries, [h for _, h, _, _ in staged], [t for _, _, t, _ in staged])
            if then is not None:
                then()
        return entries

    def _id(self, key: AccountKey) -> int:
        return self.new_account_ids.get(key) or self.ledger._account_ids[key]

    def _find_accounts(self, keys: set[AccountKey]) -> dict[AccountKey, int]:
        """The ids of those of ``keys`` whose accounts are stored, from the caches or,
        for those not cached, from the database."""
        found: dict[AccountKey, int] = {}
        missing: list[AccountKey] = []
        new, cached = self.new_account_ids, self.ledger._account_ids
        for key in keys:
            account_id = new.get(key) or cached.get(key)
            if account_id is None:
                missing.append(key)
            else:
                found[key] = account_id
        for part in chunks(missing, IN_CHUNK // 2):  # two parameters a key
            for account_id, holder, instrument in self.conn.execute(
                select(_accounts.c.id, _accounts.c.holder, _accounts.c.instrument).where(
                    tuple_(_accounts.c.holder, _accounts.c.instrument).in_(
                        [(k.holder, k.instrument) for k in part]
                    )
                )
            ):
                found[AccountKey(holder, instrument)] = account_id
                self.new_account_ids[AccountKey(holder, instrument)] = account_id
        return found

    def _check_new_accounts(self, draft: EntryDraft, unstored: set[AccountKey]) -> None:
        """An account not yet stored may be created if its holder and instrument exist."""
        for key in [p.account for p in draft.postings] + [h.account for h in draft.hold_changes]:
            if key in unstored and key not in self._creatable:
                self._check_account_may_exist(key)
                self._creatable.add(key)

    def _create_accounts(self, entries: Sequence[Entry], unstored: set[AccountKey]) -> None:
        """Store the new accounts that sealed entries post to or hold on: one INSERT, its
        rows' ids read back with it (by key: no order of ids is relied on)."""
        new = {p.account for e in entries for p in e.postings if p.account in unstored}
        new |= {h.account for e in entries for h in e.hold_changes if h.account in unstored}
        if not new:
            return
        created = self.conn.execute(
            insert(_accounts).returning(_accounts.c.id, _accounts.c.holder, _accounts.c.instrument),
            [{"holder": k.holder, "instrument": k.instrument} for k in sorted(new)],
        )
        for account_id, holder, instrument in created:
            self.new_account_ids[AccountKey(holder, instrument)] = account_id

    def _check_account_may_exist(self, key: AccountKey) -> None:
        for column, name, code, message in _owners_of(key):
            if (column.table.name, name) in self._owners_found:
                continue  # found by _look_up_owners
            if self.conn.execute(select(1).where(column == name)).first() is None:
                raise NotFound(code, message)

    def _look_up_owners(self, keys: set[AccountKey]) -> None:
        """Look up at once which of the assets, currencies and members ``keys`` name are
        stored, a query a table (of ``IN_CHUNK`` names), for the check of each account
        to find: an entry that issues units to many new holders checks them together,
        not with a query each. Only what is found is kept (one not found may be stored
        later in the transaction: the check asks again). A key refused for its form is
        left for the check to refuse."""
        names: dict[Column[str], set[str]] = {}
        for key in keys:
            try:
                owners = _owners_of(key)
            except LedgerError:
                continue
            for column, name, _, _ in owners:
                names.setdefault(column, set()).add(name)
        known = self._owners_found
        for column, wanted in names.items():
            asked = sorted(n for n in wanted if (column.table.name, n) not in known)
            for part in chunks(asked, IN_CHUNK):
                found = self.conn.execute(select(column).where(column.in_(part))).scalars()
                known.update((column.table.name, n) for n in found)


def _owners_of(key: AccountKey) -> list[tuple[Column[str], str, str, str]]:
    """What must be stored for an account ``key`` to be created: its asset or currency
    and, for a member's account, the member, each as (column, name, the code and the
    message if it is not). Raises for a key no account may have: a malformed asset ID,
    a pool of another asset's units, an external account that does not exist."""
    instrument = parse_instrument(key.instrument)
    name = instrument.name
    owners: list[tuple[Column[str], str, str, str]] = []
    if instrument.kind is InstrumentKind.UNITS:
        validate_asset_id(name)  # a mistyped ID is named as such, not as unknown
        owners.append((_ASSET_ID, name, "unknown_asset", f"no asset {name!r}"))
    else:
        owners.append((_CURRENCY_CODE, name, "unknown_currency", f"no currency {name!r}"))
    holder = parse_holder(key.holder)
    who = holder.name
    if holder.kind is HolderKind.MEMBER:
        owners.append((_MEMBER_ADDRESS, who, "unknown_member", f"no member {who!r}"))
    elif holder.kind is HolderKind.POOL:
        if key.instrument != units_of(who):
            raise InvalidInput(
                "pool_instrument", f"the pool of {who!r} holds only that asset's units"
            )
    elif who not in EXTERNAL_NAMES:
        raise NotFound("unknown_external", f"no external account {who!r}")
    return owners


_PG_LOCK = f"SELECT pg_advisory_xact_lock({_PG_JOURNAL_LOCK}, hashtext(current_schema()))"
_PG_HEAD = "SELECT seq, hash, recorded_at FROM journal_entries ORDER BY seq DESC LIMIT 1"


def _locked_head_on_postgres(
    conn: Connection, keys: Sequence[str]
) -> tuple[tuple[int, str, datetime] | None, dict[str, tuple[int, str]]]:
    """Take the journal lock and read the head, and ``(seq, request_hash)`` of those
    idempotency ``keys`` already stored, in one round trip with the BEGIN: a pipeline.
    The reads start only once the lock is granted, so in READ COMMITTED they see every
    commit of the writers before."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"PostgreSQL through psycopg 3 expected, not {type(driver).__name__}")
    with driver.pipeline():
        lock, head, stored = driver.cursor(), driver.cursor(), driver.cursor()
        lock.execute(_PG_LOCK)
        head.execute(_PG_HEAD)
        if keys:
            stored.execute(*pg_stored_requests(keys))
    row: tuple[int, str, datetime] | None = head.fetchone()
    found = {key: (seq, request_hash) for key, seq, request_hash in stored} if keys else {}
    return row, found


@dataclass(frozen=True, slots=True)
class Carried:
    """Balances and holds a committed transaction knew, as of its last entry."""

    head_seq: int
    state: LedgerState
    balance_rows: set[int]

    @property
    def size(self) -> int:
        """How many accounts and holds it holds."""
        return len(self.state.accounts) + len(self.state.holds)


class _Undo:
    """What a staged draft changed, as it was before: to retract it."""

    __slots__ = ("accounts", "closed", "head", "holds")

    def __init__(self) -> None:
        self.accounts: list[tuple[AccountKey, AccountState | None]] = []
        self.holds: list[tuple[str, HoldState | None]] = []
        self.closed: list[str] = []
        self.head: tuple[int, str, datetime | None] = (0, GENESIS_HASH, None)

    @classmethod
    def before(cls, state: LedgerState, keys: set[AccountKey], draft: EntryDraft) -> _Undo:
        undo = cls()
        for key in keys:
            now = state.accounts.get(key)
            undo.accounts.append(
                (key, None if now is None else AccountState(now.balance, now.held))
            )
        for change in draft.hold_changes:
            hold = state.holds.get(change.hold_id)
            copy = None if hold is None else HoldState(hold.account, hold.remaining)
            undo.holds.append((change.hold_id, copy))
            if change.hold_id not in state.closed_holds:
                undo.closed.append(change.hold_id)
        return undo

    def restore(self, state: LedgerState) -> None:
        for key, account in self.accounts:
            if account is None:
                state.accounts.pop(key, None)
            else:
                state.accounts[key] = account
        for hold_id, hold in self.holds:
            if hold is None:
                state.holds.pop(hold_id, None)
            else:
                state.holds[hold_id] = hold
        state.closed_holds.difference_update(self.closed)


def _all_known(draft: EntryDraft, accounts: dict[AccountKey, AccountState]) -> bool:
    """Whether every account ``draft`` names is among ``accounts``."""
    for p in draft.postings:
        if p.account not in accounts:
            return False
    for h in draft.hold_changes:  # noqa: SIM110 - a loop: no generator allocated, hot
        if h.account not in accounts:
            return False
    return True


def _same_request_or_conflict(original: str, asked: str) -> None:
    if original != asked:
        raise Conflict(
            "idempotency_conflict",
            # Not the key itself: at the HTTP boundary it is the caller's key scoped
            # and perhaps hashed (api.idempotency.ledger_key), which is not theirs to see.
            "this idempotency key was already used for a different request",
        )


def _check_units_stay_inside(draft: EntryDraft) -> None:
    """Units enter the ledger once, when their asset is registered, and never leave."""
    if draft.kind == EntryKind.ASSET_REGISTER:
        return
    for posting in draft.postings:
        if posting.account.is_external and posting.account.is_units:
            raise Refused("units_external", "units move only between owners and their asset's pool")
