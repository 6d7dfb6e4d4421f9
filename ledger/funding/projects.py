"""Projects: listed by a finance node, opened and cancelled by it; each change an entry.

A project's id is the seq of the ``project.create`` entry that listed it. The seq is
already unique, ordered and fixed by the journal itself, so no counter is kept beside
it; and a replay of the listing (same idempotency key) names the same project because it
returns the same entry. The ``projects`` rows are written in the same transaction as
the entry, and only when the entry is new: a refused request writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Select, insert, select, update

from ledger.access.principals import Role
from ledger.core import EntryDraft, EntryKind, JsonValue, check_amount, limits
from ledger.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Refused
from ledger.core.timestamps import to_utc
from ledger.db.schema import Asset, Currency, MemberRole, Project, ProjectDocument, table
from ledger.funding.states import ProjectState, check_transition
from ledger.funding.terms import ProjectTerms, terms_payload
from ledger.journal.write import Ledger, WriteTx
from ledger.registry.address import validate_address
from ledger.registry.assets import DocumentRef, LegalFramework
from ledger.registry.members import MemberKind, find_member

__all__ = [
    "EscrowRef",
    "ProjectRecord",
    "attach_escrow",
    "attach_escrow_rows",
    "cancel_project",
    "create_project",
    "escrow_goal",
    "get_project",
    "list_projects",
    "open_project",
    "project_by_chain_key",
]

_projects = table(Project)
_documents = table(ProjectDocument)
_roles = table(MemberRole)
# A project still on its way to buying its asset: a second one may not list the same asset.
_LIVE = (ProjectState.DRAFT, ProjectState.OPEN, ProjectState.FUNDED, ProjectState.FORWARDED)


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """A project as recorded: its terms, who listed it and where it stands."""

    id: int  # the seq of its project.create entry
    lister: str
    terms: ProjectTerms
    state: ProjectState
    registered_seq: int
    state_seq: int  # the entry that moved it to its state
    chain_key: str = ""  # the hash of its project.create entry: its id on-chain (bytes32)
    escrow: EscrowRef | None = None
    chain_total_minor: int = 0  # the live on-chain total, as the chain mirror has seen it
    manual_total_minor: int = 0

    @property
    def ledger_total_minor(self) -> int:
        """What counts toward the goal in the ledger: the organizer's own contribution,
        manual pledges and the mirrored on-chain total."""
        return (
            self.terms.organizer_contribution_minor
            + self.manual_total_minor
            + self.chain_total_minor
        )


@dataclass(frozen=True, slots=True)
class EscrowRef:
    """Where a project's pledges go on-chain: the escrow contract, and the part of the goal
    it must reach (the goal less the organizer's contribution and the manual pledges
    recorded before it was deployed)."""

    chain_id: int
    address: str
    goal_minor: int
    block: int  # the block that deployed it: the chain mirror reads from there


def escrow_goal(project: ProjectRecord) -> int:
    """The goal an escrow deployed now for ``project`` must reach on-chain: what the
    organizer's contribution and the manual pledges already recorded leave to raise.
    Raises ``Refused(goal_already_met)`` when they leave nothing."""
    rest = project.terms.goal_minor - project.ledger_total_minor + project.chain_total_minor
    if rest <= 0:
        raise Refused(
            "goal_already_met",
            f"project {project.id}'s goal is met without pledges on-chain: nothing to escrow",
        )
    return rest


def create_project(
    ledger: Ledger, lister: str, terms: ProjectTerms, *, key: str, actor: str
) -> ProjectRecord:
    """List a project in ``draft``; journaled as ``project.create`` with its whole terms.

    Refuses, writing nothing: terms out of bounds (``InvalidInput``); a lister who is not
    a member of kind finance_node, ``Forbidden(not_finance_node)``; an organizer who is
    not a member, ``NotFound(unknown_member)``; an unknown currency,
    ``NotFound(unknown_currency)``; an asset already registered, ``Conflict(asset_exists)``,
    or already the object of a live project, ``Conflict(asset_in_project)``; a deadline
    not ahead of the ledger's clock, ``Refused(deadline_passed)``, or too far ahead,
    ``Refused(deadline_too_far)``. A replay of the same key returns the same project."""
    payload = terms_payload(lister, terms)
    deadline = to_utc(terms.deadline)
    draft = EntryDraft(
        kind=EntryKind.PROJECT_CREATE, idempotency_key=key, actor=actor, payload=payload
    )
    with ledger.write() as tx:

        def insert_project(seq: int) -> None:
            _require_finance_node(tx.conn, lister)
            if find_member(tx.conn, terms.organizer) is None:
                raise NotFound("unknown_member", f"no member {terms.organizer}")
            currencies = table(Currency)
            if (
                tx.conn.execute(
                    select(currencies.c.code).where(currencies.c.code == terms.currency)
                ).first()
                is None
            ):
                raise NotFound("unknown_currency", f"no currency {terms.currency!r}")
            _require_asset_free(tx.conn, terms.asset_id)
            now = to_utc(tx.ledger.clock())
            if deadline <= now:
                raise Refused("deadline_passed", "the deadline must be ahead of now")
            ahead = timedelta(days=limits.PROJECT_DEADLINE_AHEAD_MAX_DAYS)
            if deadline > now + ahead:
                raise Refused(
                    "deadline_too_far",
                    f"the deadline must be within {ahead.days} days of now",
                )
            tx.conn.execute(
                insert(_projects).values(
                    id=seq,
                    lister=lister,
                    organizer=terms.organizer,
                    title=terms.title,
                    description=terms.description,
                    asset_id=terms.asset_id,
                    legal_framework=LegalFramework(terms.legal_framework).value,
                    jurisdiction=terms.jurisdiction,
                    currency=terms.currency,
                    goal_minor=terms.goal_minor,
                    deadline=deadline,
                    min_pledge_minor=terms.min_pledge_minor,
                    organizer_contribution_minor=terms.organizer_contribution_minor,
                    total_units=terms.total_units,
                    retained_min_units=terms.retained_min_units,
                    operator_share_bp=terms.operator_share_bp,
                    manual_pledges_allowed=terms.manual_pledges_allowed,
                    state=ProjectState.DRAFT.value,
                    registered_seq=seq,
                    state_seq=seq,
                )
            )
            if terms.documents:
                tx.conn.execute(
                    insert(_documents),
                    [
                        {
                            "project_id": seq,
                            "title": d.title,
                            "sha256": d.sha256,
                            "recorded_seq": seq,
                        }
                        for d in terms.documents
                    ],
                )

        appended = tx.append_once(draft, insert_project)
        if not appended.replayed:
            tx.conn.execute(
                update(_projects)
                .where(_projects.c.id == appended.entry.seq)
                .values(chain_key=appended.entry.hash)
            )
        return get_project(tx.conn, appended.entry.seq)


def open_project(
    ledger: Ledger,
    project_id: int,
    *,
    by: str,
    key: str,
    actor: str,
    escrow: EscrowRef | None = None,
) -> ProjectRecord:
    """Open a draft project to pledges; journaled as ``project.open``, with the escrow
    deployed for it if there is one (without, pledges are manual only). Only its listing
    node (``by``) may, ``Forbidden(not_listing_node)``; only from draft,
    ``Refused(project_state)``; and only before its deadline, ``Refused(deadline_passed)``.
    An escrow already attached by the chain mirror must be the same one,
    ``Conflict(escrow_mismatch)``."""
    extra: dict[str, JsonValue] = {}
    if escrow is not None:
        _check_escrow(escrow)
        extra = {
            "chain_id": escrow.chain_id,
            "escrow": escrow.address,
            "escrow_goal_minor": escrow.goal_minor,
            "escrow_block": escrow.block,
        }
    return _move(
        ledger,
        project_id,
        ProjectState.OPEN,
        EntryKind.PROJECT_OPEN,
        by,
        key,
        actor,
        extra=extra,
        escrow=escrow,
    )


def cancel_project(
    ledger: Ledger, project_id: int, *, by: str, key: str, actor: str
) -> ProjectRecord:
    """Cancel a draft or open project; journaled as ``project.cancel``. Only its listing
    node (``by``) may, ``Forbidden(not_listing_node)``; a project in any other state is
    ``Refused(project_state)``. A project whose escrow is on-chain cannot be cancelled,
    ``Refused(escrow_deployed)``: nothing can stop the contract, so the ledger follows it
    (pledgers withdraw while it is open; past the deadline under the goal it fails, and
    they reclaim; at the goal it is funded and its units are issued)."""
    return _move(
        ledger, project_id, ProjectState.CANCELLED, EntryKind.PROJECT_CANCEL, by, key, actor
    )


def _move(
    ledger: Ledger,
    project_id: int,
    wanted: ProjectState,
    kind: EntryKind,
    by: str,
    key: str,
    actor: str,
    *,
    extra: dict[str, JsonValue] | None = None,
    escrow: EscrowRef | None = None,
) -> ProjectRecord:
    _check_project_id(project_id)
    validate_address(by)
    payload: dict[str, JsonValue] = {"project_id": project_id, "by": by, **(extra or {})}
    draft = EntryDraft(kind=kind, idempotency_key=key, actor=actor, payload=payload)
    with ledger.write() as tx:

        def change_state(seq: int) -> None:
            project = get_project(tx.conn, project_id)
            if project.lister != by:
                raise Forbidden(
                    "not_listing_node",
                    f"only the finance node that listed project {project_id} may",
                )
            check_transition(project_id, project.state, wanted)
            if wanted is ProjectState.CANCELLED and project.escrow is not None:
                raise Refused(
                    "escrow_deployed",
                    f"project {project_id}'s escrow {project.escrow.address} is on-chain and"
                    " cannot be stopped: pledgers may withdraw while it is open, and past the"
                    " deadline under the goal it fails",
                )
            if wanted is ProjectState.OPEN:
                _require_before_deadline(tx, project)
            if escrow is not None:
                attach_escrow_rows(tx.conn, project, escrow)
            tx.conn.execute(
                update(_projects)
                .where(_projects.c.id == project_id)
                .values(state=wanted.value, state_seq=seq)
            )

        tx.append_once(draft, change_state)
        return get_project(tx.conn, project_id)


def attach_escrow(
    ledger: Ledger, project_id: int, escrow: EscrowRef, *, by: str, key: str, actor: str
) -> ProjectRecord:
    """Give an open project without an escrow (a reorganisation dropped its first) a new
    one; journaled as ``chain.escrow``. Only its listing node, ``Forbidden(not_listing_node)``;
    only an open project without one, ``Refused(project_state)``."""
    _check_project_id(project_id)
    validate_address(by)
    _check_escrow(escrow)
    draft = EntryDraft(
        kind=EntryKind.CHAIN_ESCROW,
        idempotency_key=key,
        actor=actor,
        payload={
            "project_id": project_id,
            "by": by,
            "chain_id": escrow.chain_id,
            "escrow": escrow.address,
            "escrow_goal_minor": escrow.goal_minor,
            "escrow_block": escrow.block,
        },
    )
    with ledger.write() as tx:

        def attach(seq: int) -> None:
            project = get_project(tx.conn, project_id)
            if project.lister != by:
                raise Forbidden(
                    "not_listing_node",
                    f"only the finance node that listed project {project_id} may",
                )
            if project.state is not ProjectState.OPEN or project.escrow is not None:
                raise Refused(
                    "project_state",
                    f"project {project_id} is {project.state.value}"
                    + (" with an escrow" if project.escrow else "")
                    + ": an escrow is attached when it opens",
                    state=project.state.value,
                )
            _require_before_deadline(tx, project)
            attach_escrow_rows(tx.conn, project, escrow)

        tx.append_once(draft, attach)
        return get_project(tx.conn, project_id)


def _check_escrow(escrow: EscrowRef) -> None:
    validate_address(escrow.address)
    for name, value in (("chain_id", escrow.chain_id), ("escrow block", escrow.block)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput("field_type", f"the {name} must be a whole number")
    check_amount(escrow.goal_minor, "escrow goal")


def attach_escrow_rows(conn: Connection, project: ProjectRecord, escrow: EscrowRef) -> bool:
    """Record ``escrow`` as ``project``'s; False if it already was (the open and the chain
    mirror both attach it, whichever comes first). ``Conflict(escrow_mismatch)`` if the
    project has another escrow."""
    if project.escrow is not None:
        if project.escrow != escrow:
            raise Conflict(
                "escrow_mismatch",
                f"project {project.id} already has escrow {project.escrow.address}",
            )
        return False
    holder = conn.execute(
        select(_projects.c.id).where(_projects.c.escrow_address == escrow.address)
    ).scalar_one_or_none()
    if holder is not None:
        raise Conflict("escrow_taken", f"escrow {escrow.address} is already project {holder}'s")
    conn.execute(
        update(_projects)
        .where(_projects.c.id == project.id)
        .values(
            chain_id=escrow.chain_id,
            escrow_address=escrow.address,
            escrow_goal_minor=escrow.goal_minor,
            escrow_block=escrow.block,
        )
    )
    return True


def _require_before_deadline(tx: WriteTx, project: ProjectRecord) -> None:
    if project.terms.deadline <= to_utc(tx.ledger.clock()):
        raise Refused("deadline_passed", f"project {project.id}'s deadline has passed")


def _require_finance_node(conn: Connection, address: str) -> None:
    """A finance node lists: a member registered as one, or granted the role by an admin."""
    member = find_member(conn, address)
    if member is not None and member.kind is MemberKind.FINANCE_NODE:
        return
    granted = conn.execute(
        select(_roles.c.id).where(
            _roles.c.address == address, _roles.c.role == Role.FINANCE_NODE.value
        )
    ).first()
    if member is None or granted is None:
        raise Forbidden("not_finance_node", f"{address} is not a finance node")


def _require_asset_free(conn: Connection, asset_id: str) -> None:
    assets = table(Asset)
    if conn.execute(select(assets.c.id).where(assets.c.id == asset_id)).first() is not None:
        raise Conflict("asset_exists", f"asset {asset_id} is already registered")
    live = conn.execute(
        select(_projects.c.id)
        .where(_projects.c.asset_id == asset_id, _projects.c.state.in_([s.value for s in _LIVE]))
        .limit(1)
    ).scalar_one_or_none()
    if live is not None:
        raise Conflict("asset_in_project", f"project {live} already means to buy asset {asset_id}")


def _check_project_id(project_id: int) -> None:
    if isinstance(project_id, bool) or not isinstance(project_id, int) or project_id <= 0:
        raise InvalidInput("project_id", "a project id is a positive integer")


# -- reads --------------------------------------------------------------------------------


def project_by_chain_key(conn: Connection, chain_key: str) -> ProjectRecord | None:
    """The project whose on-chain id (its create entry's hash, hex) is ``chain_key``."""
    found = _records(conn, select(_projects).where(_projects.c.chain_key == chain_key))
    return found[0] if found else None


def get_project(conn: Connection, project_id: int) -> ProjectRecord:
    """The project ``project_id``, or ``NotFound(unknown_project)``."""
    _check_project_id(project_id)
    found = _records(conn, select(_projects).where(_projects.c.id == project_id))
    if not found:
        raise NotFound("unknown_project", f"no project {project_id}")
    return found[0]


def list_projects(
    conn: Connection,
    *,
    state: str | None = None,
    after_id: int | None = None,
    limit: int = limits.PROJECT_PAGE_MAX,
) -> list[ProjectRecord]:
    """Projects in id (listing) order after ``after_id``, in ``state`` if given; at most
    ``limit`` (1..PROJECT_PAGE_MAX) of them."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput("page_limit", "limit must be an integer")
    if not 0 < limit <= limits.PROJECT_PAGE_MAX:
        raise InvalidInput("page_limit", f"limit must be within 1..{limits.PROJECT_PAGE_MAX}")
    query = select(_projects).order_by(_projects.c.id).limit(limit)
    if state is not None:
        try:
            wanted = ProjectState(state)
        except ValueError:
            raise InvalidInput(
                "project_state_unknown", f"a project state is one of {', '.join(ProjectState)}"
            ) from None
        query = query.where(_projects.c.state == wanted.value)
    if after_id is not None:
        if isinstance(after_id, bool) or not isinstance(after_id, int):
            raise InvalidInput("project_id", "after_id must be an integer")
        query = query.where(_projects.c.id > after_id)
    return _records(conn, query)


def _records(conn: Connection, query: Select[Any]) -> list[ProjectRecord]:
    rows = conn.execute(query).all()
    if not rows:
        return []
    documents: dict[int, list[DocumentRef]] = {r.id: [] for r in rows}
    for d in conn.execute(
        select(_documents.c.project_id, _documents.c.title, _documents.c.sha256)
        .where(_documents.c.project_id.in_(list(documents)))
        .order_by(_documents.c.id)
    ):
        documents[d.project_id].append(DocumentRef(d.title, d.sha256))
    return [
        ProjectRecord(
            id=r.id,
            lister=r.lister,
            terms=ProjectTerms(
                title=r.title,
                description=r.description,
                organizer=r.organizer,
                asset_id=r.asset_id,
                jurisdiction=r.jurisdiction,
                currency=r.currency,
                goal_minor=r.goal_minor,
                deadline=to_utc(r.deadline),
                min_pledge_minor=r.min_pledge_minor,
                organizer_contribution_minor=r.organizer_contribution_minor,
                retained_min_units=r.retained_min_units,
                operator_share_bp=r.operator_share_bp,
                total_units=r.total_units,
                manual_pledges_allowed=bool(r.manual_pledges_allowed),
                legal_framework=LegalFramework(r.legal_framework),
                documents=tuple(documents[r.id]),
            ),
            state=ProjectState(r.state),
            registered_seq=r.registered_seq,
            state_seq=r.state_seq,
            chain_key=r.chain_key or "",
            escrow=None
            if r.escrow_address is None
            else EscrowRef(r.chain_id, r.escrow_address, r.escrow_goal_minor, r.escrow_block),
            chain_total_minor=r.chain_total_minor,
            manual_total_minor=r.manual_total_minor,
        )
        for r in rows
    ]
