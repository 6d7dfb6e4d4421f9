"""Projects over a chain, through the real app: opening deploys the project's escrow on the
in-process EVM, wallets pledge to it, the app's chain follower (driven here round by
round) mirrors the pledges, and finalizing issues the units by the largest remainder.
Also: the refusals of the chain's boundary as problem+json, and ``/readyz`` while the
node does not answer or the mirror has halted. Both databases."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.chain import ChainClient, Wallet
from ledger.chain.follower import ChainFollower, FollowerStatus
from ledger.chain.gateway import ChainConfig, FundingChain
from ledger.core import with_check_character
from ledger.core.accounts import member_holder
from ledger.core.errors import Refused
from ledger.journal.write import Ledger
from ledger.registry.members import register_member
from tests.chain.evm import Chain

from . import signin
from .signin import MovableClock, sign_in

ETHER = 10**18
ADMIN, NORTH = signin.wallet(61), signin.wallet(62)
ASSET = with_check_character("1M8GDM9A0KP052788")
OTHER_ASSET = with_check_character("1M8GDM9A0KP052789")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def module_chain() -> Chain:
    return Chain()


@pytest.fixture
def chain(module_chain: Chain) -> Iterator[Chain]:
    """The module's chain, every change undone after the test."""
    snapshot = module_chain.snapshot()
    yield module_chain
    module_chain.revert_to(snapshot)


@pytest.fixture
def keys(chain: Chain) -> list[str]:
    return [key.to_hex() for key in chain.tester.backend.account_keys]


class World:
    """The app over a chain, a finance node and the project's organizer (a chain
    account: the escrow pays it)."""

    def __init__(self, app: FastAPI, client: TestClient, organizer: str) -> None:
        self.app = app
        self.client = client
        self.organizer = organizer
        ledger: Ledger = app.state.ledger
        register_member(ledger, NORTH.address, "finance_node", "North", key="m1", actor="test")
        register_member(ledger, organizer, "individual", "Olga", key="m2", actor="test")
        self.admin = sign_in(client, ADMIN)
        self.north = sign_in(client, NORTH)
        self.keys = 0

    def post(self, path: str, body: Any = None) -> Any:
        self.keys += 1
        headers = self.north | {"Idempotency-Key": f"k{self.keys}"}
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, who: dict[str, str] | None = None) -> Any:
        answer = self.client.get(path, headers=who or {})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def listed(self, **changes: Any) -> int:
        body = {
            "title": "Solar roof for the mill",
            "description": "Panels and an inverter.",
            "organizer": self.organizer,
            "asset_id": ASSET,
            "jurisdiction": "DE-BY",
            "currency": "ETH",
            "goal_minor": str(3 * ETHER),
            "min_pledge_minor": str(ETHER // 100),
            "organizer_contribution_minor": str(3 * ETHER // 5),  # the organizer's own 20 %
            "deadline": "2027-03-01T12:00:00Z",
        } | changes
        made = self.post("/v1/projects", body)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])


@pytest.fixture
def world(engine: Engine, chain: Chain, keys: list[str]) -> Iterator[World]:
    ledger = Ledger(engine, clock=MovableClock())
    config = ChainConfig(rpc_url="eth-tester", deployer_key=keys[0], confirmations=0)
    funding = FundingChain(ledger, config, client=ChainClient(web3=chain.w3))
    app = create_app(
        Settings(admins=frozenset({ADMIN.address})), funding_chain=funding, start_follower=False
    )
    with TestClient(app) as client:
        yield World(app, client, chain.accounts[1])


def follow(app: FastAPI) -> None:
    """Rounds of the app's own follower until it has caught up with the chain."""
    follower: ChainFollower = app.state.chain_follower
    for _ in range(10):
        result = follower.round()
        assert result is not None  # it holds the lease: no other follower runs
        if result.caught_up:
            return
    raise AssertionError("the follower did not catch up in 10 rounds")


