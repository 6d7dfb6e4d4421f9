"""A funding world over a real node, for ``test_funding_anvil.py``: anvil, a SQLite file
migrated (as ``dpn db upgrade`` does) and holding the members no route registers (finance
nodes, the organizer), ``dpn serve`` following anvil's chain in its own process, and the
calls the API's users and a pledging wallet make.

The server is ``bench.http.server.running_server`` (a free loopback port, its own process
group, ready once ``/readyz`` answers 200, always stopped); the chain settings reach it
through the environment it inherits, as a deployment's would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt, Wei

from bench.http.server import running_server
from ledger.chain import ChainClient, Wallet
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.journal.write import Ledger
from ledger.registry.members import register_member
from tests.anvil import Anvil, running_anvil

from .signin import sign_in, wallet

__all__ = [
    "ADMIN",
    "CONFIRMATIONS",
    "NORTH",
    "OLGA",
    "RIVER",
    "FundingWorld",
    "funding_world",
]

ADMIN, NORTH, RIVER, OLGA = wallet(71), wallet(72), wallet(73), wallet(74)
CONFIRMATIONS = 2
MIRROR_TIMEOUT_S = 10.0  # the follower polls every second once caught up
POLL_S = 0.05
HTTP_TIMEOUT_S = 30.0
T = TypeVar("T")


class FundingWorld:
    """The server over anvil, its users signed in (an admin, two finance nodes), and
    anvil's funded dev wallets."""

    def __init__(self, anvil: Anvil, client: httpx.Client, log: Path) -> None:
        self.anvil = anvil
        self.client = client
        self.log = log
        self.w3 = Web3(Web3.HTTPProvider(anvil.url))
        self.chain = ChainClient(anvil.url)
        self.admin = sign_in(client, ADMIN)
        self.north = sign_in(client, NORTH)
        self.river = sign_in(client, RIVER)
        self._keys = 0

    # -- the API ----------------------------------------------------------------------

    def output(self) -> str:
        """The server's last lines, for a failure's message."""
        return self.log.read_text(errors="replace")[-3000:]

    def post(self, path: str, who: dict[str, str] | None, body: Any = None) -> httpx.Response:
        """``POST path`` as ``who``, under a fresh Idempotency-Key."""
        self._keys += 1
        return self.client.post(
            path, json=body, headers=(who or {}) | {"Idempotency-Key": f"k{self._keys}"}
        )

    def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> Any:
        """``GET path``'s JSON; it must answer 200."""
        answer = self.client.get(path, headers=who or {}, params=params)
        assert answer.status_code == 200, f"{path}: {answer.text}\n{self.output()}"
        return answer.json()

    def project(self, project_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/projects/{project_id}")
        return found

    def digest(self) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/digest")
        return found

    def mirror(self) -> dict[str, Any]:
        """``/readyz``'s ``chain``: the mirror's state, head, cursor and lag."""
        found: dict[str, Any] = self.get("/readyz")["chain"]
        return found

    @staticmethod
    def terms(asset_id: str, goal_minor: int, **changes: Any) -> dict[str, Any]:
        """An ETH project's terms: the organizer puts in a fifth of the goal herself."""
        deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        return {
            "title": "A greenhouse for the valley",
            "description": "Glass, heat and a watering line; the organizer operates it.",
            "organizer": OLGA.address,
            "asset_id": asset_id,
            "jurisdiction": "NL",
            "currency": "ETH",
            "goal_minor": str(goal_minor),
            "min_pledge_minor": str(10**15),
            "organizer_contribution_minor": str(goal_minor // 5),
            "deadline": deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "total_units": 1_000_000,
        } | changes

    def listed(self, body: dict[str, Any]) -> int:
        """A draft project listed by NORTH."""
        made = self.post("/v1/projects", self.north, body)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def opened(self, body: dict[str, Any]) -> dict[str, Any]:
        """A project listed and opened by NORTH: its escrow is deployed on anvil."""
        project_id = self.listed(body)
        opened = self.post(f"/v1/projects/{project_id}/open", self.north)
        assert opened.status_code == 200, f"{opened.text}\n{self.output()}"
        project: dict[str, Any] = opened.json()
        return project

    # -- waiting for the mirror -------------------------------------------------------

    def until(
        self, what: str, probe: Callable[[], T | None], seen: Callable[[], object] = str
    ) -> T:
        """``probe()``'s first answer that is not None, polled for up to
        ``MIRROR_TIMEOUT_S``; fails naming ``what``, what ``seen()`` says was last seen,
        the mirror's status and the server's output."""
        deadline = time.monotonic() + MIRROR_TIMEOUT_S
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what}: not within {MIRROR_TIMEOUT_S} s; last seen {seen()}; "
                    f"mirror {self.mirror()}\n{self.output()}"
                )
            time.sleep(POLL_S)

    def mirrored(self, project_id: int, total_minor: int) -> dict[str, Any]:
        """The project once the ledger's mirrored total is ``total_minor`` and equals the
        escrow's own total read by the server."""
        last: dict[str, Any] = {}
        shown = ("pledged_total_minor", "onchain_total_minor", "pledgers", "state")

        def probe() -> dict[str, Any] | None:
            last.update(self.project(project_id))
            totals = {last["pledged_total_minor"], last["onchain_total_minor"]}
            return dict(last) if totals == {str(total_minor)} else None

        return self.until(
            f"project {project_id} mirrored at {total_minor}",
            probe,
            lambda: {k: last.get(k) for k in shown},
        )

    def follower_saw(self, head: int) -> dict[str, Any]:
        """The mirror's status once a round of the follower has run with the chain's head
        at ``head`` or beyond (the status is set at the end of a round)."""

        def probe() -> dict[str, Any] | None:
            status = self.mirror()
            following = status["state"] == "following" and (status["head"] or 0) >= head
            return status if following else None

        return self.until(f"the follower at head {head}", probe)

    # -- wallets ----------------------------------------------------------------------

    def wallet(self, n: int) -> Wallet:
        """anvil's dev wallet ``n`` (``ledger.chain.Wallet``); #0 deploys the escrows."""
        return Wallet(self.chain, self.anvil.private_keys[n])

    def escrow(self, project_id: int) -> Contract:
        """The project's escrow as a wallet finds it: address and ABI from the API."""
        found = self.get(f"/v1/projects/{project_id}/escrow")
        assert found["chain_id"] == self.w3.eth.chain_id
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(found["address"]), abi=found["abi"]
        )

    def signed_pledge(self, escrow: Contract, n: int, amount: int) -> bytes:
        """dev wallet ``n``'s ``pledge()`` of ``amount`` wei, built by web3 from the
        escrow's ABI and signed locally: the raw transaction, not yet sent."""
        account = Account.from_key(self.anvil.private_keys[n])
        params: TxParams = {
            "from": account.address,
            "value": Wei(amount),
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
        }
        tx = escrow.functions.pledge().build_transaction(params)
        raw: bytes = account.sign_transaction(cast(dict[str, Any], tx)).raw_transaction
        return raw

    def send_raw(self, raw: bytes) -> TxReceipt:
        """Sends a signed transaction; its receipt once mined (anvil mines at once)."""
        sent = self.w3.eth.send_raw_transaction(raw)
        receipt = self.w3.eth.wait_for_transaction_receipt(sent, timeout=30, poll_latency=POLL_S)
        assert receipt["status"] == 1, receipt
        return receipt

    def total_pledged(self, escrow: Contract) -> int:
        """``totalPledged()`` read straight from the node (what ``cast call`` shows)."""
        return int(escrow.functions.totalPledged().call())

    def pledge_of(self, escrow: Contract, who: str) -> int:
        return int(escrow.functions.pledgeOf(Web3.to_checksum_address(who)).call())


