"""Revert data decoded into the error's name and arguments, with the contract's ABI.

web3 raises ``ContractCustomError`` carrying the raw revert data as hex; the ABI of the
contract that reverted (or the ABIs of every contract the call went through, joined) names
it. Solidity's two built-in errors, ``Error(string)`` and ``Panic(uint256)``, are always known.
Addresses come back checksummed (EIP-55), the way web3 returns them from calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_typing import ABIComponent, ABIElement
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.conversions import to_bytes

from contracts.errors import UndecodableRevert

__all__ = ["DecodedError", "decode_custom_error", "error_selectors"]

_BUILT_IN: dict[bytes, tuple[str, tuple[str, ...]]] = {
    function_signature_to_4byte_selector("Error(string)"): ("Error", ("string",)),
    function_signature_to_4byte_selector("Panic(uint256)"): ("Panic", ("uint256",)),
}


@dataclass(frozen=True, slots=True)
class DecodedError:
    """A revert, named: ``PledgeBelowMinimum(amount=5, minimum=10)`` is
    ``DecodedError("PledgeBelowMinimum", (5, 10))``."""

    name: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(repr(a) for a in self.args)})"


def _type(component: ABIComponent) -> str:
    """The canonical type of one input, tuples spelled out as ``(t1,t2)``."""
    kind = component["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_type(c) for c in component.get("components", ()))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def error_selectors(abi: Iterable[ABIElement]) -> Mapping[bytes, tuple[str, tuple[str, ...]]]:
    """Every error of ``abi`` (plus ``Error`` and ``Panic``) by its 4-byte selector:
    ``selector -> (name, input types)``."""
    found = dict(_BUILT_IN)
    for element in abi:
        if element["type"] != "error":
            continue
        types = tuple(_type(i) for i in element.get("inputs", ()))
        signature = f"{element['name']}({','.join(types)})"
        found[function_signature_to_4byte_selector(signature)] = (element["name"], types)
    return found


def decode_custom_error(abi: Iterable[ABIElement], data: bytes | str) -> DecodedError:
    """The error that ``data`` (raw revert bytes, or their 0x-hex) encodes, named by ``abi``.

    Raises ``UndecodableRevert`` when the data is shorter than a selector, when no error
    of the ABI has that selector, or when the arguments do not decode as its inputs.
    """
    raw = to_bytes(hexstr=data) if isinstance(data, str) else data
    if len(raw) < 4:
        raise UndecodableRevert("revert_too_short", f"revert data of {len(raw)} bytes")
    known = error_selectors(abi).get(raw[:4])
    if known is None:
        raise UndecodableRevert(
            "unknown_revert_selector", f"no error in the ABI has selector 0x{raw[:4].hex()}"
        )
    name, types = known
    try:
        values = decode(types, raw[4:])
    except Exception as bad:  # eth_abi raises several unrelated types for short or bad data
        raise UndecodableRevert(
            "revert_args_malformed", f"{name} arguments do not decode: {bad}"
        ) from None
    return DecodedError(name, tuple(_checksummed(t, v) for t, v in zip(types, values, strict=True)))


def _checksummed(kind: str, value: Any) -> Any:
    """Addresses as EIP-55 checksummed strings, as web3 gives them everywhere else."""
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("address[") and kind.endswith("]"):
        return tuple(_checksummed(kind[: kind.rindex("[")], v) for v in value)
    return value
