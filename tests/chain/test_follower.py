"""The chain follower on the in-process EVM: confirmations, exactly-once, funding and the
issue of units, a reorganisation undone by entries, the lease, and a node that does not
answer. Both databases (the ``ledger`` fixture)."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest

from ledger.chain import ChainClient, Wallet
from ledger.chain.follower import ChainFollower
from ledger.chain.gateway import ChainConfig, FundingChain
from ledger.core import with_check_character
from ledger.core.accounts import member_holder
from ledger.funding import ProjectState, ProjectTerms, create_project, get_project
from ledger.funding.contributions import contributions
from ledger.journal.reads import cap_table
from ledger.journal.reads import digest as digest_of
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.members import register_member
from tests.chain.evm import Chain

ETHER = 10**18
ASSET = with_check_character("1M8GDM9A0KP042789")
DEADLINE = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # after the test ledger's clock starts


@pytest.fixture
def keys(chain: Chain) -> list[str]:
    return [key.to_hex() for key in chain.tester.backend.account_keys]


@pytest.fixture
def client(chain: Chain) -> ChainClient:
    return ChainClient(web3=chain.w3)


@pytest.fixture
def funding(ledger: Ledger, client: ChainClient, keys: list[str]) -> FundingChain:
    return FundingChain(ledger, ChainConfig("eth-tester", keys[0], confirmations=2), client=client)


def _project(ledger: Ledger, chain: Chain, *, goal: int = 3 * ETHER) -> int:
    lister, organizer = chain.accounts[8], chain.accounts[1]
    register_member(ledger, lister, "finance_node", "North", key="m1", actor="admin")
    register_member(ledger, organizer, "individual", "Olga", key="m2", actor="admin")
    terms = ProjectTerms(
        title="Solar roof for the mill",
        description="Panels and an inverter.",
        organizer=organizer,
        asset_id=ASSET,
        jurisdiction="DE-BY",
        currency="ETH",
        goal_minor=goal,
        deadline=DEADLINE,
        min_pledge_minor=1_000,
        organizer_contribution_minor=goal // 5,  # the organizer's own 20 %
        total_units=1_000_000,
    )
    return create_project(ledger, lister, terms, key="p1", actor=lister).id


def _follow(follower: ChainFollower) -> int:
    recorded = 0
    while True:
        result = follower.round()
        assert result is not None
        recorded += result.recorded
        if result.caught_up:
            return recorded


def test_pledges_are_mirrored_once_confirmed_and_finalize_issues_units(
    ledger: Ledger, chain: Chain, funding: FundingChain, client: ChainClient, keys: list[str]
) -> None:
    project_id = _project(ledger, chain)
    lister = chain.accounts[8]
    project = funding.open_project(project_id, by=lister, key="open", actor=lister)
    assert project.escrow is not None and project.escrow.goal_minor == 3 * ETHER - 3 * ETHER // 5
    escrow = project.escrow.address
    follower = funding.follower()
    awkward = [ETHER + 1, 700_000_000_000_000_001, 699_999_999_999_999_998]
    for i, amount in enumerate(awkward, start=2):
        Wallet(client, keys[i]).pledge_eth(escrow, amount)
    _follow(follower)
    with ledger.engine.connect() as conn:
        # Two confirmations: the last pledge's block is the head, not yet mirrored.
        assert get_project(conn, project_id).chain_total_minor == sum(awkward[:1])
    chain.tester.mine_blocks(2)
    assert _follow(follower) == 2
    with ledger.engine.connect() as conn:
        assert get_project(conn, project_id).chain_total_minor == sum(awkward)
        before = digest_of(conn)
    assert _follow(follower) == 0  # nothing new: nothing written
    with ledger.engine.connect() as conn:
        assert digest_of(conn) == before
    Wallet(client, keys[9]).finalize(escrow)
    chain.tester.mine_blocks(2)
    _follow(follower)
    with ledger.engine.connect() as conn:
        assert get_project(conn, project_id).state is ProjectState.FORWARDED
        units = {r.holder: r.units for r in cap_table(conn, ASSET)}
        assert sum(units.values()) == 1_000_000
        assert units[member_holder(chain.accounts[1])] == 200_000  # the organizer's 20 %
        assert verify(conn).ok
    lines = funding.reconcile()
    assert [(line.difference_minor, line.pledger_differences) for line in lines] == [(0, ())]


def test_a_reorganisation_that_drops_mirrored_pledges_is_undone(
    ledger: Ledger, chain: Chain, client: ChainClient, keys: list[str]
) -> None:
    funding = FundingChain(
        ledger, ChainConfig("eth-tester", keys[0], confirmations=0), client=client
    )
    project_id = _project(ledger, chain)
    lister = chain.accounts[8]
    escrow = funding.open_project(project_id, by=lister, key="open", actor=lister).escrow
    assert escrow is not None
    follower = funding.follower()
    Wallet(client, keys[2]).pledge_eth(escrow.address, ETHER)
    fork = chain.snapshot()
    Wallet(client, keys[3]).pledge_eth(escrow.address, 2 * ETHER // 10)
    Wallet(client, keys[4]).pledge_eth(escrow.address, 3 * ETHER // 10)
    _follow(follower)
    with ledger.engine.connect() as conn:
        assert get_project(conn, project_id).chain_total_minor == ETHER + ETHER // 2
        mirrored = digest_of(conn).seq
    chain.revert_to(fork)  # the two later pledges' blocks are gone
    Wallet(client, keys[5]).pledge_eth(escrow.address, 4 * ETHER // 10)
    chain.tester.mine_blocks(3)  # and the new branch is longer
    _follow(follower)
    with ledger.engine.connect() as conn:
        project = get_project(conn, project_id)
        assert project.chain_total_minor == ETHER + 4 * ETHER // 10
        assert {c.contributor for c in contributions(conn, project_id)} == {
            chain.accounts[2],
            chain.accounts[5],
        }
        # two compensating entries and the new pledge: history only grew
        assert digest_of(conn).seq == mirrored + 3
        assert verify(conn).ok
    assert follower.status().undone == 2
    assert funding.reconcile()[0].difference_minor == 0


def test_a_deadline_passed_under_goal_fails_and_reclaims_are_mirrored(
    ledger: Ledger, chain: Chain, client: ChainClient, keys: list[str]
) -> None:
    funding = FundingChain(
        ledger, ChainConfig("eth-tester", keys[0], confirmations=0), client=client
    )
    project_id = _project(ledger, chain)
    lister = chain.accounts[8]
    escrow = funding.open_project(project_id, by=lister, key="open", actor=lister).escrow
    assert escrow is not None
    follower = funding.follower()
    Wallet(client, keys[2]).pledge_eth(escrow.address, ETHER)
    chain.next_block_at(int(DEADLINE.timestamp()))
    Wallet(client, keys[2]).reclaim(escrow.address)
    _follow(follower)
    with ledger.engine.connect() as conn:
        project = get_project(conn, project_id)
        assert project.state is ProjectState.FAILED
        assert project.chain_total_minor == 0
        assert verify(conn).ok


def test_one_follower_writes_per_chain(ledger: Ledger, chain: Chain, funding: FundingChain) -> None:
    first, second = funding.follower(), funding.follower()
    assert first.round() is not None
    assert second.round() is None
    assert second.status().state == "standby"


def test_a_node_that_does_not_answer_makes_the_follower_wait(ledger: Ledger) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    follower = ChainFollower(
        ledger,
        ChainClient(f"http://127.0.0.1:{port}"),
        confirmations=1,
        poll_s=0.05,
        backoff_max_s=0.2,
    )
    thread, stop = follower.start()
    try:
        for _ in range(100):
            if follower.status().state == "waiting":
                break
            threading.Event().wait(0.05)
        status = follower.status()
        assert status.state == "waiting"
        assert (status.last_error and "chain" in status.last_error.lower()) or status.retry_in_s
    finally:
        stop.set()
        thread.join(5)
    assert follower.status().state == "stopped"
