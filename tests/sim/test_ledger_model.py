"""The real ledger on SQLite against a plain model of balances and holds.

A Hypothesis state machine drives the ledger's services (transfers of units and money,
deposits, withdrawals, holds, reversals, repeated idempotency keys) and a model written
for clarity predicts every balance and every refusal. After each step the balances, the
cap table, the open holds and the invariants of DESIGN.md are compared with the
database; at the end ``verify`` must pass and agree with the digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import Connection, Engine, select

from ledger import money as transfers
from ledger.core import AccountKey, Entry, EntryDraft, HoldChange, HoldOp, with_check_character
from ledger.core.accounts import member_holder, pool_holder, units_of
from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused
from ledger.core.kinds import REVERSIBLE_KINDS
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.db.schema import Account, Balance, Hold, table
from ledger.journal import reads
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry import assets as registry
from ledger.registry import members
from tests.conftest import StepClock

ACTOR = "sim-admin"
ASSET_ID = with_check_character("1M8GDM9AXKP042788")
TOTAL_UNITS = 1_000_000
UNITS = units_of(ASSET_ID)
USD = "ccy:USD"
INSTRUMENTS = (UNITS, USD)
MEMBERS: tuple[str, ...] = tuple(
    str(to_checksum_address("0x" + hashlib.sha256(f"sim member {i}".encode()).hexdigest()[:40]))
    for i in range(4)
)
# The starting position: units issued from the pool (the rest stays there) and cash.
ISSUED = {MEMBERS[0]: 400_000, MEMBERS[1]: 250_000, MEMBERS[2]: 100_000}
DEPOSITED = {MEMBERS[0]: 50_000, MEMBERS[1]: 20_000, MEMBERS[2]: 5_000}

POOL = AccountKey(pool_holder(ASSET_ID), UNITS)
ISSUANCE = AccountKey("external:issuance", UNITS)
DEPOSITS = AccountKey(transfers.DEPOSITS, USD)
REVERSIBLE = REVERSIBLE_KINDS


def account(member: str, instrument: str) -> AccountKey:
    return AccountKey(member_holder(member), instrument)


def shortage_code(instrument: str) -> str:
    return "insufficient_units" if instrument.startswith("units:") else "insufficient_funds"


@contextmanager
def fresh_database() -> Iterator[Engine]:
    """A migrated SQLite file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="dpn-sim-") as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'ledger.sqlite3'}")
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def set_up_network(ledger: Ledger) -> list[Entry]:
    """Register the members and the asset, issue units and deposit cash. Returns the
    entries with postings (registrations of members have none)."""
    for i, member in enumerate(MEMBERS):
        members.register_member(ledger, member, "individual", f"m{i}", key=f"m{i}", actor=ACTOR)
    registry.register_asset(
        ledger,
        ASSET_ID,
        make="Haas",
        model="VF-2",
        serial="S-1",
        location="Lyon",
        total_units=TOTAL_UNITS,
        jurisdiction="FR",
        key="asset",
        actor=ACTOR,
    )
    entries = [
        registry.issue_units(ledger, ASSET_ID, list(ISSUED.items()), key="issue", actor=ACTOR)
    ]
    for member, amount in DEPOSITED.items():
        entries.append(
            transfers.deposit(
                ledger,
                member=member,
                currency="USD",
                amount=amount,
                reference=f"wire {member[:8]}",
                key=f"dep-{member}",
                actor=ACTOR,
            )
        )
    return entries


# -- the model ------------------------------------------------------------------------------


@dataclass
class ModelEntry:
    kind: str
    postings: dict[AccountKey, int]


