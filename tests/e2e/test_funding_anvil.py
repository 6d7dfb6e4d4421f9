"""Funding against a real node through the real HTTP server: anvil, and ``dpn serve`` in
its own process following anvil's chain with two confirmations (``funding_world``).

- Every on-chain pledge, withdrawal and the finalize show in ``onchain_total_minor`` at
  once and in the ledger's ``pledged_total_minor`` only once two more blocks are mined;
  the units are then issued by the largest remainder, as computed here independently.
- A reorganisation that drops already-mirrored pledges is undone by new entries (the
  journal only grows), and the same transaction mined again is recorded again.
- The chain's own refusals over HTTP change neither the journal nor the chain.
- What the chain cannot undo, the ledger follows: a project whose escrow is on-chain
  cannot be cancelled; an escrow whose deployment a reorganisation drops is detached by
  an entry and the project opened again with a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from ledger.core import with_check_character
from ledger.core.accounts import member_holder

from .funding_world import CONFIRMATIONS, OLGA, FundingWorld, funding_world

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
UNITS = 1_000_000
# A goal whose fifth (the organizer's) is whole, so her 20 % is exactly 200,000 units.
GOAL = 5 * 1_234_567_890_123_456_789
ESCROW_GOAL = GOAL - GOAL // 5
# The pledges, in wei: none of their shares of 1,000,000 units is whole. B pledges,
# withdraws and pledges again as much as C; B and C then tie for one of the two units
# left over by rounding down, and B's first pledge came before C's.
A = 1_357_913_579_135_791_357
B_FIRST = 700_000_000_000_000_007
B_AGAIN = C = 1_188_923_384_270_674_083
D = ESCROW_GOAL - A - B_AGAIN - C  # meets the escrow's goal exactly


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FundingWorld]:
    """One node and one server for the module (starting a server costs seconds of
    imports): each test lists its own projects and assets, and the reorganisation test
    replaces only blocks it mined itself."""
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        funding_world(tmp_path_factory.mktemp("funding"), monkeypatch) as made,
    ):
        yield made


@pytest.fixture(autouse=True)
def _mirror_following(world: FundingWorld) -> None:
    """Each test starts with the mirror following, whatever the one before left."""
    assert world.mirror()["state"] in ("starting", "following"), world.output()


def problem(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == code, answer.text


def largest_remainder(total: int, claims: list[tuple[str, int]]) -> dict[str, int]:
    """Written here, not imported: each claim's floor of ``total * weight / sum``, then one
    unit each to the largest remainders, ties to the claim listed first."""
    weights = sum(w for _, w in claims)
    shares = {who: total * w // weights for who, w in claims}
    by_remainder = sorted(range(len(claims)), key=lambda i: (-(total * claims[i][1] % weights), i))
    for i in by_remainder[: total - sum(shares.values())]:
        shares[claims[i][0]] += 1
    return shares


def confirmed(
    world: FundingWorld, project_id: int, block: int, was: int, now: int, *, one_short: bool
) -> Any:
    """After an escrow event mined in ``block`` took the total from ``was`` to ``now``:
    the escrow shows it at once, the ledger not before ``CONFIRMATIONS`` more blocks (with
    ``one_short``, also not after a follower's round that saw one block fewer), then
    within the follower's poll. The project as the ledger then has it."""
    seen = world.project(project_id)
    assert (seen["onchain_total_minor"], seen["pledged_total_minor"]) == (str(now), str(was))
    if one_short:
        world.anvil.mine(CONFIRMATIONS - 1)
        status = world.follower_saw(block + CONFIRMATIONS - 1)
        assert status["cursor"] == block - 1, status
        assert world.project(project_id)["pledged_total_minor"] == str(was)
        world.anvil.mine(1)
    else:
        world.anvil.mine(CONFIRMATIONS)
    return world.mirrored(project_id, now)


# -- 1. the network's example, on chain --------------------------------------------------


def test_totals_follow_the_confirmations_and_the_units_are_issued_exactly(
    world: FundingWorld,
) -> None:
    asset = with_check_character("1M8GDM9A0KP072788")
    opened = world.opened(world.terms(asset, GOAL))
    project_id = opened["id"]
    assert opened["state"] == "open" and opened["escrow_goal_minor"] == str(ESCROW_GOAL)
    assert opened["ledger_total_minor"] == str(GOAL // 5)  # the organizer's own 20 %
    escrow = world.escrow(project_id)
    assert escrow.address == opened["escrow_address"]
    assert opened["chain_id"] == world.w3.eth.chain_id
    assert escrow.functions.goal().call() == ESCROW_GOAL

    a, b, c, d = (world.wallet(n) for n in (1, 2, 3, 4))
    total, pledgers = 0, 0

    def step(block: int, change: int, count: int, *, one_short: bool = False) -> None:
        nonlocal total, pledgers
        seen = confirmed(world, project_id, block, total, total + change, one_short=one_short)
        total, pledgers = total + change, count
        assert seen["pledgers"] == pledgers, seen
        assert world.total_pledged(escrow) == int(seen["onchain_total_minor"]) == total

    # A pledges as a wallet does: web3 builds the call from the ABI the API serves.
    step(world.send_raw(world.signed_pledge(escrow, 1, A))["blockNumber"], A, 1, one_short=True)
    step(b.pledge_eth(escrow.address, B_FIRST)["blockNumber"], B_FIRST, 2)
    step(c.pledge_eth(escrow.address, C)["blockNumber"], C, 3)
    step(b.withdraw(escrow.address)["blockNumber"], -B_FIRST, 2, one_short=True)
    step(b.pledge_eth(escrow.address, B_AGAIN)["blockNumber"], B_AGAIN, 3)
    step(d.pledge_eth(escrow.address, D)["blockNumber"], D, 4)
    assert total == ESCROW_GOAL and world.project(project_id)["state"] == "open"

    pledges = world.get(f"/v1/projects/{project_id}/pledges", world.north)
    assert [(p["contributor"], p["chain_minor"]) for p in pledges["contributions"]] == [
        (a.address, str(A)),
        (b.address, str(B_AGAIN)),
        (c.address, str(C)),
        (d.address, str(D)),
    ]
    reconciled = world.get("/v1/reconciliation", world.admin)
    assert reconciled["chain_id"] == world.w3.eth.chain_id
    assert [
        (line["project_id"], line["difference_minor"], line["pledger_differences"])
        for line in reconciled["lines"]
    ] == [(project_id, "0", [])]

    # Anyone may finalize once the goal is met; the ledger issues once it is confirmed.
    block = world.wallet(5).finalize(escrow.address)["blockNumber"]
    world.anvil.mine(CONFIRMATIONS - 1)
    world.follower_saw(block + CONFIRMATIONS - 1)
    assert world.project(project_id)["state"] == "open"
    world.anvil.mine(1)
    world.until(
        "the project forwarded",
        lambda: True if world.project(project_id)["state"] == "forwarded" else None,
    )
    status = world.mirror()
    assert status["cursor"] >= block and status["last_error"] is None, status

    cap = world.get(f"/v1/assets/{asset}/cap-table")
    units = {h["holder"]: int(h["units"]) for h in cap["holders"]}
    # The organizer's contribution counts as the earliest; then each pledger by its first
    # Pledged event (B's withdrawn first pledge still came before C's), each weighing what
    # it finally has in the escrow.
    claims = [
        (OLGA.address, GOAL // 5),
        (a.address, A),
        (b.address, B_AGAIN),
        (c.address, C),
        (d.address, D),
    ]
    expected = largest_remainder(UNITS, claims)
    assert all(UNITS * w % GOAL for _, w in claims[1:])  # no pledger's share is whole
    assert expected[b.address] == expected[c.address] + 1  # the tie, to the earlier
    assert units == {member_holder(who): n for who, n in expected.items()}
    assert sum(units.values()) == cap["total_units"] == UNITS

    final = world.project(project_id)
    assert final["pledged_total_minor"] == final["onchain_total_minor"] == str(ESCROW_GOAL)
    assert final["ledger_total_minor"] == str(GOAL)
    assert world.w3.eth.get_balance(escrow.address) == 0  # the funds went to the organizer
    reconciled = world.get("/v1/reconciliation", world.north)  # a finance node may too
    assert [line["difference_minor"] for line in reconciled["lines"]] == ["0"]
    status = world.follower_saw(world.anvil.block_number())
    assert status["cursor"] == status["head"] - CONFIRMATIONS and status["lag_blocks"] == 0
    assert world.get("/v1/verify", world.admin)["ok"] is True


# -- 2. a reorganisation below the confirmations -----------------------------------------


def test_a_reorganisation_undoes_mirrored_pledges_by_new_entries(world: FundingWorld) -> None:
    asset = with_check_character("1M8GDM9A0KP072789")
    project_id = world.opened(world.terms(asset, 10 * 10**18))["id"]
    escrow = world.escrow(project_id)
    amount_a, amount_b = 1_234_567_890_123_456_789, 987_654_321_987_654_321
    a, b = world.wallet(1), world.wallet(2)

    raw_a = world.signed_pledge(escrow, 1, amount_a)
    first_block = world.send_raw(raw_a)["blockNumber"]
    b.pledge_eth(escrow.address, amount_b)
    world.anvil.mine(CONFIRMATIONS)
    seen = world.mirrored(project_id, amount_a + amount_b)
    assert seen["pledgers"] == 2
    before = world.digest()
    pledged = world.get("/v1/journal", limit=2)["items"]
    assert [e["kind"] for e in pledged] == ["chain.pledge", "chain.pledge"]

    # Every block from A's pledge on is replaced; only A's signed pledge is mined again
    # (in the first new block), B's is gone.
    head = world.anvil.block_number()
    world.anvil.reorg(head - first_block + 1, [(Web3.to_hex(raw_a), 0)])
    assert world.anvil.block_number() == head
    assert world.total_pledged(escrow) == amount_a and world.pledge_of(escrow, b.address) == 0

    seen = world.mirrored(project_id, amount_a)
    assert seen["pledgers"] == 1
    pledges = world.get(f"/v1/projects/{project_id}/pledges", world.north)
    assert [(p["contributor"], p["chain_minor"]) for p in pledges["contributions"]] == [
        (a.address, str(amount_a))
    ]
    after = world.digest()
    assert after["seq"] == before["seq"] + 3  # two undone, one recorded again: it only grew
    newest = world.get("/v1/journal", limit=3)["items"]
    assert [e["kind"] for e in newest] == ["chain.pledge", "chain.undo", "chain.undo"]
    assert {e["payload"]["undoes"] for e in newest[1:]} == {e["seq"] for e in pledged}
    again = newest[0]["payload"]
    (first,) = [e["payload"] for e in pledged if e["payload"]["amount"] == amount_a]
    assert again["tx_hash"] == first["tx_hash"]  # the same transaction...
    assert again["block_hash"] != first["block_hash"]  # ...in another block
    status = world.mirror()
    assert status["state"] == "following" and status["last_error"] is None
    lines = world.get(f"/v1/projects/{project_id}/reconciliation", world.admin)["lines"]
    assert [(line["difference_minor"], line["pledger_differences"]) for line in lines] == [
        ("0", [])
    ]

    # A reorganisation within the confirmations: the ledger never saw the pledge it drops.
    block = b.pledge_eth(escrow.address, amount_b)["blockNumber"]
    world.anvil.reorg(1, [])
    assert world.total_pledged(escrow) == amount_a
    world.anvil.mine(CONFIRMATIONS)
    world.until(
        "the follower past the dropped block",
        lambda: True if (world.mirror()["cursor"] or 0) >= block else None,
    )
    assert world.digest() == after
    assert world.project(project_id)["pledged_total_minor"] == str(amount_a)
    assert world.get("/v1/verify", world.admin)["ok"] is True


# -- 3. the chain's refusals over HTTP ---------------------------------------------------


def test_the_chain_refusals_change_neither_the_journal_nor_the_chain(world: FundingWorld) -> None:
    assets = [with_check_character(f"1M8GDM9A0KP07279{n}") for n in range(3)]
    opened = world.opened(world.terms(assets[0], 10**18, manual_pledges_allowed=True))
    in_euro = {"currency": "EUR", "min_pledge_minor": "100", "manual_pledges_allowed": True}
    eur = world.listed(world.terms(assets[1], 3_000_000, **in_euro))
    others = world.listed(world.terms(assets[2], 10**18))
    world.anvil.mine(CONFIRMATIONS)  # the escrow's creation mirrored: the mirror is idle
    assert world.follower_saw(world.anvil.block_number())["lag_blocks"] == 0
    before, block = world.digest(), world.anvil.block_number()

    # Only ether goes on chain: an EUR project takes manual pledges, and no escrow.
    problem(world.post(f"/v1/projects/{eur}/open", world.north), 422, "currency_not_on_chain")
    # Another finance node's project: refused before anything is deployed.
    problem(world.post(f"/v1/projects/{others}/open", world.river), 403, "not_listing_node")
    # Opened already: no second escrow.
    problem(world.post(f"/v1/projects/{opened['id']}/open", world.north), 422, "project_state")
    # Once the escrow exists, pledges go to it: the listing node records none by hand.
    pledge = {
        "contributor": OLGA.address,
        "amount_minor": str(10**15),
        "evidence_sha256": "ab" * 32,
    }
    path = f"/v1/projects/{opened['id']}/manual-pledges"
    problem(world.post(path, world.north, pledge), 422, "manual_pledge_after_escrow")
    # The escrow's reads are for projects that have one.
    problem(world.client.get(f"/v1/projects/{eur}/escrow"), 404, "no_escrow")

    assert world.digest() == before
    assert world.anvil.block_number() == block  # nothing was sent to the chain
    assert world.project(eur)["state"] == world.project(others)["state"] == "draft"
    assert world.project(eur)["escrow_address"] is None
    assert world.get("/v1/verify", world.admin)["ok"] is True


# -- 4. and 5.: what the chain cannot undo, the ledger follows ----------------------------


def test_a_project_whose_escrow_is_on_chain_cannot_be_cancelled(world: FundingWorld) -> None:
    """Nothing stops an escrow; cancelling its project would leave pledges that can still
    be finalized with no units to issue. The ledger refuses, and follows the contract."""
    opened = world.opened(world.terms(with_check_character("1M8GDM9A0KP072795"), 10**18))
    project_id = opened["id"]
    before = world.digest()
    refused = world.post(f"/v1/projects/{project_id}/cancel", world.north)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "escrow_deployed"
    assert world.digest() == before
    assert world.project(project_id)["state"] == "open"


def test_an_escrow_dropped_by_a_reorganisation_is_detached_and_deployed_again(
    world: FundingWorld,
) -> None:
    """Last in the module: it moves the factory's nonce back. An opening attaches its
    escrow at once; a reorganisation that drops the deployment is found by the mirror
    (the factory never announced it, and the address has no code), the escrow is detached
    by an entry, reads and the reconciliation keep answering, opening again deploys a new
    one, and the next project's escrow at the address the factory reuses is no clash."""
    head = world.anvil.block_number()
    dropped = world.opened(world.terms(with_check_character("1M8GDM9A0KP072796"), 10**18))
    project_id = dropped["id"]
    address = Web3.to_checksum_address(dropped["escrow_address"])
    world.anvil.reorg(world.anvil.block_number() - head, [])  # the opening's blocks, gone
    assert world.w3.eth.get_code(address) == b""
    read = world.client.get(f"/v1/projects/{project_id}")
    assert read.status_code == 200 and read.json()["onchain_total_minor"] is None
    reconciled = world.client.get("/v1/reconciliation", headers=world.admin)
    assert reconciled.status_code == 200, reconciled.text
    world.anvil.mine(CONFIRMATIONS + 1)
    world.until(
        "the dropped escrow detached",
        lambda: True if world.project(project_id)["escrow_address"] is None else None,
    )
    assert world.project(project_id)["state"] == "open"
    missing = world.client.get(f"/v1/projects/{project_id}/escrow")
    assert missing.status_code == 404 and _code(missing) == "no_escrow"

    # The factory's next escrow lands on the dropped one's address: no clash.
    after = world.opened(world.terms(with_check_character("1M8GDM9A0KP072797"), 10**18))
    assert Web3.to_checksum_address(after["escrow_address"]) == address
    # Opening the first again deploys it a new escrow.
    again = world.post(f"/v1/projects/{project_id}/open", world.north)
    assert again.status_code == 200, again.text
    renewed = again.json()["escrow_address"]
    assert renewed is not None and renewed != address
    assert world.w3.eth.get_code(Web3.to_checksum_address(renewed)) != b""
    world.anvil.mine(CONFIRMATIONS + 1)
    status = world.follower_saw(world.anvil.block_number())
    assert status["last_error"] is None
    assert world.get("/v1/verify", world.admin)["ok"] is True


def _code(answer: Any) -> str:
    return str(answer.json().get("code")) if answer.headers["content-type"] == PROBLEM else ""


def _logged(world: FundingWorld, text: str) -> str:
    """The server log's first line containing ``text``."""
    full = world.log.read_text(errors="replace")
    return next((line.strip() for line in full.splitlines() if text in line), "nothing")
