"""Funding: projects listed by finance nodes (``projects``), their terms (``terms``) and
states (``states``); contributions, manual pledges and the issue of units
(``contributions``); the ledger side of the chain mirror (``mirror``); and whether an
asset's units may change hands yet (``standing``)."""

from ledger.funding.contributions import (
    Contribution,
    ManualPledgeRecord,
    contributions,
    list_manual_pledges,
    record_manual_pledge,
    unit_shares,
)
from ledger.funding.mirror import (
    BlockMark,
    EscrowCreated,
    EscrowEvent,
    MirrorReport,
    ReconciliationLine,
    chain_cursor,
    mirror_batch,
    recent_blocks,
    reconcile,
    undo_after,
)
from ledger.funding.projects import (
    EscrowRef,
    ProjectRecord,
    cancel_project,
    create_project,
    escrow_goal,
    get_project,
    list_projects,
    open_project,
    project_by_chain_key,
)
from ledger.funding.standing import FundedProject, funded_project_of
from ledger.funding.states import TRANSITIONS, ProjectState, check_transition
from ledger.funding.terms import ProjectTerms, terms_payload

__all__ = [
    "TRANSITIONS",
    "BlockMark",
    "Contribution",
    "EscrowCreated",
    "EscrowEvent",
    "EscrowRef",
    "FundedProject",
    "ManualPledgeRecord",
    "MirrorReport",
    "ProjectRecord",
    "ProjectState",
    "ProjectTerms",
    "ReconciliationLine",
    "cancel_project",
    "chain_cursor",
    "check_transition",
    "contributions",
    "create_project",
    "escrow_goal",
    "funded_project_of",
    "get_project",
    "list_manual_pledges",
    "list_projects",
    "mirror_batch",
    "open_project",
    "project_by_chain_key",
    "recent_blocks",
    "reconcile",
    "record_manual_pledge",
    "terms_payload",
    "undo_after",
    "unit_shares",
]
