"""ledger.chain on the in-process EVM: the client's reads, the signers' sends, the one error
boundary (reverts named, an absent node Unavailable, no secret in any message)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError
from web3.types import Wei

from contracts import load_artifact
from ledger.chain import (
    ChainClient,
    Deployer,
    EscrowCreatedLog,
    EscrowLog,
    EscrowView,
    Wallet,
)
from ledger.chain.errors import refusal, snake_case
from ledger.chain.events import ESCROW_CREATED_TOPIC, ESCROW_EVENT_TOPICS, decode_escrow_log
from ledger.core.errors import InvalidInput, LedgerError, NotFound, Refused, Unavailable
from tests.chain.evm import Chain

GOAL = 10**18
MIN = 10**16
PROJECT = bytes.fromhex("11" * 32)
OTHER_PROJECT = bytes.fromhex("22" * 32)
ZERO = "0x" + "00" * 20


@pytest.fixture
def keys(chain: Chain) -> list[str]:
    """The private keys of eth-tester's funded accounts, in ``chain.accounts`` order."""
    return [key.to_hex() for key in chain.tester.backend.account_keys]


@pytest.fixture
def client(chain: Chain) -> ChainClient:
    return ChainClient(web3=chain.w3)


@pytest.fixture
def platform(client: ChainClient, keys: list[str]) -> Deployer:
    return Deployer(client, keys[0])


@pytest.fixture
def factory(platform: Deployer) -> str:
    return platform.deploy_factory()


@pytest.fixture
def deadline(chain: Chain) -> int:
    return chain.pending_timestamp() + 3_600


@pytest.fixture
def escrow(platform: Deployer, factory: str, chain: Chain, deadline: int) -> str:
    address, _ = platform.create_eth_escrow(
        factory, PROJECT, chain.accounts[1], GOAL, deadline, MIN
    )
    return address


def wallet(client: ChainClient, keys: list[str], i: int) -> Wallet:
    return Wallet(client, keys[i])


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# Deploying and creating


def test_factory_deploys_and_escrow_creation_is_idempotent(
    chain: Chain, client: ChainClient, platform: Deployer, deadline: int
) -> None:
    factory = platform.deploy_factory()
    assert client.has_code(factory)
    escrow, block = platform.create_eth_escrow(
        factory, PROJECT, chain.accounts[1], GOAL, deadline, MIN
    )
    assert client.has_code(escrow)
    assert client.escrow_of(factory, platform.address, PROJECT) == escrow
    created = client.escrows_created(factory, platform.address, 0, client.head().number)
    assert [(c.escrow, c.block_number) for c in created] == [(escrow, block)]

    head, nonce = client.head(), chain.w3.eth.get_transaction_count(platform.address)
    again = platform.create_eth_escrow(factory, PROJECT, chain.accounts[1], GOAL, deadline, MIN)
    assert again == (escrow, block)
    assert client.head() == head  # nothing mined
    assert chain.w3.eth.get_transaction_count(platform.address) == nonce  # nothing sent


def test_a_token_escrow_names_its_token(
    chain: Chain, client: ChainClient, platform: Deployer, factory: str, deadline: int
) -> None:
    token = chain.deploy("MintableToken").address
    escrow, block = platform.create_token_escrow(
        factory, OTHER_PROJECT, token, chain.accounts[1], GOAL, deadline, MIN
    )
    [created] = client.escrows_created(factory, platform.address, block, block)
    assert (created.escrow, created.token, created.project_id) == (escrow, token, OTHER_PROJECT)
    again = platform.create_token_escrow(
        factory, OTHER_PROJECT, token, chain.accounts[1], GOAL, deadline, MIN
    )
    assert again == (escrow, block)


