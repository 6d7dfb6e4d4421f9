"""EthPledgeEscrow on an in-process EVM: each function's success and each of its reverts,
the state() it moves through, and contract pledgers that fight back (re-entry, refusal)."""

from __future__ import annotations

import pytest
from eth_typing import ChecksumAddress
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import Wei

from contracts import decode_custom_error
from tests.chain.evm import Chain, emitted, fee_of, reverts

GOAL = 1_000
MIN = 10
OPEN, FUNDED, FINALIZED, FAILED = range(4)

# ReentrantPledger.OnReceive
ACCEPT, REJECT, REENTER_WITHDRAW, REENTER_RECLAIM, REENTER_FINALIZE, REENTER_PLEDGE = range(6)


@pytest.fixture
def deadline(chain: Chain) -> int:
    return chain.pending_timestamp() + 1_000


@pytest.fixture
def escrow(chain: Chain, organizer: ChecksumAddress, deadline: int) -> Contract:
    return chain.deploy("EthPledgeEscrow", organizer, GOAL, deadline, MIN)


def pledge(chain: Chain, escrow: Contract, who: ChecksumAddress, amount: int) -> None:
    chain.send(escrow.functions.pledge(), who, amount)


def books(chain: Chain, escrow: Contract) -> tuple[int, int]:
    """(the escrow's own balance, what it says is pledged)."""
    return chain.balance(escrow.address), escrow.functions.totalPledged().call()


# --- construction -----------------------------------------------------------------------


def test_a_new_escrow_shows_its_terms_and_is_open(
    escrow: Contract, organizer: ChecksumAddress, alice: ChecksumAddress, deadline: int
) -> None:
    f = escrow.functions
    assert f.organizer().call() == organizer
    assert (f.goal().call(), f.deadline().call(), f.minPledge().call()) == (GOAL, deadline, MIN)
    assert (f.totalPledged().call(), f.pledgeOf(alice).call(), f.state().call()) == (0, 0, OPEN)


@pytest.mark.parametrize(
    ("organizer_is_zero", "goal", "minimum", "error"),
    [
        (True, GOAL, MIN, ("ZeroOrganizer",)),
        (False, 0, 0, ("ZeroGoal",)),
        (False, GOAL, GOAL + 1, ("MinimumAboveGoal", GOAL + 1, GOAL)),
    ],
)
def test_construction_refuses_bad_terms(
    chain: Chain,
    organizer: ChecksumAddress,
    deadline: int,
    organizer_is_zero: bool,
    goal: int,
    minimum: int,
    error: tuple[object, ...],
) -> None:
    who = "0x" + "00" * 20 if organizer_is_zero else organizer
    abi = chain.at("EthPledgeEscrow", organizer).abi
    with reverts(abi, str(error[0]), *error[1:]):
        chain.deploy("EthPledgeEscrow", who, goal, deadline, minimum)


@pytest.mark.parametrize("seconds_ahead", [0, -1])
def test_construction_refuses_a_deadline_not_in_the_future(
    chain: Chain, organizer: ChecksumAddress, seconds_ahead: int
) -> None:
    block_time = chain.pending_timestamp()  # the block the deployment would land in
    abi = chain.at("EthPledgeEscrow", organizer).abi
    with reverts(abi, "DeadlineNotInFuture", block_time + seconds_ahead, block_time):
        chain.deploy("EthPledgeEscrow", organizer, GOAL, block_time + seconds_ahead, MIN)


def test_a_minimum_equal_to_the_goal_and_a_deadline_one_second_ahead_are_fine(
    chain: Chain, organizer: ChecksumAddress
) -> None:
    escrow = chain.deploy("EthPledgeEscrow", organizer, GOAL, chain.pending_timestamp() + 1, GOAL)
    assert escrow.functions.state().call() == OPEN


# --- pledge -----------------------------------------------------------------------------


def test_pledges_add_up_per_pledger_and_in_total(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, bob: ChecksumAddress
) -> None:
    receipt = chain.send(escrow.functions.pledge(), alice, 100)
    assert emitted(escrow, "Pledged", receipt) == [{"pledger": alice, "amount": 100, "total": 100}]
    receipt = chain.send(escrow.functions.pledge(), bob, MIN)
    assert emitted(escrow, "Pledged", receipt) == [{"pledger": bob, "amount": MIN, "total": 110}]
    pledge(chain, escrow, alice, 50)
    assert escrow.functions.pledgeOf(alice).call() == 150
    assert escrow.functions.pledgeOf(bob).call() == MIN
    assert books(chain, escrow) == (160, 160)


