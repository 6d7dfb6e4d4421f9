"""The platform's account on chain: deploys the factory and creates one escrow per project.

Creating an escrow is idempotent, so a retry after a crash or a timeout never makes a second
one: the factory is asked first (``escrowOf(creator, projectId)``) and an existing escrow is
returned as it is. The factory enforces the same rule on chain (``ProjectAlreadyHasEscrow``),
which settles the race of two senders: the loser's estimate reverts, and it too returns the
winner's escrow.
"""

from __future__ import annotations

from typing import Any

from eth_typing import HexStr
from web3.types import TxReceipt

from contracts import load_artifact
from ledger.chain.addresses import checksummed
from ledger.chain.events import decode_escrow_created
from ledger.chain.wallet import Wallet
from ledger.core.errors import InvalidInput, Refused, Unavailable

__all__ = ["Deployer"]


class Deployer(Wallet):
    """The account that deploys the factory and creates the projects' escrows; built from
    ``(client, private_key)`` like any ``Wallet`` (whose sending it uses)."""

    __slots__ = ()

    def deploy_factory(self) -> str:
        """Deploys ``PledgeEscrowFactory``; returns its address once mined."""
        bytecode = HexStr(load_artifact("PledgeEscrowFactory").bytecode)
        receipt = self.transact("deploy_factory", to=None, data=bytecode)
        address = receipt["contractAddress"]
        if address is None:
            raise Unavailable("chain_unavailable", "deploy_factory: receipt without an address")
        return checksummed(str(address))

    def create_eth_escrow(
        self,
        factory: str,
        project_id: bytes,
        organizer: str,
        goal: int,
        deadline: int,
        min_pledge: int,
        *,
        search_from_block: int = 0,
    ) -> tuple[str, int]:
        """The ETH escrow of ``project_id`` and the block it was created in: the one this
        account already made through ``factory`` (its ``EscrowCreated`` looked up from
        ``search_from_block``; the head's number if not found there), else a new one."""
        args = (project_id, checksummed(organizer), goal, deadline, min_pledge)
        return self._create(factory, "createEthEscrow", args, search_from_block)

    def create_token_escrow(
        self,
        factory: str,
        project_id: bytes,
        token: str,
        organizer: str,
        goal: int,
        deadline: int,
        min_pledge: int,
        *,
        search_from_block: int = 0,
    ) -> tuple[str, int]:
        """``create_eth_escrow`` for an escrow of the ERC-20 ``token``."""
        args = (project_id, checksummed(token), checksummed(organizer), goal, deadline, min_pledge)
        return self._create(factory, "createTokenEscrow", args, search_from_block)

    def _create(
        self, factory: str, fn_name: str, args: tuple[Any, ...], search_from_block: int
    ) -> tuple[str, int]:
        project_id = args[0]
        if not isinstance(project_id, bytes) or len(project_id) != 32:
            raise InvalidInput("project_id_invalid", "a project id on chain is exactly 32 bytes")
        factory = checksummed(factory)
        existing = self._existing(factory, project_id, search_from_block)
        if existing is not None:
            return existing
        abi = load_artifact("PledgeEscrowFactory").abi
        try:
            receipt = self.send_call(factory, abi, fn_name, args)
        except Refused as refused:
            # Another send of ours (an earlier attempt still pending at the first check) won.
            if refused.code == "project_already_has_escrow":
                existing = self._existing(factory, project_id, search_from_block)
                if existing is not None:
                    return existing
            raise
        return _created_in(receipt, factory, project_id)

    def _existing(
        self, factory: str, project_id: bytes, search_from_block: int
    ) -> tuple[str, int] | None:
        """The escrow this account already created for ``project_id`` and its block."""
        escrow = self.client.escrow_of(factory, self.address, project_id)
        if escrow is None:
            return None
        head = self.client.head()
        created = self.client.escrows_created(
            factory, self.address, search_from_block, head.number, project_id=project_id
        )
        for event in created:
            if event.escrow == escrow:
                return escrow, event.block_number
        return escrow, head.number


def _created_in(receipt: TxReceipt, factory: str, project_id: bytes) -> tuple[str, int]:
    """The escrow announced by ``factory``'s ``EscrowCreated`` in ``receipt``."""
    for log in receipt["logs"]:
        if log["address"] != factory:
            continue
        event = decode_escrow_created(log)
        if event is not None and event.project_id == project_id:
            return event.escrow, int(receipt["blockNumber"])
    raise Unavailable(
        "chain_unavailable", "create escrow: the receipt carries no EscrowCreated of the factory"
    )