def test_escrows_created_keeps_the_creators_own(
    chain: Chain,
    client: ChainClient,
    keys: list[str],
    platform: Deployer,
    factory: str,
    deadline: int,
) -> None:
    squatter = Deployer(client, keys[5])
    theirs, _ = squatter.create_eth_escrow(factory, PROJECT, chain.accounts[5], GOAL, deadline, 0)
    ours, block = platform.create_eth_escrow(
        factory, PROJECT, chain.accounts[1], GOAL, deadline, MIN
    )
    other, other_block = platform.create_eth_escrow(
        factory, OTHER_PROJECT, chain.accounts[1], GOAL, deadline, MIN
    )
    assert theirs != ours
    head = client.head().number
    created = client.escrows_created(factory, platform.address, 0, head, blocks_per_call=1)
    assert created == [
        EscrowCreatedLog(
            project_id=PROJECT,
            escrow=ours,
            organizer=chain.accounts[1],
            token=None,
            goal=GOAL,
            deadline=deadline,
            min_pledge=MIN,
            creator=platform.address,
            block_number=block,
            block_hash=client.block(block).hash,
            tx_hash=created[0].tx_hash,
            log_index=created[0].log_index,
        ),
        created[1],
    ]
    assert (created[1].escrow, created[1].block_number) == (other, other_block)
    only = client.escrows_created(factory, platform.address, 0, head, project_id=OTHER_PROJECT)
    assert [c.escrow for c in only] == [other]
    assert [c.escrow for c in client.escrows_created(factory, squatter.address, 0, head)] == [
        theirs
    ]


# Pledging and reading back


def test_pledges_withdraw_and_finalize_read_back_as_logs_in_order(
    chain: Chain,
    client: ChainClient,
    keys: list[str],
    platform: Deployer,
    factory: str,
    escrow: str,
    deadline: int,
) -> None:
    alice, bob, anyone = wallet(client, keys, 2), wallet(client, keys, 3), wallet(client, keys, 9)
    second, _ = platform.create_eth_escrow(
        factory, OTHER_PROJECT, chain.accounts[1], GOAL, deadline, MIN
    )
    start = client.head().number + 1
    receipts = [
        alice.pledge_eth(escrow, 3 * 10**17),
        bob.pledge_eth(escrow, 2 * 10**17),
        bob.pledge_eth(second, 5 * 10**16),
        alice.withdraw(escrow),
        bob.pledge_eth(escrow, 5 * 10**17),
        alice.pledge_eth(escrow, 3 * 10**17),
    ]
    assert client.escrow_view(escrow).state == "funded"
    receipts.append(anyone.finalize(escrow))
    end = client.head().number

    expected = [
        ("pledged", escrow, alice.address, 3 * 10**17, 3 * 10**17),
        ("pledged", escrow, bob.address, 2 * 10**17, 5 * 10**17),
        ("pledged", second, bob.address, 5 * 10**16, 5 * 10**16),
        ("withdrawn", escrow, alice.address, 3 * 10**17, 2 * 10**17),
        ("pledged", escrow, bob.address, 5 * 10**17, 7 * 10**17),
        ("pledged", escrow, alice.address, 3 * 10**17, GOAL),
        ("finalized", escrow, chain.accounts[1], GOAL, None),
    ]
    whole = client.escrow_logs([escrow, second], start, end)
    assert [(g.kind, g.escrow, g.account, g.amount, g.total) for g in whole] == expected
    for log, receipt in zip(whole, receipts, strict=True):
        assert log.block_number == receipt["blockNumber"]
        assert log.tx_hash == "0x" + bytes(receipt["transactionHash"]).hex()
        assert log.block_hash == client.block(log.block_number).hash
        assert isinstance(log, EscrowLog)
    # One address and two blocks per call: the same events, in the same order.
    chunked = client.escrow_logs(
        [second, escrow, escrow], start - 3, end, addresses_per_call=1, blocks_per_call=2
    )
    assert chunked == whole
    assert client.escrow_logs([second], start, end) == [whole[2]]
    assert client.escrow_logs([escrow], end + 1, end) == []
    assert client.escrow_logs([], start, end) == []