@dataclass
class Model:
    """What the journal should imply: balances, held amounts, holds and entries."""

    balance: dict[AccountKey, int] = field(default_factory=dict)
    held: dict[AccountKey, int] = field(default_factory=dict)
    open_holds: dict[str, tuple[AccountKey, int]] = field(default_factory=dict)
    closed_holds: set[str] = field(default_factory=set)
    entries: dict[int, ModelEntry] = field(default_factory=dict)
    reversed: set[int] = field(default_factory=set)
    seq: int = 0
    # After each seq: every account's (balance, held), for reads as of that seq.
    history: dict[int, dict[AccountKey, tuple[int, int]]] = field(default_factory=dict)

    def available(self, key: AccountKey) -> int:
        return self.balance.get(key, 0) - self.held.get(key, 0)

    def record(self, kind: str, postings: dict[AccountKey, int]) -> int:
        """A new entry: apply its postings and give it the next seq."""
        for key, amount in postings.items():
            self.balance[key] = self.balance.get(key, 0) + amount
        self.seq += 1
        self.entries[self.seq] = ModelEntry(kind, dict(postings))
        self.history[self.seq] = {
            k: (self.balance.get(k, 0), self.held.get(k, 0))
            for k in self.balance.keys() | self.held.keys()
        }
        return self.seq

    def place(self, hold_id: str, key: AccountKey, amount: int) -> None:
        self.open_holds[hold_id] = (key, amount)
        self.held[key] = self.held.get(key, 0) + amount

    def take_from_hold(self, hold_id: str, amount: int) -> None:
        """Consume or release ``amount`` of an open hold."""
        key, remaining = self.open_holds[hold_id]
        self.held[key] -= amount
        if remaining == amount:
            del self.open_holds[hold_id]
            self.closed_holds.add(hold_id)
        else:
            self.open_holds[hold_id] = (key, remaining - amount)

    def nonzero(
        self, holder: str, as_of_seq: int | None = None
    ) -> dict[AccountKey, tuple[int, int]]:
        """The holder's accounts that are not (0, 0), now or after entry ``as_of_seq``."""
        states = self.history[self.seq if as_of_seq is None else as_of_seq]
        return {k: s for k, s in states.items() if k.holder == holder and s != (0, 0)}


@dataclass(frozen=True, slots=True)
class Request:
    """One service call, kept so it can be asked again under the same key."""

    op: str  # transfer, deposit, withdraw, place_hold, release_hold, reverse
    key: str
    member: str = ""  # sender, depositor, hold owner
    recipient: str = ""
    instrument: str = USD
    amount: int | None = None
    hold_id: str | None = None
    target_seq: int = 0
    text: str = ""  # memo, reference, reason
    actor: str = ACTOR


def perform(ledger: Ledger, r: Request) -> Entry:
    """Make the service call ``r`` describes."""
    if r.op == "transfer":
        assert r.amount is not None
        return transfers.transfer(
            ledger,
            sender=r.member,
            recipient=r.recipient,
            instrument=r.instrument,
            amount=r.amount,
            key=r.key,
            actor=r.actor,
            consume_hold=r.hold_id,
            memo=r.text,
        )
    if r.op in {"deposit", "withdraw"}:
        assert r.amount is not None
        call = transfers.deposit if r.op == "deposit" else transfers.withdraw
        return call(
            ledger,
            member=r.member,
            currency=r.instrument.removeprefix("ccy:"),
            amount=r.amount,
            reference=r.text,
            key=r.key,
            actor=r.actor,
        )
    if r.op == "place_hold":
        assert r.amount is not None and r.hold_id is not None
        return transfers.place_hold(
            ledger,
            member=r.member,
            instrument=r.instrument,
            amount=r.amount,
            hold_id=r.hold_id,
            reason=r.text,
            key=r.key,
            actor=r.actor,
        )
    if r.op == "release_hold":
        assert r.hold_id is not None
        return transfers.release_hold(
            ledger, hold_id=r.hold_id, amount=r.amount, key=r.key, actor=r.actor
        )
    assert r.op == "reverse"
    return transfers.reverse(ledger, r.target_seq, reason=r.text, key=r.key, actor=r.actor)


# Amounts are drawn relative to what the payer has, so that both the exact limit and
# just past it come up often: ("part", p) is p % of available, ("all", 0) all of it,
# ("over", n) n more than available, ("fixed", n) n whatever is available.
AmountSpec = tuple[str, int]
amount_specs: st.SearchStrategy[AmountSpec] = st.one_of(
    st.tuples(st.just("part"), st.integers(1, 100)),
    st.tuples(st.just("all"), st.just(0)),
    st.tuples(st.just("over"), st.integers(1, 1_000)),
    st.tuples(st.just("fixed"), st.integers(1, 5_000)),
)


