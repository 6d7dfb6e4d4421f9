"""The chain mirror's ledger side: escrow events recorded once each, undone by entries.

``ledger.chain.follower`` reads the chain; this module writes what it read. An event is
recorded once its block has the confirmations the follower waits for, as one entry:

    chain.escrow     the factory created a project's escrow (attached to the project)
    chain.pledge     a pledge arrived              contribution += amount
    chain.withdraw   a pledger took theirs back    contribution -= amount
    chain.reclaim    after a missed deadline       contribution -= amount
    chain.finalize   the funds went to the organizer: the project is funded and issued
    chain.undo       a reorganisation dropped the block of an event recorded before

Exactly once: each event's idempotency key is derived from (chain id, transaction hash,
log index, block hash), and ``chain_events`` keeps one row per event with its entry's
seq. A replayed batch writes nothing; the same transaction mined again in another block
after a reorganisation is a new event (its old self was undone). The cursor and the
recent block hashes move in the same transaction as the entries, so a crash anywhere
leaves either the whole batch or none of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select, update

from ledger.core import EntryDraft, EntryKind, JsonValue
from ledger.core.errors import IntegrityFailure
from ledger.core.timestamps import format_time
from ledger.db.bulk import bulk_insert
from ledger.db.schema import ChainBlock, ChainCursor, ChainEvent, Project, table
from ledger.funding.contributions import (
    add_chain_contributions,
    add_contribution,
    fail_project,
    fund_and_issue,
)
from ledger.funding.projects import (
    EscrowRef,
    attach_escrow_rows,
    get_project,
    list_projects,
    project_by_chain_key,
)
from ledger.funding.states import ProjectState
from ledger.journal.write import Ledger, WriteTx

__all__ = [
    "BlockMark",
    "EscrowCreated",
    "EscrowEvent",
    "MirrorReport",
    "ReconciliationLine",
    "chain_cursor",
    "detach_dropped_escrow",
    "escrow_addresses",
    "escrows_deployed_after",
    "mirror_batch",
    "recent_blocks",
    "reconcile",
    "undo_after",
]

_events = table(ChainEvent)
_cursors = table(ChainCursor)
_blocks = table(ChainBlock)
_projects = table(Project)
# How many recent block hashes the mirror keeps per chain: how deep a reorganisation it
# can still find the common ancestor of (far deeper than any confirmation depth).
_BLOCKS_KEPT = 256
_KINDS = {
    "pledged": EntryKind.CHAIN_PLEDGE,
    "withdrawn": EntryKind.CHAIN_WITHDRAW,
    "reclaimed": EntryKind.CHAIN_RECLAIM,
    "finalized": EntryKind.CHAIN_FINALIZE,
}
# What each kind adds to its account's on-chain contribution, per unit of amount.
_EVENT_COLUMNS = (
    "chain_id",
    "tx_hash",
    "log_index",
    "block_hash",
    "block_number",
    "project_id",
    "kind",
    "account",
    "amount",
    "seq",
)
_SIGN = {"pledged": 1, "withdrawn": -1, "reclaimed": -1, "finalized": 0}


@dataclass(frozen=True, slots=True)
class BlockMark:
    """A block, as the mirror marks how far it has read."""

    number: int
    hash: str
    timestamp: int  # unix seconds


@dataclass(frozen=True, slots=True)
class EscrowEvent:
    """One escrow log: ``kind`` is pledged, withdrawn, reclaimed or finalized; ``account``
    the pledger (the organizer for finalized)."""

    kind: str
    escrow: str
    account: str
    amount: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    total: int | None = None


@dataclass(frozen=True, slots=True)
class EscrowCreated:
    """The factory's announcement of a new escrow for a project (by its chain id)."""

    project_chain_id: bytes
    escrow: str
    goal: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class MirrorReport:
    recorded: int  # events written now
    replayed: int  # events already recorded
    ignored: int  # logs of escrows no project of this ledger owns
    failed_projects: tuple[int, ...]
    funded_projects: tuple[int, ...]


def _event_key(chain_id: int, tx_hash: str, log_index: int, block_hash: str) -> str:
    digest = hashlib.sha256(f"{chain_id}:{tx_hash}:{log_index}:{block_hash}".encode()).hexdigest()
    return f"chain:{digest}"


def chain_cursor(conn: Connection, chain_id: int) -> BlockMark | None:
    """Where the mirror of ``chain_id`` stands (timestamp 0: not kept), or None."""
    row = conn.execute(select(_cursors).where(_cursors.c.chain_id == chain_id)).first()
    return None if row is None else BlockMark(row.block_number, row.block_hash, 0)


