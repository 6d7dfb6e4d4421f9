"""Reads of contributions across projects: what one member has in every project, and how
many contributors each of many projects has (one statement each, for pages of them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, or_, select

from ledger.core import limits
from ledger.core.errors import InvalidInput
from ledger.db.schema import Project, ProjectContribution, table
from ledger.funding.states import ProjectState
from ledger.registry.address import validate_address

__all__ = ["MemberContribution", "contributions_of", "pledger_counts"]

_projects = table(Project)
_contributions = table(ProjectContribution)
# A contributor who withdrew or reclaimed everything keeps a row of zeros: not counted.
_HAS_SOMETHING_IN = or_(_contributions.c.chain_minor != 0, _contributions.c.manual_minor != 0)


@dataclass(frozen=True, slots=True)
class MemberContribution:
    """What one contributor has in one project now."""

    project_id: int
    title: str
    state: ProjectState
    currency: str
    chain_minor: int
    manual_minor: int
    first_seq: int

    @property
    def total_minor(self) -> int:
        return self.chain_minor + self.manual_minor


def contributions_of(
    conn: Connection,
    contributor: str,
    *,
    after_project_id: int | None = None,
    limit: int = limits.PROJECT_PAGE_MAX,
) -> list[MemberContribution]:
    """The projects ``contributor`` has something in (on-chain or manual), in project id
    order after ``after_project_id``; at most ``limit`` (1..PROJECT_PAGE_MAX). The
    organizer's own contribution is a term of the project, not a contribution here."""
    validate_address(contributor)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput("page_limit", "limit must be an integer")
    if not 0 < limit <= limits.PROJECT_PAGE_MAX:
        raise InvalidInput("page_limit", f"limit must be within 1..{limits.PROJECT_PAGE_MAX}")
    query = (
        select(
            _contributions.c.project_id,
            _projects.c.title,
            _projects.c.state,
            _projects.c.currency,
            _contributions.c.chain_minor,
            _contributions.c.manual_minor,
            _contributions.c.first_seq,
        )
        .join(_projects, _projects.c.id == _contributions.c.project_id)
        .where(_contributions.c.contributor == contributor, _HAS_SOMETHING_IN)
        .order_by(_contributions.c.project_id)
        .limit(limit)
    )
    if after_project_id is not None:
        if isinstance(after_project_id, bool) or not isinstance(after_project_id, int):
            raise InvalidInput("project_id", "after_project_id must be an integer")
        query = query.where(_contributions.c.project_id > after_project_id)
    return [
        MemberContribution(
            r.project_id,
            r.title,
            ProjectState(r.state),
            r.currency,
            r.chain_minor,
            r.manual_minor,
            r.first_seq,
        )
        for r in conn.execute(query)
    ]


def pledger_counts(conn: Connection, project_ids: Sequence[int]) -> dict[int, int]:
    """For each of ``project_ids`` (at most PROJECT_PAGE_MAX), how many contributors have
    something in it: the count of ``contributions(conn, id)``. Every id is in the answer
    (0 when none)."""
    if len(project_ids) > limits.PROJECT_PAGE_MAX:
        raise InvalidInput("page_limit", f"at most {limits.PROJECT_PAGE_MAX} projects at once")
    counts = dict.fromkeys(project_ids, 0)
    if not counts:
        return counts
    for project_id, count in conn.execute(
        select(_contributions.c.project_id, func.count())
        .where(_contributions.c.project_id.in_(list(counts)), _HAS_SOMETHING_IN)
        .group_by(_contributions.c.project_id)
    ):
        counts[project_id] = count
    return counts