def test_views_follow_the_escrow(
    chain: Chain, client: ChainClient, keys: list[str], escrow: str, deadline: int
) -> None:
    alice, bob = wallet(client, keys, 2), wallet(client, keys, 3)
    assert client.escrow_view(escrow) == EscrowView(
        organizer=chain.accounts[1],
        goal=GOAL,
        deadline=deadline,
        min_pledge=MIN,
        total_pledged=0,
        state="open",
    )
    alice.pledge_eth(escrow, 10**17)
    bob.pledge_eth(escrow, 2 * 10**17)
    assert client.total_pledged(escrow) == 3 * 10**17
    assert client.pledge_of(escrow, alice.address) == 10**17
    assert client.pledge_of(escrow, bob.address.lower()) == 2 * 10**17
    assert client.pledge_of(escrow, chain.accounts[7]) == 0
    chain.mine_at(deadline)
    assert client.escrow_view(escrow).state == "failed"
    alice.reclaim(escrow)
    assert client.escrow_view(escrow).total_pledged == 2 * 10**17
    assert [g.kind for g in client.escrow_logs([escrow], 0, client.head().number)] == [
        "pledged",
        "pledged",
        "reclaimed",
    ]


def test_blocks_are_read_by_number_and_head(chain: Chain, client: ChainClient) -> None:
    chain.mine_at(chain.pending_timestamp() + 10)
    head = client.head()
    assert client.block(head.number) == head
    assert head.timestamp == chain.latest_timestamp()
    assert len(head.hash) == 66 and head.hash == head.hash.lower()
    assert client.block(head.number - 1).hash != head.hash
    assert client.chain_id() == chain.w3.eth.chain_id == client.chain_id()
    with pytest.raises(NotFound) as missing:
        client.block(head.number + 100)
    assert missing.value.code == "block_not_found"


def test_event_topics_match_the_artifacts() -> None:
    """The fast decoder's hard-coded signatures are those the compiler emitted."""

    def topics(name: str) -> set[str]:
        found = set()
        for element in load_artifact(name).abi:
            if element["type"] == "event":
                types = ",".join(i["type"] for i in element["inputs"])
                found.add("0x" + keccak(text=f"{element['name']}({types})").hex())
        return found

    assert set(ESCROW_EVENT_TOPICS) == topics("EthPledgeEscrow") == topics("TokenPledgeEscrow")
    assert topics("PledgeEscrowFactory") == {ESCROW_CREATED_TOPIC}


# Reverts, named


def test_reverts_become_refusals_named_after_the_error(
    chain: Chain,
    client: ChainClient,
    keys: list[str],
    platform: Deployer,
    factory: str,
    escrow: str,
    deadline: int,
) -> None:
    alice = wallet(client, keys, 2)
    with pytest.raises(Refused) as low:
        alice.pledge_eth(escrow, MIN - 1)
    assert low.value.code == "pledge_below_minimum"
    assert low.value.detail == {"amount": str(MIN - 1), "minimum": str(MIN)}
    assert "PledgeBelowMinimum(amount=" in low.value.message

    alice.pledge_eth(escrow, MIN)
    with pytest.raises(Refused) as early:
        alice.finalize(escrow)
    assert early.value.code == "goal_not_reached"
    assert early.value.detail == {"total": str(MIN), "goal": str(GOAL)}

    with pytest.raises(Refused) as zero:
        platform.create_eth_escrow(factory, bytes(32), chain.accounts[1], GOAL, deadline, MIN)
    assert zero.value.code == "zero_project_id"

    chain.next_block_at(deadline)
    with pytest.raises(Refused) as late:
        alice.pledge_eth(escrow, MIN)
    assert late.value.code == "pledge_after_deadline"
    assert late.value.detail == {"deadline": str(deadline), "timestamp": str(deadline)}
    assert client.total_pledged(escrow) == MIN  # nothing was sent