def resolve(spec: AmountSpec, available: int) -> int:
    kind, n = spec
    if kind == "part":
        return max(1, available * n // 100)
    if kind == "all":
        return max(1, available)
    if kind == "over":
        return max(available, 0) + n
    return n


Expected = tuple[type[LedgerError], str] | None  # None: the call succeeds


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        self.engine = self._resources.enter_context(fresh_database())
        self.ledger = Ledger(self.engine, clock=StepClock())
        self.model = Model()
        self.requests: list[tuple[Request, int]] = []  # succeeded, with their entry's seq
        self.counter = 0
        for _ in MEMBERS:
            self.model.record("member.register", {})
        self.model.record("asset.register", {ISSUANCE: -TOTAL_UNITS, POOL: TOTAL_UNITS})
        self.model.record(
            "asset.issue",
            {POOL: -sum(ISSUED.values())} | {account(m, UNITS): n for m, n in ISSUED.items()},
        )
        for member, amount in DEPOSITED.items():
            self.model.record("cash.deposit", {DEPOSITS: -amount, account(member, USD): amount})
        for entry in set_up_network(self.ledger):
            predicted = self.model.entries[entry.seq].postings
            assert {p.account: p.amount for p in entry.postings} == predicted

    def teardown(self) -> None:
        try:
            with self.engine.connect() as conn:
                report = verify(conn)
                assert report.ok, report.problems
                head = reads.digest(conn)
                assert (report.head_seq, report.head_hash) == (head.seq, head.head_hash)
                assert head.seq == self.model.seq == report.entries
                assert verify(conn, against=(head.seq, head.head_hash)).ok
                if head.seq > 1:
                    assert not verify(conn, against=(head.seq - 1, head.head_hash)).ok
        finally:
            self._resources.close()

    # -- helpers ------------------------------------------------------------------------

    def new_key(self, op: str) -> str:
        self.counter += 1
        return f"{op}-{self.counter}"

    def run(
        self,
        request: Request,
        expected: Expected,
        kind: str,
        postings: dict[AccountKey, int],
        on_success: Callable[[], None] = lambda: None,
    ) -> None:
        """Make the call. If the model predicts a refusal, check it is exactly that one;
        otherwise check the call appended the predicted entry as the next seq, and bring
        the model along."""
        consumes = " consuming a hold" if request.op == "transfer" and request.hold_id else ""
        event(f"{request.op}{consumes}: {expected[1] if expected else 'ok'}")
        if expected is not None:
            error, code = expected
            with pytest.raises(error) as info:
                perform(self.ledger, request)
            assert info.value.code == code, info.value
            return
        entry = perform(self.ledger, request)
        assert entry.seq == self.model.seq + 1, (entry.seq, self.model.seq)
        assert (entry.kind, entry.idempotency_key, entry.actor) == (
            kind,
            request.key,
            request.actor,
        )
        assert {p.account: p.amount for p in entry.postings} == postings
        on_success()
        self.model.record(kind, postings)
        self.requests.append((request, entry.seq))

    def draw_hold_id(self, data: st.DataObject) -> str:
        """Mostly an open hold (when there is one); else a closed one or one never placed."""
        others = [*sorted(self.model.closed_holds), "no-such-hold"]
        # Hypothesis favours the first of the choices: put the common case first.
        mostly = st.sampled_from((True, True, True, False))
        if bool(self.model.open_holds) and data.draw(mostly, label="an open hold"):
            return data.draw(st.sampled_from(sorted(self.model.open_holds)), label="hold_id")
        return data.draw(st.sampled_from(others), label="hold_id")

    # -- rules --------------------------------------------------------------------------

    @rule(
        sender=st.sampled_from(MEMBERS),
        offset=st.sampled_from((1, 2, 3, 1, 2, 3, 0)),  # 0: to oneself, to be refused
        instrument=st.sampled_from(INSTRUMENTS),
        spec=amount_specs,
        memo=st.sampled_from(["", "rent", "Grüße"]),
    )
    def transfer(
        self, sender: str, offset: int, instrument: str, spec: AmountSpec, memo: str
    ) -> None:
        recipient = MEMBERS[(MEMBERS.index(sender) + offset) % len(MEMBERS)]
        source = account(sender, instrument)
        amount = resolve(spec, self.model.available(source))
        request = Request(
            "transfer",
            self.new_key("transfer"),
            member=sender,
            recipient=recipient,
            instrument=instrument,
            amount=amount,
            text=memo,
        )
        expected: Expected = None
        if sender == recipient:
            expected = (InvalidInput, "transfer_to_self")
        elif amount > self.model.available(source):
            expected = (Refused, shortage_code(instrument))
        postings = {source: -amount, account(recipient, instrument): amount}
        self.run(request, expected, "transfer", postings)

    @precondition(lambda self: bool(self.model.open_holds))
    @rule(data=st.data(), spec=amount_specs)
    def transfer_consuming_a_hold(self, data: st.DataObject, spec: AmountSpec) -> None:
        hold_id = self.draw_hold_id(data)
        if hold_id in self.model.open_holds:
            hold_account, remaining = self.model.open_holds[hold_id]
        else:
            hold_account, remaining = account(MEMBERS[0], USD), 0
        instrument = hold_account.instrument
        # Mostly spend from the hold's own account; now and then (to be refused) from
        # another member's.
        sender = hold_account.holder.removeprefix("member:")
        if data.draw(st.sampled_from((False, False, False, True)), label="another sender"):
            sender = data.draw(st.sampled_from(MEMBERS), label="other sender")
        recipient = data.draw(st.sampled_from([m for m in MEMBERS if m != sender]), label="to")
        source = account(sender, instrument)
        amount = resolve(spec, remaining)
        request = Request(
            "transfer",
            self.new_key("consume"),
            member=sender,
            recipient=recipient,
            instrument=instrument,
            amount=amount,
            hold_id=hold_id,
        )
        expected: Expected = None
        if hold_id not in self.model.open_holds:
            expected = (NotFound, "unknown_hold")
        elif source != hold_account:
            expected = (InvalidInput, "hold_account_mismatch")
        elif amount > remaining:
            expected = (Refused, "hold_exceeded")
        postings = {source: -amount, account(recipient, instrument): amount}
        self.run(
            request,
            expected,
            "transfer",
            postings,
            lambda: self.model.take_from_hold(hold_id, amount),
        )

    @rule(member=st.sampled_from(MEMBERS), amount=st.integers(1, 20_000))
    def deposit(self, member: str, amount: int) -> None:
        request = Request(
            "deposit", self.new_key("deposit"), member=member, amount=amount, text="wire"
        )
        postings = {DEPOSITS: -amount, account(member, USD): amount}
        self.run(request, None, "cash.deposit", postings)

    @rule(member=st.sampled_from(MEMBERS), spec=amount_specs)
    def withdraw(self, member: str, spec: AmountSpec) -> None:
        amount = resolve(spec, self.model.available(account(member, USD)))
        request = Request(
            "withdraw", self.new_key("withdraw"), member=member, amount=amount, text="payout"
        )
        expected: Expected = None
        if amount > self.model.available(account(member, USD)):
            expected = (Refused, "insufficient_funds")
        postings = {account(member, USD): -amount, DEPOSITS: amount}
        self.run(request, expected, "cash.withdraw", postings)

    @rule(
        member=st.sampled_from(MEMBERS),
        instrument=st.sampled_from(INSTRUMENTS),
        spec=amount_specs,
        reuse=st.sampled_from((False, False, False, True)),
        data=st.data(),
    )
    def place_hold(
        self, member: str, instrument: str, spec: AmountSpec, reuse: bool, data: st.DataObject
    ) -> None:
        key = account(member, instrument)
        amount = resolve(spec, self.model.available(key))
        known = sorted(self.model.open_holds.keys() | self.model.closed_holds)
        if reuse and known:
            hold_id = data.draw(st.sampled_from(known), label="reused hold id")
        else:
            hold_id = self.new_key("hold")
        request = Request(
            "place_hold",
            self.new_key("place"),
            member=member,
            instrument=instrument,
            amount=amount,
            hold_id=hold_id,
            text="order",
        )
        expected: Expected = None
        if hold_id in known:
            expected = (Conflict, "hold_exists")
        elif amount > self.model.available(key):
            expected = (Refused, shortage_code(instrument))
        self.run(
            request, expected, "hold.place", {}, lambda: self.model.place(hold_id, key, amount)
        )

    @precondition(lambda self: bool(self.model.open_holds))
    @rule(data=st.data(), release_all=st.booleans(), spec=amount_specs)
    def release_hold(self, data: st.DataObject, release_all: bool, spec: AmountSpec) -> None:
        hold_id = self.draw_hold_id(data)
        remaining = self.model.open_holds.get(hold_id, (POOL, 0))[1]
        amount = None if release_all else resolve(spec, remaining)
        request = Request("release_hold", self.new_key("release"), hold_id=hold_id, amount=amount)
        expected: Expected = None
        if hold_id in self.model.closed_holds:
            expected = (Refused, "hold_closed")
        elif hold_id not in self.model.open_holds:
            expected = (NotFound, "unknown_hold")
        elif amount is not None and amount > remaining:
            expected = (Refused, "hold_exceeded")
        released = remaining if amount is None else amount
        self.run(
            request,
            expected,
            "hold.release",
            {},
            lambda: self.model.take_from_hold(hold_id, released),
        )

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        reversible = [seq for seq, e in self.model.entries.items() if e.kind in REVERSIBLE]
        if data.draw(st.sampled_from((True, True, True, False)), label="a reversible entry"):
            target = data.draw(st.sampled_from(reversible), label="target_seq")
        else:  # any seq, or the one after the head
            target = data.draw(st.integers(1, self.model.seq + 1), label="target_seq")
        request = Request("reverse", self.new_key("reverse"), target_seq=target, text="mistake")
        original = self.model.entries.get(target)
        expected: Expected = None
        if target > self.model.seq:
            expected = (NotFound, "unknown_entry")
        elif original is None or original.kind not in REVERSIBLE:  # None: never, seq is known
            expected = (Refused, "not_reversible")
        elif target in self.model.reversed:
            expected = (Conflict, "already_reversed")
        else:
            for key, amount in original.postings.items():
                if not key.is_external and self.model.available(key) < amount:
                    expected = (Refused, shortage_code(key.instrument))
        undo = {k: -v for k, v in original.postings.items()} if original else {}
        self.run(request, expected, "reversal", undo, lambda: self.model.reversed.add(target))

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def repeat_a_request(self, data: st.DataObject) -> None:
        """The same key with the same request returns the original entry, changes nothing."""
        request, seq = data.draw(st.sampled_from(self.requests), label="repeated")
        with self.engine.connect() as conn:
            before = reads.digest(conn)
        entry = perform(self.ledger, request)
        event(f"repeated {request.op}: same entry")
        assert entry.seq == seq
        assert entry.idempotency_key == request.key
        with self.engine.connect() as conn:
            assert reads.digest(conn) == before

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), change=st.sampled_from(["actor", "amount", "text"]))
    def reuse_a_key_for_another_request(self, data: st.DataObject, change: str) -> None:
        """The same key with a different request is refused and changes nothing."""
        # A release of a hold that is now closed is answered from the journal by its key
        # alone (see test_release_hold_key_reused_for_another_closed_hold_conflicts).
        candidates = [
            r
            for r, _ in self.requests
            if not (r.op == "release_hold" and r.hold_id not in self.model.open_holds)
        ]
        if not candidates:
            return
        request = data.draw(st.sampled_from(candidates), label="original")
        if change == "amount" and request.amount is not None:
            other = dataclasses.replace(request, amount=request.amount + 1)
        elif change == "text" and request.op != "release_hold":
            other = dataclasses.replace(request, text=request.text + " (edited)")
        else:
            other = dataclasses.replace(request, actor=request.actor + "-2")
        with pytest.raises(Conflict) as info:
            perform(self.ledger, other)
        assert info.value.code == "idempotency_conflict"
        event(f"reused key for another {request.op}: idempotency_conflict")

    @rule(
        index=st.integers(0, len(MEMBERS) - 1), how=st.sampled_from(["same", "new key", "renamed"])
    )
    def register_a_member_again(self, index: int, how: str) -> None:
        member = MEMBERS[index]
        if how == "same":
            record = members.register_member(
                self.ledger, member, "individual", f"m{index}", key=f"m{index}", actor=ACTOR
            )
            assert (record.address, record.registered_seq) == (member, index + 1)
            return
        key, name = (f"m{index}-again", f"m{index}") if how == "new key" else (f"m{index}", "x")
        code = "member_exists" if how == "new key" else "idempotency_conflict"
        with pytest.raises(Conflict) as info:
            members.register_member(self.ledger, member, "individual", name, key=key, actor=ACTOR)
        assert info.value.code == code

    @rule(data=st.data())
    def read_as_of_an_earlier_seq(self, data: st.DataObject) -> None:
        """Point in time: balances as of any seq are those the model had then."""
        seq = data.draw(st.integers(1, self.model.seq), label="as_of_seq")
        with self.engine.connect() as conn:
            for member in MEMBERS:
                holder = member_holder(member)
                stored = {
                    key: (state.balance, state.held)
                    for key, state in reads.holder_balances(conn, holder, as_of_seq=seq)
                    if state.balance or state.held
                }
                assert stored == self.model.nonzero(holder, seq), (member, seq)
            rows = reads.cap_table(conn, ASSET_ID, as_of_seq=seq)
        assert sum(row.units for row in rows) == (TOTAL_UNITS if seq > len(MEMBERS) else 0)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        with self.engine.connect() as conn:
            for member in MEMBERS:
                holder = member_holder(member)
                stored = {
                    key: (state.balance, state.held)
                    for key, state in reads.holder_balances(conn, holder)
                    if state.balance or state.held
                }
                assert stored == self.model.nonzero(holder), member
            for key in (POOL, ISSUANCE, DEPOSITS):
                state = reads.account_state(conn, key)
                assert (state.balance, state.held) == (self.model.balance.get(key, 0), 0), key
            assert reads.digest(conn).seq == self.model.seq

    @invariant()
    def cap_table_sums_to_total_units(self) -> None:
        with self.engine.connect() as conn:
            rows = reads.cap_table(conn, ASSET_ID)
        assert sum(row.units for row in rows) == TOTAL_UNITS
        expected = {
            key.holder: units
            for key, units in self.model.balance.items()
            if key.instrument == UNITS and not key.is_external and units
        }
        assert {row.holder: row.units for row in rows} == expected
        assert rows[-1].holder == POOL.holder or POOL.holder not in expected

    @invariant()
    def every_account_obeys_the_invariants(self) -> None:
        accounts, balances = table(Account), table(Balance)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    accounts.c.holder, accounts.c.instrument, balances.c.balance, balances.c.held
                ).join(balances, balances.c.account_id == accounts.c.id)
            ).all()
        sums: dict[str, int] = {}
        for holder, instrument, balance, held in rows:
            key = AccountKey(holder, instrument)
            if not key.is_external:
                assert balance - held >= 0, key  # no owner's available is negative
            assert held >= 0, key
            sums[instrument] = sums.get(instrument, 0) + balance
        # Every instrument, money and units, sums to zero with its external account.
        assert sums == dict.fromkeys(INSTRUMENTS, 0)

    @invariant()
    def open_holds_match_the_model(self) -> None:
        holds, accounts = table(Hold), table(Account)
        with self.engine.connect() as conn:
            stored = {
                hold_id: (AccountKey(holder, instrument), remaining)
                for hold_id, holder, instrument, remaining in conn.execute(
                    select(holds.c.id, accounts.c.holder, accounts.c.instrument, holds.c.remaining)
                    .join(accounts, accounts.c.id == holds.c.account_id)
                    .where(holds.c.closed_seq.is_(None))
                )
            }
        assert stored == self.model.open_holds


