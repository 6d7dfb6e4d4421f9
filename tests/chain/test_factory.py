"""PledgeEscrowFactory: one escrow per project and creator, announced in EscrowCreated,
and the escrows it makes are the real thing."""

from __future__ import annotations

import pytest
from eth_typing import ABI, ChecksumAddress
from web3.contract import Contract

from contracts import load_artifact
from tests.chain.evm import Chain, emitted, reverts

GOAL = 1_000
MIN = 10
PROJECT = bytes.fromhex("11" * 32)
OTHER_PROJECT = bytes.fromhex("22" * 32)
ZERO = "0x" + "00" * 20


@pytest.fixture
def factory(chain: Chain) -> Contract:
    return chain.deploy("PledgeEscrowFactory")


@pytest.fixture
def deadline(chain: Chain) -> int:
    return chain.pending_timestamp() + 1_000


def with_escrow_errors(factory: Contract) -> ABI:
    """The factory's errors and those of the escrows' constructors, which bubble up."""
    return [*factory.abi, *load_artifact("TokenPledgeEscrow").abi]


def test_an_eth_escrow_is_created_announced_and_working(
    chain: Chain,
    factory: Contract,
    deployer: ChecksumAddress,
    organizer: ChecksumAddress,
    alice: ChecksumAddress,
    deadline: int,
) -> None:
    create = factory.functions.createEthEscrow(PROJECT, organizer, GOAL, deadline, MIN)
    predicted = create.call({"from": deployer})
    receipt = chain.send(create, deployer)
    assert emitted(factory, "EscrowCreated", receipt) == [
        {
            "projectId": PROJECT,
            "escrow": predicted,
            "organizer": organizer,
            "token": ZERO,
            "goal": GOAL,
            "deadline": deadline,
            "minPledge": MIN,
            "creator": deployer,
        }
    ]
    assert factory.functions.escrowOf(deployer, PROJECT).call() == predicted
    escrow = chain.at("EthPledgeEscrow", predicted)
    f = escrow.functions
    assert (f.organizer().call(), f.goal().call(), f.deadline().call(), f.minPledge().call()) == (
        organizer,
        GOAL,
        deadline,
        MIN,
    )
    chain.send(f.pledge(), alice, GOAL)
    chain.send(f.finalize(), alice)
    assert f.state().call() == 2  # Finalized


def test_a_token_escrow_is_created_with_its_token(
    chain: Chain,
    factory: Contract,
    deployer: ChecksumAddress,
    organizer: ChecksumAddress,
    alice: ChecksumAddress,
    deadline: int,
) -> None:
    token = chain.deploy("MintableToken")
    create = factory.functions.createTokenEscrow(
        PROJECT, token.address, organizer, GOAL, deadline, MIN
    )
    receipt = chain.send(create, deployer)
    (event,) = emitted(factory, "EscrowCreated", receipt)
    assert event["token"] == token.address
    escrow = chain.at("TokenPledgeEscrow", event["escrow"])
    assert escrow.functions.token().call() == token.address
    chain.send(token.functions.mint(alice, 500), alice)
    chain.send(token.functions.approve(escrow.address, 500), alice)
    chain.send(escrow.functions.pledge(500), alice)
    assert escrow.functions.totalPledged().call() == 500


def test_a_creator_gets_one_escrow_per_project_of_either_kind(
    chain: Chain,
    factory: Contract,
    deployer: ChecksumAddress,
    organizer: ChecksumAddress,
    deadline: int,
) -> None:
    receipt = chain.send(
        factory.functions.createEthEscrow(PROJECT, organizer, GOAL, deadline, MIN), deployer
    )
    (event,) = emitted(factory, "EscrowCreated", receipt)
    token = chain.deploy("MintableToken")
    with reverts(factory.abi, "ProjectAlreadyHasEscrow", PROJECT, event["escrow"]):
        chain.send(
            factory.functions.createEthEscrow(PROJECT, organizer, GOAL, deadline, MIN), deployer
        )
    with reverts(factory.abi, "ProjectAlreadyHasEscrow", PROJECT, event["escrow"]):
        chain.send(
            factory.functions.createTokenEscrow(
                PROJECT, token.address, organizer, GOAL, deadline, MIN
            ),
            deployer,
        )
    chain.send(
        factory.functions.createEthEscrow(OTHER_PROJECT, organizer, GOAL, deadline, MIN), deployer
    )


def test_a_project_id_is_scoped_to_its_creator_so_nobody_can_squat_it(
    chain: Chain,
    factory: Contract,
    deployer: ChecksumAddress,
    organizer: ChecksumAddress,
    stranger: ChecksumAddress,
    deadline: int,
) -> None:
    create = factory.functions.createEthEscrow(PROJECT, organizer, GOAL, deadline, MIN)
    squatted = emitted(factory, "EscrowCreated", chain.send(create, stranger))[0]["escrow"]
    ours = emitted(factory, "EscrowCreated", chain.send(create, deployer))[0]["escrow"]
    assert squatted != ours
    assert factory.functions.escrowOf(deployer, PROJECT).call() == ours
    assert factory.functions.escrowOf(stranger, PROJECT).call() == squatted
    assert factory.functions.escrowOf(deployer, OTHER_PROJECT).call() == ZERO


def test_the_zero_project_id_is_refused(
    chain: Chain,
    factory: Contract,
    deployer: ChecksumAddress,
    organizer: ChecksumAddress,
    deadline: int,
) -> None:
    with reverts(factory.abi, "ZeroProjectId"):
        chain.send(
            factory.functions.createEthEscrow(bytes(32), organizer, GOAL, deadline, MIN), deployer
        )


def test_bad_terms_are_refused_by_the_escrow_and_bubble_up(
    chain: Chain,
    factory: Contract,
    deployer: ChecksumAddress,
    organizer: ChecksumAddress,
    deadline: int,
) -> None:
    abi = with_escrow_errors(factory)
    f = factory.functions
    with reverts(abi, "ZeroOrganizer"):
        chain.send(f.createEthEscrow(PROJECT, ZERO, GOAL, deadline, MIN), deployer)
    with reverts(abi, "MinimumAboveGoal", GOAL + 1, GOAL):
        chain.send(f.createEthEscrow(PROJECT, organizer, GOAL, deadline, GOAL + 1), deployer)
    with reverts(abi, "ZeroToken"):
        chain.send(f.createTokenEscrow(PROJECT, ZERO, organizer, GOAL, deadline, MIN), deployer)
    with reverts(abi, "DeadlineNotInFuture", 5, chain.pending_timestamp()):
        chain.send(f.createEthEscrow(PROJECT, organizer, GOAL, 5, MIN), deployer)
    # Nothing was registered by the refused calls.
    assert factory.functions.escrowOf(deployer, PROJECT).call() == ZERO
