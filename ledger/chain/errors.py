"""The one place where web3's, the node's and the contracts' failures become ledger errors.

Nothing raised by web3, requests or the socket leaves ``ledger.chain``: ``chain_errors``
(used by the client and by every signer) translates it, the way httpx maps its transport's
exceptions in a single context manager::

    Unavailable                  the node did not answer in time, or answered with an error;
    │                            the same call may succeed later
    ├── chain_unavailable        connection refused or reset, timeout, an RPC error, a
    │                            transaction not mined in time, an answer that does not parse
    Refused                      a contract said no (a revert); retrying the same call won't help
    ├── <error name, snake_case> a custom error of the escrows or the factory, named with their
    │                            joined ABI: PledgeBelowMinimum -> pledge_below_minimum, its
    │                            arguments in ``detail`` as strings under their ABI names
    ├── contract_reverted        Error(string), a bare revert, or data no escrow ABI names
    ├── contract_panicked        Panic(uint256): an assert or arithmetic failure
    └── transaction_reverted     a mined transaction whose receipt has status 0
    NotFound
    ├── block_not_found          no block of that number (not yet, or no more after a reorg)
    └── contract_not_found       a view answered nothing: no contract at the address
    InvalidInput                 raised before any request: address_malformed,
                                 address_checksum, block_range_invalid, chunk_size_invalid,
                                 project_id_invalid, private_key_malformed, rpc_url_malformed,
                                 chain_client_config, call_arguments_invalid,
                                 amount_not_positive

Messages are one line and never carry a secret: URLs are cut out (an RPC URL often holds
an API key in its path or its user part), and the caller's secrets (the URL itself, a
private key) are blanked wherever they might appear. The original exception is not
chained (``from None``), so a logged traceback cannot show it either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from eth_typing import ABI
from web3.exceptions import (
    BadFunctionCallOutput,
    BlockNotFound,
    ContractLogicError,
    Web3Exception,
    Web3RPCError,
)

from contracts import UndecodableRevert, decode_custom_error, load_artifact
from ledger.core.errors import LedgerError, NotFound, Refused, Unavailable

__all__ = ["MESSAGE_LEN_MAX", "chain_errors", "escrow_abi", "refusal", "snake_case"]

# Every contract whose revert this boundary can name: the factory and both escrows.
_CONTRACTS = ("PledgeEscrowFactory", "EthPledgeEscrow", "TokenPledgeEscrow")
MESSAGE_LEN_MAX = 300  # of the node's own words quoted in a message
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SECRET_LEN_MIN = 3  # shorter "secrets" ("/", "a") would blank ordinary characters


@cache
def escrow_abi() -> ABI:
    """The factory's and both escrows' ABIs joined: enough to name any of their reverts."""
    joined: list[Any] = []
    for name in _CONTRACTS:
        joined.extend(load_artifact(name).abi)
    return joined


@cache
def _error_inputs() -> dict[str, tuple[str, ...]]:
    """The argument names of each custom error, by error name (the same in every contract)."""
    found: dict[str, tuple[str, ...]] = {}
    for element in escrow_abi():
        if element["type"] == "error":
            found[element["name"]] = tuple(i["name"] for i in element.get("inputs", ()))
    return found


def snake_case(name: str) -> str:
    """``PledgeBelowMinimum`` -> ``pledge_below_minimum``; ``ERC20Failed`` -> ``erc20_failed``."""
    return _WORD_BOUNDARY.sub("_", name).lower()


def _scrubbed(text: str, secrets: Sequence[str]) -> str:
    """``text`` on one line, without URLs or any of ``secrets``, cut to a bounded length."""
    for secret in secrets:
        if len(secret) >= _SECRET_LEN_MIN:
            text = text.replace(secret, "<redacted>")
    text = _URL.sub("<url>", text)
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LEN_MAX else text[: MESSAGE_LEN_MAX - 3] + "..."


def _as_text(value: Any) -> str:
    """An error argument as ``detail`` text: bytes as 0x-hex, everything else as ``str``."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_as_text(v) for v in value) + "]"
    return str(value)


def refusal(revert: ContractLogicError, action: str, secrets: Sequence[str] = ()) -> Refused:
    """The ``Refused`` that a revert means, named from its data with ``escrow_abi()``."""
    data: object = revert.data
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, str) and data.startswith("Reverted "):  # old ganache style
        data = data.removeprefix("Reverted ")
    said = _scrubbed(str(revert.message or "execution reverted"), secrets)
    if not (isinstance(data, str) and data.startswith("0x") and len(data) >= 10):
        return Refused("contract_reverted", f"{action}: the contract reverted ({said})")
    try:
        decoded = decode_custom_error(escrow_abi(), data)
    except UndecodableRevert as unknown:
        return Refused(
            "contract_reverted",
            f"{action}: the contract reverted with error 0x{data[2:10]}, "
            f"which no escrow ABI names ({unknown.code})",
            selector="0x" + data[2:10],
        )
    if decoded.name == "Error":
        reason = _scrubbed(str(decoded.args[0]), secrets)
        return Refused("contract_reverted", f"{action}: reverted: {reason}", reason=reason)
    if decoded.name == "Panic":
        code = hex(int(decoded.args[0]))
        return Refused("contract_panicked", f"{action}: Panic({code})", panic_code=code)
    names = _error_inputs().get(decoded.name, ())
    if len(names) != len(decoded.args) or not all(names):
        names = tuple(f"arg{i}" for i in range(len(decoded.args)))
    detail = {snake_case(n): _as_text(v) for n, v in zip(names, decoded.args, strict=True)}
    shown = ", ".join(f"{n}={v}" for n, v in zip(names, map(_as_text, decoded.args), strict=True))
    return Refused(
        snake_case(decoded.name),
        f"{action}: the contract refused with {decoded.name}({shown})",
        **detail,
    )


@contextmanager
def chain_errors(
    action: str, *, endpoint: str = "the chain node", secrets: Sequence[str] = ()
) -> Iterator[None]:
    """Runs the block, translating what web3 or the transport raise (module docstring).

    ``action`` names the operation in messages; ``endpoint`` names the node without any
    credential (``http://host:port``); ``secrets`` are blanked from any text quoted."""
    try:
        yield
    except LedgerError:
        raise
    except ContractLogicError as revert:
        raise refusal(revert, action, secrets) from None
    except BlockNotFound:
        raise NotFound("block_not_found", f"{action}: {endpoint} has no such block") from None
    except BadFunctionCallOutput:
        raise NotFound(
            "contract_not_found", f"{action}: no contract answered (no code at that address?)"
        ) from None
    # OSError covers requests' errors, refused or reset connections and socket timeouts;
    # ValueError an answer that is not JSON or does not decode as the ABI says; LookupError
    # an answer that lacks a field.
    except (Web3Exception, OSError, ValueError, LookupError) as failure:
        said = failure.message if isinstance(failure, Web3RPCError) else str(failure)
        raise Unavailable(
            "chain_unavailable",
            f"{action}: {endpoint} failed: {type(failure).__name__}: {_scrubbed(said, secrets)}",
        ) from None
