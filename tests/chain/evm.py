"""An in-process EVM for the chain tests: eth-tester (py-evm) behind web3, answering a
revert the way a node does, a clock the tests move, and the contracts' artifacts.

web3 8's own eth-tester provider turns revert data into text ("execution reverted: b'...'");
``NodeLikeTesterProvider`` answers with JSON-RPC error 3 and the data as hex instead, as geth
and anvil do, so web3 raises ``ContractCustomError`` carrying the data, and the tests decode it
with ``contracts.decode_custom_error`` exactly as the API will at its boundary. (An eth_call
reverting with ``Error(string)`` reaches it already as text; it is raised as eth-tester raised it.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from eth_tester.exceptions import TransactionFailed
from eth_typing import ABI, ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse, TxParams, TxReceipt, Wei

from contracts import decode_custom_error, load_artifact

# Gas for transactions sent without estimating (py-evm's estimate runs the call a dozen
# times); a reverted one is mined with status 0 instead of raising.
TX_GAS = 3_000_000


class NodeLikeTesterProvider(EthereumTesterProvider):
    """eth-tester, with reverts answered as a JSON-RPC node answers them (code 3, data)."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        namespace, _, endpoint = method.partition("_")
        delegator = (self.api_endpoints or {}).get(namespace, {}).get(endpoint)
        if delegator is None:
            return super().make_request(method, params)
        request_id = self._current_request_id
        self._current_request_id += 1
        try:
            result = delegator(self.ethereum_tester, params)
        except TransactionFailed as failed:
            data = _revert_data(failed)
            if data is None:
                raise
            error = {"code": 3, "message": "execution reverted", "data": "0x" + data.hex()}
            return cast(RPCResponse, {"id": request_id, "jsonrpc": "2.0", "error": error})
        return cast(RPCResponse, {"id": request_id, "jsonrpc": "2.0", "result": result})


def _revert_data(failed: TransactionFailed) -> bytes | None:
    """The raw revert bytes eth-tester put in the exception: bytes (sometimes one exception
    down) from an estimate, their repr (``"b'...'"``) from an eth_call."""
    first = failed.args[0] if failed.args else None
    if isinstance(first, Exception):
        first = first.args[0] if first.args else None
    if isinstance(first, str) and first[:2] in ("b'", 'b"'):
        first = ast.literal_eval(first)
    return first if isinstance(first, bytes) else None


class Chain:
    """One eth-tester chain: accounts, deployment from artifacts, sending, and time."""

    def __init__(self) -> None:
        self.provider = NodeLikeTesterProvider()
        self.w3 = Web3(self.provider)
        self.accounts: list[ChecksumAddress] = list(self.w3.eth.accounts)
        # eth-tester has no types; this is the one place its object is used.
        self.tester: Any = self.provider.ethereum_tester

    def deploy(self, name: str, *args: Any, sender: ChecksumAddress | None = None) -> Contract:
        """Deploys the artifact ``name`` with constructor ``args``; raises on a revert."""
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx_hash = factory.constructor(*args).transact({"from": sender or self.accounts[0]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        address = receipt["contractAddress"]
        assert address is not None
        return self.at(name, address)

    def at(self, name: str, address: ChecksumAddress) -> Contract:
        """The contract ``name`` already deployed at ``address``."""
        return self.w3.eth.contract(address=address, abi=load_artifact(name).abi)

    def send(
        self, call: ContractFunction, sender: ChecksumAddress, value: int = 0, estimate: bool = True
    ) -> TxReceipt:
        """Sends ``call`` from ``sender``. Estimating first (the default) raises the decoded
        revert; ``estimate=False`` sends with a fixed gas and returns even a failed receipt."""
        params: TxParams = {"from": sender, "value": Wei(value)}
        if not estimate:
            params["gas"] = TX_GAS
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact(params))
        if estimate:
            assert receipt["status"] == 1
        return receipt

    def latest_timestamp(self) -> int:
        """The time of the latest block: what views (eth_call) see as ``block.timestamp``."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def pending_timestamp(self) -> int:
        """The time of the block the next transaction lands in (and estimates run in):
        py-evm stamps a new block max(parent + 1, wall clock), fixed until it is mined."""
        return int(self.w3.eth.get_block("pending")["timestamp"])

    def next_block_at(self, timestamp: int) -> None:
        """Makes the next transaction (and the next estimate) run in a block stamped
        ``timestamp``."""
        pending = self.pending_timestamp()
        if timestamp < pending:
            raise ValueError(f"cannot go back in time: {timestamp} < {pending}")
        if timestamp > pending:
            # eth-tester mines a block at timestamp - 1, leaving the pending one at timestamp.
            self.tester.time_travel(timestamp)

    def mine_at(self, timestamp: int) -> None:
        """Mines an empty block stamped ``timestamp``: views (eth_call) read the latest block."""
        self.next_block_at(timestamp)
        self.tester.mine_blocks(1)

    def balance(self, address: ChecksumAddress) -> int:
        return int(self.w3.eth.get_balance(address))

    def snapshot(self) -> int:
        return int(self.tester.take_snapshot())

    def revert_to(self, snapshot: int) -> None:
        self.tester.revert_to_snapshot(snapshot)


def emitted(contract: Contract, event: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    """The arguments of every ``event`` that ``contract`` logged in ``receipt``, in order."""
    logs = contract.events[event]().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in logs if log["address"] == contract.address]


def fee_of(receipt: TxReceipt) -> int:
    """What the sender paid for gas in ``receipt``, in wei."""
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


@contextmanager
def reverts(abi: ABI, name: str, *args: Any) -> Iterator[None]:
    """Expects the block to revert with the error ``name(*args)``, decoded with ``abi``."""
    with pytest.raises(ContractLogicError) as caught:
        yield
    data = caught.value.data
    assert isinstance(data, str), f"revert without data: {caught.value!r}"
    decoded = decode_custom_error(abi, data)
    assert (decoded.name, decoded.args) == (name, args), f"reverted with {decoded}"
