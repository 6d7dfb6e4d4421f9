"""Contributions to a project, and what they turn into: manual pledges recorded by the
listing node, the move to funded, the issue of the asset's units, and failure.

Who put in what is kept per contributor in ``project_contributions`` (on-chain pledges as
the chain mirror sees them, manual pledges, and the organizer's own contribution, which is
counted when the units are issued). When a project is funded, its asset is registered and
every one of its ``total_units`` is issued, in the same transaction:

    project.fund        the project is funded (its escrow finalized, or its goal met)
    member.register     each contributor not yet a member (a pledging wallet)
    asset.register      the asset, its units created in its pool
    asset.issue         the units, pool -> contributors, largest remainder (in chunks)
    project.forward     the funds went to the organizer; the organizer operates the asset

The shares follow ``ledger.core.shares.largest_remainder``: in proportion to what each
finally contributed (withdrawn and reclaimed pledges count nothing), ties to the earlier
first contribution, summing to ``total_units`` exactly. Each of these entries has a key
derived from the project, so a replay or a second path to funding writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from ledger.access.principals import Role, announce_principals_changed
from ledger.core import EntryDraft, EntryKind, Posting, check_amount, limits
from ledger.core.accounts import ISSUANCE, AccountKey, member_holder, pool_holder, units_of
from ledger.core.errors import Conflict, Forbidden, Refused
from ledger.core.shares import largest_remainder
from ledger.core.timestamps import format_time, to_utc
from ledger.db.engine import read_connection
from ledger.db.schema import Asset, ManualPledge, MemberRole, Project, ProjectContribution, table
from ledger.funding.projects import ProjectRecord, get_project
from ledger.funding.states import ProjectState, check_transition
from ledger.journal.write import Ledger, WriteTx
from ledger.registry.address import validate_address
from ledger.registry.assets import check_sha256
from ledger.registry.members import MemberKind, find_member, register_member_in

__all__ = [
    "Contribution",
    "ManualPledgeRecord",
    "add_chain_contributions",
    "add_contribution",
    "contributions",
    "fail_overdue_without_escrow",
    "fail_project",
    "fund_and_issue",
    "list_manual_pledges",
    "record_manual_pledge",
    "unit_shares",
]

_projects = table(Project)
_contributions = table(ProjectContribution)
_manual = table(ManualPledge)
_assets = table(Asset)
_roles = table(MemberRole)
# Postings per asset.issue entry: the pool's one posting and this many contributors.
_ISSUE_CHUNK = limits.POSTINGS_PER_ENTRY_MAX - 1


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one contributor has in a project now."""

    contributor: str
    chain_minor: int
    manual_minor: int
    first_seq: int

    @property
    def total_minor(self) -> int:
        return self.chain_minor + self.manual_minor


@dataclass(frozen=True, slots=True)
class ManualPledgeRecord:
    seq: int
    project_id: int
    contributor: str
    amount_minor: int
    evidence_sha256: str
    recorded_by: str


# -- contributions ------------------------------------------------------------------------


def add_contribution(
    conn: Connection, project_id: int, contributor: str, *, chain: int, manual: int, seq: int
) -> None:
    """Add ``chain`` and ``manual`` (either may be negative: a withdrawal, a reclaim, an
    undone pledge) to a contributor's record and to the project's totals."""
    row = conn.execute(
        select(_contributions.c.chain_minor, _contributions.c.manual_minor).where(
            _contributions.c.project_id == project_id,
            _contributions.c.contributor == contributor,
        )
    ).first()
    if row is None:
        if chain < 0 or manual < 0:
            raise Refused(
                "contribution_negative", f"{contributor} has nothing in project {project_id}"
            )
        conn.execute(
            insert(_contributions).values(
                project_id=project_id,
                contributor=contributor,
                chain_minor=chain,
                manual_minor=manual,
                first_seq=seq,
            )
        )
    else:
        new_chain, new_manual = row.chain_minor + chain, row.manual_minor + manual
        if new_chain < 0 or new_manual < 0:
            raise Refused(
                "contribution_negative",
                f"{contributor} would have less than nothing in project {project_id}",
            )
        conn.execute(
            update(_contributions)
            .where(
                _contributions.c.project_id == project_id,
                _contributions.c.contributor == contributor,
            )
            .values(chain_minor=new_chain, manual_minor=new_manual)
        )
    totals = conn.execute(
        select(_projects.c.chain_total_minor, _projects.c.manual_total_minor).where(
            _projects.c.id == project_id
        )
    ).one()
    conn.execute(
        update(_projects)
        .where(_projects.c.id == project_id)
        .values(
            chain_total_minor=totals.chain_total_minor + chain,
            manual_total_minor=totals.manual_total_minor + manual,
        )
    )


