"""A small network for integration tests: members, an asset with units issued, money."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.core.accounts import units_of
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member

ANN = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"
BOB = "0x5050A4F4b3f9338C3472dcC01A87C76A144b3c9c"
CAT = "0x3325a78425F17a7E487Eb5666b2bFd93aBb06c70"
DAN = "0xc48B812bB43401392c037381AcA934F4069C0517"
ASSET = "1M8GDM9AXKP042788"
UNITS = units_of(ASSET)
USD = "ccy:USD"


@dataclass(frozen=True)
class Network:
    members: tuple[str, ...]
    asset: str


def build_network(ledger: Ledger, cash_minor: int = 1_000_000) -> Network:
    """Four members; ANN 500,000 units, BOB 300,000, CAT 200,000; each has ``cash_minor``
    USD minor units."""
    members = (ANN, BOB, CAT, DAN)
    for i, address in enumerate(members):
        register_member(
            ledger, address, "individual", f"member {i}", key=f"m:{address}", actor="test"
        )
    register_asset(
        ledger,
        ASSET,
        make="Deere",
        model="8R",
        serial="S-1",
        location="Ames, IA",
        jurisdiction="US-IA",
        key="asset",
        actor="test",
    )
    issue_units(
        ledger, ASSET, [(ANN, 500_000), (BOB, 300_000), (CAT, 200_000)], key="issue", actor="test"
    )
    for address in members:
        deposit(
            ledger,
            member=address,
            currency="USD",
            amount=cash_minor,
            reference="wire",
            key=f"d:{address}",
            actor="test",
        )
    return Network(members, ASSET)