def recent_blocks(conn: Connection, chain_id: int) -> list[tuple[int, str]]:
    """The blocks the mirror knows the hashes of, newest first: those it read up to and
    those its live events are in. The newest the chain still has is where a
    reorganisation began (a block's hash fixes every block before it)."""
    known = {
        (r.number, r.hash)
        for r in conn.execute(
            select(_blocks.c.number, _blocks.c.hash).where(_blocks.c.chain_id == chain_id)
        )
    }
    known |= {
        (r.block_number, r.block_hash)
        for r in conn.execute(
            select(_events.c.block_number, _events.c.block_hash)
            .where(_events.c.chain_id == chain_id, _events.c.undone_seq.is_(None))
            .order_by(_events.c.block_number.desc())
            .limit(_BLOCKS_KEPT)
        )
    }
    return sorted(known, reverse=True)


def escrow_addresses(conn: Connection, chain_id: int) -> list[str]:
    """The escrows of this ledger's projects on ``chain_id``."""
    return sorted(_escrow_projects(conn, chain_id))


def _escrow_projects(conn: Connection, chain_id: int) -> dict[str, int]:
    """Project id by escrow address (checksummed, as the project keeps it)."""
    return {
        r.escrow_address: r.id
        for r in conn.execute(
            select(_projects.c.id, _projects.c.escrow_address).where(
                _projects.c.chain_id == chain_id, _projects.c.escrow_address.is_not(None)
            )
        )
    }


def _known(
    conn: Connection, chain_id: int, events: Sequence[EscrowEvent]
) -> set[tuple[str, int, str]]:
    """Which of ``events`` are recorded already: one read over their blocks' range (an
    event's block number is fixed by its block hash)."""
    if not events:
        return set()
    low = min(e.block_number for e in events)
    high = max(e.block_number for e in events)
    return {
        (r.tx_hash, r.log_index, r.block_hash)
        for r in conn.execute(
            select(_events.c.tx_hash, _events.c.log_index, _events.c.block_hash).where(
                _events.c.chain_id == chain_id,
                _events.c.block_number >= low,
                _events.c.block_number <= high,
            )
        )
    }


def mirror_batch(
    ledger: Ledger,
    chain_id: int,
    created: Sequence[EscrowCreated],
    events: Sequence[EscrowEvent],
    up_to: BlockMark,
    *,
    actor: str = "chain-mirror",
) -> MirrorReport:
    """Record ``created`` and ``events`` (every log of the blocks after the cursor up to
    ``up_to``, in chain order) and move the cursor to ``up_to``, in one transaction.
    Then mark failed every open project of this chain whose deadline ``up_to`` has passed
    under its escrow's goal."""
    with ledger.write() as tx:
        conn = tx.conn
        for c in created:
            _attach_created(tx, chain_id, c, actor)
        escrows = {a.lower(): i for a, i in _escrow_projects(conn, chain_id).items()}
        ours = [e for e in events if e.escrow.lower() in escrows]
        known = _known(conn, chain_id, ours)
        fresh = [e for e in ours if (e.tx_hash, e.log_index, e.block_hash) not in known]
        drafts = [
            EntryDraft(
                kind=_KINDS[e.kind],
                idempotency_key=_event_key(chain_id, e.tx_hash, e.log_index, e.block_hash),
                actor=actor,
                payload=_payload(chain_id, escrows[e.escrow.lower()], e),
            )
            for e in fresh
        ]
        appended = tx.append_many(drafts) if drafts else []
        rows: list[tuple[object, ...]] = []
        changes: list[tuple[int, str, int, int]] = []
        finalized: list[tuple[int, int]] = []
        for e, a in zip(fresh, appended, strict=True):
            project_id = escrows[e.escrow.lower()]
            rows.append(
                (
                    chain_id,
                    e.tx_hash,
                    e.log_index,
                    e.block_hash,
                    e.block_number,
                    project_id,
                    e.kind,
                    e.account,
                    e.amount,
                    a.entry.seq,
                )
            )
            if e.kind == "finalized":
                finalized.append((project_id, a.entry.seq))
            else:
                changes.append((project_id, e.account, _SIGN[e.kind] * e.amount, a.entry.seq))
        add_chain_contributions(conn, changes)
        bulk_insert(conn, _events, _EVENT_COLUMNS, rows)
        funded: list[int] = []
        for project_id, seq in finalized:
            project = get_project(conn, project_id)
            if project.state is ProjectState.OPEN:
                fund_and_issue(tx, project, actor=actor, cause=seq)
                funded.append(project_id)
        _move_cursor(conn, chain_id, up_to)
        failed = _fail_overdue(tx, chain_id, up_to, actor)
        return MirrorReport(
            recorded=len(fresh),
            replayed=len(ours) - len(fresh),
            ignored=len(events) - len(ours),
            failed_projects=tuple(failed),
            funded_projects=tuple(funded),
        )