def add_chain_contributions(conn: Connection, changes: Sequence[tuple[int, str, int, int]]) -> None:
    """``add_contribution`` for many on-chain changes at once, ``(project_id, contributor,
    delta, seq)`` in chain order: the rows are read once, summed here, and written back in
    a few statements (the chain mirror's hot path). Refuses, writing nothing, the first
    change that would leave a contributor with less than nothing."""
    if not changes:
        return
    pairs = sorted({(p, c) for p, c, _, _ in changes})
    current: dict[tuple[int, str], int] = {}
    for start in range(0, len(pairs), 400):
        part = pairs[start : start + 400]
        for r in conn.execute(
            select(
                _contributions.c.project_id,
                _contributions.c.contributor,
                _contributions.c.chain_minor,
            ).where(
                _contributions.c.project_id.in_({p for p, _ in part}),
                _contributions.c.contributor.in_({c for _, c in part}),
            )
        ):
            current[(r.project_id, r.contributor)] = r.chain_minor
    stored = set(current)
    new_rows: dict[tuple[int, str], int] = {}  # first seq of a contributor new to a project
    totals: dict[int, int] = {}
    for project_id, contributor, delta, seq in changes:
        pair = (project_id, contributor)
        if pair not in current:
            current[pair] = 0
            new_rows[pair] = seq
        current[pair] += delta
        if current[pair] < 0:
            raise Refused(
                "contribution_negative",
                f"{contributor} would have less than nothing in project {project_id}",
            )
        totals[project_id] = totals.get(project_id, 0) + delta
    if new_rows:
        conn.execute(
            insert(_contributions),
            [
                {
                    "project_id": p,
                    "contributor": c,
                    "chain_minor": current[(p, c)],
                    "manual_minor": 0,
                    "first_seq": seq,
                }
                for (p, c), seq in new_rows.items()
            ],
        )
    touched = {(p, c) for p, c, _, _ in changes}
    changed = [pair for pair in stored if pair in touched]
    if changed:
        conn.execute(
            update(_contributions)
            .where(
                _contributions.c.project_id == bindparam("p"),
                _contributions.c.contributor == bindparam("c"),
            )
            .values(chain_minor=bindparam("v")),
            [{"p": p, "c": c, "v": current[(p, c)]} for p, c in changed],
        )
    for project_id, delta in totals.items():
        before = conn.execute(
            select(_projects.c.chain_total_minor).where(_projects.c.id == project_id)
        ).scalar_one()
        conn.execute(
            update(_projects)
            .where(_projects.c.id == project_id)
            .values(chain_total_minor=before + delta)
        )


def contributions(conn: Connection, project_id: int) -> list[Contribution]:
    """Every contributor of a project with something in it, by first contribution."""
    return [
        Contribution(r.contributor, r.chain_minor, r.manual_minor, r.first_seq)
        for r in conn.execute(
            select(_contributions)
            .where(_contributions.c.project_id == project_id)
            .order_by(_contributions.c.first_seq, _contributions.c.contributor)
        )
        if r.chain_minor or r.manual_minor
    ]