def test_error_names_become_snake_case_codes() -> None:
    assert snake_case("PledgeBelowMinimum") == "pledge_below_minimum"
    assert snake_case("ZeroPledge") == "zero_pledge"
    assert snake_case("SafeERC20FailedOperation") == "safe_erc20_failed_operation"
    assert snake_case("ERC20InsufficientBalance") == "erc20_insufficient_balance"


def test_reading_an_account_without_code(chain: Chain, client: ChainClient) -> None:
    assert not client.has_code(chain.accounts[4])
    with pytest.raises(NotFound) as caught:
        client.escrow_view(chain.accounts[4])
    assert caught.value.code == "contract_not_found"


def test_inputs_are_checked_before_any_request(
    client: ChainClient, platform: Deployer, factory: str
) -> None:
    bad: list[tuple[Callable[[], Any], str]] = [
        (lambda: client.escrow_logs(["0x12"], 0, 1), "address_malformed"),
        (lambda: client.escrow_logs(["0x" + "aB" * 20], 0, 1), "address_checksum"),
        (lambda: client.escrow_logs([], 0, 1, addresses_per_call=101), "chunk_size_invalid"),
        (lambda: client.escrow_logs([], 0, 1, blocks_per_call=2_001), "chunk_size_invalid"),
        (lambda: client.escrow_logs([], -1, 1), "block_range_invalid"),
        (lambda: client.block(-1), "block_range_invalid"),
        (lambda: client.escrow_of("0x" + "00" * 20, "0x" + "00" * 20, b"x"), "project_id_invalid"),
        (lambda: Wallet(client, "0x1234"), "private_key_malformed"),
        (lambda: Wallet(client, "0x" + "00" * 32), "private_key_malformed"),
        (lambda: ChainClient(), "chain_client_config"),
        (lambda: ChainClient("ftp://example.org"), "rpc_url_malformed"),
        (
            lambda: platform.create_eth_escrow(factory, PROJECT, ZERO, -1, 1, 0),
            "call_arguments_invalid",
        ),
        (lambda: platform.send_call(factory, [], "createEthEscrow", ()), "call_arguments_invalid"),
        (lambda: platform.pledge_eth(factory, -1), "amount_not_positive"),
    ]
    for call, code in bad:
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.code == code


# An absent node, and secrets


