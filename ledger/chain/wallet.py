"""An account that signs its own transactions: the one sending path of ``ledger.chain``.

A transaction is estimated first (so a revert comes back decoded, as ``Refused`` with the
contract's error name, before anything is spent), then built with the nonce counted from
the pending block, the node's chain id, the estimate plus a margin, and the node's
EIP-1559 fees (or a legacy gas price when the node has no base fee), signed here with
``eth_account`` and sent raw. The node never holds the key.

The private key stays inside: not in ``repr`` or ``str``, not in any message (each
boundary blanks its spellings from the text it quotes), and a malformed one is refused
without being echoed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ABI, ChecksumAddress, HexStr
from web3.exceptions import Web3Exception
from web3.types import TxParams, TxReceipt, Wei

from contracts import load_artifact
from ledger.chain.addresses import checksummed
from ledger.chain.client import ChainClient
from ledger.chain.events import hex32
from ledger.core.errors import InvalidInput, Refused

__all__ = ["GAS_MARGIN_PERCENT", "Wallet"]

# Added to the node's gas estimate: state can move between estimate and inclusion (another
# pledge lands first, a cold storage slot turns warm or back).
GAS_MARGIN_PERCENT: Final = 20
RECEIPT_POLL_S: Final = 0.05
_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


def _account_of(private_key: str) -> LocalAccount:
    """The signing account of ``private_key`` (32 bytes as hex, 0x optional). Refused with
    ``InvalidInput("private_key_malformed")``, never quoting it, when it is not one."""
    if not isinstance(private_key, str) or not _KEY.fullmatch(private_key):
        raise InvalidInput("private_key_malformed", "the private key is not 32 bytes of hex")
    try:
        account: LocalAccount = Account.from_key(private_key)
    except Exception:  # eth_keys: zero or above the curve order; its text may hold the key
        raise InvalidInput(
            "private_key_malformed", "the private key is not a valid secp256k1 key"
        ) from None
    return account


def _spellings(private_key: str) -> tuple[str, ...]:
    """Every way the key may show up in text, to blank from messages."""
    digits = private_key.removeprefix("0x")
    return tuple({form for d in (digits.lower(), digits.upper()) for form in (d, "0x" + d)})


class Wallet:
    """An account that pledges, withdraws, finalizes and reclaims on the escrows, signing
    locally with ``private_key``: the demo's and the tests' pledgers, and the base of
    ``Deployer``."""

    __slots__ = ("_account", "_client", "_secrets", "receipt_timeout_s")

    def __init__(
        self, client: ChainClient, private_key: str, *, receipt_timeout_s: float = 120.0
    ) -> None:
        self._client = client
        self._account = _account_of(private_key)
        self._secrets = _spellings(private_key)
        self.receipt_timeout_s = receipt_timeout_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(address={self.address})"

    @property
    def address(self) -> ChecksumAddress:
        """The account's address (EIP-55)."""
        address: ChecksumAddress = self._account.address
        return address

    @property
    def client(self) -> ChainClient:
        return self._client

    # The escrow's functions, for a pledger

    def pledge_eth(self, escrow: str, amount: int) -> TxReceipt:
        """Pledges ``amount`` wei to the ETH escrow ``escrow``."""
        return self.send_call(escrow, _eth_escrow_abi(), "pledge", (), value=amount)

    def withdraw(self, escrow: str) -> TxReceipt:
        """Takes back this account's whole pledge while the escrow is open."""
        return self.send_call(escrow, _eth_escrow_abi(), "withdraw", ())

    def finalize(self, escrow: str) -> TxReceipt:
        """Sends the escrow's total to its organizer (anyone may, once the goal is reached)."""
        return self.send_call(escrow, _eth_escrow_abi(), "finalize", ())

    def reclaim(self, escrow: str) -> TxReceipt:
        """Takes back this account's pledge after a deadline missed under the goal."""
        return self.send_call(escrow, _eth_escrow_abi(), "reclaim", ())

    def send_eth(self, to: str, amount: int) -> TxReceipt:
        """Sends ``amount`` wei to ``to`` (a plain transfer)."""
        return self.transact("send_eth", to=checksummed(to), data=HexStr("0x"), value=amount)

    # Sending

    def send_call(
        self,
        contract_address: str,
        abi: ABI,
        fn_name: str,
        args: Sequence[Any] = (),
        value: int = 0,
    ) -> TxReceipt:
        """Calls ``fn_name(*args)`` of the contract at ``contract_address`` in a transaction
        carrying ``value`` wei; returns the receipt once mined. A revert at estimate time
        raises its decoded ``Refused`` (``pledge_below_minimum``...); a mined transaction
        that failed raises ``Refused("transaction_reverted")``."""
        target = checksummed(contract_address)
        contract = self._client.web3.eth.contract(address=target, abi=abi)
        try:
            data = contract.encode_abi(fn_name, args=list(args))
        except (Web3Exception, TypeError, ValueError, OverflowError) as wrong:
            # The caller's mistake (a name the ABI lacks, a negative uint): no request was made.
            raise InvalidInput(
                "call_arguments_invalid",
                f"{fn_name}: the arguments do not fit the ABI ({type(wrong).__name__})",
            ) from None
        return self.transact(fn_name, to=target, data=data, value=value)

    def transact(
        self, action: str, *, to: ChecksumAddress | None, data: HexStr, value: int = 0
    ) -> TxReceipt:
        """Estimates, signs, sends and waits for one transaction (``to=None``: a deployment)."""
        if not isinstance(value, int) or value < 0:
            raise InvalidInput("amount_not_positive", f"{action}: value must be >= 0 wei")
        chain_id = self._client.chain_id()
        w3 = self._client.web3
        with self._client.boundary(action, secrets=self._secrets):
            estimate: TxParams = {"from": self.address, "data": data, "value": Wei(value)}
            if to is not None:
                estimate["to"] = to
            gas = int(w3.eth.estimate_gas(estimate))
            tx: dict[str, Any] = {"data": data, "value": value, "chainId": chain_id}
            if to is not None:
                tx["to"] = to
            tx["gas"] = gas + gas * GAS_MARGIN_PERCENT // 100
            tx["nonce"] = int(w3.eth.get_transaction_count(self.address, "pending"))
            base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
            if base_fee is None:
                tx["gasPrice"] = int(w3.eth.gas_price)
            else:
                tip = int(w3.eth.max_priority_fee)
                tx["maxPriorityFeePerGas"] = tip
                tx["maxFeePerGas"] = 2 * int(base_fee) + tip
            signed = self._account.sign_transaction(tx)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout_s, poll_latency=RECEIPT_POLL_S
            )
        if receipt["status"] != 1:
            mined = hex32(receipt["transactionHash"])
            raise Refused(
                "transaction_reverted",
                f"{action}: transaction {mined} reverted in block {receipt['blockNumber']}",
                tx_hash=mined,
                block_number=str(receipt["blockNumber"]),
            )
        return receipt


def _eth_escrow_abi() -> ABI:
    return load_artifact("EthPledgeEscrow").abi