def test_pledges_on_chain_fund_the_project_and_issue_its_units(
    world: World, chain: Chain, keys: list[str]
) -> None:
    project_id = world.listed()
    ready = world.get("/readyz")
    assert ready["chain"]["state"] == "starting"  # not one round yet

    opened = world.post(f"/v1/projects/{project_id}/open")
    assert opened.status_code == 200, opened.text
    project = opened.json()
    escrow_goal = 3 * ETHER - 3 * ETHER // 5
    assert project["state"] == "open" and project["escrow_address"] is not None
    assert project["chain_id"] == chain.w3.eth.chain_id
    assert project["escrow_goal_minor"] == str(escrow_goal)
    escrow = world.get(f"/v1/projects/{project_id}/escrow")  # public: no sign-in
    assert (escrow["address"], escrow["chain_id"]) == (
        project["escrow_address"],
        project["chain_id"],
    )
    assert escrow["contract"] == "EthPledgeEscrow" and escrow["goal_minor"] == str(escrow_goal)
    functions = {e["name"] for e in escrow["abi"] if e["type"] == "function"}
    assert {"pledge", "withdraw", "finalize", "reclaim", "totalPledged"} <= functions
    address = escrow["address"]

    # Pledges straight to the escrow, from three wallets, in wei that do not divide evenly.
    client = ChainClient(web3=chain.w3)
    pledgers = [Wallet(client, keys[i]) for i in (2, 3, 4)]
    amounts = [ETHER + 1, 7 * ETHER // 10 + 1, 7 * ETHER // 10 - 2]
    assert sum(amounts) == escrow_goal
    with pytest.raises(Refused) as below:  # the contract's own minimum, named
        pledgers[0].pledge_eth(address, ETHER // 100 - 1)
    assert below.value.code == "pledge_below_minimum"
    for wallet, amount in zip(pledgers, amounts, strict=True):
        wallet.pledge_eth(address, amount)

    seen = world.get(f"/v1/projects/{project_id}")
    # The escrow is read live; the ledger counts a pledge once the follower mirrors it.
    assert seen["onchain_total_minor"] == str(escrow_goal)
    assert (seen["pledged_total_minor"], seen["pledgers"]) == ("0", 0)
    follow(world.app)
    seen = world.get(f"/v1/projects/{project_id}")
    assert seen["pledged_total_minor"] == seen["onchain_total_minor"] == str(escrow_goal)
    assert seen["ledger_total_minor"] == str(3 * ETHER) and seen["pledgers"] == 3
    assert seen["state"] == "open"  # the goal is met, but nobody has finalized yet
    pledges = world.get(f"/v1/projects/{project_id}/pledges", world.north)
    assert [(c["contributor"], c["chain_minor"]) for c in pledges["contributions"]] == [
        (w.address, str(a)) for w, a in zip(pledgers, amounts, strict=True)
    ]
    reconciled = world.get(f"/v1/projects/{project_id}/reconciliation", world.north)
    assert reconciled["chain_id"] == project["chain_id"]
    assert reconciled["lines"] == [
        {
            "project_id": project_id,
            "escrow": address,
            "ledger_total_minor": str(escrow_goal),
            "contract_total_minor": str(escrow_goal),
            "difference_minor": "0",
            "pledger_differences": [],
        }
    ]
    assert world.get("/v1/reconciliation", world.admin)["lines"] == reconciled["lines"]
    ready = world.get("/readyz")["chain"]
    assert ready["state"] == "following" and ready["lag_blocks"] == 0
    assert ready["cursor"] == ready["head"] == chain.w3.eth.block_number

    Wallet(client, keys[9]).finalize(address)  # anyone may, once the goal is reached
    follow(world.app)
    assert world.get(f"/v1/projects/{project_id}")["state"] == "forwarded"
    cap = world.get(f"/v1/assets/{ASSET}/cap-table")
    units = {h["holder"]: int(h["units"]) for h in cap["holders"]}
    # 600,000,000,000,000,000 : 10**18 + 1 : 7 * 10**17 + 1 : 7 * 10**17 - 2 of 3 ether.
    # Rounded down they leave one unit over; the first two pledges tie for the largest
    # remainder, and the earlier pledge takes it.
    assert units == {
        member_holder(world.organizer): 200_000,
        member_holder(pledgers[0].address): 333_334,
        member_holder(pledgers[1].address): 233_333,
        member_holder(pledgers[2].address): 233_333,
    }
    assert sum(units.values()) == 1_000_000

    # A pledger signs in with the wallet it pledged from and finds its pledge.
    pledger = sign_in(world.client, signin.Wallet(pledgers[0].address, bytes.fromhex(keys[2][2:])))
    mine = world.get("/v1/me/pledges", pledger)["items"]
    assert [(p["project_id"], p["state"], p["chain_minor"]) for p in mine] == [
        (project_id, "forwarded", str(ETHER + 1))
    ]


def test_the_chain_boundary_refuses_as_problems(world: World) -> None:
    eur = world.listed(
        currency="EUR", goal_minor="300000", min_pledge_minor="100", organizer_contribution_minor=0
    )
    before = world.get("/v1/digest")
    refused = world.post(f"/v1/projects/{eur}/open")
    assert refused.status_code == 422 and refused.json()["code"] == "currency_not_on_chain"
    assert world.get("/v1/digest") == before
    assert world.get(f"/v1/projects/{eur}")["state"] == "draft"
    problem = world.client.get(f"/v1/projects/{eur}/escrow")
    assert problem.status_code == 404 and problem.json()["code"] == "no_escrow"
    assert world.get(f"/v1/projects/{eur}/reconciliation", world.admin)["lines"] == []


def test_the_escrows_own_refusals_come_back_as_problems(world: World, chain: Chain) -> None:
    """A contract's custom error, decoded at the chain boundary, is a problem with its
    code (and its arguments): asked before paying gas (pledge-check), or when the
    platform finalizes under the goal. Nothing is written, nothing is sent."""
    project_id = world.listed()
    opened = world.post(f"/v1/projects/{project_id}/open")
    assert opened.status_code == 200, opened.text
    draft = world.listed(asset_id=OTHER_ASSET)
    pledger = chain.accounts[3]
    check = f"/v1/projects/{project_id}/pledge-check"
    before, head = world.get("/v1/digest"), chain.w3.eth.block_number

    def asked(amount: str, who: str = pledger) -> Any:
        return world.client.get(check, params={"pledger": who, "amount_minor": amount})

    low = asked(str(ETHER // 100 - 1))
    assert low.status_code == 422 and low.headers["content-type"] == PROBLEM
    assert low.json()["code"] == "pledge_below_minimum"
    assert low.json()["minimum"] == str(ETHER // 100)
    ok = asked(str(ETHER // 100))
    assert ok.status_code == 200 and ok.json()["accepted"] is True
    for amount, code in (
        ("1e18", "amount_malformed"),
        ("-5", "amount_malformed"),
        ("0", "amount_not_positive"),
    ):
        bad = asked(amount)
        assert (bad.status_code, bad.json()["code"]) == (422, code), bad.text
    assert asked("1", "0xabc").json()["code"] == "address_malformed"
    under = world.post(f"/v1/projects/{project_id}/finalize")
    assert under.status_code == 422 and under.json()["code"] == "goal_not_reached"
    assert (under.json()["total"], under.json()["goal"]) == ("0", str(3 * ETHER - 3 * ETHER // 5))
    assert (world.get("/v1/digest"), chain.w3.eth.block_number) == (before, head)
    chain.mine_at(int(datetime(2027, 3, 1, 12, 0, tzinfo=UTC).timestamp()))
    late = asked(str(ETHER))
    assert late.status_code == 422 and late.json()["code"] == "pledge_after_deadline"
    missing = world.client.get(
        f"/v1/projects/{draft}/pledge-check", params={"pledger": pledger, "amount_minor": "1"}
    )
    assert missing.status_code == 404 and missing.json()["code"] == "no_escrow"
    assert world.get("/v1/digest") == before


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("deployer", "status", "code"),
    [("11" * 32, 503, "chain_unavailable"), (None, 422, "chain_read_only")],
    ids=["deployer", "read-only"],
)
def test_a_silent_node_keeps_the_ledger_serving(
    engine: Engine, deployer: str | None, status: int, code: str
) -> None:
    # The chain named by the settings, as a server has it, at a port nothing listens on;
    # the follower runs in its thread from startup.
    config = ChainConfig(rpc_url=f"http://127.0.0.1:{_closed_port()}", deployer_key=deployer)
    settings = Settings(admins=frozenset({ADMIN.address}), funding_chain=config)
    app = create_app(settings, engine=engine, clock=MovableClock())
    with TestClient(app) as client:
        world = World(app, client, signin.wallet(63).address)
        project_id = world.listed()
        follower: ChainFollower = app.state.chain_follower
        waited_until = time.monotonic() + 5.0  # its first round fails at once: refused
        while follower.status().state != "waiting":
            assert time.monotonic() < waited_until, follower.status()
            time.sleep(0.02)
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        chain = ready.json()["chain"]
        assert chain["state"] == "waiting" and chain["retry_in_s"] > 0
        assert chain["last_error"] and chain["cursor"] is None
        before = world.get("/v1/digest")
        refused = world.post(f"/v1/projects/{project_id}/open")
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"] == PROBLEM and refused.json()["code"] == code
        assert world.get("/v1/digest") == before
        assert world.get(f"/v1/projects/{project_id}")["state"] == "draft"
        problem = client.get("/v1/reconciliation", headers=world.admin)
        assert problem.status_code == 503 and problem.json()["code"] == "chain_unavailable"
    assert follower.status().state == "stopped"  # shutdown stopped its thread


class _Halted:
    """A follower as one is after the ledger refused a batch: a person must look."""

    def status(self) -> FollowerStatus:
        return FollowerStatus("halted", chain_id=31337, head=9, cursor=7, last_error="x: y")


def test_a_halted_mirror_takes_the_service_out_of_rotation(world: World) -> None:
    cast(Any, world.app.state).chain_follower = _Halted()
    ready = world.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "chain_mirror_halted"
    assert ready.json()["chain"] == {
        "state": "halted",
        "chain_id": 31337,
        "head": 9,
        "cursor": 7,
        "lag_blocks": 2,
        "confirmations": 0,
        "last_error": "x: y",
        "retry_in_s": None,
    }
    assert world.client.get("/v1/projects").status_code == 200  # reads still serve


def test_the_deadline_passed_on_the_ledger_clock_deploys_nothing(
    world: World, chain: Chain
) -> None:
    project_id = world.listed()
    clock = cast(MovableClock, world.app.state.ledger.clock)
    clock.advance(timedelta(days=90).total_seconds())
    world.north = sign_in(world.client, NORTH)  # the first token has expired meanwhile
    block = chain.w3.eth.block_number
    refused = world.post(f"/v1/projects/{project_id}/open")
    assert refused.status_code == 422 and refused.json()["code"] == "deadline_passed"
    assert chain.w3.eth.block_number == block  # no factory, no escrow
