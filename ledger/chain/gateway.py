"""The funding service's chain: configuration, the factory, escrow deployment, and the
follower, for the server, the command line and the demo.

``ChainConfig.from_env`` reads ``DPN_CHAIN_RPC_URL`` (none: the service runs without
chain features), ``DPN_CHAIN_DEPLOYER_KEY`` (the platform's account; without it escrows
cannot be deployed, but the mirror still follows), ``DPN_CHAIN_CONFIRMATIONS`` (default
2) and ``DPN_CHAIN_FACTORY`` (a factory already deployed; otherwise the first start
deploys one and remembers it per chain id in ``chain_factories``). The key is kept out of
every repr, log line and error.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from sqlalchemy import insert, select

from ledger.chain.addresses import checksummed
from ledger.chain.client import ChainClient
from ledger.chain.deploy import Deployer
from ledger.chain.follower import ChainFollower
from ledger.core.errors import InvalidInput, NotFound, Refused, Unavailable
from ledger.db.engine import read_connection, write_connection
from ledger.db.schema import ChainFactory, table
from ledger.funding.mirror import ReconciliationLine, reconcile
from ledger.funding.projects import (
    EscrowRef,
    ProjectRecord,
    attach_escrow,
    escrow_goal,
    get_project,
    open_project,
)
from ledger.funding.states import ProjectState
from ledger.journal.write import Ledger

__all__ = ["ChainConfig", "FundingChain"]

_factories = table(ChainFactory)
# The currency an ETH escrow holds; its minor unit is the wei.
ETH = "ETH"


@dataclass(frozen=True, slots=True)
class ChainConfig:
    rpc_url: str
    deployer_key: str | None = field(default=None, repr=False)
    confirmations: int = 2
    factory: str | None = None

    @classmethod
    def from_env(cls) -> ChainConfig | None:
        """The chain named by the environment, or None when ``DPN_CHAIN_RPC_URL`` is unset."""
        env = os.environ
        url = env.get("DPN_CHAIN_RPC_URL", "").strip()
        if not url:
            return None
        text = env.get("DPN_CHAIN_CONFIRMATIONS", "2")
        try:
            confirmations = int(text)
        except ValueError:
            raise InvalidInput(
                "setting_malformed", "DPN_CHAIN_CONFIRMATIONS must be an integer"
            ) from None
        if not 0 <= confirmations <= 1_000:
            raise InvalidInput("setting_malformed", "DPN_CHAIN_CONFIRMATIONS must be 0..1000")
        factory = env.get("DPN_CHAIN_FACTORY", "").strip() or None
        return cls(
            rpc_url=url,
            deployer_key=env.get("DPN_CHAIN_DEPLOYER_KEY", "").strip() or None,
            confirmations=confirmations,
            factory=None if factory is None else checksummed(factory),
        )


class FundingChain:
    """One chain, as the funding service uses it."""

    def __init__(self, ledger: Ledger, config: ChainConfig, *, client: ChainClient | None = None):
        self.ledger = ledger
        self.config = config
        self.client = client or ChainClient(config.rpc_url)
        self.deployer = (
            None if config.deployer_key is None else Deployer(self.client, config.deployer_key)
        )
        self._deploying = threading.Lock()

    def __repr__(self) -> str:
        return f"FundingChain(confirmations={self.config.confirmations})"

    def chain_id(self) -> int:
        return self.client.chain_id()

    # -- the factory ------------------------------------------------------------------

    def stored_factory(self) -> tuple[str, str, int] | None:
        """(address, creator, deployed block) of this chain's factory, if known."""
        chain_id = self.chain_id()
        with read_connection(self.ledger.engine, snapshot=False) as conn:
            row = conn.execute(select(_factories).where(_factories.c.chain_id == chain_id)).first()
        return None if row is None else (row.address, row.creator, row.deployed_block)

    def ensure_factory(self) -> tuple[str, str, int]:
        """This chain's factory: the configured one, the one stored for this chain id (if
        the chain still has its code), or a new one deployed now and stored."""
        chain_id = self.chain_id()
        stored = self.stored_factory()
        if stored is not None and self.client.has_code(stored[0]):
            return stored
        if self.deployer is None:
            raise Refused(
                "chain_read_only", "no DPN_CHAIN_DEPLOYER_KEY: this service cannot deploy"
            )
        if self.config.factory is not None and self.client.has_code(self.config.factory):
            address, block = self.config.factory, 0
        else:
            address = self.deployer.deploy_factory()
            block = self.client.head().number
        found = (address, str(self.deployer.address), block)
        with write_connection(self.ledger.engine) as conn:
            if stored is not None:
                conn.execute(_factories.delete().where(_factories.c.chain_id == chain_id))
            conn.execute(
                insert(_factories).values(
                    chain_id=chain_id, address=found[0], creator=found[1], deployed_block=block
                )
            )
        return found

    # -- projects on chain ------------------------------------------------------------

    def open_project(self, project_id: int, *, by: str, key: str, actor: str) -> ProjectRecord:
        """Deploy the project's escrow (or find the one already deployed for it) and open
        the project with it. The checks that ``open_project`` makes are made first too,
        so that a refused opening deploys nothing."""
        with read_connection(self.ledger.engine) as conn:
            project = get_project(conn, project_id)
        if (
            project.state is ProjectState.OPEN
            and project.escrow is None
            and project.lister == by
            and project.terms.deadline > self.ledger.clock()
            and project.terms.currency == ETH
        ):
            # A reorganisation dropped its escrow: opening again deploys a new one.
            escrow = self.deploy_escrow(project)
            return attach_escrow(self.ledger, project_id, escrow, by=by, key=key, actor=actor)
        if project.state is not ProjectState.DRAFT or project.lister != by:
            # Refused by the ledger, or a replay: the same request as the first, escrow and all.
            return open_project(
                self.ledger, project_id, by=by, key=key, actor=actor, escrow=project.escrow
            )
        if project.terms.deadline <= self.ledger.clock():
            return open_project(self.ledger, project_id, by=by, key=key, actor=actor)
        escrow = self.deploy_escrow(project)
        return open_project(self.ledger, project_id, by=by, key=key, actor=actor, escrow=escrow)

    def deploy_escrow(self, project: ProjectRecord) -> EscrowRef:
        """The escrow of ``project`` on this chain, deployed now if it has none yet."""
        if project.escrow is not None:
            return project.escrow
        if project.terms.currency != ETH:
            raise Refused(
                "currency_not_on_chain",
                f"escrows hold ETH; project {project.id} is in {project.terms.currency}",
            )
        if self.deployer is None:
            raise Refused(
                "chain_read_only", "no DPN_CHAIN_DEPLOYER_KEY: this service cannot deploy"
            )
        goal = escrow_goal(project)
        with self._deploying:  # one transaction at a time from this process: one nonce each
            factory, _, factory_block = self.ensure_factory()
            address, block = self.deployer.create_eth_escrow(
                factory,
                bytes.fromhex(project.chain_key),
                project.terms.organizer,
                goal,
                int(project.terms.deadline.timestamp()),
                min(project.terms.min_pledge_minor, goal),
                search_from_block=factory_block,
            )
        return EscrowRef(self.chain_id(), address, goal, block)

    def finalize(self, project: ProjectRecord) -> str:
        """Send ``finalize()`` to the project's escrow from the platform's account (anyone
        may; the platform pays the gas): the escrow's refusal comes back decoded, e.g.
        ``Refused(goal_not_reached)``. Returns the transaction hash; the chain mirror
        funds the project once it is confirmed."""
        escrow = self._escrow_of(project)
        if self.deployer is None:
            raise Refused("chain_read_only", "no DPN_CHAIN_DEPLOYER_KEY: this service cannot send")
        with self._deploying:
            receipt = self.deployer.finalize(escrow.address)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def check_pledge(self, project: ProjectRecord, pledger: str, amount: int) -> EscrowRef:
        """Whether ``pledger`` may pledge ``amount`` to the project's escrow now: the
        ledger's refusals first (a project not open, ``project_state``), then the
        escrow's own, decoded (``pledge_below_minimum``, ``pledge_after_deadline``, ...)."""
        escrow = self._escrow_of(project)
        if project.state is not ProjectState.OPEN:
            raise Refused(
                "project_state",
                f"project {project.id} is {project.state.value}: it takes no pledges",
                state=project.state.value,
            )
        self.client.check_pledge(escrow.address, pledger, amount)
        return escrow

    def _escrow_of(self, project: ProjectRecord) -> EscrowRef:
        if project.escrow is None or project.escrow.chain_id != self.chain_id():
            raise NotFound("no_escrow", f"project {project.id} has no escrow on this chain")
        return project.escrow

    def onchain_total(self, escrow: EscrowRef | None) -> int | None:
        """The escrow's ``totalPledged()`` now, or None when the chain does not answer
        (or the escrow is on another chain)."""
        if escrow is None:
            return None
        try:
            if escrow.chain_id != self.chain_id():
                return None
            return self.client.total_pledged(escrow.address)
        except (Unavailable, NotFound):  # no node, or no contract there (any more)
            return None

    def reconcile(self, project_ids: list[int] | None = None) -> list[ReconciliationLine]:
        """The ledger's totals per escrowed project against the contracts' own."""

        def total_of(escrow: str) -> int | None:
            try:
                return self.client.total_pledged(escrow)
            except (Unavailable, NotFound):
                return None

        def pledge_of(escrow: str, pledger: str) -> int | None:
            try:
                return self.client.pledge_of(escrow, pledger)
            except (Unavailable, NotFound):
                return None

        with read_connection(self.ledger.engine) as conn:
            return reconcile(conn, self.chain_id(), total_of, pledge_of, project_ids)

    def follower(self, **options: float) -> ChainFollower:
        """A follower of this chain for this ledger; it finds the factory (and the
        block to start from) on its first round, once the node answers."""
        return ChainFollower(
            self.ledger,
            self.client,
            confirmations=self.config.confirmations,
            locate_factory=self.stored_factory,
            **options,  # type: ignore[arg-type]
        )
