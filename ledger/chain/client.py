"""Reading the pledge escrows from a node: blocks, the escrows' and the factory's logs, and
the escrows' views, as plain records. Every call goes through ``chain_errors``, so a caller
meets only ledger errors (``ledger.chain.errors`` draws them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final
from urllib.parse import urlsplit

from eth_typing import ChecksumAddress
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import BlockIdentifier, RPCEndpoint, TxParams, Wei

from contracts import load_artifact
from ledger.chain.addresses import ZERO_ADDRESS, checksummed
from ledger.chain.errors import chain_errors
from ledger.chain.events import (
    ESCROW_CREATED_TOPIC,
    ESCROW_EVENT_TOPICS,
    ESCROW_STATES,
    BlockRef,
    EscrowCreatedLog,
    EscrowLog,
    EscrowView,
    decode_escrow_created,
    decode_escrow_log,
    hex32,
)
from ledger.core.errors import InvalidInput, Unavailable

__all__ = [
    "ADDRESSES_PER_CALL_MAX",
    "BLOCKS_PER_CALL_MAX",
    "BlockRef",
    "ChainClient",
    "EscrowCreatedLog",
    "EscrowLog",
    "EscrowView",
]

# Bounds of one eth_getLogs: public providers refuse wider ranges or longer address lists
# (and answer slowly near them); a scan is split into calls within both.
ADDRESSES_PER_CALL_MAX: Final = 100
BLOCKS_PER_CALL_MAX: Final = 2_000
TIMEOUT_S_MAX: Final = 300.0
_GET_LOGS: Final = RPCEndpoint("eth_getLogs")


def _endpoint_of(rpc_url: str) -> tuple[str, tuple[str, ...]]:
    """How messages may name the node (scheme, host and port: never the user part, path or
    query, where providers put API keys) and the spellings to blank from any quoted text."""
    try:
        parts = urlsplit(rpc_url)
        port = parts.port
    except ValueError:
        raise InvalidInput("rpc_url_malformed", "the RPC URL does not parse") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("rpc_url_malformed", "the RPC URL must be http(s)://host[:port]/...")
    endpoint = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")
    userinfo = parts.netloc.rpartition("@")[0]
    secrets = (rpc_url, userinfo, parts.username, parts.password, parts.path, parts.query)
    return endpoint, tuple(s for s in secrets if s and s != "/")


def _block_range(from_block: int, to_block: int, step: int) -> Iterator[tuple[int, int]]:
    """``[from_block, to_block]`` in consecutive inclusive pieces of at most ``step`` blocks."""
    start = from_block
    while start <= to_block:
        end = min(start + step - 1, to_block)
        yield start, end
        start = end + 1


def _check_chunk(name: str, value: int, maximum: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput("chunk_size_invalid", f"{name} must be 1..{maximum}, not {value!r}")


def _check_block_number(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput("block_range_invalid", f"{name} must be a block number >= 0")


def _address_topic(address: str) -> str:
    """An address as an indexed topic: left-padded to 32 bytes, lowercase."""
    return "0x" + "00" * 12 + checksummed(address)[2:].lower()


class ChainClient:
    """One node, read through web3: the reads the chain follower and the API need.

    Give either ``rpc_url`` (an HTTP(S) JSON-RPC endpoint; each request times out after
    ``timeout_s`` and is not retried, so an unreachable node fails fast and the caller
    decides on retries) or a ready ``web3`` (the tests' in-process chain).
    """

    def __init__(
        self, rpc_url: str | None = None, *, web3: Web3 | None = None, timeout_s: float = 10.0
    ) -> None:
        if not 0 < timeout_s <= TIMEOUT_S_MAX:
            raise InvalidInput("chain_client_config", f"timeout_s must be in (0, {TIMEOUT_S_MAX}]")
        self._endpoint = "the chain node"
        self._secrets: tuple[str, ...] = ()
        if rpc_url is not None and web3 is None:
            self._endpoint, self._secrets = _endpoint_of(rpc_url)
            provider = HTTPProvider(
                rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
            )
            self._w3: Web3 = Web3(provider)
        elif web3 is not None and rpc_url is None:
            self._w3 = web3
        else:
            raise InvalidInput("chain_client_config", "give exactly one of rpc_url and web3")
        self._chain_id: int | None = None
        self._factory_abi = load_artifact("PledgeEscrowFactory").abi
        self._escrow_abi = load_artifact("EthPledgeEscrow").abi

    def __repr__(self) -> str:
        return f"ChainClient({self._endpoint})"

    @property
    def web3(self) -> Web3:
        """The web3 underneath, for the signers of ``ledger.chain.wallet``. A call made on it
        directly must run inside ``boundary()``."""
        return self._w3

    def boundary(self, action: str, *, secrets: Sequence[str] = ()) -> AbstractContextManager[None]:
        """``chain_errors`` for this node: its name for messages, its URL among the secrets
        (plus the caller's ``secrets``, such as a signer's key)."""
        return chain_errors(action, endpoint=self._endpoint, secrets=(*self._secrets, *secrets))

    # Blocks

    def chain_id(self) -> int:
        """The node's chain id (EIP-155), asked once and remembered."""
        if self._chain_id is None:
            with self.boundary("chain_id"):
                self._chain_id = int(self._w3.eth.chain_id)
        return self._chain_id

    def head(self) -> BlockRef:
        """The latest block."""
        return self._block("latest", "head")

    def block(self, number: int) -> BlockRef:
        """Block ``number`` of the node's current chain; ``NotFound("block_not_found")`` when
        there is none (yet, or any more after a reorg). Its hash is how a reorg shows."""
        _check_block_number("number", number)
        return self._block(number, "block")

    def _block(self, identifier: BlockIdentifier, action: str) -> BlockRef:
        with self.boundary(action):
            data = self._w3.eth.get_block(identifier)
            return BlockRef(int(data["number"]), hex32(data["hash"]), int(data["timestamp"]))

    # Logs

    def escrow_logs(
        self,
        escrows: Sequence[str],
        from_block: int,
        to_block: int,
        *,
        addresses_per_call: int = ADDRESSES_PER_CALL_MAX,
        blocks_per_call: int = BLOCKS_PER_CALL_MAX,
    ) -> list[EscrowLog]:
        """Every Pledged, Withdrawn, Finalized and Reclaimed of ``escrows`` in blocks
        ``from_block..to_block`` (inclusive; empty when from_block > to_block), sorted by
        (block_number, log_index). One eth_getLogs per chunk of at most
        ``addresses_per_call`` escrows and ``blocks_per_call`` blocks."""
        _check_block_number("from_block", from_block)
        _check_block_number("to_block", to_block)
        _check_chunk("addresses_per_call", addresses_per_call, ADDRESSES_PER_CALL_MAX)
        _check_chunk("blocks_per_call", blocks_per_call, BLOCKS_PER_CALL_MAX)
        addresses = list(dict.fromkeys(checksummed(e) for e in escrows))
        found: list[EscrowLog] = []
        for start, end in _block_range(from_block, to_block, blocks_per_call):
            for i in range(0, len(addresses), addresses_per_call):
                params = {
                    "address": addresses[i : i + addresses_per_call],
                    "fromBlock": hex(start),
                    "toBlock": hex(end),
                    "topics": [list(ESCROW_EVENT_TOPICS)],
                }
                for log in self._get_logs(params):
                    decoded = decode_escrow_log(log)
                    if decoded is not None:
                        found.append(decoded)
        found.sort(key=lambda log: (log.block_number, log.log_index))
        return found

    def escrows_created(
        self,
        factory: str,
        creator: str,
        from_block: int,
        to_block: int,
        *,
        project_id: bytes | None = None,
        blocks_per_call: int = BLOCKS_PER_CALL_MAX,
    ) -> list[EscrowCreatedLog]:
        """The ``EscrowCreated`` events of ``factory`` whose creator is ``creator`` (and, if
        given, for ``project_id`` only) in ``from_block..to_block``, sorted by position."""
        _check_block_number("from_block", from_block)
        _check_block_number("to_block", to_block)
        _check_chunk("blocks_per_call", blocks_per_call, BLOCKS_PER_CALL_MAX)
        project_topic = None if project_id is None else "0x" + _project_id(project_id).hex()
        topics = [ESCROW_CREATED_TOPIC, project_topic, None, _address_topic(creator)]
        address = checksummed(factory)
        found: list[EscrowCreatedLog] = []
        for start, end in _block_range(from_block, to_block, blocks_per_call):
            params = {
                "address": [address],
                "fromBlock": hex(start),
                "toBlock": hex(end),
                "topics": topics,
            }
            for log in self._get_logs(params):
                decoded = decode_escrow_created(log)
                if decoded is not None:
                    found.append(decoded)
        found.sort(key=lambda log: (log.block_number, log.log_index))
        return found

    def _get_logs(self, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        """One eth_getLogs, its answer as the node wrote it (see ``events``: web3's result
        formatting would cost three times the decoding). Errors are still web3's."""
        with self.boundary("eth_getLogs"):
            logs = self._w3.manager.request_blocking(_GET_LOGS, [params])
            if not isinstance(logs, list):
                raise Unavailable("chain_unavailable", "eth_getLogs: the answer is not a list")
            return logs

    # Views

    def escrow_of(self, factory: str, creator: str, project_id: bytes) -> str | None:
        """The escrow ``creator`` made through ``factory`` for ``project_id``, or None."""
        contract = self._contract(factory, self._factory_abi)
        with self.boundary("escrow_of"):
            found = contract.functions.escrowOf(checksummed(creator), _project_id(project_id))
            address = str(found.call())
        return None if address == ZERO_ADDRESS else checksummed(address)

    def escrow_view(self, escrow: str) -> EscrowView:
        """The escrow's terms, total and state, all read in the same (latest) block."""
        functions = self._contract(escrow, self._escrow_abi).functions
        with self.boundary("escrow_view"):
            at = int(self._w3.eth.block_number)
            state = int(functions.state().call(block_identifier=at))
            if not 0 <= state < len(ESCROW_STATES):
                raise Unavailable("chain_unavailable", f"escrow_view: unknown state {state}")
            return EscrowView(
                organizer=checksummed(str(functions.organizer().call(block_identifier=at))),
                goal=int(functions.goal().call(block_identifier=at)),
                deadline=int(functions.deadline().call(block_identifier=at)),
                min_pledge=int(functions.minPledge().call(block_identifier=at)),
                total_pledged=int(functions.totalPledged().call(block_identifier=at)),
                state=ESCROW_STATES[state],
            )

    def total_pledged(self, escrow: str) -> int:
        """The escrow's total of pledges not taken back (kept as the record after finalize)."""
        functions = self._contract(escrow, self._escrow_abi).functions
        with self.boundary("total_pledged"):
            return int(functions.totalPledged().call())

    def pledge_of(self, escrow: str, pledger: str) -> int:
        """What ``pledger`` has pledged to ``escrow`` and not taken back."""
        functions = self._contract(escrow, self._escrow_abi).functions
        with self.boundary("pledge_of"):
            return int(functions.pledgeOf(checksummed(pledger)).call())

    def check_pledge(self, escrow: str, pledger: str, amount: int) -> None:
        """Would ``pledger``'s ``pledge()`` of ``amount`` wei be accepted now? Returns if so;
        otherwise raises the escrow's refusal, decoded (``pledge_below_minimum``,
        ``pledge_after_deadline``, ``already_finalized``, ...). Nothing is sent."""
        functions = self._contract(escrow, self._escrow_abi).functions
        with self.boundary("check_pledge"):
            params: TxParams = {"from": checksummed(pledger), "value": Wei(amount)}
            functions.pledge().call(params)

    def balance(self, address: str) -> int:
        """The ETH balance of ``address`` in wei (in the latest block)."""
        target = checksummed(address)
        with self.boundary("balance"):
            return int(self._w3.eth.get_balance(target))

    def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at ``address`` (in the latest block)."""
        target = checksummed(address)
        with self.boundary("has_code"):
            return len(self._w3.eth.get_code(target)) > 0

    def _contract(self, address: str, abi: Any) -> Contract:
        target: ChecksumAddress = checksummed(address)
        return self._w3.eth.contract(address=target, abi=abi)  # no request is made here


def _project_id(project_id: bytes) -> bytes:
    """A project id as the factory keys it: exactly 32 bytes."""
    if not isinstance(project_id, bytes) or len(project_id) != 32:
        raise InvalidInput("project_id_invalid", "a project id on chain is exactly 32 bytes")
    return project_id