LedgerMachine.TestCase.settings = settings(
    # Each run is a fresh migrated database and up to 35 entries, half a second each:
    # 20 runs keep every rule in play with the full run length (30 took 8-17 s).
    max_examples=20,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerModel = LedgerMachine.TestCase


# -- replay: the same drafts and the same clock give the same digest ----------------------------

# (sender index, recipient offset, instrument, amount, through a hold first?)
DraftSpec = tuple[int, int, str, int, bool]
draft_specs = st.lists(
    st.tuples(
        st.integers(0, len(MEMBERS) - 1),
        st.integers(1, len(MEMBERS) - 1),
        st.sampled_from(INSTRUMENTS),
        st.integers(1, 300_000),
        st.booleans(),
    ),
    min_size=1,
    max_size=10,
)


def drafts_for(specs: list[DraftSpec]) -> list[EntryDraft]:
    """Transfers, some of them spending a hold placed just before for them."""
    drafts: list[EntryDraft] = []
    for i, (s, offset, instrument, amount, held) in enumerate(specs):
        sender = MEMBERS[s]
        if held:
            change = HoldChange(f"h{i}", account(sender, instrument), HoldOp.PLACE, amount)
            drafts.append(
                EntryDraft(
                    kind="hold.place", idempotency_key=f"place-{i}", actor=ACTOR,
                    hold_changes=(change,),
                )
            )  # fmt: skip
        drafts.append(
            transfers.transfer_draft(
                sender=sender,
                recipient=MEMBERS[(s + offset) % len(MEMBERS)],
                instrument=instrument,
                amount=amount,
                key=f"transfer-{i}",
                actor=ACTOR,
                consume_hold=f"h{i}" if held else None,
            )
        )
    return drafts


def replay(engine: Engine, drafts: list[EntryDraft]) -> tuple[list[str], reads.Digest]:
    """Set up the network and append ``drafts`` one by one: each one's seq or refusal,
    and the digest at the end."""
    ledger = Ledger(engine, clock=StepClock())
    set_up_network(ledger)
    results: list[str] = []
    for draft in drafts:
        try:
            results.append(f"seq {ledger.append(draft).entry.seq}")
        except LedgerError as error:
            results.append(error.code)
    with engine.connect() as conn:
        assert verify(conn).ok
        return results, reads.digest(conn)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draft_specs)
