"""The chain follower: reads escrow events once they are confirmed and hands them to the
ledger's mirror (``ledger.funding.mirror``), one batch of blocks at a time.

Each round:

1. take (or renew) the lease ``chain-mirror:<chain id>``: one follower writes per chain,
   however many workers run one (the others stand by and take over if it dies);
2. check that the chain still has the block the cursor stands on; if not, walk back the
   recent block hashes to the last one it still has and undo what was mirrored after it
   (``undo_after``: compensating entries);
3. read the factory's EscrowCreated and the escrows' events from the block after the cursor
   up to ``head - confirmations`` (at most ``batch_blocks`` blocks), and check the last
   block's hash again after reading (a reorganisation during the read discards the round);
4. record them and move the cursor, in one transaction (``mirror_batch``).

A node that does not answer makes the follower wait and retry, doubling the wait up to a
ceiling; its state (``status()``) says so, for ``/readyz``. A crash anywhere loses nothing:
the cursor moves with the entries, and a replayed block records nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from ledger.chain.client import ChainClient
from ledger.chain.events import BlockRef, EscrowCreatedLog, EscrowLog
from ledger.chain.lease import release_lease, take_lease
from ledger.core.errors import IntegrityFailure, LedgerError, NotFound, Unavailable
from ledger.db.engine import read_connection
from ledger.funding.mirror import (
    BlockMark,
    EscrowCreated,
    EscrowEvent,
    chain_cursor,
    detach_dropped_escrow,
    escrow_addresses,
    escrows_deployed_after,
    mirror_batch,
    recent_blocks,
    undo_after,
)
from ledger.journal.write import Ledger

__all__ = ["ChainFollower", "FollowerStatus", "RoundResult"]

log = logging.getLogger("dpn.chain")


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    """What the follower is doing, for ``/readyz`` and the command line.

    ``state``: ``starting``; ``following`` (caught up to head - confirmations, or getting
    there); ``standby`` (another worker holds the lease); ``waiting`` (the node does not
    answer: retrying in ``retry_in_s``); ``halted`` (a reorganisation undid an issued
    project, or the ledger refused a batch: a person must look); ``stopped``."""

    state: str
    chain_id: int | None = None
    head: int | None = None
    cursor: int | None = None
    confirmations: int = 0
    retry_in_s: float | None = None
    last_error: str | None = None
    recorded: int = 0
    undone: int = 0

    @property
    def lag_blocks(self) -> int | None:
        if self.head is None or self.cursor is None:
            return None
        return max(0, self.head - self.confirmations - self.cursor)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round did: events recorded, events undone, blocks read up to."""

    recorded: int
    undone: int
    up_to: int | None
    caught_up: bool


