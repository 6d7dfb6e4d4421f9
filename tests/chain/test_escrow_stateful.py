"""Random runs of pledge, withdraw, time travel, finalize and reclaim against the ETH escrow,
each step checked against a plain Python model of DESIGN.md's rules.

After every step: the escrow holds exactly ``totalPledged()`` (nothing once finalized), the
pledges sum to it, ``state()`` is the model's, no pledger has got back more than they put in
(their balance, gas paid accounted for, measured on the chain itself), and the organizer has
received nothing, or the total exactly once. A refused step must be refused with the error
and arguments the model names. At the end every pledger's own pledge is checked, and after a
missed deadline everyone reclaims, leaving the escrow empty and each pledger whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import pytest
from eth_typing import ChecksumAddress
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import Wei

from contracts import decode_custom_error
from tests.chain.evm import Chain, fee_of

GOAL = 1_000
MIN = 10
DURATION = 1_000  # seconds from deployment to the deadline
OPEN, FUNDED, FINALIZED, FAILED = range(4)
PLEDGERS = 4  # accounts 2..5; account 9 is a stranger who only ever finalizes

pytestmark = pytest.mark.slow

Expected = tuple[object, ...] | None  # (error name, *args), or None for success


@dataclass(frozen=True)
class AtRest:
    """A chain with a fresh escrow on it, and the snapshot to start every example from."""

    chain: Chain
    escrow: Contract
    snapshot: int


@cache
def at_rest() -> AtRest:
    """Deployed once for all examples (a deployment costs as much as a dozen steps)."""
    chain = Chain()
    deadline = chain.pending_timestamp() + DURATION
    escrow = chain.deploy("EthPledgeEscrow", chain.accounts[1], GOAL, deadline, MIN)
    return AtRest(chain, escrow, chain.snapshot())


@dataclass
class Pledger:
    address: ChecksumAddress
    start_balance: int
    pledged: int = 0  # the model's pledgeOf
    sent: int = 0  # everything it ever sent to the escrow
    returned: int = 0  # everything the model says it got back
    fees: int = 0  # gas it paid


@dataclass
class Model:
    deadline: int
    pledgers: list[Pledger] = field(default_factory=list)
    finalized: bool = False

    @property
    def total(self) -> int:
        return sum(p.pledged for p in self.pledgers)

    def state(self, now: int) -> int:
        if self.finalized:
            return FINALIZED
        if self.total >= GOAL:
            return FUNDED
        return FAILED if now >= self.deadline else OPEN

    def pledge(self, who: Pledger, amount: int, now: int) -> Expected:
        if self.finalized:
            return ("AlreadyFinalized",)
        if now >= self.deadline:
            return ("PledgeAfterDeadline", self.deadline, now)
        if amount == 0:
            return ("ZeroPledge",)
        if amount < MIN:
            return ("PledgeBelowMinimum", amount, MIN)
        return None

    def withdraw(self, who: Pledger, now: int) -> Expected:
        if self.finalized:
            return ("AlreadyFinalized",)
        if self.total >= GOAL:
            return ("WithdrawAfterGoal",)
        if now >= self.deadline:
            return ("WithdrawAfterDeadline", self.deadline, now)
        return None if who.pledged else ("NothingToWithdraw",)

    def finalize(self) -> Expected:
        if self.finalized:
            return ("AlreadyFinalized",)
        return None if self.total >= GOAL else ("GoalNotReached", self.total, GOAL)

    def reclaim(self, who: Pledger, now: int) -> Expected:
        if self.finalized:
            return ("AlreadyFinalized",)
        if self.total >= GOAL:
            return ("GoalReached", self.total, GOAL)
        if now < self.deadline:
            return ("DeadlineNotPassed", self.deadline, now)
        return None if who.pledged else ("NothingToReclaim",)


amounts = st.one_of(st.sampled_from([0, MIN - 1, MIN, GOAL]), st.integers(MIN, GOAL // 2))
pledger_index = st.integers(0, PLEDGERS - 1)


class EscrowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        rest = at_rest()
        self.chain, self.escrow, self.snapshot = rest.chain, rest.escrow, rest.snapshot
        self.chain.revert_to(self.snapshot)
        accounts = self.chain.accounts
        self.organizer = accounts[1]
        self.stranger = accounts[9]
        self.organizer_start = self.chain.balance(self.organizer)
        self.model = Model(self.escrow.functions.deadline().call())
        for address in accounts[2 : 2 + PLEDGERS]:
            self.model.pledgers.append(Pledger(address, self.chain.balance(address)))

    def teardown(self) -> None:
        try:
            self._everyone_gets_back_their_own()
        finally:
            self.chain.revert_to(self.snapshot)

    # --- sending a step and comparing it with the model ---------------------------------

    def _step(
        self, call: ContractFunction, sender: ChecksumAddress, expected: Expected, value: int = 0
    ) -> int:
        """Runs ``call`` as the next block would (an eth_call on the pending block), then
        sends it if it succeeds; the outcome must be the model's. Returns the gas fee paid."""
        try:
            call.call({"from": sender, "value": Wei(value)}, block_identifier="pending")
        except ContractLogicError as refused:
            assert isinstance(refused.data, str)
            decoded = decode_custom_error(self.escrow.abi, refused.data)
            assert expected == (decoded.name, *decoded.args), f"{decoded} != {expected}"
            return 0
        assert expected is None, f"succeeded, the model expected {expected}"
        receipt = self.chain.send(call, sender, value, estimate=False)
        assert receipt["status"] == 1
        return fee_of(receipt)

    def _now(self) -> int:
        return self.chain.pending_timestamp()

    # --- rules ---------------------------------------------------------------------------

    @rule(index=pledger_index, amount=amounts)
    def pledge(self, index: int, amount: int) -> None:
        who = self.model.pledgers[index]
        expected = self.model.pledge(who, amount, self._now())
        who.fees += self._step(self.escrow.functions.pledge(), who.address, expected, amount)
        if expected is None:
            who.pledged += amount
            who.sent += amount

    @rule(index=pledger_index)
    def withdraw(self, index: int) -> None:
        who = self.model.pledgers[index]
        expected = self.model.withdraw(who, self._now())
        who.fees += self._step(self.escrow.functions.withdraw(), who.address, expected)
        if expected is None:
            who.returned += who.pledged
            who.pledged = 0

    @rule(index=st.integers(0, PLEDGERS))
    def finalize(self, index: int) -> None:
        expected = self.model.finalize()
        if index == PLEDGERS:
            self._step(self.escrow.functions.finalize(), self.stranger, expected)
        else:
            who = self.model.pledgers[index]
            who.fees += self._step(self.escrow.functions.finalize(), who.address, expected)
        if expected is None:
            self.model.finalized = True

    @rule(index=pledger_index)
    def reclaim(self, index: int) -> None:
        who = self.model.pledgers[index]
        expected = self.model.reclaim(who, self._now())
        who.fees += self._step(self.escrow.functions.reclaim(), who.address, expected)
        if expected is None:
            who.returned += who.pledged
            who.pledged = 0

    @rule(seconds=st.sampled_from([1, 7, DURATION // 4, DURATION // 2]))
    def time_passes(self, seconds: int) -> None:
        self.chain.next_block_at(self._now() + seconds)

    @rule(offset=st.sampled_from([-1, 0, 1]))
    def jump_to_the_deadline(self, offset: int) -> None:
        self.chain.next_block_at(max(self._now(), self.model.deadline + offset))

    # --- after every step ----------------------------------------------------------------

    @invariant()
    def the_books_agree(self) -> None:
        f = self.escrow.functions
        total = f.totalPledged().call()
        assert total == self.model.total
        held = 0 if self.model.finalized else total
        assert self.chain.balance(self.escrow.address) == held
        assert f.state().call() == self.model.state(self.chain.latest_timestamp())

    @invariant()
    def nobody_gets_back_more_than_they_put_in(self) -> None:
        for p in self.model.pledgers:
            got_back = self.chain.balance(p.address) - p.start_balance + p.sent + p.fees
            assert got_back == p.returned <= p.sent

    @invariant()
    def the_organizer_receives_the_total_exactly_once(self) -> None:
        received = self.chain.balance(self.organizer) - self.organizer_start
        assert received == (self.model.total if self.model.finalized else 0)

    def _everyone_gets_back_their_own(self) -> None:
        """Each pledge on the chain is the model's; then, if the project did not fund,
        everyone reclaims after the deadline and ends where they started, less gas."""
        for p in self.model.pledgers:
            assert self.escrow.functions.pledgeOf(p.address).call() == p.pledged
        if self.model.finalized or self.model.total >= GOAL:
            return
        self.chain.next_block_at(max(self._now(), self.model.deadline))
        for index, p in enumerate(self.model.pledgers):
            if p.pledged:
                self.reclaim(index)
        self.the_books_agree()
        assert self.chain.balance(self.escrow.address) == 0
        for p in self.model.pledgers:
            assert p.returned == p.sent
            assert self.chain.balance(p.address) == p.start_balance - p.fees


EscrowMachine.TestCase.settings = settings(
    # About 25 ms of EVM work a step, more on a busy machine (30 runs took 24 s). 15 runs
    # of 20 steps each still reach the deep states (pledges past the goal, finalize,
    # reclaims after the deadline); the run length, not the run count, buys depth.
    max_examples=15,
    stateful_step_count=20,
    deadline=None,  # each step is a few EVM calls; their time varies with the machine
    suppress_health_check=[HealthCheck.too_slow],
)
test_escrow_stateful = EscrowMachine.TestCase
