"""``dpn demo`` on a chain: projects funded through real escrows.

With a chain configured (``DPN_CHAIN_RPC_URL`` and ``DPN_CHAIN_DEPLOYER_KEY``; ``make run``
starts anvil and sets both), the demo network lists three projects:

- **Solar roof** (North lists it; the greenhouse co-op organizes and puts in 20 %): its
  escrow takes 8 ETH of pledges from three wallets in awkward amounts and is finalized:
  once the chain mirror has the finalize confirmed, the project is forwarded and its
  1,000,000 units are issued by the largest remainder.
- **Cold store** (River lists it): open, two pledges so far, under its goal.
- **CNC mill** (Hill lists it, in EUR, manual pledges allowed): a draft with one bank
  transfer recorded by hand.

The demo wallets get ETH from the deployer first. Every step is idempotent: a pledge is
sent only if the wallet has none in that escrow, a finalize only while the escrow is
funded, and every ledger write has a fixed key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from api.demo import DEMO_MEMBERS
from ledger.chain import Wallet
from ledger.chain.gateway import FundingChain
from ledger.core import with_check_character
from ledger.db.engine import read_connection
from ledger.funding import (
    ProjectState,
    ProjectTerms,
    create_project,
    get_project,
    record_manual_pledge,
)
from ledger.journal.write import Ledger

__all__ = ["run_chain_demo"]

ETHER = 10**18
_ACTOR = "dpn-demo"
_FUNDS = 20 * ETHER  # what each demo wallet gets to pledge with


def _deadline(now: datetime) -> datetime:
    """The first day of the month after next, 00:00 UTC: ahead of now by a month at
    least, and the same whenever the demo runs within a month (so its keys replay)."""
    month = now.month + 2
    year = now.year + (month - 1) // 12
    return datetime(year, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def _terms(
    title: str,
    description: str,
    organizer: str,
    asset: str,
    currency: str,
    goal: int,
    contribution: int,
    minimum: int,
    deadline: datetime,
    *,
    manual: bool = False,
) -> ProjectTerms:
    return ProjectTerms(
        title=title,
        description=description,
        organizer=organizer,
        asset_id=with_check_character(asset),
        jurisdiction="NL",
        currency=currency,
        goal_minor=goal,
        deadline=deadline,
        min_pledge_minor=minimum,
        organizer_contribution_minor=contribution,
        retained_min_units=100_000,
        operator_share_bp=1_000,
        total_units=1_000_000,
        manual_pledges_allowed=manual,
    )


def run_chain_demo(ledger: Ledger, funding: FundingChain) -> list[str]:
    """List, open, pledge and finalize the demo's projects; lines to print."""
    coop, north, river, hill, mara = DEMO_MEMBERS
    deployer = funding.deployer
    if deployer is None:
        return ["chain demo skipped: no DPN_CHAIN_DEPLOYER_KEY to deploy escrows with"]
    funding.ensure_factory()
    client = funding.client
    for member in (north, river, hill, mara):
        if client.balance(member.address) < _FUNDS // 2:
            deployer.send_eth(member.address, _FUNDS)
    deadline = _deadline(ledger.clock())
    lines: list[str] = []

    solar = create_project(
        ledger,
        north.address,
        _terms(
            "Solar roof for the greenhouse",
            "120 kWp on the greenhouse roof; the co-op operates it and puts in 20 %.",
            coop.address,
            "5SLRR00F0K7000421",
            "ETH",
            10 * ETHER,
            2 * ETHER,
            ETHER // 100,
            deadline,
        ),
        key="demo:project:solar",
        actor=_ACTOR,
    )
    solar = funding.open_project(solar.id, by=north.address, key="demo:open:solar", actor=_ACTOR)
    assert solar.escrow is not None
    escrow = solar.escrow.address
    for member, amount in (
        (north, 3_333_333_333_333_333_333),
        (river, 2_666_666_666_666_666_667),
        (hill, 2 * ETHER),
    ):
        if client.pledge_of(escrow, member.address) == 0:
            Wallet(client, member.private_key).pledge_eth(escrow, amount)
    if client.escrow_view(escrow).state == "funded":
        Wallet(client, mara.private_key).finalize(escrow)
    lines.append(
        f"project {solar.id} {solar.terms.title}: escrow {escrow}, 8 ETH pledged, finalized"
    )

    cold = create_project(
        ledger,
        river.address,
        _terms(
            "Cold store for the valley",
            "A 40 m3 cold store beside the packing shed.",
            hill.address,
            "5CLDST0R0K7000422",
            "ETH",
            6 * ETHER,
            ETHER,
            ETHER // 100,
            deadline,
        ),
        key="demo:project:cold",
        actor=_ACTOR,
    )
    cold = funding.open_project(cold.id, by=river.address, key="demo:open:cold", actor=_ACTOR)
    assert cold.escrow is not None
    for member, amount in ((north, 3 * ETHER // 2), (mara, ETHER // 4)):
        if client.pledge_of(cold.escrow.address, member.address) == 0:
            Wallet(client, member.private_key).pledge_eth(cold.escrow.address, amount)
    lines.append(f"project {cold.id} {cold.terms.title}: escrow {cold.escrow.address}, open")

    mill = create_project(
        ledger,
        hill.address,
        _terms(
            "CNC mill for the workshop",
            "A used 3-axis mill; pledges by bank transfer welcome.",
            mara.address,
            "5CNCM1LL0K7000423",
            "EUR",
            4_000_000,
            800_000,
            50_000,
            deadline,
            manual=True,
        ),
        key="demo:project:mill",
        actor=_ACTOR,
    )
    record_manual_pledge(
        ledger,
        mill.id,
        river.address,
        1_000_000,
        hashlib.sha256(b"SEPA 2027-0101 River -> CNC mill escrow account").hexdigest(),
        by=hill.address,
        key="demo:manual:mill",
        actor=_ACTOR,
    )
    lines.append(f"project {mill.id} {mill.terms.title}: draft, EUR 10,000.00 pledged by bank")

    follower = funding.follower()
    for _ in range(100):
        result = follower.round()
        if result is None or result.caught_up:
            break
    follower.release()
    with read_connection(ledger.engine) as conn:
        state = get_project(conn, solar.id).state
    if state is not ProjectState.FORWARDED:
        lines.append(
            f"project {solar.id} is {state.value} until the finalize has"
            f" {funding.config.confirmations} confirmations: the server's chain mirror issues it"
        )
    return lines
