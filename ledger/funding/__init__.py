"""Funding: projects listed by finance nodes (``projects``), their terms (``terms``) and
their states (``states``). Pledges, escrow and the chain mirror come later."""

from ledger.funding.projects import (
    ProjectRecord,
    cancel_project,
    create_project,
    get_project,
    list_projects,
    open_project,
)
from ledger.funding.states import TRANSITIONS, ProjectState, check_transition
from ledger.funding.terms import ProjectTerms, terms_payload

__all__ = [
    "TRANSITIONS",
    "ProjectRecord",
    "ProjectState",
    "ProjectTerms",
    "cancel_project",
    "check_transition",
    "create_project",
    "get_project",
    "list_projects",
    "open_project",
    "terms_payload",
]
