"""Account names: who holds (a member, an asset's unissued pool, an external account)
what instrument (an asset's units, a currency).

The one module that spells them: every holder and instrument name is built by a
constructor here and read back by ``parse_holder`` and ``parse_instrument``::

    holder       member:<address>   pool:<asset id>   external:<name>
    instrument   units:<asset id>   ccy:<currency code>

The names are part of every entry's hashed bytes, so they never change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ledger.core.errors import InvalidInput

__all__ = [
    "DEPOSITS",
    "EXTERNAL_NAMES",
    "EXTERNAL_PREFIX",
    "FEES",
    "INSTRUMENT_PATTERN",
    "ISSUANCE",
    "AccountKey",
    "Holder",
    "HolderKind",
    "Instrument",
    "InstrumentKind",
    "currency_of",
    "external",
    "member_holder",
    "parse_holder",
    "parse_instrument",
    "pool_holder",
    "units_of",
]


class HolderKind(StrEnum):
    """Who holds an account: a member, an asset's unissued pool, or an external account
    (where money or units enter and leave the ledger)."""

    MEMBER = "member"
    POOL = "pool"
    EXTERNAL = "external"


class InstrumentKind(StrEnum):
    """What an account holds: an asset's units or a currency."""

    UNITS = "units"
    CURRENCY = "ccy"


_MEMBER_PREFIX = f"{HolderKind.MEMBER.value}:"
_POOL_PREFIX = f"{HolderKind.POOL.value}:"
EXTERNAL_PREFIX = f"{HolderKind.EXTERNAL.value}:"
_UNITS_PREFIX = f"{InstrumentKind.UNITS.value}:"
_CURRENCY_PREFIX = f"{InstrumentKind.CURRENCY.value}:"
_CURRENCY_CODE = re.compile(r"[A-Z0-9]{2,10}")
# An instrument as a caller may name one: an asset's units (a 17-character ID) or a
# currency (its code), for schemas that check it before the ledger does.
INSTRUMENT_PATTERN = rf"({_UNITS_PREFIX}[0-9A-Z]{{17}}|{_CURRENCY_PREFIX}[A-Z0-9]{{2,10}})"


def member_holder(address: str) -> str:
    """The account holder name of a member (``member:0x...``)."""
    return _MEMBER_PREFIX + address


def pool_holder(asset_id: str) -> str:
    """The account holder name of an asset's unissued pool (``pool:<asset id>``)."""
    return _POOL_PREFIX + asset_id


def external(name: str) -> str:
    """The account holder name of the external account ``name`` (``external:<name>``)."""
    return EXTERNAL_PREFIX + name


def units_of(asset_id: str) -> str:
    """The instrument name of an asset's units (``units:<asset id>``)."""
    return _UNITS_PREFIX + asset_id


def currency_of(code: str) -> str:
    """The instrument name of a currency (``ccy:EUR``); refuses a malformed code."""
    if not _CURRENCY_CODE.fullmatch(code):
        raise InvalidInput("currency_malformed", "a currency code is 2..10 of A-Z and 0-9")
    return _CURRENCY_PREFIX + code


# The designated external accounts: where units are created and money enters or leaves.
EXTERNAL_NAMES = frozenset({"issuance", "deposits", "fees"})
ISSUANCE = external("issuance")
DEPOSITS = external("deposits")
FEES = external("fees")  # the network's fee on trades, where one is charged


class AccountKey(NamedTuple):
    """An account: who holds (``member:0x..``, ``pool:<asset>``, ``external:<name>``) what
    instrument (``units:<asset>`` or ``ccy:<code>``). A tuple: hashing it is cheap, and
    the write path hashes keys a great deal."""

    holder: str
    instrument: str

    @property
    def is_external(self) -> bool:
        """External accounts are where money or units enter and leave; only they may go
        negative."""
        return self.holder.startswith(EXTERNAL_PREFIX)

    @property
    def is_units(self) -> bool:
        """True for an asset's units, False for a currency."""
        return self.instrument.startswith(_UNITS_PREFIX)

    def __str__(self) -> str:
        return f"{self.holder}/{self.instrument}"


@dataclass(frozen=True, slots=True)
class Holder:
    """A holder name read back: its kind and the address, asset ID or external name."""

    kind: HolderKind
    name: str


@dataclass(frozen=True, slots=True)
class Instrument:
    """An instrument name read back: its kind and the asset ID or currency code."""

    kind: InstrumentKind
    name: str


def parse_holder(text: str) -> Holder:
    """Read a holder name; ``InvalidInput(holder_malformed)`` unless it is one of
    ``member:``, ``pool:`` or ``external:`` and a name (not checked further here)."""
    kind, sep, name = text.partition(":")
    if sep and kind in _HOLDER_KINDS:
        return Holder(HolderKind(kind), name)
    raise InvalidInput("holder_malformed", f"unknown account holder {text!r}")


def parse_instrument(text: str) -> Instrument:
    """Read an instrument name; ``InvalidInput(instrument_malformed)`` unless it is
    ``units:`` or ``ccy:`` and a name (not checked further here)."""
    kind, sep, name = text.partition(":")
    if sep and kind in _INSTRUMENT_KINDS:
        return Instrument(InstrumentKind(kind), name)
    raise InvalidInput("instrument_malformed", f"unknown instrument {text!r}")


_HOLDER_KINDS = frozenset(HolderKind)
_INSTRUMENT_KINDS = frozenset(InstrumentKind)