def _migrated_with_members(database_url: str) -> None:
    """The database migrated (what ``dpn db upgrade`` runs, here in this process: a second
    interpreter would cost seconds of imports) with the finance nodes and the organizer.
    No route registers a member of a kind other than ``individual`` (sign-in does that),
    so they are written before the server starts."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        ledger = Ledger(engine)
        members = ((NORTH, "finance_node", "North"), (RIVER, "finance_node", "River"))
        for who, kind, name in (*members, (OLGA, "individual", "Olga")):
            register_member(ledger, who.address, kind, name, key=f"m-{name}", actor="test")
    finally:
        engine.dispose()


@contextmanager
def funding_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FundingWorld]:
    """A fresh anvil, a fresh database and ``dpn serve`` following the chain with
    ``CONFIRMATIONS``; everything stopped afterwards."""
    with running_anvil() as anvil:
        database_url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
        _migrated_with_members(database_url)
        monkeypatch.setenv("DPN_CHAIN_RPC_URL", anvil.url)
        monkeypatch.setenv("DPN_CHAIN_DEPLOYER_KEY", anvil.private_keys[0])
        monkeypatch.setenv("DPN_CHAIN_CONFIRMATIONS", str(CONFIRMATIONS))
        monkeypatch.delenv("DPN_CHAIN_FACTORY", raising=False)
        monkeypatch.delenv("DPN_CHAIN_FOLLOW", raising=False)
        log = tmp_path / "server.log"
        with (
            running_server(database_url, 1, ADMIN.address, log) as (base_url, _),
            httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as client,
        ):
            yield FundingWorld(anvil, client, log)
