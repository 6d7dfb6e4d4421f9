"""The states of a project and the moves between them, in one table (DESIGN.md, "Projects
and pledges"): ``draft -> open -> funded -> forwarded``, ``open -> failed`` when the
deadline passes under the goal, and ``cancelled`` from draft or open.
"""

from __future__ import annotations

from enum import StrEnum

from ledger.core.errors import Refused

__all__ = ["TRANSITIONS", "ProjectState", "check_transition"]


class ProjectState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    FUNDED = "funded"
    FORWARDED = "forwarded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Every allowed move; anything not here is refused. Forwarded, failed and cancelled end.
TRANSITIONS: dict[ProjectState, frozenset[ProjectState]] = {
    ProjectState.DRAFT: frozenset({ProjectState.OPEN, ProjectState.CANCELLED}),
    ProjectState.OPEN: frozenset(
        {ProjectState.FUNDED, ProjectState.FAILED, ProjectState.CANCELLED}
    ),
    ProjectState.FUNDED: frozenset({ProjectState.FORWARDED}),
    ProjectState.FORWARDED: frozenset(),
    ProjectState.FAILED: frozenset(),
    ProjectState.CANCELLED: frozenset(),
}


def check_transition(project_id: int, current: ProjectState, wanted: ProjectState) -> None:
    """Raise ``Refused(project_state)`` unless a project may move from ``current`` to
    ``wanted``."""
    if wanted not in TRANSITIONS[current]:
        raise Refused(
            "project_state",
            f"project {project_id} is {current.value} and cannot become {wanted.value}",
            state=current.value,
            wanted=wanted.value,
        )
