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

from ledger.core import EntryDraft, EntryKind, limits
from ledger.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Refused
from ledger.core.timestamps import to_utc
from ledger.db.schema import Asset, Currency, Project, ProjectDocument, table
from ledger.funding.states import ProjectState, check_transition
from ledger.funding.terms import ProjectTerms, terms_payload
from ledger.journal.write import Ledger, WriteTx
from ledger.registry.address import validate_address
from ledger.registry.assets import DocumentRef, LegalFramework
from ledger.registry.members import MemberKind, find_member

__all__ = [
    "ProjectRecord",
    "cancel_project",
    "create_project",
    "get_project",
    "list_projects",
    "open_project",
]

_projects = table(Project)
_documents = table(ProjectDocument)
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
        return get_project(tx.conn, appended.entry.seq)


def open_project(
    ledger: Ledger, project_id: int, *, by: str, key: str, actor: str
) -> ProjectRecord:
    """Open a draft project to pledges; journaled as ``project.open``. Only its listing
    node (``by``) may, ``Forbidden(not_listing_node)``; only from draft,
    ``Refused(project_state)``; and only before its deadline, ``Refused(deadline_passed)``."""
    return _move(ledger, project_id, ProjectState.OPEN, EntryKind.PROJECT_OPEN, by, key, actor)


def cancel_project(
    ledger: Ledger, project_id: int, *, by: str, key: str, actor: str
) -> ProjectRecord:
    """Cancel a draft or open project; journaled as ``project.cancel``. Only its listing
    node (``by``) may, ``Forbidden(not_listing_node)``; a project in any other state is
    ``Refused(project_state)``."""
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
) -> ProjectRecord:
    _check_project_id(project_id)
    validate_address(by)
    draft = EntryDraft(
        kind=kind, idempotency_key=key, actor=actor, payload={"project_id": project_id, "by": by}
    )
    with ledger.write() as tx:

        def change_state(seq: int) -> None:
            project = get_project(tx.conn, project_id)
            if project.lister != by:
                raise Forbidden(
                    "not_listing_node",
                    f"only the finance node that listed project {project_id} may",
                )
            check_transition(project_id, project.state, wanted)
            if wanted is ProjectState.OPEN:
                _require_before_deadline(tx, project)
            tx.conn.execute(
                update(_projects)
                .where(_projects.c.id == project_id)
                .values(state=wanted.value, state_seq=seq)
            )

        tx.append_once(draft, change_state)
        return get_project(tx.conn, project_id)


def _require_before_deadline(tx: WriteTx, project: ProjectRecord) -> None:
    if project.terms.deadline <= to_utc(tx.ledger.clock()):
        raise Refused("deadline_passed", f"project {project.id}'s deadline has passed")


def _require_finance_node(conn: Connection, address: str) -> None:
    member = find_member(conn, address)
    if member is None or member.kind is not MemberKind.FINANCE_NODE:
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
        )
        for r in rows
    ]
