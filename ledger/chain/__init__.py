"""The web3 boundary of the pledge escrows: the only package of the ledger that talks to a
node.

- ``ChainClient`` (``client``) reads: the head and any block by number (with its hash, how a
  reorg shows), the escrows' Pledged / Withdrawn / Finalized / Reclaimed logs and the
  factory's EscrowCreated logs as plain frozen records (``events``), and the escrows' views.
- ``Wallet`` (``wallet``) signs locally and sends: pledge, withdraw, finalize, reclaim, or
  any call. ``Deployer`` (``deploy``) is the platform's wallet: it deploys the factory and
  creates one escrow per project, idempotently.

What crosses the boundary is the ledger's own: records of ints and strings (addresses
EIP-55, hashes 0x + lowercase hex) and ledger errors with stable codes. web3's, requests'
and the socket's exceptions are translated in one context manager (``errors.chain_errors``):
a node that does not answer is ``Unavailable("chain_unavailable")``, a contract's revert is
``Refused`` named after its custom error (``pledge_below_minimum``). No message carries the
RPC URL's credentials or a private key.

Time, confirmations and reorgs are the follower's business (``follower``): it reads
confirmed blocks, hands them to ``ledger.funding.mirror`` and undoes a reorganisation,
one writer per chain (``lease``). ``gateway.FundingChain`` ties it together for the
server and the command line: configuration from the environment, the factory, escrow
deployment at opening, the contract's totals and the reconciliation report.
"""

from ledger.chain.addresses import checksummed
from ledger.chain.client import (
    ADDRESSES_PER_CALL_MAX,
    BLOCKS_PER_CALL_MAX,
    ChainClient,
)
from ledger.chain.deploy import Deployer
from ledger.chain.errors import chain_errors, escrow_abi
from ledger.chain.events import (
    ESCROW_STATES,
    BlockRef,
    EscrowCreatedLog,
    EscrowLog,
    EscrowView,
)
from ledger.chain.wallet import Wallet

__all__ = [
    "ADDRESSES_PER_CALL_MAX",
    "BLOCKS_PER_CALL_MAX",
    "ESCROW_STATES",
    "BlockRef",
    "ChainClient",
    "Deployer",
    "EscrowCreatedLog",
    "EscrowLog",
    "EscrowView",
    "Wallet",
    "chain_errors",
    "checksummed",
    "escrow_abi",
]