def _payload(chain_id: int, project_id: int, e: EscrowEvent) -> dict[str, JsonValue]:
    payload: dict[str, JsonValue] = {
        "chain_id": chain_id,
        "project_id": project_id,
        "escrow": e.escrow,
        "account": e.account,
        "amount": e.amount,
        "block_number": e.block_number,
        "block_hash": e.block_hash,
        "tx_hash": e.tx_hash,
        "log_index": e.log_index,
    }
    if e.total is not None:
        payload["total"] = e.total
    return payload


def _attach_created(tx: WriteTx, chain_id: int, c: EscrowCreated, actor: str) -> None:
    found = project_by_chain_key(tx.conn, c.project_chain_id.hex())
    if found is None:
        return  # another ledger's project on a shared factory and creator
    project_id = found.id
    escrow = EscrowRef(chain_id, c.escrow, c.goal, c.block_number)
    draft = EntryDraft(
        kind=EntryKind.CHAIN_ESCROW,
        idempotency_key=_event_key(chain_id, c.tx_hash, c.log_index, c.block_hash),
        actor=actor,
        payload={
            "chain_id": chain_id,
            "project_id": project_id,
            "escrow": c.escrow,
            "escrow_goal_minor": c.goal,
            "block_number": c.block_number,
            "block_hash": c.block_hash,
            "tx_hash": c.tx_hash,
            "log_index": c.log_index,
        },
    )
    project = get_project(tx.conn, project_id)
    if project.escrow == escrow:
        return  # the project's open attached it already: nothing new to record

    def attach(seq: int) -> None:
        attach_escrow_rows(tx.conn, project, escrow)

    tx.append_once(draft, attach)


def _move_cursor(conn: Connection, chain_id: int, up_to: BlockMark) -> None:
    moved = conn.execute(
        update(_cursors)
        .where(_cursors.c.chain_id == chain_id)
        .values(block_number=up_to.number, block_hash=up_to.hash)
    ).rowcount
    if not moved:
        conn.execute(
            insert(_cursors).values(
                chain_id=chain_id, block_number=up_to.number, block_hash=up_to.hash
            )
        )
    conn.execute(
        delete(_blocks).where(_blocks.c.chain_id == chain_id, _blocks.c.number >= up_to.number)
    )
    conn.execute(insert(_blocks).values(chain_id=chain_id, number=up_to.number, hash=up_to.hash))
    oldest = conn.execute(
        select(_blocks.c.number)
        .where(_blocks.c.chain_id == chain_id)
        .order_by(_blocks.c.number.desc())
        .offset(_BLOCKS_KEPT)
        .limit(1)
    ).scalar_one_or_none()
    if oldest is not None:
        conn.execute(
            delete(_blocks).where(_blocks.c.chain_id == chain_id, _blocks.c.number <= oldest)
        )


def _fail_overdue(tx: WriteTx, chain_id: int, up_to: BlockMark, actor: str) -> list[int]:
    at = datetime.fromtimestamp(up_to.timestamp, UTC)
    as_of = format_time(at)
    overdue = tx.conn.execute(
        select(_projects.c.id).where(
            _projects.c.chain_id == chain_id,
            _projects.c.state == ProjectState.OPEN.value,
            _projects.c.deadline <= at,
        )
    ).scalars()
    return [
        project_id
        for project_id in list(overdue)
        if fail_project(tx, get_project(tx.conn, project_id), actor=actor, as_of=as_of)
    ]


def undo_after(
    ledger: Ledger, chain_id: int, ancestor: BlockMark, *, actor: str = "chain-mirror"
) -> int:
    """Undo every recorded event of ``chain_id`` in a block after ``ancestor`` (the last
    block the chain still agrees on), newest first, each by a ``chain.undo`` entry, and
    put the cursor back to ``ancestor``. Returns how many were undone. An undone
    finalize whose project was already issued cannot be taken back by the ledger:
    ``IntegrityFailure(reorg_past_issue)``, and nothing is written."""
    with ledger.write() as tx:
        conn = tx.conn
        live = conn.execute(
            select(_events)
            .where(
                _events.c.chain_id == chain_id,
                _events.c.block_number > ancestor.number,
                _events.c.undone_seq.is_(None),
            )
            .order_by(_events.c.seq.desc())
        ).all()
        for r in live:
            if r.kind == "finalized":
                raise IntegrityFailure(
                    "reorg_past_issue",
                    f"a reorganisation dropped the finalize of project {r.project_id}, whose"
                    " units are issued: raise the confirmation depth and settle it by hand",
                )
        for r in live:
            draft = EntryDraft(
                kind=EntryKind.CHAIN_UNDO,
                idempotency_key="undo:"
                + _event_key(chain_id, r.tx_hash, r.log_index, r.block_hash),
                actor=actor,
                payload={
                    "undoes": r.seq,
                    "chain_id": chain_id,
                    "project_id": r.project_id,
                    "tx_hash": r.tx_hash,
                    "log_index": r.log_index,
                    "block_hash": r.block_hash,
                    "reason": "reorganisation",
                },
            )
            seq = tx.append_once(draft).entry.seq
            add_contribution(
                conn, r.project_id, r.account, chain=-_SIGN[r.kind] * r.amount, manual=0, seq=seq
            )
            conn.execute(update(_events).where(_events.c.id == r.id).values(undone_seq=seq))
        conn.execute(
            update(_cursors)
            .where(_cursors.c.chain_id == chain_id)
            .values(block_number=ancestor.number, block_hash=ancestor.hash)
        )
        conn.execute(
            delete(_blocks).where(
                _blocks.c.chain_id == chain_id, _blocks.c.number > ancestor.number
            )
        )
        return len(live)


