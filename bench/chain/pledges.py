"""What the benchmark mirrors, made before any clock runs: a project listed in the ledger
and opened on chain (its real ``EthPledgeEscrow`` deployed through the real factory, as
the funding service does it), then many real pledges to that escrow.

The pledges are ordinary transactions calling ``pledge()`` with value, from ``pledgers``
accounts, many to a block. They are sent unsigned (``eth_sendTransaction``) from
accounts anvil impersonates (``anvil_impersonateAccount``) and funds
(``anvil_setBalance``): the node executes and mines them exactly as signed ones, and the
logs are the same; but signing 10,000 transactions in Python costs ~10 s (with
coincurve) against ~1.5 s for the whole unsigned run. Each block's worth goes in one
JSON-RPC batch with automine off, then ``evm_mine`` closes the block.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, Final

from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from ledger.chain.anvil import Anvil, AnvilError, dev_private_keys
from ledger.chain.gateway import ChainConfig, FundingChain
from ledger.core import with_check_character
from ledger.funding import ProjectState, ProjectTerms, create_project
from ledger.journal.write import Ledger
from ledger.registry.members import register_member

__all__ = ["EscrowedProject", "PledgeRun", "open_escrowed_project", "pledge_many"]

ACTOR: Final = "bench"
GOAL_WEI: Final = 10**30  # never reached: every pledge stays a plain pledge
MIN_PLEDGE_WEI: Final = 10**12
PLEDGE_GAS: Final = 90_000  # a pledge takes ~50,000 (~70,000 the first of a pledger)
GAS_PRICE_WEI: Final = 10 * 10**9  # well above anvil's base fee with blocks under half full
PLEDGER_BALANCE_WEI: Final = 10**24
MINE_ROUNDS_MAX: Final = 1_000  # evm_mine calls to empty the pool before giving up
BATCH_TIMEOUT_S: Final = 60.0
_PLEDGE: Final = "0x" + function_signature_to_4byte_selector("pledge()").hex()


def _batch(anvil: Anvil, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """The results of ``calls`` sent as one JSON-RPC batch (one HTTP request), in order;
    ``AnvilError`` naming the first call answered with an error."""
    body = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    request = urllib.request.Request(
        anvil.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=BATCH_TIMEOUT_S) as response:
        answers = json.loads(response.read())
    if not isinstance(answers, list) or len(answers) != len(calls):
        raise AnvilError(f"a batch of {len(calls)} calls: unexpected answer {answers!r:.200}")
    results: list[Any] = [None] * len(calls)
    for answer in answers:
        i = answer["id"]
        if "error" in answer:
            raise AnvilError(f"{calls[i][0]}: {answer['error']}")
        results[i] = answer["result"]
    return results


def _address(label: str) -> str:
    return to_checksum_address("0x" + hashlib.sha256(label.encode()).hexdigest()[:40])


@dataclass(frozen=True, slots=True)
class EscrowedProject:
    """The project the pledges go to, and where the follower starts reading."""

    project_id: int
    escrow: str
    factory: str
    creator: str
    factory_block: int


def open_escrowed_project(ledger: Ledger, rpc_url: str) -> EscrowedProject:
    """List a project in ETH (a finance node lists it for an organizer, both registered)
    and open it through ``FundingChain``, which deploys the factory and the escrow."""
    lister, organizer = _address("bench lister"), _address("bench organizer")
    register_member(ledger, lister, "finance_node", "Bench node", key="bench-m1", actor=ACTOR)
    register_member(ledger, organizer, "individual", "Bench organizer", key="bench-m2", actor=ACTOR)
    terms = ProjectTerms(
        title="A mill for the bench",
        description="Pledged to many times over, to time the chain mirror.",
        organizer=organizer,
        asset_id=with_check_character("1M8GDM9A0KP042788"),
        jurisdiction="US-IA",
        currency="ETH",
        goal_minor=GOAL_WEI,
        deadline=ledger.clock().astimezone(UTC).replace(microsecond=0) + timedelta(days=90),
        min_pledge_minor=MIN_PLEDGE_WEI,
    )
    project = create_project(ledger, lister, terms, key="bench-p1", actor=ACTOR)
    chain = FundingChain(ledger, ChainConfig(rpc_url, dev_private_keys()[0], confirmations=0))
    opened = chain.open_project(project.id, by=lister, key="bench-open", actor=ACTOR)
    factory = chain.stored_factory()
    if opened.state is not ProjectState.OPEN or opened.escrow is None or factory is None:
        raise AnvilError(f"the project did not open with an escrow ({opened.state})")
    address, creator, block = factory
    return EscrowedProject(project.id, opened.escrow.address, address, creator, block)


@dataclass(frozen=True, slots=True)
class PledgeRun:
    """The pledges made: how many, their sum, and the blocks they are in."""

    pledges: int
    total_wei: int
    first_block: int
    last_block: int
    pledgers: int


def pledge_amount(i: int) -> int:
    """The ``i``-th pledge, in wei: a little over 0.001 ETH, never twice alike in a row."""
    return 10**15 + (i % 997) * 10**9


def pledge_many(
    anvil: Anvil, escrow: str, pledges: int, pledgers: int, per_block: int
) -> PledgeRun:
    """``pledges`` pledges to ``escrow`` from ``pledgers`` funded accounts in turn,
    ``per_block`` to a block; returns once all are mined (automine back on)."""
    accounts = [_address(f"bench pledger {i}") for i in range(pledgers)]
    _batch(anvil, [("anvil_setBalance", [a, hex(PLEDGER_BALANCE_WEI)]) for a in accounts])
    _batch(anvil, [("anvil_impersonateAccount", [a]) for a in accounts])
    first_block = anvil.block_number() + 1
    nonces = [0] * pledgers
    total = 0
    anvil.rpc("evm_setAutomine", [False])
    try:
        for start in range(0, pledges, per_block):
            calls = []
            for i in range(start, min(start + per_block, pledges)):
                p = i % pledgers
                amount = pledge_amount(i)
                total += amount
                tx = {
                    "from": accounts[p],
                    "to": escrow,
                    "data": _PLEDGE,
                    "value": hex(amount),
                    "gas": hex(PLEDGE_GAS),
                    "gasPrice": hex(GAS_PRICE_WEI),
                    "nonce": hex(nonces[p]),
                }
                nonces[p] += 1
                calls.append(("eth_sendTransaction", [tx]))
            _batch(anvil, calls)
            anvil.rpc("evm_mine")
        _mine_until_empty(anvil)
    finally:
        anvil.rpc("evm_setAutomine", [True])
    return PledgeRun(pledges, total, first_block, anvil.block_number(), pledgers)


def _mine_until_empty(anvil: Anvil) -> None:
    """Mine until no transaction waits (a block that hit its gas limit leaves some)."""
    for _ in range(MINE_ROUNDS_MAX):
        status = anvil.rpc("txpool_status")
        if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
            return
        anvil.rpc("evm_mine")
    raise AnvilError(f"transactions still pending after {MINE_ROUNDS_MAX} blocks")