def test_replaying_the_same_drafts_gives_the_same_digest(specs: list[DraftSpec]) -> None:
    drafts = drafts_for(specs)
    with fresh_database() as first, fresh_database() as second:
        results_1, digest_1 = replay(first, drafts)
        results_2, digest_2 = replay(second, drafts)
    assert results_1 == results_2
    assert digest_1 == digest_2
    setup_entries = len(MEMBERS) + 2 + len(DEPOSITED)
    accepted = sum(r.startswith("seq") for r in results_1)
    assert digest_1.seq == setup_entries + accepted


def test_a_different_clock_gives_a_different_digest() -> None:
    """The digest depends on the recorded times, so the replay test above is not vacuous."""
    with fresh_database() as first, fresh_database() as second:
        set_up_network(Ledger(first, clock=StepClock()))
        later = StepClock(StepClock().now.replace(year=2028))
        set_up_network(Ledger(second, clock=later))
        with first.connect() as a, second.connect() as b:
            assert reads.digest(a).seq == reads.digest(b).seq
            assert reads.digest(a).head_hash != reads.digest(b).head_hash


# -- bugs found while writing the model -----------------------------------------------------------


@pytest.fixture
def network(sqlite_engine: Engine) -> Ledger:
    ledger = Ledger(sqlite_engine, clock=StepClock())
    set_up_network(ledger)
    return ledger