def escrows_deployed_after(
    conn: Connection, chain_id: int, block: int, up_to: int | None = None
) -> list[tuple[int, str]]:
    """(project id, escrow) of the escrows on ``chain_id`` deployed after ``block`` (and
    up to ``up_to``): those a reorganisation back to ``block`` may have dropped."""
    query = select(_projects.c.id, _projects.c.escrow_address).where(
        _projects.c.chain_id == chain_id, _projects.c.escrow_block > block
    )
    if up_to is not None:
        query = query.where(_projects.c.escrow_block <= up_to)
    return [(r.id, r.escrow_address) for r in conn.execute(query)]


def detach_dropped_escrow(
    ledger: Ledger, project_id: int, escrow: str, *, actor: str = "chain-mirror"
) -> bool:
    """A reorganisation dropped the block that deployed ``escrow``: the project has no
    escrow any more (its events were undone with the blocks). Journaled as a
    ``chain.undo`` of the escrow; the listing node opens it on-chain again (a new escrow).
    False if the project no longer names that escrow."""
    draft = EntryDraft(
        kind=EntryKind.CHAIN_UNDO,
        idempotency_key="undo-escrow:"
        + hashlib.sha256(f"{project_id}:{escrow}".encode()).hexdigest(),
        actor=actor,
        payload={"project_id": project_id, "escrow": escrow, "reason": "escrow_dropped"},
    )
    with ledger.write() as tx:
        project = get_project(tx.conn, project_id)
        if project.escrow is None or project.escrow.address != escrow:
            return False
        if project.chain_total_minor:
            raise IntegrityFailure(
                "escrow_dropped_with_pledges",
                f"escrow {escrow} of project {project_id} is gone but pledges to it remain",
            )

        def detach(seq: int) -> None:
            tx.conn.execute(
                update(_projects)
                .where(_projects.c.id == project_id)
                .values(
                    chain_id=None, escrow_address=None, escrow_goal_minor=None, escrow_block=None
                )
            )

        tx.append_once(draft, detach)
        return True


@dataclass(frozen=True, slots=True)
class ReconciliationLine:
    """One project's totals, the ledger's against the contract's; ``difference`` is the
    contract's less the ledger's (None when the chain did not answer)."""

    project_id: int
    escrow: str
    ledger_total_minor: int
    contract_total_minor: int | None
    difference_minor: int | None
    pledger_differences: tuple[tuple[str, int, int], ...]  # (pledger, ledger, contract)


def reconcile(
    conn: Connection,
    chain_id: int,
    total_of: Callable[[str], int | None],
    pledge_of: Callable[[str, str], int | None] | None = None,
    project_ids: Iterable[int] | None = None,
) -> list[ReconciliationLine]:
    """Compare each escrowed project's mirrored total with the contract's own
    ``totalPledged()`` (``total_of(escrow)``), and, with ``pledge_of``, each pledger's.
    Every line is returned; those with a difference name it."""
    from ledger.funding.contributions import contributions

    wanted = None if project_ids is None else set(project_ids)
    lines = []
    after: int | None = None
    while True:
        page = list_projects(conn, after_id=after)
        if not page:
            break
        after = page[-1].id
        for p in page:
            if p.escrow is None or p.escrow.chain_id != chain_id:
                continue
            if wanted is not None and p.id not in wanted:
                continue
            contract = total_of(p.escrow.address)
            pledgers: list[tuple[str, int, int]] = []
            if pledge_of is not None and contract is not None:
                for c in contributions(conn, p.id):
                    theirs = pledge_of(p.escrow.address, c.contributor)
                    if theirs is not None and theirs != c.chain_minor:
                        pledgers.append((c.contributor, c.chain_minor, theirs))
            lines.append(
                ReconciliationLine(
                    p.id,
                    p.escrow.address,
                    p.chain_total_minor,
                    contract,
                    None if contract is None else contract - p.chain_total_minor,
                    tuple(pledgers),
                )
            )
    return lines
