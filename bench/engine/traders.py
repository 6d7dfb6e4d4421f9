"""The traders and their books, made before any clock runs: members with cash and units.

Every member is registered in one transaction, every deposit in another (one entry
each, as ``bench.ledger`` funds its accounts); each book's asset is registered with its
units issued to every member in one entry. A book is (asset, currency), its currency
USD or EUR in turn, each with a mid price of its own.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eth_utils.address import to_checksum_address

from ledger.core import AccountKey, EntryDraft, EntryKind, Posting, with_check_character
from ledger.core.accounts import DEPOSITS, currency_of, member_holder
from ledger.core.limits import POSTINGS_PER_ENTRY_MAX
from ledger.journal.write import Ledger
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member_in

__all__ = [
    "BOOKS_MAX",
    "CASH_EACH_MINOR",
    "OWNERS_MAX",
    "UNITS_EACH",
    "Market",
    "TradedBook",
    "open_market",
]

ACTOR: Final = "bench"
CURRENCIES: Final = ("USD", "EUR")
CASH_EACH_MINOR: Final = 10**13  # per member and currency: no order is refused for funds
UNITS_EACH: Final = 10**9  # per member and asset: no sell is refused for units
TOTAL_UNITS: Final = 10**15  # the registry's maximum; the pool keeps what is not issued
OWNERS_MAX: Final = POSTINGS_PER_ENTRY_MAX - 1  # every owner gets units in one issue entry
BOOKS_MAX: Final = 32
MID_FIRST_MINOR: Final = 10_000  # $100.00 a unit on the first book
MID_STEP_MINOR: Final = 2_500


@dataclass(frozen=True, slots=True)
class TradedBook:
    """One book: its asset, currency and the mid price orders gather around."""

    asset_id: str
    currency: str
    mid_minor: int


@dataclass(frozen=True, slots=True)
class Market:
    """The members (checksummed addresses) and the books they trade."""

    owners: tuple[str, ...]
    books: tuple[TradedBook, ...]


def owner_addresses(n: int) -> list[str]:
    """``n`` distinct checksummed addresses, the same in every run."""
    rng = random.Random(11)
    found: dict[str, None] = {}
    while len(found) < n:
        found[to_checksum_address(f"0x{rng.getrandbits(160):040x}")] = None
    return list(found)


def asset_id(n: int) -> str:
    """The ``n``-th benchmark asset ID (a valid check character)."""
    return with_check_character(f"1M8GDM9A0KP{n:06d}")


def _deposits(owners: Sequence[str]) -> list[EntryDraft]:
    return [
        EntryDraft(
            kind=EntryKind.CASH_DEPOSIT,
            idempotency_key=f"fund:{code}:{i}",
            actor=ACTOR,
            payload={"reference": "bench"},
            postings=(
                Posting(AccountKey(DEPOSITS, currency_of(code)), -CASH_EACH_MINOR),
                Posting(AccountKey(member_holder(owner), currency_of(code)), CASH_EACH_MINOR),
            ),
        )
        for code in CURRENCIES
        for i, owner in enumerate(owners)
    ]


def open_market(ledger: Ledger, owners: int, books: int) -> Market:
    """Register ``owners`` members with cash in every currency and ``books`` assets
    whose units they all hold; returns who and what trades."""
    if not 2 <= owners <= OWNERS_MAX or not 1 <= books <= BOOKS_MAX:
        raise ValueError(f"owners must be 2..{OWNERS_MAX} and books 1..{BOOKS_MAX}")
    addresses = owner_addresses(owners)
    with ledger.write() as tx:
        for i, address in enumerate(addresses):
            register_member_in(tx, address, "individual", f"trader {i}", key=f"m{i}", actor=ACTOR)
    with ledger.write() as tx:
        tx.append_many(_deposits(addresses))
    traded = []
    for n in range(books):
        asset = asset_id(n)
        register_asset(
            ledger,
            asset,
            make="Deere",
            model="8R",
            serial=f"BENCH-{n}",
            location="Ames, IA",
            total_units=TOTAL_UNITS,
            jurisdiction="US-IA",
            key=f"asset{n}",
            actor=ACTOR,
        )
        issue_units(
            ledger, asset, [(a, UNITS_EACH) for a in addresses], key=f"issue{n}", actor=ACTOR
        )
        mid = MID_FIRST_MINOR + MID_STEP_MINOR * n
        traded.append(TradedBook(asset, CURRENCIES[n % len(CURRENCIES)], mid))
    return Market(tuple(addresses), tuple(traded))