def unit_shares(project: ProjectRecord, found: list[Contribution]) -> dict[str, int]:
    """Each contributor's units: ``total_units`` shared by what they finally contributed,
    the organizer's own contribution included (and first in a tie: it was there when the
    project was listed). Contributors whose share rounds to nothing are left out."""
    weights: dict[str, int] = {}
    order: dict[str, int] = {}
    organizer = project.terms.organizer
    if project.terms.organizer_contribution_minor:
        weights[organizer] = project.terms.organizer_contribution_minor
        order[organizer] = project.id
    for c in found:
        weights[c.contributor] = weights.get(c.contributor, 0) + c.total_minor
        order[c.contributor] = min(order.get(c.contributor, c.first_seq), c.first_seq)
    claims = sorted(weights.items(), key=lambda kv: (order[kv[0]], kv[0]))
    shares = largest_remainder(project.terms.total_units, claims)
    return {who: n for who, n in shares.items() if n}


# -- manual pledges -----------------------------------------------------------------------


def record_manual_pledge(
    ledger: Ledger,
    project_id: int,
    contributor: str,
    amount_minor: int,
    evidence_sha256: str,
    *,
    by: str,
    key: str,
    actor: str,
) -> ManualPledgeRecord:
    """Record a pledge paid outside the chain; journaled as ``pledge.manual``.

    Only the listing node (``Forbidden(not_listing_node)``), where the project allows them
    (``Refused(manual_pledges_not_allowed)``), at least the minimum pledge
    (``Refused(pledge_below_minimum)``), before the deadline (``Refused(deadline_passed)``),
    each piece of evidence once (``Conflict(evidence_repeated)``). A manual pledge counts
    toward the goal: while the project is a draft (then the escrow deployed at opening
    asks for less), or while it is open without an escrow; once an escrow holds the rest
    of the goal, ``Refused(manual_pledge_after_escrow)``. An open project without an escrow
    whose goal a manual pledge meets is funded and issued in the same transaction."""
    validate_address(by)
    validate_address(contributor)
    check_amount(amount_minor, "amount_minor")
    check_sha256("evidence_sha256", evidence_sha256)
    draft = EntryDraft(
        kind=EntryKind.PLEDGE_MANUAL,
        idempotency_key=key,
        actor=actor,
        payload={
            "project_id": project_id,
            "contributor": contributor,
            "amount_minor": amount_minor,
            "evidence_sha256": evidence_sha256,
            "by": by,
        },
    )
    with ledger.write() as tx:

        def record(seq: int) -> None:
            project = get_project(tx.conn, project_id)
            if project.lister != by:
                raise Forbidden(
                    "not_listing_node",
                    f"only the finance node that listed project {project_id} may",
                )
            if not project.terms.manual_pledges_allowed:
                raise Refused(
                    "manual_pledges_not_allowed", f"project {project_id} takes no manual pledges"
                )
            if project.state not in (ProjectState.DRAFT, ProjectState.OPEN):
                raise Refused(
                    "project_state",
                    f"project {project_id} is {project.state.value}: it takes no pledges",
                    state=project.state.value,
                )
            if project.escrow is not None:
                raise Refused(
                    "manual_pledge_after_escrow",
                    f"project {project_id}'s escrow holds the rest of its goal: pledge on-chain",
                )
            if amount_minor < project.terms.min_pledge_minor:
                raise Refused(
                    "pledge_below_minimum",
                    f"a pledge must be at least {project.terms.min_pledge_minor}",
                    minimum=str(project.terms.min_pledge_minor),
                )
            if project.terms.deadline <= to_utc(tx.ledger.clock()):
                raise Refused("deadline_passed", f"project {project_id}'s deadline has passed")
            repeated = tx.conn.execute(
                select(_manual.c.seq).where(
                    _manual.c.project_id == project_id,
                    _manual.c.evidence_sha256 == evidence_sha256,
                )
            ).first()
            if repeated is not None:
                raise Conflict(
                    "evidence_repeated",
                    f"this evidence was recorded already (entry {repeated.seq})",
                )
            tx.conn.execute(
                insert(_manual).values(
                    seq=seq,
                    project_id=project_id,
                    contributor=contributor,
                    amount_minor=amount_minor,
                    evidence_sha256=evidence_sha256,
                    recorded_by=by,
                )
            )
            add_contribution(
                tx.conn, project_id, contributor, chain=0, manual=amount_minor, seq=seq
            )

        appended = tx.append_once(draft, record)
        if not appended.replayed:
            project = get_project(tx.conn, project_id)
            if (
                project.state is ProjectState.OPEN
                and project.escrow is None
                and project.ledger_total_minor >= project.terms.goal_minor
            ):
                fund_and_issue(tx, project, actor=actor, cause=appended.entry.seq)
        return _manual_record(tx.conn, appended.entry.seq)


