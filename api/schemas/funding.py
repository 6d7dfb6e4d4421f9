"""Projects, pledges, escrows and reconciliation on the wire.

Every amount leaves as a string of decimal digits (wei pass JSON's safe integers). An
amount may come in as such a string, or as a JSON integer up to 2**53 - 1 (beyond it a
JavaScript client has already rounded it; such a number is refused, not trusted).
Nothing else is an amount: no sign, no point, no exponent, no spaces, no ``true``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from api.schemas.common import Address, AssetId, Integer, Strict, ZonedTime
from api.schemas.ledger import DocumentIn
from ledger.core import limits
from ledger.funding.states import ProjectState

__all__ = [
    "AMOUNT_DIGITS_MAX",
    "SAFE_INTEGER_MAX",
    "AmountIn",
    "ContributionOut",
    "EscrowOut",
    "FinalizeOut",
    "ManualPledgeIn",
    "ManualPledgeOut",
    "ManualPledgeRecordOut",
    "MyPledgeOut",
    "PledgeCheckOut",
    "PledgerDifferenceOut",
    "ProjectIn",
    "ProjectOut",
    "ProjectPledgesOut",
    "ReconciliationLineOut",
    "ReconciliationOut",
]

SAFE_INTEGER_MAX = 2**53 - 1  # the largest integer every JSON reader holds exactly
AMOUNT_DIGITS_MAX = 40  # as AmountText: enough for any amount the ledger takes (10**36)
_DIGITS = re.compile(rf"[0-9]{{1,{AMOUNT_DIGITS_MAX}}}")


def _amount_in(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("an amount is a string of digits, not true or false")
    if isinstance(value, int):
        if 0 <= value <= SAFE_INTEGER_MAX:
            return value
        if value < 0:
            raise ValueError("an amount is never negative")
        raise ValueError(
            "a JSON number above 2**53 - 1 may have been rounded: send it as a string of digits"
        )
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise ValueError(
        f"an amount is a string of 1..{AMOUNT_DIGITS_MAX} decimal digits in minor units"
        ' (e.g. "1500"): no sign, point, exponent or spaces'
    )


AmountIn = Annotated[
    int,
    PlainValidator(_amount_in),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^[0-9]{{1,{AMOUNT_DIGITS_MAX}}}$"},
                {"type": "integer", "minimum": 0, "maximum": SAFE_INTEGER_MAX},
            ],
            "description": "minor units: a string of digits, or a JSON integer up to 2**53 - 1",
        },
        mode="validation",
    ),
]

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Description = Annotated[
    str, StringConstraints(min_length=1, max_length=limits.PROJECT_DESCRIPTION_LEN_MAX)
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,10}$")]
# Checked by the ledger (``sha256_malformed``); held here only to a length.
EvidenceText = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ProjectIn(Strict):
    """A project as a finance node lists it; the caller is its lister. Ranges (minimum
    pledge within the goal, retained units within the total, ...) are the ledger's to
    check, each with its own code."""

    title: Text128
    description: Description
    organizer: Address
    asset_id: AssetId
    jurisdiction: Text64
    legal_framework: Text64 = "tenancy_in_common"
    documents: list[DocumentIn] = Field(
        default_factory=list, max_length=limits.PROJECT_DOCUMENTS_MAX
    )
    currency: Currency
    goal_minor: AmountIn
    min_pledge_minor: AmountIn
    organizer_contribution_minor: AmountIn = 0
    deadline: ZonedTime
    total_units: Integer = Field(
        default=limits.TOTAL_UNITS_DEFAULT, ge=1, le=limits.TOTAL_UNITS_MAX
    )
    retained_min_units: Integer = Field(default=0, ge=0, le=limits.TOTAL_UNITS_MAX)
    operator_share_bp: Integer = Field(default=0, ge=0, le=limits.OPERATOR_SHARE_BP_MAX)
    manual_pledges_allowed: StrictBool = False


class ProjectOut(BaseModel):
    """A project as anyone may see it. ``pledged_total_minor`` is what the ledger has
    mirrored from its escrow (confirmed pledges less withdrawals); ``onchain_total_minor``
    is the escrow's own ``totalPledged()`` read just now (null without an escrow, when no
    node answers, and in lists and the answers of writes: GET the project for it);
    ``ledger_total_minor`` is what counts toward the goal: the organizer's contribution,
    manual pledges and the mirrored on-chain total."""

    id: int
    state: ProjectState
    title: str
    description: str
    organizer: str
    lister: str
    asset_id: str
    legal_framework: str
    jurisdiction: str
    documents: list[DocumentIn]
    currency: str
    goal_minor: str
    min_pledge_minor: str
    organizer_contribution_minor: str
    total_units: int
    retained_min_units: int
    operator_share_bp: int
    manual_pledges_allowed: bool
    deadline: datetime
    chain_key: str = Field(description="the project's id on-chain (bytes32, hex)")
    escrow_address: str | None
    chain_id: int | None
    escrow_goal_minor: str | None
    pledged_total_minor: str
    manual_total_minor: str
    ledger_total_minor: str
    onchain_total_minor: str | None
    pledgers: int = Field(description="contributors with something in (manual or on-chain)")
    registered_seq: int
    state_seq: int


class EscrowOut(BaseModel):
    """Where to pledge: the project's escrow contract, its chain and its ABI."""

    project_id: int
    address: str
    chain_id: int
    contract: str
    goal_minor: str
    abi: list[dict[str, Any]]


