"""Account names are built and read in one place: the bytes of each name (they are hashed
into every entry) and the parser that reads them back."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import AccountKey, EntryKind
from ledger.core.accounts import (
    DEPOSITS,
    INSTRUMENT_PATTERN,
    ISSUANCE,
    Holder,
    HolderKind,
    Instrument,
    InstrumentKind,
    currency_of,
    external,
    member_holder,
    parse_holder,
    parse_instrument,
    pool_holder,
    units_of,
)
from ledger.core.errors import InvalidInput
from ledger.core.kinds import REVERSIBLE_KINDS

ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
ASSET = "1M8GDM9AXKP042788"


def test_the_names_are_the_bytes_the_journal_holds() -> None:
    assert member_holder(ADDRESS) == f"member:{ADDRESS}"
    assert pool_holder(ASSET) == f"pool:{ASSET}"
    assert external("deposits") == DEPOSITS == "external:deposits"
    assert ISSUANCE == "external:issuance"
    assert units_of(ASSET) == f"units:{ASSET}"
    assert currency_of("USD") == "ccy:USD"


@pytest.mark.parametrize("code", ["", "U", "usd", "US D", "ABCDEFGHIJK", "€UR"])
def test_a_malformed_currency_code_is_refused(code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        currency_of(code)
    assert info.value.code == "currency_malformed"


names = st.text(max_size=20)


@given(names)
def test_every_holder_reads_back(name: str) -> None:
    assert parse_holder(member_holder(name)) == Holder(HolderKind.MEMBER, name)
    assert parse_holder(pool_holder(name)) == Holder(HolderKind.POOL, name)
    assert parse_holder(external(name)) == Holder(HolderKind.EXTERNAL, name)


@given(names)
def test_every_instrument_reads_back(name: str) -> None:
    assert parse_instrument(units_of(name)) == Instrument(InstrumentKind.UNITS, name)
    assert parse_instrument("ccy:" + name) == Instrument(InstrumentKind.CURRENCY, name)


@pytest.mark.parametrize("text", ["", "member", "members:0x1", "Member:0x1", "units:X", ":x"])
def test_what_is_no_holder_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_holder(text)
    assert info.value.code == "holder_malformed"


@pytest.mark.parametrize("text", ["", "units", "unit:X", "CCY:USD", "member:0x1", ":USD"])
def test_what_is_no_instrument_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_instrument(text)
    assert info.value.code == "instrument_malformed"


def test_an_account_knows_its_sides() -> None:
    assert AccountKey(DEPOSITS, currency_of("USD")).is_external
    assert AccountKey(ISSUANCE, units_of(ASSET)).is_units
    assert not AccountKey(member_holder(ADDRESS), currency_of("USD")).is_units
    assert not AccountKey(pool_holder(ASSET), units_of(ASSET)).is_external


def test_the_instrument_pattern_takes_what_the_constructors_make() -> None:
    pattern = re.compile(INSTRUMENT_PATTERN)
    assert pattern.fullmatch(units_of(ASSET))
    assert pattern.fullmatch(currency_of("USDC"))
    assert not pattern.fullmatch(units_of("SHORT"))
    assert not pattern.fullmatch(member_holder(ADDRESS))


def test_the_kinds_are_the_bytes_the_journal_holds() -> None:
    # Part of every entry's hash: a renamed kind would break every chain written.
    assert {k.value for k in EntryKind} == {
        "transfer",
        "cash.deposit",
        "cash.withdraw",
        "hold.place",
        "hold.release",
        "reversal",
        "member.register",
        "member.update",
        "asset.register",
        "asset.issue",
        "asset.document",
        "asset.sighting",
        "role.grant",
        "role.revoke",
        "node.register",
        "node.update",
        "project.create",
        "project.open",
        "project.cancel",
        "project.fund",
        "project.forward",
        "project.fail",
        "pledge.manual",
        "chain.escrow",
        "chain.pledge",
        "chain.withdraw",
        "chain.finalize",
        "chain.reclaim",
        "chain.undo",
        "order.place",
        "order.cancel",
        "order.amend",
        "order.expire",
        "order.release",
        "trade",
        "lease",
        "market.terms",
        "output.terms",
        "output.kind",
        "period.open",
        "output.request",
        "output.produce",
        "output.deliver",
        "output.waive",
        "output.sell_back",
        "buyout.propose",
        "buyout.accept",
        "buyout.cancel",
        "buyout.settle",
        "buyout.miss",
        "buyout.default",
        "vote.propose",
        "vote.cast",
        "work.log",
    }
    assert {"transfer", "cash.deposit", "cash.withdraw"} == REVERSIBLE_KINDS
    assert "reversal" not in REVERSIBLE_KINDS
