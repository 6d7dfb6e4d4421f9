"""ledger.chain against a real node (anvil): the same reads and sends as on eth-tester, a
node's own revert answers, and the primitives the chain follower relies on in a reorg: a
block number's hash changes, and escrow_logs stops returning the removed pledge."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_utils.abi import function_signature_to_4byte_selector

from ledger.chain import ChainClient, Deployer, Wallet
from ledger.core.errors import Refused, Unavailable
from tests.anvil import Anvil, running_anvil

GOAL = 10**18
MIN = 10**16
PROJECT = bytes.fromhex("33" * 32)
ALICE_PLEDGE = 3 * 10**17
BOB_PLEDGE = 2 * 10**17


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with running_anvil() as node:
        yield node


@pytest.fixture
def client(anvil: Anvil) -> ChainClient:
    return ChainClient(anvil.url, timeout_s=5.0)


def open_escrow(client: ChainClient, anvil: Anvil) -> tuple[str, int]:
    """A factory and an ETH escrow of PROJECT, created by dev account 0, open for an hour."""
    platform = Deployer(client, anvil.private_keys[0])
    factory = platform.deploy_factory()
    organizer = Account.from_key(anvil.private_keys[1]).address
    deadline = client.head().timestamp + 3_600
    return platform.create_eth_escrow(factory, PROJECT, organizer, GOAL, deadline, MIN)


def signed_pledge(client: ChainClient, key: str, escrow: str, amount: int, nonce: int) -> str:
    """A raw signed ``pledge()`` of ``amount`` wei, as anvil_reorg takes a transaction."""
    tx = {
        "to": escrow,
        "value": amount,
        "data": "0x" + function_signature_to_4byte_selector("pledge()").hex(),
        "gas": 200_000,
        "nonce": nonce,
        "chainId": client.chain_id(),
        "maxFeePerGas": 10 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    raw: str = Account.sign_transaction(tx, key).raw_transaction.to_0x_hex()
    return raw


def test_pledges_are_read_back_and_reverts_named_on_a_real_node(
    anvil: Anvil, client: ChainClient
) -> None:
    escrow, created_at = open_escrow(client, anvil)
    alice, bob = Wallet(client, anvil.private_keys[2]), Wallet(client, anvil.private_keys[3])
    alice.pledge_eth(escrow, ALICE_PLEDGE)
    bob.pledge_eth(escrow, BOB_PLEDGE)
    logs = client.escrow_logs([escrow], created_at, client.head().number)
    assert [(g.kind, g.account, g.amount, g.total) for g in logs] == [
        ("pledged", alice.address, ALICE_PLEDGE, ALICE_PLEDGE),
        ("pledged", bob.address, BOB_PLEDGE, ALICE_PLEDGE + BOB_PLEDGE),
    ]
    assert client.escrow_view(escrow).total_pledged == ALICE_PLEDGE + BOB_PLEDGE

    with pytest.raises(Refused) as low:
        alice.pledge_eth(escrow, MIN - 1)
    assert (low.value.code, low.value.detail["minimum"]) == ("pledge_below_minimum", str(MIN))
    with pytest.raises(Refused) as early:
        bob.finalize(escrow)
    assert early.value.code == "goal_not_reached"
    anvil.increase_time(3_600)
    anvil.mine()
    assert client.escrow_view(escrow).state == "failed"
    with pytest.raises(Refused) as late:
        alice.pledge_eth(escrow, MIN)
    assert late.value.code == "pledge_after_deadline"


def test_anvil_reorg_changes_the_hashes_and_drops_the_removed_pledge(
    anvil: Anvil, client: ChainClient
) -> None:
    escrow, created_at = open_escrow(client, anvil)
    alice, bob = Wallet(client, anvil.private_keys[2]), Wallet(client, anvil.private_keys[3])
    first = alice.pledge_eth(escrow, ALICE_PLEDGE)["blockNumber"]
    second = bob.pledge_eth(escrow, BOB_PLEDGE)["blockNumber"]
    head = client.head()
    assert (first, second) == (created_at + 1, created_at + 2) == (head.number - 1, head.number)
    before = {n: client.block(n).hash for n in (first, second)}
    assert len(client.escrow_logs([escrow], created_at, head.number)) == 2

    # Both pledge blocks replaced; Alice's pledge lands again, one block later; Bob's is gone.
    anvil.reorg(2, [(signed_pledge(client, anvil.private_keys[2], escrow, ALICE_PLEDGE, 0), 1)])

    assert client.head().number == head.number
    after = {n: client.block(n).hash for n in (first, second)}
    assert all(after[n] != before[n] for n in before)
    logs = client.escrow_logs([escrow], created_at, head.number)
    assert [(g.kind, g.account, g.amount, g.block_number) for g in logs] == [
        ("pledged", alice.address, ALICE_PLEDGE, second)
    ]
    assert logs[0].block_hash == after[second]
    assert client.total_pledged(escrow) == ALICE_PLEDGE
    assert client.pledge_of(escrow, bob.address) == 0


def test_snapshot_revert_and_mine_also_reorganizes(anvil: Anvil, client: ChainClient) -> None:
    escrow, created_at = open_escrow(client, anvil)
    snapshot = anvil.snapshot()
    Wallet(client, anvil.private_keys[2]).pledge_eth(escrow, ALICE_PLEDGE)
    Wallet(client, anvil.private_keys[3]).pledge_eth(escrow, BOB_PLEDGE)
    head = client.head()
    before = [client.block(n).hash for n in (head.number - 1, head.number)]

    anvil.revert(snapshot)
    assert client.head().number == created_at
    anvil.mine(2)

    assert client.head().number == head.number
    assert [client.block(n).hash for n in (head.number - 1, head.number)] != before
    assert client.escrow_logs([escrow], created_at, head.number) == []


def test_a_stopped_node_is_unavailable() -> None:
    with running_anvil() as node:
        client = ChainClient(node.url, timeout_s=2.0)
        assert client.chain_id() == 31337
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        client.head()
    assert caught.value.code == "chain_unavailable"
    assert time.monotonic() - started < 1.0