def test_an_unreachable_node_is_unavailable_quickly_and_says_no_secret(keys: list[str]) -> None:
    port = closed_port()
    url = f"http://reader:pa55word-xyz@127.0.0.1:{port}/v3/APIKEY-0123456789abcdef?token=QWERTY123"
    client = ChainClient(url, timeout_s=2.0)
    signer = Deployer(client, keys[0])
    somewhere = "0x" + "11" * 20
    calls: list[Callable[[], Any]] = [
        client.chain_id,
        client.head,
        lambda: client.block(1),
        lambda: client.escrow_logs([somewhere], 0, 10),
        lambda: client.escrows_created(somewhere, somewhere, 0, 10),
        lambda: client.escrow_of(somewhere, somewhere, PROJECT),
        lambda: client.escrow_view(somewhere),
        lambda: client.total_pledged(somewhere),
        lambda: client.pledge_of(somewhere, somewhere),
        lambda: client.has_code(somewhere),
        signer.deploy_factory,
        lambda: signer.pledge_eth(somewhere, 1),
        lambda: signer.create_eth_escrow(somewhere, PROJECT, somewhere, 1, 2, 0),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            call()
        assert time.monotonic() - started < 1.0
        assert caught.value.code == "chain_unavailable"
        text = f"{caught.value} {caught.value.detail} {caught.value!r}"
        assert f"127.0.0.1:{port}" in text  # the node is named...
        for secret in ("pa55word", "reader", "APIKEY", "QWERTY", keys[0][2:], "/v3/"):
            assert secret not in text  # ...without what the URL or the key hold
        assert "\n" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "pa55word" not in repr(client) and "APIKEY" not in repr(client)


def test_the_key_never_shows(
    chain: Chain, client: ChainClient, keys: list[str], escrow: str
) -> None:
    # eth-tester's own keys are 0x00..01 and up: a random one, funded, is unlike any number.
    key = Account.create().key.to_0x_hex()
    alice = Wallet(client, key)
    chain.w3.eth.send_transaction(
        {"from": chain.accounts[0], "to": alice.address, "value": Wei(10**18)}
    )
    platform = Deployer(client, key.upper().replace("0X", "0x"))
    raised: list[LedgerError] = []
    for call in (
        lambda: alice.pledge_eth(escrow, 1),
        lambda: platform.create_eth_escrow(escrow, PROJECT, chain.accounts[1], 1, 1, 0),
        lambda: Wallet(client, key[:-1]),
        lambda: Wallet(client, key + "0"),
    ):
        with pytest.raises(LedgerError) as caught:
            call()
        raised.append(caught.value)
    shown = [repr(alice), str(alice), repr(platform), str(platform)]
    shown += [f"{e!s} {e!r} {e.detail}" for e in raised]
    for text in shown:
        for form in (key, key[2:], key[2:].upper(), key[2:18], key[-16:]):
            assert form not in text
    assert repr(platform) == f"Deployer(address={platform.address})"


def test_a_node_that_never_answers_times_out_as_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        client = ChainClient(f"http://127.0.0.1:{port}", timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            client.head()
        assert 0.3 <= time.monotonic() - started < 2.0
    assert caught.value.code == "chain_unavailable"
    assert "Timeout" in caught.value.message


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [
        ("0x" + keccak(text="ZeroPledge()")[:4].hex(), "zero_pledge", {}),
        (
            "0x" + keccak(text="Error(string)")[:4].hex() + encode(["string"], ["no"]).hex(),
            "contract_reverted",
            {"reason": "no"},
        ),
        (
            "0x" + keccak(text="Panic(uint256)")[:4].hex() + encode(["uint256"], [0x11]).hex(),
            "contract_panicked",
            {"panic_code": "0x11"},
        ),
        ("0xdeadbeef", "contract_reverted", {"selector": "0xdeadbeef"}),
        (None, "contract_reverted", {}),
        ({"data": "0x" + keccak(text="AlreadyFinalized()")[:4].hex()}, "already_finalized", {}),
    ],
)
def test_every_kind_of_revert_is_refused(data: Any, code: str, detail: dict[str, str]) -> None:
    refused = refusal(ContractLogicError("execution reverted", data=data), "pledge")
    assert (refused.code, refused.detail) == (code, detail)


def test_a_malformed_log_is_the_nodes_fault() -> None:
    pledged = ESCROW_EVENT_TOPICS[0]
    log = {
        "address": "0x" + "11" * 20,
        "topics": [pledged, "0x" + "00" * 32],
        "data": "0x" + "00" * 32,  # one word where Pledged carries two
        "blockNumber": "0x5",
        "blockHash": "0x" + "22" * 32,
        "transactionHash": "0x" + "33" * 32,
        "logIndex": "0x0",
    }
    with pytest.raises(Unavailable) as caught:
        decode_escrow_log(log)
    assert caught.value.code == "chain_unavailable"
    assert decode_escrow_log({**log, "data": "0x" + "00" * 31 + "07" + "00" * 31 + "09"}) == (
        EscrowLog(
            "pledged",
            "0x" + "11" * 20,
            "0x" + "00" * 20,
            7,
            9,
            5,
            "0x" + "22" * 32,
            "0x" + "33" * 32,
            0,
        )
    )
    assert decode_escrow_log({**log, "topics": ["0x" + "44" * 32]}) is None
