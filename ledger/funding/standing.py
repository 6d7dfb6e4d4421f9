"""Whether an asset's units may change hands and pay out yet, and what its operator
keeps: the rules every service asks (the market's orders, leases and transfers,
buy-outs, output periods).

A project lists an asset it means to buy; the asset is registered when the project is
funded. Until then nothing of it trades, leases, is bought out or pays out (DESIGN.md,
invariant 4). A failed or cancelled project bought nothing and leaves no rule behind:
the asset may be registered by hand afterwards, like any asset no project brought.

The funded project's organizer operates the asset and keeps at least its retained
minimum (invariant 5): what it offers, moves away or agrees to sell in a buy-out must
leave that much unreserved, so that no trade takes its holding below.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from ledger.core.errors import Refused
from ledger.db.schema import Project, table
from ledger.funding.states import ProjectState

__all__ = ["FundedProject", "check_retained", "funded_project_of"]

_projects = table(Project)
_FUNDED = (ProjectState.FUNDED.value, ProjectState.FORWARDED.value)
_ON_ITS_WAY = (ProjectState.DRAFT.value, ProjectState.OPEN.value)


@dataclass(frozen=True, slots=True)
class FundedProject:
    """The project that bought an asset: its organizer operates the asset."""

    id: int
    organizer: str
    operator_share_bp: int
    retained_min_units: int


def funded_project_of(conn: Connection, asset_id: str, *, refusal: str) -> FundedProject | None:
    """The funded (or forwarded) project that bought ``asset_id``; None if no project did
    (its only projects failed or were cancelled, or none named it: whether it is
    registered is the caller's to check). ``Refused(project_not_funded)`` while a project
    that means to buy it is draft or open; ``refusal`` ends that error's message, saying
    what does not happen yet ("nothing of it trades before the project is funded")."""
    rows = conn.execute(
        select(
            _projects.c.id,
            _projects.c.state,
            _projects.c.organizer,
            _projects.c.operator_share_bp,
            _projects.c.retained_min_units,
        )
        .where(_projects.c.asset_id == asset_id)
        .order_by(_projects.c.id.desc())
    ).all()
    for row in rows:  # at most one is draft, open, funded or forwarded (create_project)
        if row.state in _FUNDED:
            return FundedProject(
                row.id, row.organizer, int(row.operator_share_bp), int(row.retained_min_units)
            )
        if row.state in _ON_ITS_WAY:
            raise Refused(
                "project_not_funded",
                f"asset {asset_id} belongs to project {row.id}, which is {row.state}: {refusal}",
            )
    return None


def check_retained(retained_min_units: int, kept_units: int) -> None:
    """``Refused(operator_retained_minimum)`` unless ``kept_units``, what the operator
    keeps unreserved after the act asked, covers ``retained_min_units``."""
    if kept_units < retained_min_units:
        raise Refused(
            "operator_retained_minimum",
            f"the operator keeps at least {retained_min_units} units unreserved;"
            f" this would leave {kept_units}",
            retained_min_units=str(retained_min_units),
        )
