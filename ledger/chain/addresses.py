"""Addresses at the chain boundary: taken in any case a node or a caller spells them,
handed back EIP-55 checksummed, the one form the rest of the ledger compares."""

from __future__ import annotations

import re
from functools import lru_cache

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from ledger.core.errors import InvalidInput

__all__ = ["ZERO_ADDRESS", "checksummed", "checksummed_from_word"]

ZERO_ADDRESS = "0x" + "0" * 40
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

# EIP-55 is a Keccak-256 in Python (~4 us): remembered, since a log scan meets the same
# escrows and pledgers over and over.
_checksum = lru_cache(maxsize=65_536)(to_checksum_address)


def checksummed(address: str) -> ChecksumAddress:
    """``address`` (0x and 40 hex digits) in EIP-55 form.

    All-lowercase and all-uppercase spellings are accepted as they are (nodes answer in
    lowercase); a mixed-case one must already carry a valid checksum, because a wrong one
    is a typo that would otherwise name some other account. Raises ``InvalidInput``
    (``address_malformed``, ``address_checksum``)."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        shown = address[:64] if isinstance(address, str) else type(address).__name__
        raise InvalidInput(
            "address_malformed", f"{shown!r} is not an Ethereum address (0x and 40 hex digits)"
        )
    result: ChecksumAddress = _checksum(address)
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() and address != result:
        raise InvalidInput(
            "address_checksum",
            f"address {address} is not in EIP-55 checksummed form; did you mean {result}?",
            expected=result,
        )
    return result


def checksummed_from_word(word: bytes) -> ChecksumAddress:
    """The address in the low 20 bytes of a 32-byte ABI word (an indexed topic, a field)."""
    result: ChecksumAddress = _checksum("0x" + word[12:32].hex())
    return result
