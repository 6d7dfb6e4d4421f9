"""What an asset's units give their holders: outputs, buy-outs, votes and participation.

DESIGN.md ("Outputs and entitlements", "Ownership terms", "Participation"). Every change
is one journal entry, with the rows the service keeps beside it written in the same
transaction; rights at a record time come from ``ledger.rights``.

- ``operators``: who operates an asset and the share it takes first; its output kinds.
- ``periods``, ``requests``: production periods; output requests and the plan.
- ``production``: production recorded and shared as entitlements.
- ``settlements``, ``reports``: deliveries, waivers and sell-backs; what each holder is
  entitled to and has outstanding; an asset's outputs page with its yields.
- ``buyouts``, ``buyout_records``, ``buyout_clock``: buy-out plans and their installments,
  settled as they fall due.
- ``votes``, ``vote_results``: proposals, ballots weighted by rights, results recounted
  from the journal; ``participation``: logged work and who took part.
- ``audit``: what ``dpn verify`` checks of outputs.
"""

from ledger.outputs.audit import audit_outputs
from ledger.outputs.buyout_clock import BuyoutClock, run_due
from ledger.outputs.buyout_records import BuyoutRecord, get_plan, list_plans
from ledger.outputs.buyouts import (
    BuyoutTerms,
    InstallmentTerms,
    accept_plan,
    cancel_plan,
    propose_plan,
)
from ledger.outputs.operators import (
    OperatorTerms,
    OutputKindRecord,
    define_output_kind,
    list_output_kinds,
    operator_of,
    set_output_terms,
)
from ledger.outputs.participation import WorkEntry, log_work, participation_report
from ledger.outputs.periods import (
    PeriodRecord,
    PeriodState,
    PeriodTimes,
    get_period,
    get_periods,
    list_periods,
    open_period,
)
from ledger.outputs.production import Buyback, ProductionRecord, production_of, record_production
from ledger.outputs.reports import (
    asset_outputs,
    holder_entitlements,
    period_entitlements,
    period_settlements,
)
from ledger.outputs.requests import Plan, RequestRecord, plan_of, plans_of, submit_request
from ledger.outputs.settlements import SettlementAction, SettlementRecord, deliver, sell_back, waive
from ledger.outputs.vote_results import proposal_result, recount
from ledger.outputs.votes import (
    Proposal,
    ProposalTerms,
    cast_vote,
    get_proposal,
    list_ballots,
    list_proposals,
    propose,
)

__all__ = [
    "Buyback",
    "BuyoutClock",
    "BuyoutRecord",
    "BuyoutTerms",
    "InstallmentTerms",
    "OperatorTerms",
    "OutputKindRecord",
    "PeriodRecord",
    "PeriodState",
    "PeriodTimes",
    "Plan",
    "ProductionRecord",
    "Proposal",
    "ProposalTerms",
    "RequestRecord",
    "SettlementAction",
    "SettlementRecord",
    "WorkEntry",
    "accept_plan",
    "asset_outputs",
    "audit_outputs",
    "cancel_plan",
    "cast_vote",
    "define_output_kind",
    "deliver",
    "get_period",
    "get_periods",
    "get_plan",
    "get_proposal",
    "holder_entitlements",
    "list_ballots",
    "list_output_kinds",
    "list_periods",
    "list_plans",
    "list_proposals",
    "log_work",
    "open_period",
    "operator_of",
    "participation_report",
    "period_entitlements",
    "period_settlements",
    "plan_of",
    "plans_of",
    "production_of",
    "proposal_result",
    "propose",
    "propose_plan",
    "record_production",
    "recount",
    "run_due",
    "sell_back",
    "set_output_terms",
    "submit_request",
    "waive",
]