def test_a_pledge_costs_the_pledger_exactly_its_value(
    chain: Chain, escrow: Contract, alice: ChecksumAddress
) -> None:
    before = chain.balance(alice)
    receipt = chain.send(escrow.functions.pledge(), alice, 123)
    assert chain.balance(alice) == before - 123 - fee_of(receipt)


def test_a_pledge_below_the_minimum_or_of_nothing_is_refused(
    chain: Chain, escrow: Contract, alice: ChecksumAddress
) -> None:
    with reverts(escrow.abi, "PledgeBelowMinimum", MIN - 1, MIN):
        pledge(chain, escrow, alice, MIN - 1)
    with reverts(escrow.abi, "ZeroPledge"):
        pledge(chain, escrow, alice, 0)
    assert books(chain, escrow) == (0, 0)


def test_a_pledge_is_accepted_in_the_last_second_and_refused_at_the_deadline(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    chain.next_block_at(deadline - 1)
    pledge(chain, escrow, alice, MIN)
    with reverts(escrow.abi, "PledgeAfterDeadline", deadline, deadline):
        pledge(chain, escrow, alice, MIN)
    chain.next_block_at(deadline + 500)
    with reverts(escrow.abi, "PledgeAfterDeadline", deadline, deadline + 500):
        pledge(chain, escrow, alice, MIN)
    assert books(chain, escrow) == (MIN, MIN)


def test_pledging_goes_on_past_the_goal_until_finalized(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, bob: ChecksumAddress
) -> None:
    pledge(chain, escrow, alice, GOAL)
    assert escrow.functions.state().call() == FUNDED
    pledge(chain, escrow, bob, 300)
    assert books(chain, escrow) == (GOAL + 300, GOAL + 300)
    chain.send(escrow.functions.finalize(), bob)
    with reverts(escrow.abi, "AlreadyFinalized"):
        pledge(chain, escrow, bob, MIN)


def test_plain_ether_sent_to_the_escrow_is_refused(
    chain: Chain, escrow: Contract, alice: ChecksumAddress
) -> None:
    with pytest.raises(ContractLogicError):
        chain.w3.eth.send_transaction({"from": alice, "to": escrow.address, "value": Wei(100)})
    assert books(chain, escrow) == (0, 0)


# --- withdraw ---------------------------------------------------------------------------


def test_withdraw_returns_the_whole_pledge(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, bob: ChecksumAddress
) -> None:
    pledge(chain, escrow, alice, 300)
    pledge(chain, escrow, alice, 200)
    pledge(chain, escrow, bob, 100)
    before = chain.balance(alice)
    receipt = chain.send(escrow.functions.withdraw(), alice)
    assert emitted(escrow, "Withdrawn", receipt) == [
        {"pledger": alice, "amount": 500, "total": 100}
    ]
    assert chain.balance(alice) == before + 500 - fee_of(receipt)
    assert escrow.functions.pledgeOf(alice).call() == 0
    assert books(chain, escrow) == (100, 100)
    pledge(chain, escrow, alice, 40)  # and may pledge again
    assert escrow.functions.pledgeOf(alice).call() == 40


def test_withdraw_without_a_pledge_is_refused(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, stranger: ChecksumAddress
) -> None:
    with reverts(escrow.abi, "NothingToWithdraw"):
        chain.send(escrow.functions.withdraw(), stranger)
    pledge(chain, escrow, alice, 100)
    chain.send(escrow.functions.withdraw(), alice)
    with reverts(escrow.abi, "NothingToWithdraw"):
        chain.send(escrow.functions.withdraw(), alice)


def test_a_pledge_is_locked_once_the_goal_is_reached(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, bob: ChecksumAddress
) -> None:
    pledge(chain, escrow, alice, 400)
    pledge(chain, escrow, bob, GOAL - 400)
    for who in (alice, bob):
        with reverts(escrow.abi, "WithdrawAfterGoal"):
            chain.send(escrow.functions.withdraw(), who)
    assert books(chain, escrow) == (GOAL, GOAL)


def test_withdraw_after_a_missed_deadline_points_to_reclaim(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    pledge(chain, escrow, alice, 100)
    chain.next_block_at(deadline)
    with reverts(escrow.abi, "WithdrawAfterDeadline", deadline, deadline):
        chain.send(escrow.functions.withdraw(), alice)


def test_withdraw_after_finalize_is_refused(
    chain: Chain, escrow: Contract, alice: ChecksumAddress
) -> None:
    pledge(chain, escrow, alice, GOAL)
    chain.send(escrow.functions.finalize(), alice)
    with reverts(escrow.abi, "AlreadyFinalized"):
        chain.send(escrow.functions.withdraw(), alice)


# --- finalize ---------------------------------------------------------------------------


def test_anyone_finalizes_at_the_goal_and_the_organizer_gets_the_total_once(
    chain: Chain,
    escrow: Contract,
    organizer: ChecksumAddress,
    alice: ChecksumAddress,
    bob: ChecksumAddress,
    stranger: ChecksumAddress,
) -> None:
    pledge(chain, escrow, alice, 600)
    pledge(chain, escrow, bob, 400)
    before = chain.balance(organizer)
    receipt = chain.send(escrow.functions.finalize(), stranger)
    assert emitted(escrow, "Finalized", receipt) == [{"organizer": organizer, "amount": GOAL}]
    assert chain.balance(organizer) == before + GOAL
    assert chain.balance(escrow.address) == 0
    assert escrow.functions.state().call() == FINALIZED
    # The contributions stay readable: the record the ledger issues units from.
    assert escrow.functions.totalPledged().call() == GOAL
    assert escrow.functions.pledgeOf(alice).call() == 600
    with reverts(escrow.abi, "AlreadyFinalized"):
        chain.send(escrow.functions.finalize(), organizer)
    assert chain.balance(organizer) == before + GOAL  # once: the refused call sent nothing


def test_finalize_under_the_goal_is_refused_before_and_after_the_deadline(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    pledge(chain, escrow, alice, GOAL - 1)
    with reverts(escrow.abi, "GoalNotReached", GOAL - 1, GOAL):
        chain.send(escrow.functions.finalize(), alice)
    chain.next_block_at(deadline)
    with reverts(escrow.abi, "GoalNotReached", GOAL - 1, GOAL):
        chain.send(escrow.functions.finalize(), alice)


def test_a_goal_reached_before_the_deadline_can_be_finalized_after_it(
    chain: Chain,
    escrow: Contract,
    organizer: ChecksumAddress,
    alice: ChecksumAddress,
    deadline: int,
) -> None:
    pledge(chain, escrow, alice, GOAL)
    chain.mine_at(deadline + 10)
    assert escrow.functions.state().call() == FUNDED
    before = chain.balance(organizer)
    chain.send(escrow.functions.finalize(), alice)
    assert chain.balance(organizer) == before + GOAL


def test_an_organizer_that_refuses_the_funds_leaves_them_locked_until_it_accepts(
    chain: Chain, alice: ChecksumAddress, deadline: int
) -> None:
    wallet = chain.deploy("ReentrantPledger")
    escrow = chain.deploy("EthPledgeEscrow", wallet.address, GOAL, deadline, MIN)
    chain.send(wallet.functions.setOnReceive(REJECT), alice)
    pledge(chain, escrow, alice, GOAL)
    with reverts(escrow.abi, "TransferFailed"):
        chain.send(escrow.functions.finalize(), alice)
    assert escrow.functions.state().call() == FUNDED
    assert books(chain, escrow) == (GOAL, GOAL)
    chain.send(wallet.functions.setOnReceive(ACCEPT), alice)
    chain.send(escrow.functions.finalize(), alice)
    assert chain.balance(wallet.address) == GOAL


# --- reclaim ----------------------------------------------------------------------------


def test_after_a_missed_deadline_each_pledger_reclaims_their_own(
    chain: Chain,
    escrow: Contract,
    alice: ChecksumAddress,
    bob: ChecksumAddress,
    stranger: ChecksumAddress,
    deadline: int,
) -> None:
    pledge(chain, escrow, alice, 300)
    pledge(chain, escrow, bob, 200)
    chain.mine_at(deadline)
    assert escrow.functions.state().call() == FAILED
    before = chain.balance(alice)
    receipt = chain.send(escrow.functions.reclaim(), alice)
    assert emitted(escrow, "Reclaimed", receipt) == [{"pledger": alice, "amount": 300}]
    assert chain.balance(alice) == before + 300 - fee_of(receipt)
    assert books(chain, escrow) == (200, 200)
    for who in (alice, stranger):
        with reverts(escrow.abi, "NothingToReclaim"):
            chain.send(escrow.functions.reclaim(), who)
    chain.send(escrow.functions.reclaim(), bob)
    assert books(chain, escrow) == (0, 0)
    assert escrow.functions.state().call() == FAILED


def test_reclaim_before_the_deadline_is_refused(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    pledge(chain, escrow, alice, 100)
    chain.next_block_at(deadline - 1)
    with reverts(escrow.abi, "DeadlineNotPassed", deadline, deadline - 1):
        chain.send(escrow.functions.reclaim(), alice)


def test_reclaim_of_a_funded_escrow_is_refused(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    pledge(chain, escrow, alice, GOAL + 5)
    chain.next_block_at(deadline + 1)
    with reverts(escrow.abi, "GoalReached", GOAL + 5, GOAL):
        chain.send(escrow.functions.reclaim(), alice)
    chain.send(escrow.functions.finalize(), alice)
    with reverts(escrow.abi, "AlreadyFinalized"):
        chain.send(escrow.functions.reclaim(), alice)


# --- state ------------------------------------------------------------------------------


def test_state_turns_failed_at_the_deadline_second(
    chain: Chain, escrow: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    pledge(chain, escrow, alice, 100)
    chain.mine_at(deadline - 1)
    assert escrow.functions.state().call() == OPEN
    chain.mine_at(deadline)
    assert escrow.functions.state().call() == FAILED


# --- contract pledgers that fight back ------------------------------------------------------


@pytest.fixture
def attacker(chain: Chain, escrow: Contract, alice: ChecksumAddress) -> Contract:
    """A contract pledger with 100 pledged; alice (an honest pledger) has 200 in too."""
    wallet = chain.deploy("ReentrantPledger")
    chain.send(wallet.functions.setEscrow(escrow.address), alice)
    chain.send(wallet.functions.pledge(), alice, 100)
    pledge(chain, escrow, alice, 200)
    return wallet


def reentry_error(escrow: Contract, wallet: Contract) -> str:
    """What the attacker's inner call into the escrow reverted with."""
    assert wallet.functions.reentryAttempts().call() == 1
    assert wallet.functions.lastReentrySucceeded().call() is False
    data = wallet.functions.lastReentryResult().call()
    return str(decode_custom_error(escrow.abi, data))


@pytest.mark.parametrize(
    "mode",
    [REENTER_WITHDRAW, REENTER_RECLAIM, REENTER_FINALIZE, REENTER_PLEDGE],
    ids=["withdraw", "reclaim", "finalize", "pledge"],
)
def test_a_pledger_reentering_from_its_withdrawal_is_stopped(
    chain: Chain, escrow: Contract, attacker: Contract, alice: ChecksumAddress, mode: int
) -> None:
    chain.send(attacker.functions.setOnReceive(mode), alice)
    chain.send(attacker.functions.withdraw(), alice)
    assert reentry_error(escrow, attacker) == "ReentrancyGuardReentrantCall()"
    assert chain.balance(attacker.address) == 100  # its own pledge, once
    assert books(chain, escrow) == (200, 200)
    assert escrow.functions.pledgeOf(alice).call() == 200


def test_a_pledger_reentering_from_its_reclaim_is_stopped(
    chain: Chain, escrow: Contract, attacker: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    chain.send(attacker.functions.setOnReceive(REENTER_RECLAIM), alice)
    chain.next_block_at(deadline)
    chain.send(attacker.functions.reclaim(), alice)
    assert reentry_error(escrow, attacker) == "ReentrancyGuardReentrantCall()"
    assert chain.balance(attacker.address) == 100
    assert books(chain, escrow) == (200, 200)


def test_an_organizer_reentering_finalize_gets_the_total_once(
    chain: Chain, alice: ChecksumAddress, deadline: int
) -> None:
    wallet = chain.deploy("ReentrantPledger")
    escrow = chain.deploy("EthPledgeEscrow", wallet.address, GOAL, deadline, MIN)
    chain.send(wallet.functions.setEscrow(escrow.address), alice)
    chain.send(wallet.functions.setOnReceive(REENTER_FINALIZE), alice)
    pledge(chain, escrow, alice, GOAL)
    chain.send(escrow.functions.finalize(), alice)
    assert reentry_error(escrow, wallet) == "ReentrancyGuardReentrantCall()"
    assert chain.balance(wallet.address) == GOAL
    assert chain.balance(escrow.address) == 0


def test_a_pledger_that_refuses_its_payout_keeps_its_pledge(
    chain: Chain, escrow: Contract, attacker: Contract, alice: ChecksumAddress, deadline: int
) -> None:
    chain.send(attacker.functions.setOnReceive(REJECT), alice)
    with reverts(escrow.abi, "TransferFailed"):
        chain.send(attacker.functions.withdraw(), alice)
    chain.next_block_at(deadline)
    with reverts(escrow.abi, "TransferFailed"):
        chain.send(attacker.functions.reclaim(), alice)
    assert escrow.functions.pledgeOf(attacker.address).call() == 100
    assert books(chain, escrow) == (300, 300)
