"""contracts.decode_custom_error: revert data named with an ABI (no EVM needed)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector

from contracts import DecodedError, UndecodableRevert, decode_custom_error, load_artifact

ESCROW = load_artifact("TokenPledgeEscrow").abi
TOKEN = "0x2946259E0334f33A064106302415aD3391BeD384"


def revert_data(signature: str, types: list[str], args: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, args)


def test_a_custom_error_is_named_with_its_arguments_from_bytes_or_hex() -> None:
    data = revert_data("PledgeBelowMinimum(uint256,uint256)", ["uint256", "uint256"], [5, 10])
    expected = DecodedError("PledgeBelowMinimum", (5, 10))
    assert decode_custom_error(ESCROW, data) == expected
    assert decode_custom_error(ESCROW, "0x" + data.hex()) == expected
    assert str(expected) == "PledgeBelowMinimum(5, 10)"


def test_an_error_without_arguments() -> None:
    data = revert_data("AlreadyFinalized()", [], [])
    assert decode_custom_error(ESCROW, data) == DecodedError("AlreadyFinalized", ())


def test_addresses_come_back_checksummed() -> None:
    data = revert_data("SafeERC20FailedOperation(address)", ["address"], [TOKEN.lower()])
    assert decode_custom_error(ESCROW, data).args == (TOKEN,)


def test_solidity_s_own_error_and_panic_are_always_known() -> None:
    assert decode_custom_error([], revert_data("Error(string)", ["string"], ["no"])) == (
        DecodedError("Error", ("no",))
    )
    assert decode_custom_error([], revert_data("Panic(uint256)", ["uint256"], [0x11])) == (
        DecodedError("Panic", (0x11,))
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "revert_too_short"),
        (b"\x01\x02\x03", "revert_too_short"),
        (revert_data("Unheard(uint256)", ["uint256"], [1]), "unknown_revert_selector"),
        (
            function_signature_to_4byte_selector("PledgeBelowMinimum(uint256,uint256)") + b"\x01",
            "revert_args_malformed",
        ),
    ],
)
def test_data_the_abi_cannot_name_is_refused(data: bytes, code: str) -> None:
    with pytest.raises(UndecodableRevert) as refused:
        decode_custom_error(ESCROW, data)
    assert refused.value.code == code
