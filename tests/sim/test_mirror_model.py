"""The chain follower and the ledger's mirror against a simulated chain (Hypothesis
stateful): pledges and withdrawals in blocks, reorganisations of any depth that drop
blocks and mine a longer branch (re-including some dropped pledges in other blocks),
confirmations from 0 to 3, and follower rounds that may be repeated.

After every round the ledger must hold exactly what the canonical chain holds up to the
follower's cursor: each contributor's on-chain contribution, the project's total, each
live event once (by chain id, transaction, log index and block hash), and a journal that
only grew and still verifies. The follower is the real one; only the node is simulated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from sqlalchemy import select

from ledger.chain.events import BlockRef, EscrowCreatedLog, EscrowLog
from ledger.chain.follower import ChainFollower
from ledger.core import with_check_character
from ledger.db.schema import ChainEvent, table
from ledger.funding import EscrowRef, ProjectTerms, create_project, get_project, open_project
from ledger.funding.contributions import contributions
from ledger.journal.reads import digest
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.members import register_member
from tests.conftest import StepClock
from tests.sim.test_ledger_model import fresh_database

CHAIN_ID = 7
ESCROW = "0x00000000000000000000000000000000000000E5"
LISTER = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"
ORGANIZER = "0x5050A4F4b3f9338C3472dcC01A87C76A144b3c9c"
WALLETS = (
    "0x3325a78425F17a7E487Eb5666b2bFd93aBb06c70",
    "0xc48B812bB43401392c037381AcA934F4069C0517",
    "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF",
)


@dataclass(frozen=True)
class Tx:
    hash: str
    kind: str  # pledged | withdrawn
    wallet: str
    amount: int


@dataclass
class Block:
    number: int
    hash: str
    txs: list[Tx]


class SimulatedChain:
    """What the follower asks of a node, over a list of blocks that can be reorganised."""

    def __init__(self) -> None:
        self.blocks = [Block(0, self._hash("genesis", 0, []), [])]
        self.pending: list[Tx] = []
        self.branch = 0

    def _hash(self, parent: str, number: int, txs: Sequence[Tx]) -> str:
        text = f"{parent}:{number}:{self.branch if number else 0}:" + ",".join(t.hash for t in txs)
        return "0x" + hashlib.sha256(text.encode()).hexdigest()

    def mine(self) -> None:
        parent = self.blocks[-1]
        number = parent.number + 1
        self.blocks.append(
            Block(number, self._hash(parent.hash, number, self.pending), self.pending)
        )
        self.pending = []

    # -- the node's answers, as ChainClient gives them ------------------------------------

    def chain_id(self) -> int:
        return CHAIN_ID

    def head(self) -> BlockRef:
        return self.block(self.blocks[-1].number)

    def block(self, number: int) -> BlockRef:
        from ledger.core.errors import NotFound

        if number >= len(self.blocks):
            raise NotFound("block_not_found", "no such block")
        b = self.blocks[number]
        return BlockRef(b.number, b.hash, 1_800_000_000 + b.number)

    def has_code(self, address: str) -> bool:
        return address == ESCROW  # deployed before block 1, never dropped

    def escrows_created(self, *args: object, **kwargs: object) -> list[EscrowCreatedLog]:
        return []

    def escrow_logs(self, escrows: Sequence[str], first: int, last: int) -> list[EscrowLog]:
        found = []
        for b in self.blocks[first : last + 1]:
            for i, t in enumerate(b.txs):
                found.append(
                    EscrowLog(t.kind, ESCROW, t.wallet, t.amount, None, b.number, b.hash, t.hash, i)
                )
        return found


class MirrorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        self.engine = self._resources.enter_context(fresh_database())
        self.ledger = Ledger(self.engine, clock=StepClock())
        self.chain = SimulatedChain()
        self.txs = 0
        register_member(self.ledger, LISTER, "finance_node", "North", key="m1", actor="t")
        register_member(self.ledger, ORGANIZER, "individual", "Olga", key="m2", actor="t")
        terms = ProjectTerms(
            title="Mill",
            description="A mill.",
            organizer=ORGANIZER,
            asset_id=with_check_character("5SLRR00F0K7000421"),
            jurisdiction="NL",
            currency="ETH",
            goal_minor=10**30,
            deadline=datetime(2027, 6, 1, tzinfo=UTC),
            min_pledge_minor=1,
        )
        self.project = create_project(self.ledger, LISTER, terms, key="p", actor="t").id
        open_project(
            self.ledger,
            self.project,
            by=LISTER,
            key="o",
            actor="t",
            escrow=EscrowRef(CHAIN_ID, ESCROW, 10**30 - 1, 0),
        )
        self.follower: ChainFollower | None = None
        self.seq = 0

    def teardown(self) -> None:
        self._resources.close()

    def _pledged(self, wallet: str) -> int:
        """What ``wallet`` has in the escrow on the canonical chain, pending included."""
        total = 0
        for t in [t for b in self.chain.blocks for t in b.txs] + self.chain.pending:
            if t.wallet == wallet:
                total = total + t.amount if t.kind == "pledged" else 0
        return total

    def _tx(self, kind: str, wallet: str, amount: int) -> Tx:
        self.txs += 1
        return Tx("0x" + hashlib.sha256(f"tx{self.txs}".encode()).hexdigest(), kind, wallet, amount)

    @rule(wallet=st.sampled_from(WALLETS), amount=st.integers(1, 10**24))
    def pledge(self, wallet: str, amount: int) -> None:
        self.chain.pending.append(self._tx("pledged", wallet, amount))

    @rule(wallet=st.sampled_from(WALLETS))
    def withdraw(self, wallet: str) -> None:
        pledged = self._pledged(wallet)
        if pledged:
            self.chain.pending.append(self._tx("withdrawn", wallet, pledged))

    @rule(blocks=st.integers(1, 3))
    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            self.chain.mine()

    @rule(
        depth=st.integers(1, 6), keep=st.lists(st.booleans(), max_size=6), extra=st.integers(1, 3)
    )
    def reorganise(self, depth: int, keep: list[bool], extra: int) -> None:
        depth = min(depth, len(self.chain.blocks) - 1)
        if depth == 0:
            return
        dropped = self.chain.blocks[-depth:]
        del self.chain.blocks[-depth:]
        self.chain.branch += 1
        self.chain.pending = []
        # Some dropped pledges land again (same transaction, another block); withdrawals
        # are not replayed: they might no longer be valid.
        again = [t for b in dropped for t in b.txs if t.kind == "pledged"]
        self.chain.pending = [
            t for t, k in zip(again, keep + [False] * len(again), strict=False) if k
        ]
        for _ in range(depth + extra):
            self.chain.mine()

    @rule(confirmations=st.integers(0, 3), batch=st.integers(1, 5), repeat=st.booleans())
    def follow(self, confirmations: int, batch: int, repeat: bool) -> None:
        if self.follower is None:
            self.follower = ChainFollower(
                self.ledger,
                self.chain,  # type: ignore[arg-type]  # answers what the follower asks
                confirmations=confirmations,
                batch_blocks=batch,
            )
        self.follower.batch_blocks = batch
        for _ in range(50):
            result = self.follower.round()
            assert result is not None
            if result.caught_up:
                break
        self.the_ledger_holds_what_the_chain_holds_up_to_the_cursor()
        if repeat:  # a restarted follower reads the same blocks again: nothing changes
            with self.engine.connect() as conn:
                before = digest(conn)
            assert self.follower.round() is not None
            with self.engine.connect() as conn:
                assert digest(conn) == before

    def the_ledger_holds_what_the_chain_holds_up_to_the_cursor(self) -> None:
        """Checked after each follow (between them the ledger lags the chain, by design)."""
        with self.engine.connect() as conn:
            from ledger.funding.mirror import chain_cursor

            cursor = chain_cursor(conn, CHAIN_ID)
            upto = -1 if cursor is None else cursor.number
            if cursor is not None:
                assert cursor.hash == self.chain.blocks[upto].hash
            expected: dict[str, int] = {}
            for b in self.chain.blocks[: upto + 1]:
                for t in b.txs:
                    expected[t.wallet] = expected.get(t.wallet, 0) + (
                        t.amount if t.kind == "pledged" else -t.amount
                    )
            found = {c.contributor: c.chain_minor for c in contributions(conn, self.project)}
            assert found == {w: v for w, v in expected.items() if v}
            assert get_project(conn, self.project).chain_total_minor == sum(expected.values())
            events = table(ChainEvent)
            live = conn.execute(
                select(events.c.tx_hash, events.c.log_index, events.c.block_hash).where(
                    events.c.undone_seq.is_(None)
                )
            ).all()
            assert len(live) == len(set(live))
            assert {(r.tx_hash, r.block_hash) for r in live} == {
                (t.hash, b.hash) for b in self.chain.blocks[: upto + 1] for t in b.txs
            }
            head = digest(conn).seq
            assert head >= self.seq  # history only grows
            self.seq = head

    def check_verify(self) -> None:
        with self.engine.connect() as conn:
            assert verify(conn).ok

    @rule()
    def verify_now(self) -> None:
        self.check_verify()


MirrorMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMirrorModel = MirrorMachine.TestCase
