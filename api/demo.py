"""``dpn demo``: a small network, built through the real ledger services.

An organizer and three finance nodes co-own a greenhouse (20 % and 80 %, as in the
network's plan), money arrives, units and cash change hands and a bid's cash is held.
Every step carries a fixed idempotency key, so running the demo twice changes nothing.
A market follows (``api.demo_market``): two live trading books on the greenhouse, with
resting orders on both sides and some trades, and lease books over this quarter and the
next, with offers, bids and a lease under way. Before all that, the greenhouse's past
(``api.demo_outputs``): two harvested quarters with their entitlements and deliveries, a
buy-out paying the co-op's way to more of it; and at the present a quarter open for
output requests and a vote on what to grow. The members' wallets have well-known test
keys (``dpn demo --print-keys``), so a person can sign in as any of them on a local
database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from eth_account import Account

from ledger.core.accounts import currency_of, units_of
from ledger.db.engine import read_connection
from ledger.journal.entries import entry_by_key
from ledger.journal.write import Ledger
from ledger.money import deposit, place_hold, transfer
from ledger.registry.assets import DocumentRef, issue_units, register_asset
from ledger.registry.members import register_member

__all__ = ["DEMO_ASSET_ID", "DEMO_MEMBERS", "DemoMember", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoMember:
    """A member of the demo network, with the private key of its wallet: a test key,
    derived from the member's place in the demo, public to everyone who reads this."""

    name: str
    kind: str
    units: int
    private_key: str  # 0x and 64 hex digits

    @property
    def address(self) -> str:
        """The wallet's checksummed address."""
        return _address_of(self.private_key)


@cache
def _address_of(private_key: str) -> str:
    address: str = Account.from_key(private_key).address
    return address


def _test_key(n: int) -> str:
    """The n-th demo key: the SHA-256 of a fixed text (never a key for real money)."""
    return "0x" + hashlib.sha256(f"dpn demo wallet {n}".encode()).hexdigest()


DEMO_ASSET_ID = "5GRNH0USX7K000417"
DEMO_MEMBERS = (
    DemoMember("Valley Greenhouse Co-op (organizer)", "business", 200_000, _test_key(1)),
    DemoMember("North Finance Node", "finance_node", 300_000, _test_key(2)),
    DemoMember("River Finance Node", "finance_node", 250_000, _test_key(3)),
    DemoMember("Hill Finance Node", "finance_node", 250_000, _test_key(4)),
    DemoMember("Mara Okafor (workshop)", "individual", 0, _test_key(5)),
)
_ACTOR = "dpn-demo"
_ISSUE_KEY = "demo:issue"
_GREENHOUSE_LEASE_SHA256 = "9f2b5c1d0e7a4b3c8d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"


def run_demo(ledger: Ledger) -> None:
    """Record the demo network in ``ledger`` (idempotent).

    The greenhouse's past (``api.demo_outputs``: two harvested quarters, a buy-out under
    way) is written first, on a clock stepped through it; then the present, on
    ``ledger``'s own clock."""
    from api.demo_outputs import (  # here: it reads this module
        SteppedClock,
        history_fits,
        history_start,
        run_outputs_history,
        run_outputs_present,
    )

    start = _recorded_at(ledger, _ISSUE_KEY) or history_start(ledger.clock())
    fits = history_fits(ledger, start)
    clock = SteppedClock(start)
    past = Ledger(ledger.engine, clock=clock) if fits else ledger
    for m in DEMO_MEMBERS:
        register_member(
            past, m.address, m.kind, m.name, key=f"demo:member:{m.address}", actor=_ACTOR
        )
    register_asset(
        past,
        DEMO_ASSET_ID,
        make="Richel",
        model="Multi-span greenhouse 4,000 m2",
        serial="RCH-2027-0417",
        location="Valley Road 12, Wageningen, NL",
        jurisdiction="NL",
        documents=[DocumentRef("Co-ownership agreement", _GREENHOUSE_LEASE_SHA256)],
        key="demo:asset",
        actor=_ACTOR,
    )
    issue_units(
        past,
        DEMO_ASSET_ID,
        [(m.address, m.units) for m in DEMO_MEMBERS if m.units],
        key=_ISSUE_KEY,
        actor=_ACTOR,
    )
    addresses = tuple(m.address for m in DEMO_MEMBERS)
    if fits:
        run_outputs_history(past, clock, start, addresses, DEMO_ASSET_ID)
    _organizer, north, river, _hill, mara = (m.address for m in DEMO_MEMBERS)
    present = deposit(
        ledger,
        member=mara,
        currency="EUR",
        amount=500_000,
        reference="SEPA 2027-0001",
        key="demo:deposit:mara",
        actor=_ACTOR,
    ).recorded_at  # the demo's present: the same on every run
    deposit(
        ledger,
        member=north,
        currency="EUR",
        amount=1_200_000,
        reference="SEPA 2027-0002",
        key="demo:deposit:north",
        actor=_ACTOR,
    )
    units = units_of(DEMO_ASSET_ID)
    # Mara buys 10,000 units (1 %) from the North node for EUR 2,500.00: two transfers.
    transfer(
        ledger,
        sender=north,
        recipient=mara,
        instrument=units,
        amount=10_000,
        key="demo:sale:units",
        actor=_ACTOR,
        memo="1 % of the greenhouse",
    )
    transfer(
        ledger,
        sender=mara,
        recipient=north,
        instrument=currency_of("EUR"),
        amount=250_000,
        key="demo:sale:cash",
        actor=_ACTOR,
        memo="payment for 1 %",
    )
    # River offers 5,000 units: they are held until the sale settles or is withdrawn.
    place_hold(
        ledger,
        member=river,
        instrument=units,
        amount=5_000,
        hold_id="demo:offer:river",
        reason="sell offer",
        key="demo:hold:river",
        actor=_ACTOR,
    )
    # Then a market: live books on the greenhouse (imported here: it reads this module).
    from api.demo_market import run_market_demo

    run_market_demo(ledger)
    if fits:
        run_outputs_present(ledger, present, addresses, DEMO_ASSET_ID)


def _recorded_at(ledger: Ledger, key: str) -> datetime | None:
    """When the entry under ``key`` was recorded, if it is in the journal."""
    with read_connection(ledger.engine) as conn:
        found = entry_by_key(conn, key)
    return None if found is None else found.recorded_at
