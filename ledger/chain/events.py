"""What the chain says about the escrows, as plain records, and the fast decoding of logs.

The chain follower reads many logs (a benchmark asks for well over 1,000 events a second),
so logs are neither formatted by web3 (its eth_getLogs result formatters make every hex
field a HexBytes or an int: 3/4 of the time of a scan) nor run through its contract event
machinery (an ABI lookup per log). They come as the node wrote them (0x-hex text); topic 0
is looked up among the four escrow events' and the factory event's hashes, and the data is
decoded with ``eth_abi`` against the fixed types written here, which ``tests/chain`` checks
against the artifacts. The decoders take web3's formatted logs too (a receipt's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from ledger.chain.addresses import ZERO_ADDRESS, checksummed_from_word
from ledger.core.errors import Unavailable

__all__ = [
    "ESCROW_CREATED_TOPIC",
    "ESCROW_EVENT_TOPICS",
    "ESCROW_STATES",
    "BlockRef",
    "EscrowCreatedLog",
    "EscrowLog",
    "EscrowView",
    "decode_escrow_created",
    "decode_escrow_log",
    "hex32",
]

# The contract's ``enum State``, in declaration order.
ESCROW_STATES: Final = ("open", "funded", "finalized", "failed")

# The events' canonical signatures, as the compiler hashes them into topic 0.
_ESCROW_EVENTS: Final = {
    "Pledged(address,uint256,uint256)": "pledged",
    "Withdrawn(address,uint256,uint256)": "withdrawn",
    "Finalized(address,uint256)": "finalized",
    "Reclaimed(address,uint256)": "reclaimed",
}
_ESCROW_CREATED = "EscrowCreated(bytes32,address,address,address,uint256,uint256,uint256,address)"

# topic 0 -> (kind, types of the data): Pledged and Withdrawn carry (amount, total).
_ESCROW_KINDS: Final[Mapping[bytes, tuple[str, tuple[str, ...]]]] = {
    keccak(text=sig): (kind, ("uint256", "uint256") if sig.count(",") == 2 else ("uint256",))
    for sig, kind in _ESCROW_EVENTS.items()
}
ESCROW_EVENT_TOPICS: Final = tuple("0x" + t.hex() for t in _ESCROW_KINDS)
_CREATED_TOPIC: Final = keccak(text=_ESCROW_CREATED)
ESCROW_CREATED_TOPIC: Final = "0x" + _CREATED_TOPIC.hex()
_CREATED_DATA: Final = ("address", "address", "uint256", "uint256", "uint256")


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block as the follower tracks it: its number, hash (0x + 64 lowercase hex) and time."""

    number: int
    hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class EscrowLog:
    """One event of an escrow. ``kind`` is pledged, withdrawn, finalized or reclaimed;
    ``account`` is the pledger (the organizer for finalized); ``total`` the escrow's running
    total for pledged and withdrawn, else None. Addresses EIP-55, hashes 0x + lowercase hex."""

    kind: str
    escrow: str
    account: str
    amount: int
    total: int | None
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class EscrowCreatedLog:
    """The factory's ``EscrowCreated``: a new escrow for ``project_id`` (32 bytes);
    ``token`` is None for an ETH escrow (the event's zero address)."""

    project_id: bytes
    escrow: str
    organizer: str
    token: str | None
    goal: int
    deadline: int
    min_pledge: int
    creator: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class EscrowView:
    """An escrow's terms and standing, read in one block. ``state`` is open, funded,
    finalized or failed (as of that block's time)."""

    organizer: str
    goal: int
    deadline: int
    min_pledge: int
    total_pledged: int
    state: str


def hex32(value: Any) -> str:
    """A 32-byte hash (bytes, HexBytes or 0x-hex text) as 0x + 64 lowercase hex digits."""
    raw = _bytes(value)
    if len(raw) != 32:
        raise Unavailable("chain_unavailable", f"the node answered a hash of {len(raw)} bytes")
    return "0x" + raw.hex()


def _malformed(what: str, log: Mapping[str, Any]) -> Unavailable:
    where = f"block {log.get('blockNumber')!r}, log {log.get('logIndex')!r}"
    return Unavailable("chain_unavailable", f"the node answered a malformed {what} ({where})")


def decode_escrow_log(log: Mapping[str, Any]) -> EscrowLog | None:
    """The ``EscrowLog`` of one ``eth_getLogs`` entry as web3 formats it, or None when its
    topic 0 is not one of the four escrow events. A log that names an escrow event but does
    not decode as one is the node's fault: ``Unavailable("chain_unavailable")``."""
    topics = log["topics"]
    if not topics:
        return None
    known = _ESCROW_KINDS.get(_bytes(topics[0]))
    if known is None:
        return None
    kind, types = known
    try:
        if len(topics) != 2:
            raise ValueError("topic count")
        values = decode(types, _bytes(log["data"]))
        return EscrowLog(
            kind=kind,
            escrow=_address(log["address"]),
            account=checksummed_from_word(_bytes(topics[1])),
            amount=int(values[0]),
            total=int(values[1]) if len(values) == 2 else None,
            block_number=_int(log["blockNumber"]),
            block_hash=hex32(log["blockHash"]),
            tx_hash=hex32(log["transactionHash"]),
            log_index=_int(log["logIndex"]),
        )
    except Exception:  # eth_abi and bytes.fromhex raise several types for bad data
        raise _malformed(f"{kind} log", log) from None


def decode_escrow_created(log: Mapping[str, Any]) -> EscrowCreatedLog | None:
    """The ``EscrowCreatedLog`` of one factory log, or None when it is another event."""
    topics = log["topics"]
    if len(topics) == 0 or _bytes(topics[0]) != _CREATED_TOPIC:
        return None
    try:
        project_id = _bytes(topics[1])
        if len(topics) != 4 or len(project_id) != 32:
            raise ValueError("topic count")
        organizer, token, goal, deadline, min_pledge = decode(_CREATED_DATA, _bytes(log["data"]))
        return EscrowCreatedLog(
            project_id=project_id,
            escrow=checksummed_from_word(_bytes(topics[2])),
            organizer=_address(organizer),
            token=None if token == ZERO_ADDRESS else _address(token),
            goal=int(goal),
            deadline=int(deadline),
            min_pledge=int(min_pledge),
            creator=checksummed_from_word(_bytes(topics[3])),
            block_number=_int(log["blockNumber"]),
            block_hash=hex32(log["blockHash"]),
            tx_hash=hex32(log["transactionHash"]),
            log_index=_int(log["logIndex"]),
        )
    except Exception:  # eth_abi and bytes.fromhex raise several types for bad data
        raise _malformed("EscrowCreated log", log) from None


def _bytes(value: Any) -> bytes:
    """A node's 0x-hex (raw JSON-RPC) or web3's HexBytes (a formatted receipt) as bytes."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def _int(value: Any) -> int:
    """A quantity as a raw answer (0x-hex) or a formatted one (int) carries it."""
    return int(value, 16) if isinstance(value, str) else int(value)


def _address(value: str) -> str:
    """An address as the node or eth_abi gives it (lowercase, or already EIP-55)."""
    if len(value) != 42:
        raise ValueError("address length")
    return checksummed_from_word(bytes(12) + bytes.fromhex(value[2:]))
