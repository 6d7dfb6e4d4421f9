"""TokenPledgeEscrow on an in-process EVM: the same rules as the ETH escrow, in a token, and
tokens that misbehave (a fee on transfer, false instead of a revert, a revert, a lie, a
re-entering hook) without ever making the escrow's books disagree with its balance."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from eth_typing import ABI, ChecksumAddress
from web3.contract import Contract

from contracts import decode_custom_error, load_artifact
from tests.chain.evm import Chain, emitted, reverts

GOAL = 1_000
MIN = 10
OPEN, FUNDED, FINALIZED, FAILED = range(4)
FUNDS = 10_000  # minted to each pledger
FEE_BPS = 100  # FeeOnTransferToken's fee: 1 %
# MisbehavingToken.Mode
NORMAL, RETURN_FALSE, REVERT, LIE, REENTER = range(5)


@pytest.fixture
def deadline(chain: Chain) -> int:
    return chain.pending_timestamp() + 1_000


def token_escrow(
    chain: Chain,
    token_name: str,
    token_args: Sequence[object],
    organizer: ChecksumAddress,
    deadline: int,
    pledgers: Sequence[ChecksumAddress],
) -> tuple[Contract, Contract]:
    """A token with FUNDS minted to each pledger, and an escrow they have approved."""
    token = chain.deploy(token_name, *token_args)
    escrow = chain.deploy("TokenPledgeEscrow", token.address, organizer, GOAL, deadline, MIN)
    for who in pledgers:
        chain.send(token.functions.mint(who, FUNDS), who)
        chain.send(token.functions.approve(escrow.address, 2**256 - 1), who)
    return token, escrow


@pytest.fixture
def plain(
    chain: Chain,
    organizer: ChecksumAddress,
    deadline: int,
    alice: ChecksumAddress,
    bob: ChecksumAddress,
) -> tuple[Contract, Contract]:
    return token_escrow(chain, "MintableToken", (), organizer, deadline, (alice, bob))


def pledge(chain: Chain, escrow: Contract, who: ChecksumAddress, amount: int) -> None:
    chain.send(escrow.functions.pledge(amount), who)


def books(token: Contract, escrow: Contract) -> tuple[int, int]:
    """(the escrow's token balance, what it says is pledged)."""
    return (
        token.functions.balanceOf(escrow.address).call(),
        escrow.functions.totalPledged().call(),
    )


def both(escrow: Contract, token: Contract) -> ABI:
    """The escrow's errors and the token's, for reverts that bubble up from the token."""
    return [*escrow.abi, *token.abi]


# --- the rules, in a token ----------------------------------------------------------------


def test_construction_refuses_the_zero_token(
    chain: Chain, organizer: ChecksumAddress, deadline: int
) -> None:
    with reverts(load_artifact("TokenPledgeEscrow").abi, "ZeroToken"):
        chain.deploy("TokenPledgeEscrow", "0x" + "00" * 20, organizer, GOAL, deadline, MIN)


def test_pledge_withdraw_and_finalize_move_exact_amounts(
    chain: Chain,
    plain: tuple[Contract, Contract],
    organizer: ChecksumAddress,
    alice: ChecksumAddress,
    bob: ChecksumAddress,
    stranger: ChecksumAddress,
) -> None:
    token, escrow = plain
    assert escrow.functions.token().call() == token.address
    receipt = chain.send(escrow.functions.pledge(400), alice)
    assert emitted(escrow, "Pledged", receipt) == [{"pledger": alice, "amount": 400, "total": 400}]
    pledge(chain, escrow, bob, 300)
    receipt = chain.send(escrow.functions.withdraw(), alice)
    assert emitted(escrow, "Withdrawn", receipt) == [
        {"pledger": alice, "amount": 400, "total": 300}
    ]
    assert token.functions.balanceOf(alice).call() == FUNDS
    pledge(chain, escrow, alice, 700)
    assert escrow.functions.state().call() == FUNDED
    with reverts(escrow.abi, "WithdrawAfterGoal"):
        chain.send(escrow.functions.withdraw(), bob)
    receipt = chain.send(escrow.functions.finalize(), stranger)
    assert emitted(escrow, "Finalized", receipt) == [{"organizer": organizer, "amount": GOAL}]
    assert token.functions.balanceOf(organizer).call() == GOAL
    assert books(token, escrow) == (0, GOAL)  # the record stays; the tokens went
    assert escrow.functions.state().call() == FINALIZED
    with reverts(escrow.abi, "AlreadyFinalized"):
        pledge(chain, escrow, bob, MIN)


def test_reclaim_after_a_missed_deadline(
    chain: Chain,
    plain: tuple[Contract, Contract],
    alice: ChecksumAddress,
    bob: ChecksumAddress,
    deadline: int,
) -> None:
    token, escrow = plain
    pledge(chain, escrow, alice, 250)
    pledge(chain, escrow, bob, 100)
    with reverts(escrow.abi, "DeadlineNotPassed", deadline, chain.pending_timestamp()):
        chain.send(escrow.functions.reclaim(), alice)
    chain.next_block_at(deadline)
    with reverts(escrow.abi, "PledgeAfterDeadline", deadline, deadline):
        pledge(chain, escrow, alice, MIN)
    receipt = chain.send(escrow.functions.reclaim(), alice)
    assert emitted(escrow, "Reclaimed", receipt) == [{"pledger": alice, "amount": 250}]
    assert token.functions.balanceOf(alice).call() == FUNDS
    with reverts(escrow.abi, "NothingToReclaim"):
        chain.send(escrow.functions.reclaim(), alice)
    assert books(token, escrow) == (100, 100)
    assert escrow.functions.state().call() == FAILED


def test_a_pledge_needs_an_allowance_the_minimum_and_a_nonzero_amount(
    chain: Chain, plain: tuple[Contract, Contract], alice: ChecksumAddress
) -> None:
    token, escrow = plain
    with reverts(escrow.abi, "ZeroPledge"):
        pledge(chain, escrow, alice, 0)
    with reverts(escrow.abi, "PledgeBelowMinimum", MIN - 1, MIN):
        pledge(chain, escrow, alice, MIN - 1)
    chain.send(token.functions.approve(escrow.address, 50), alice)
    with reverts(both(escrow, token), "ERC20InsufficientAllowance", escrow.address, 50, 60):
        pledge(chain, escrow, alice, 60)
    with reverts(both(escrow, token), "ERC20InsufficientBalance", alice, FUNDS, FUNDS + 1):
        chain.send(token.functions.approve(escrow.address, FUNDS + 1), alice)
        pledge(chain, escrow, alice, FUNDS + 1)
    assert books(token, escrow) == (0, 0)


# --- tokens that misbehave ------------------------------------------------------------------


def test_a_fee_on_transfer_token_books_what_arrived(
    chain: Chain,
    organizer: ChecksumAddress,
    deadline: int,
    alice: ChecksumAddress,
    bob: ChecksumAddress,
) -> None:
    token, escrow = token_escrow(
        chain, "FeeOnTransferToken", (FEE_BPS,), organizer, deadline, (alice, bob)
    )
    receipt = chain.send(escrow.functions.pledge(500), alice)
    assert emitted(escrow, "Pledged", receipt) == [{"pledger": alice, "amount": 495, "total": 495}]
    assert escrow.functions.pledgeOf(alice).call() == 495
    assert books(token, escrow) == (495, 495)
    chain.send(escrow.functions.withdraw(), alice)  # the escrow sends 495, alice gets 491
    assert token.functions.balanceOf(alice).call() == FUNDS - 500 + 491
    assert books(token, escrow) == (0, 0)
    pledge(chain, escrow, alice, 1_011)  # 1 001 arrives: over the goal
    chain.send(escrow.functions.finalize(), bob)
    assert books(token, escrow) == (0, 1_001)
    assert token.functions.balanceOf(organizer).call() == 1_001 - 10  # the token's own fee


def test_the_minimum_applies_to_what_arrives(
    chain: Chain, organizer: ChecksumAddress, deadline: int, alice: ChecksumAddress
) -> None:
    token, escrow = token_escrow(
        chain, "FeeOnTransferToken", (5_000,), organizer, deadline, (alice,)
    )  # a 50 % fee: 15 sent, 8 arrive
    with reverts(escrow.abi, "PledgeBelowMinimum", 8, MIN):
        pledge(chain, escrow, alice, 15)
    pledge(chain, escrow, alice, 20)
    assert books(token, escrow) == (10, 10)


@pytest.fixture
def bad(
    chain: Chain, organizer: ChecksumAddress, deadline: int, alice: ChecksumAddress
) -> tuple[Contract, Contract]:
    """A MisbehavingToken escrow in which alice has pledged 300 while it behaved."""
    token, escrow = token_escrow(chain, "MisbehavingToken", (), organizer, deadline, (alice,))
    pledge(chain, escrow, alice, 300)
    return token, escrow


def test_a_token_returning_false_cannot_pledge_or_pay_out(
    chain: Chain, bad: tuple[Contract, Contract], alice: ChecksumAddress
) -> None:
    token, escrow = bad
    chain.send(token.functions.setMode(RETURN_FALSE), alice)
    with reverts(escrow.abi, "SafeERC20FailedOperation", token.address):
        pledge(chain, escrow, alice, 100)
    with reverts(escrow.abi, "SafeERC20FailedOperation", token.address):
        chain.send(escrow.functions.withdraw(), alice)
    assert escrow.functions.pledgeOf(alice).call() == 300
    assert books(token, escrow) == (300, 300)


def test_a_reverting_token_cannot_pledge_or_pay_out(
    chain: Chain, bad: tuple[Contract, Contract], alice: ChecksumAddress
) -> None:
    token, escrow = bad
    chain.send(token.functions.setMode(REVERT), alice)
    with reverts(both(escrow, token), "TransferRefused"):
        pledge(chain, escrow, alice, 100)
    with reverts(both(escrow, token), "TransferRefused"):
        chain.send(escrow.functions.withdraw(), alice)
    assert books(token, escrow) == (300, 300)


def test_a_token_that_reports_a_transfer_it_did_not_make_books_nothing(
    chain: Chain, bad: tuple[Contract, Contract], alice: ChecksumAddress
) -> None:
    token, escrow = bad
    chain.send(token.functions.setMode(LIE), alice)
    with reverts(escrow.abi, "ZeroPledge"):
        pledge(chain, escrow, alice, 100)
    assert books(token, escrow) == (300, 300)


@pytest.mark.parametrize("inner", ["withdraw", "reclaim", "finalize", "pledge"])
def test_a_token_hook_reentering_the_escrow_is_stopped(
    chain: Chain, bad: tuple[Contract, Contract], alice: ChecksumAddress, inner: str
) -> None:
    token, escrow = bad
    args = (MIN,) if inner == "pledge" else ()
    call_data = escrow.encode_abi(inner, args=args)
    chain.send(token.functions.setReentry(escrow.address, call_data), alice)
    chain.send(token.functions.setMode(REENTER), alice)
    pledge(chain, escrow, alice, 100)
    assert token.functions.lastReentrySucceeded().call() is False
    result = token.functions.lastReentryResult().call()
    assert str(decode_custom_error(escrow.abi, result)) == "ReentrancyGuardReentrantCall()"
    assert books(token, escrow) == (400, 400)
    chain.send(escrow.functions.withdraw(), alice)  # the hook fires again, and is stopped again
    assert token.functions.balanceOf(alice).call() == FUNDS
    assert books(token, escrow) == (0, 0)