def _manual_of(r: Row[Any]) -> ManualPledgeRecord:
    return ManualPledgeRecord(
        r.seq, r.project_id, r.contributor, r.amount_minor, r.evidence_sha256, r.recorded_by
    )


def _manual_record(conn: Connection, seq: int) -> ManualPledgeRecord:
    return _manual_of(conn.execute(select(_manual).where(_manual.c.seq == seq)).one())


def list_manual_pledges(conn: Connection, project_id: int) -> list[ManualPledgeRecord]:
    """A project's manual pledges, in the order they were recorded."""
    return [
        _manual_of(r)
        for r in conn.execute(
            select(_manual).where(_manual.c.project_id == project_id).order_by(_manual.c.seq)
        )
    ]


# -- funded, issued, failed ---------------------------------------------------------------


def _set_state(tx: WriteTx, project: ProjectRecord, wanted: ProjectState, seq: int) -> None:
    check_transition(project.id, project.state, wanted)
    tx.conn.execute(
        update(_projects)
        .where(_projects.c.id == project.id)
        .values(state=wanted.value, state_seq=seq)
    )


def fund_and_issue(tx: WriteTx, project: ProjectRecord, *, actor: str, cause: int) -> None:
    """Move ``project`` to funded and then forwarded, registering its asset and issuing
    all its units to its contributors, inside ``tx`` (see the module docstring). ``cause``
    is the seq of the entry that funded it (the escrow's finalize, or a manual pledge)."""
    prefix = f"project:{project.id}:"
    fund = EntryDraft(
        kind=EntryKind.PROJECT_FUND,
        idempotency_key=prefix + "fund",
        actor=actor,
        payload={
            "project_id": project.id,
            "cause": cause,
            "total_minor": project.ledger_total_minor,
        },
    )
    tx.append_once(fund, lambda seq: _set_state(tx, project, ProjectState.FUNDED, seq))
    shares = unit_shares(project, contributions(tx.conn, project.id))
    for who in shares:
        if find_member(tx.conn, who) is None:
            register_member_in(
                tx,
                who,
                MemberKind.INDIVIDUAL.value,
                f"pledger {who}",
                key=f"{prefix}wallet:{who}",
                actor=actor,
            )
    asset_id, total = project.terms.asset_id, project.terms.total_units
    units = units_of(asset_id)
    register = EntryDraft(
        kind=EntryKind.ASSET_REGISTER,
        idempotency_key=prefix + "asset",
        actor=actor,
        payload={
            "asset_id": asset_id,
            "project_id": project.id,
            "make": "",
            "model": project.terms.title[:64],
            "serial": asset_id,
            "location": project.terms.jurisdiction,
            "total_units": total,
            "legal_framework": project.terms.legal_framework,
            "jurisdiction": project.terms.jurisdiction,
            "documents": [{"title": d.title, "sha256": d.sha256} for d in project.terms.documents],
        },
        postings=(
            Posting(AccountKey(ISSUANCE, units), -total),
            Posting(AccountKey(pool_holder(asset_id), units), total),
        ),
    )

    def insert_asset(seq: int) -> None:
        if tx.conn.execute(select(_assets.c.id).where(_assets.c.id == asset_id)).first():
            raise Conflict("asset_exists", f"asset {asset_id} is already registered")
        tx.conn.execute(
            insert(_assets).values(
                id=asset_id,
                make="",
                model=project.terms.title[:64],
                serial=asset_id,
                location=project.terms.jurisdiction,
                total_units=total,
                legal_framework=project.terms.legal_framework,
                jurisdiction=project.terms.jurisdiction,
                registered_seq=seq,
            )
        )

    tx.append_once(register, insert_asset)
    allocations = list(shares.items())
    for part, start in enumerate(range(0, len(allocations), _ISSUE_CHUNK)):
        chunk = allocations[start : start + _ISSUE_CHUNK]
        postings = [Posting(AccountKey(pool_holder(asset_id), units), -sum(n for _, n in chunk))]
        postings += [Posting(AccountKey(member_holder(a), units), n) for a, n in chunk]
        tx.append_once(
            EntryDraft(
                kind=EntryKind.ASSET_ISSUE,
                idempotency_key=f"{prefix}issue:{part}",
                actor=actor,
                payload={"asset_id": asset_id, "project_id": project.id},
                postings=tuple(postings),
            )
        )
    funded = get_project(tx.conn, project.id)
    organizer = project.terms.organizer
    forward = EntryDraft(
        kind=EntryKind.PROJECT_FORWARD,
        idempotency_key=prefix + "forward",
        actor=actor,
        payload={
            "project_id": project.id,
            "asset_id": asset_id,
            "total_units": total,
            "contributors": len(allocations),
            "operator": organizer,
        },
    )

    def forward_rows(seq: int) -> None:
        _set_state(tx, funded, ProjectState.FORWARDED, seq)
        tx.conn.execute(
            insert(_roles).values(
                address=organizer, role=Role.OPERATOR.value, asset_id=asset_id, granted_seq=seq
            )
        )
        announce_principals_changed(tx.conn)

    tx.append_once(forward, forward_rows)