class ManualPledgeIn(Strict):
    """A pledge paid outside the chain, recorded by the project's listing node."""

    contributor: Address
    amount_minor: AmountIn
    evidence_sha256: EvidenceText


class FinalizeOut(BaseModel):
    """A finalize sent to the project's escrow; the chain mirror funds the project (and
    issues its units) once the transaction has its confirmations."""

    project_id: int
    escrow: str
    tx_hash: str
    project: ProjectOut


class PledgeCheckOut(BaseModel):
    """The escrow would accept this pledge now (a refusal is a problem with its code)."""

    project_id: int
    escrow: str
    chain_id: int
    pledger: str
    amount_minor: str
    accepted: bool


class ManualPledgeRecordOut(BaseModel):
    seq: int
    project_id: int
    contributor: str
    amount_minor: str
    evidence_sha256: str
    recorded_by: str


class ManualPledgeOut(BaseModel):
    """The pledge recorded, and its project after it (funded and forwarded at once if it
    met the goal)."""

    pledge: ManualPledgeRecordOut
    project: ProjectOut


class ContributionOut(BaseModel):
    contributor: str
    chain_minor: str
    manual_minor: str
    total_minor: str
    first_seq: int


class ProjectPledgesOut(BaseModel):
    """Who put what into a project: per contributor, and the manual pledge records.
    ``complete`` is false when the caller sees only their own."""

    project_id: int
    currency: str
    complete: bool
    contributions: list[ContributionOut]
    manual_pledges: list[ManualPledgeRecordOut]


class MyPledgeOut(BaseModel):
    project_id: int
    title: str
    state: ProjectState
    currency: str
    chain_minor: str
    manual_minor: str
    total_minor: str
    first_seq: int


class PledgerDifferenceOut(BaseModel):
    pledger: str
    ledger_minor: str
    contract_minor: str


class ReconciliationLineOut(BaseModel):
    """One escrowed project: the ledger's mirrored total against the contract's own
    (null, and no difference, when the node did not answer)."""

    project_id: int
    escrow: str
    ledger_total_minor: str
    contract_total_minor: str | None
    difference_minor: str | None
    pledger_differences: list[PledgerDifferenceOut]


class ReconciliationOut(BaseModel):
    chain_id: int
    lines: list[ReconciliationLineOut]
