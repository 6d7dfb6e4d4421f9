"""Member addresses: 0x and 40 hex digits, in EIP-55 checksummed form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput, LedgerError
from ledger.registry.address import validate_address


def code_of(call: Callable[[], object], error: type[LedgerError]) -> str:
    """Run ``call``; fail unless it raises ``error``; return the error's stable code."""
    with pytest.raises(error) as info:
        call()
    return info.value.code


# The test vectors published with EIP-55.
EIP55_VECTORS = (
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)


@pytest.mark.parametrize("address", [*EIP55_VECTORS, "0x" + "1" * 40, "0x" + "0" * 40])
def test_checksummed_addresses_are_accepted_unchanged(address: str) -> None:
    assert validate_address(address) == address


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_lowercase_is_refused_and_names_the_checksummed_form(address: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_address(address.lower())
    assert info.value.code == "address_checksum"
    assert info.value.detail == {"expected": address}
    assert address in info.value.message


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_uppercase_hex_is_refused(address: str) -> None:
    shouted = "0x" + address[2:].upper()
    assert code_of(lambda: validate_address(shouted), InvalidInput) == "address_checksum"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "0x",
        "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # no 0x
        "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # capital X
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",  # 39 digits
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd",  # 41 digits
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",  # not hex
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n",
        " 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1Be\u0661ed",  # a non-ASCII digit
        "0x" + "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" * 100,
    ],
)
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_address(address)
    assert info.value.code == "address_malformed"
    assert len(info.value.message) < 200  # a long input is not echoed whole


@pytest.mark.parametrize("value", [None, 42, b"0x" + b"1" * 40, ["0x" + "1" * 40]])
def test_non_text_is_malformed(value: object) -> None:
    assert code_of(lambda: validate_address(cast(Any, value)), InvalidInput) == "address_malformed"


@given(st.binary(min_size=20, max_size=20))
def test_any_checksummed_address_is_accepted(raw: bytes) -> None:
    address = to_checksum_address("0x" + raw.hex())
    assert validate_address(address) == address


@given(st.binary(min_size=20, max_size=20), st.data())
def test_flipping_the_case_of_any_one_letter_is_caught(raw: bytes, data: st.DataObject) -> None:
    address = to_checksum_address("0x" + raw.hex())
    letters = [i for i, c in enumerate(address) if i >= 2 and c.isalpha()]
    assume(letters)
    i = data.draw(st.sampled_from(letters), label="index")
    flipped = address[:i] + address[i].swapcase() + address[i + 1 :]
    assert code_of(lambda: validate_address(flipped), InvalidInput) == "address_checksum"