class ChainFollower:
    """Follows one chain for one ledger; ``run`` loops until told to stop."""

    def __init__(
        self,
        ledger: Ledger,
        client: ChainClient,
        *,
        confirmations: int,
        factory: str | None = None,
        creator: str | None = None,
        start_block: int = 0,
        batch_blocks: int = 2_000,
        poll_s: float = 1.0,
        lease_ttl_s: float = 15.0,
        backoff_max_s: float = 30.0,
        holder: str | None = None,
        locate_factory: Callable[[], tuple[str, str, int] | None] | None = None,
    ) -> None:
        if confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        self.ledger = ledger
        self.client = client
        self.confirmations = confirmations
        self.factory = factory
        self.creator = creator
        self.start_block = start_block
        self.batch_blocks = batch_blocks
        self.poll_s = poll_s
        self.lease_ttl = timedelta(seconds=lease_ttl_s)
        self.backoff_max_s = backoff_max_s
        self.holder = holder or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.locate_factory = locate_factory
        self._status = FollowerStatus("starting", confirmations=confirmations)
        self._lock = threading.Lock()

    # -- state ------------------------------------------------------------------------

    def status(self) -> FollowerStatus:
        with self._lock:
            return self._status

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]

    def _lease_name(self, chain_id: int) -> str:
        return f"chain-mirror:{chain_id}"

    # -- one round --------------------------------------------------------------------

    def round(self) -> RoundResult | None:
        """One round (see the module docstring); None when another holds the lease.
        Raises ``Unavailable`` when the node (or the database) does not answer."""
        chain_id = self.client.chain_id()
        if self.factory is None and self.locate_factory is not None:
            found = self.locate_factory()
            if found is not None:
                self.factory, self.creator, self.start_block = found
        if not take_lease(self.ledger, self._lease_name(chain_id), self.holder, self.lease_ttl):
            self._set(state="standby", chain_id=chain_id)
            return None
        head = self.client.head()
        undone = self._undo_reorganisation(chain_id)
        with read_connection(self.ledger.engine) as conn:
            cursor = chain_cursor(conn, chain_id)
            escrows = escrow_addresses(conn, chain_id)
        first = self.start_block if cursor is None else cursor.number + 1
        safe = head.number - self.confirmations
        last = min(safe, first + self.batch_blocks - 1)
        if last < first:
            self._set(
                state="following",
                chain_id=chain_id,
                head=head.number,
                cursor=None if cursor is None else cursor.number,
                last_error=None,
                retry_in_s=None,
            )
            return RoundResult(0, undone, None, True)
        end = self.client.block(last)
        created: list[EscrowCreatedLog] = []
        if self.factory is not None and self.creator is not None:
            created = self.client.escrows_created(self.factory, self.creator, first, last)
        self._detach_dropped(chain_id, first, last, {c.escrow.lower() for c in created})
        with read_connection(self.ledger.engine) as conn:
            escrows = escrow_addresses(conn, chain_id)
        known = {e.lower() for e in escrows} | {c.escrow.lower() for c in created}
        logs = self.client.escrow_logs(sorted(known), first, last) if known else []
        if self.client.block(last).hash != end.hash:
            log.warning("chain %s: block %s changed while reading; reading again", chain_id, last)
            return RoundResult(0, undone, None, False)
        report = mirror_batch(
            self.ledger,
            chain_id,
            [_created(c) for c in created],
            [_event(e) for e in logs],
            BlockMark(end.number, end.hash, end.timestamp),
        )
        if report.recorded or report.funded_projects or report.failed_projects:
            log.info(
                "chain %s: blocks %s..%s: %s events recorded, funded %s, failed %s",
                chain_id,
                first,
                last,
                report.recorded,
                list(report.funded_projects),
                list(report.failed_projects),
            )
        status = self.status()
        self._set(
            state="following",
            chain_id=chain_id,
            head=head.number,
            cursor=last,
            last_error=None,
            retry_in_s=None,
            recorded=status.recorded + report.recorded,
            undone=status.undone + undone,
        )
        return RoundResult(report.recorded, undone, last, last >= safe)

    def _undo_reorganisation(self, chain_id: int) -> int:
        """If the chain no longer has the cursor's block, undo back to the newest block
        it still has; how many events were undone."""
        with read_connection(self.ledger.engine) as conn:
            cursor = chain_cursor(conn, chain_id)
            if cursor is None or self._same(cursor.number, cursor.hash):
                return 0
            kept = recent_blocks(conn, chain_id)
        ancestor: BlockRef | None = None
        for number, known_hash in kept:
            if self._same(number, known_hash):
                ancestor = self.client.block(number)
                break
        if ancestor is None:  # deeper than the hashes kept: undo all that was mirrored
            floor = max(self.start_block - 1, 0)
            ancestor = self.client.block(floor)
        undone = undo_after(
            self.ledger, chain_id, BlockMark(ancestor.number, ancestor.hash, ancestor.timestamp)
        )
        self._detach_dropped(chain_id, ancestor.number + 1, None, set())
        log.warning(
            "chain %s: reorganisation below block %s: %s mirrored events undone",
            chain_id,
            cursor.number,
            undone,
        )
        return undone

    def _detach_dropped(
        self, chain_id: int, first: int, last: int | None, announced: set[str]
    ) -> None:
        """Escrows the ledger attached at opening, deployed in blocks ``first..last``, that
        the chain no longer has (a reorganisation dropped their deployment, before or after
        the mirror read those blocks): detached, so the project can be opened again."""
        with read_connection(self.ledger.engine) as conn:
            deployed = escrows_deployed_after(conn, chain_id, first - 1, last)
        for project_id, escrow in deployed:
            if escrow.lower() in announced or self.client.has_code(escrow):
                continue
            if detach_dropped_escrow(self.ledger, project_id, escrow):
                log.warning(
                    "chain %s: project %s's escrow %s was dropped; open it again",
                    chain_id,
                    project_id,
                    escrow,
                )

    def _same(self, number: int, known_hash: str) -> bool:
        try:
            return self.client.block(number).hash == known_hash
        except NotFound:  # the chain is shorter now
            return False

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Round after round until ``stop`` is set: at once while behind, every
        ``poll_s`` once caught up, backing off while the node does not answer."""
        backoff = self.poll_s
        while not stop.is_set():
            try:
                result = self.round()
            except Unavailable as error:
                self._set(state="waiting", last_error=error.message, retry_in_s=backoff)
                log.warning("chain: %s; retrying in %.1f s", error.message, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            except IntegrityFailure as error:
                self._set(state="halted", last_error=f"{error.code}: {error.message}")
                log.error("chain mirror halted: %s", error)
                return
            except LedgerError as error:
                self._set(state="halted", last_error=f"{error.code}: {error.message}")
                log.error("chain mirror halted: %s", error)
                return
            except Exception as error:  # a bug, or a database fault no translation knew
                self._set(
                    state="waiting",
                    last_error=f"unexpected: {type(error).__name__}: {error}"[:300],
                    retry_in_s=backoff,
                )
                log.exception("chain mirror round failed; retrying in %.1f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            backoff = self.poll_s
            if result is None or result.caught_up:
                stop.wait(self.poll_s)
        self.release()
        self._set(state="stopped")

    def release(self) -> None:
        """Give up the lease at once (a clean stop), so another follower need not wait
        for it to run out."""
        chain_id = self.status().chain_id
        if chain_id is None:
            return
        with contextlib.suppress(LedgerError):
            release_lease(self.ledger, self._lease_name(chain_id), self.holder)

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """Run in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="chain-follower", daemon=True)
        thread.start()
        return thread, stop


def _created(c: EscrowCreatedLog) -> EscrowCreated:
    return EscrowCreated(
        c.project_id, c.escrow, c.goal, c.block_number, c.block_hash, c.tx_hash, c.log_index
    )


def _event(e: EscrowLog) -> EscrowEvent:
    return EscrowEvent(
        e.kind,
        e.escrow,
        e.account,
        e.amount,
        e.block_number,
        e.block_hash,
        e.tx_hash,
        e.log_index,
        e.total,
    )