def fail_project(tx: WriteTx, project: ProjectRecord, *, actor: str, as_of: str) -> bool:
    """Mark an open project failed if its deadline has passed under its goal; ``as_of``
    (RFC 3339) is the time that says so (a mirrored block's, or the ledger's clock).
    False if it is not open or not failed."""
    if project.state is not ProjectState.OPEN:
        return False
    if project.escrow is not None:
        short = project.chain_total_minor < project.escrow.goal_minor
    else:
        short = project.ledger_total_minor < project.terms.goal_minor
    if not short:
        return False
    draft = EntryDraft(
        kind=EntryKind.PROJECT_FAIL,
        idempotency_key=f"project:{project.id}:fail",
        actor=actor,
        payload={
            "project_id": project.id,
            "as_of": as_of,
            "total_minor": project.ledger_total_minor,
        },
    )
    tx.append_once(draft, lambda seq: _set_state(tx, project, ProjectState.FAILED, seq))
    return True


def fail_overdue_without_escrow(ledger: Ledger, *, actor: str = "funding-clock") -> list[int]:
    """Mark failed every open project without an escrow whose deadline has passed on the
    ledger's clock under its goal (those with an escrow fail by the chain's clock, in the
    mirror). Returns their ids."""
    failed: list[int] = []
    overdue_query = select(_projects.c.id).where(
        _projects.c.state == ProjectState.OPEN.value,
        _projects.c.escrow_address.is_(None),
        _projects.c.deadline <= to_utc(ledger.clock()),
    )
    with read_connection(ledger.engine, snapshot=False) as conn:  # most ticks end here
        if conn.execute(overdue_query.limit(1)).first() is None:
            return failed
    with ledger.write() as tx:
        now = to_utc(tx.ledger.clock())
        overdue = tx.conn.execute(
            select(_projects.c.id).where(
                _projects.c.state == ProjectState.OPEN.value,
                _projects.c.escrow_address.is_(None),
                _projects.c.deadline <= now,
            )
        ).scalars()
        for project_id in list(overdue):
            if fail_project(
                tx, get_project(tx.conn, project_id), actor=actor, as_of=format_time(now)
            ):
                failed.append(project_id)
    return failed