def units_of_member(conn: Connection, member: str) -> int:
    return reads.account_state(conn, account(member, UNITS)).balance


def test_issue_units_refuses_a_negative_allocation(network: Ledger) -> None:
    taker, victim = MEMBERS[3], MEMBERS[0]
    with network.engine.connect() as conn:
        victim_before = units_of_member(conn, victim)
    allocations = [(victim, -50_000), (taker, 60_000)]
    with pytest.raises(InvalidInput):  # today: accepted, the pool pays only 10_000
        registry.issue_units(network, ASSET_ID, allocations, key="grab", actor=ACTOR)
    with network.engine.connect() as conn:
        assert units_of_member(conn, victim) == victim_before


def test_release_hold_key_reused_for_another_closed_hold_conflicts(network: Ledger) -> None:
    member = MEMBERS[0]
    for hold_id in ("h1", "h2"):
        transfers.place_hold(
            network, member=member, instrument=USD, amount=100, hold_id=hold_id,
            reason="order", key=f"place-{hold_id}", actor=ACTOR,
        )  # fmt: skip
    transfers.release_hold(network, hold_id="h1", key="release-key", actor=ACTOR)
    transfers.release_hold(network, hold_id="h2", key="release-h2", actor=ACTOR)
    # Same key, different request (another hold): today it returns the entry that
    # released h1, as if this request had been carried out.
    with pytest.raises(Conflict) as info:
        transfers.release_hold(network, hold_id="h2", key="release-key", actor=ACTOR)
    assert info.value.code == "idempotency_conflict"


def test_verify_refuses_a_false_digest_at_seq_zero(network: Ledger) -> None:
    with network.engine.connect() as conn:
        assert verify(conn, against=(0, "0" * 64)).ok
        assert not verify(conn, against=(0, "f" * 64)).ok
