"""Ethereum addresses: members are known by their EIP-55 checksummed address."""

from __future__ import annotations

import re
from functools import lru_cache

from eth_utils.address import to_checksum_address

from ledger.core.errors import InvalidInput

__all__ = ["validate_address"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# The EIP-55 checksum is a Keccak-256 hash, computed in Python: remembered per address.
_checksummed = lru_cache(maxsize=65_536)(to_checksum_address)


def validate_address(address: str) -> str:
    """Return ``address`` if it is a 0x-prefixed, 40-hex-digit, EIP-55 checksummed
    address; otherwise raise ``InvalidInput`` (``address_malformed`` or
    ``address_checksum``, the latter naming the checksummed form)."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        shown = address[:64] if isinstance(address, str) else type(address).__name__
        raise InvalidInput(
            "address_malformed", f"{shown!r} is not an Ethereum address (0x and 40 hex digits)"
        )
    checksummed: str = _checksummed(address)
    if address != checksummed:
        raise InvalidInput(
            "address_checksum",
            f"address {address} is not in EIP-55 checksummed form; did you mean {checksummed}?",
            expected=checksummed,
        )
    return address
