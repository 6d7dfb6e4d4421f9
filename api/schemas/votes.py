"""Proposals, votes, results, work logs and participation on the wire.

Units (weights, rights) travel as JSON integers: an asset has at most 10**15 units, well
inside what every JSON reader holds exactly. Basis points are whole numbers of
10,000ths. Times are RFC 3339 with their offset coming in, UTC going out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Integer, Strict, ZonedTime
from ledger.core.tally import BP_WHOLE, VoteResult
from ledger.outputs.participation import (
    MINUTES_MAX,
    NOTE_LEN_MAX,
    TASK_PATTERN,
    MemberParticipation,
    ParticipationReport,
    WorkLogRecord,
)
from ledger.outputs.votes import (
    DESCRIPTION_LEN_MAX,
    OPTION_LEN_MAX,
    OPTIONS_MAX,
    OPTIONS_MIN,
    THRESHOLD_BP_MIN,
    TITLE_LEN_MAX,
    BallotRecord,
    Proposal,
    ProposalTerms,
)

__all__ = [
    "BallotOut",
    "OptionWeightOut",
    "ParticipationOut",
    "ParticipationRowOut",
    "ProposalIn",
    "ProposalOut",
    "ProposalWithResultOut",
    "ResultOut",
    "TaskMinutesOut",
    "VoteIn",
    "WorkLogIn",
    "WorkLogOut",
    "ballot_out",
    "participation_out",
    "proposal_out",
    "proposal_with_result_out",
    "result_out",
    "work_log_out",
]

PERIOD_ID_MAX = 2**62
Option = Annotated[str, StringConstraints(min_length=1, max_length=OPTION_LEN_MAX)]
Member = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Task = Annotated[str, StringConstraints(pattern=TASK_PATTERN)]


class ProposalIn(Strict):
    """A proposal an asset's operator (or an admin) puts to its rights holders: who had
    rights at ``record_at`` may vote until ``deadline``, weighted by them. It passes when
    the weight cast is at least ``quorum_bp`` of the members' rights at the record time
    and the leading option has at least ``threshold_bp`` of the weight cast (more than
    half: 6000 is a 60 % supermajority); a tie never passes."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=TITLE_LEN_MAX)]
    description: Annotated[str, StringConstraints(max_length=DESCRIPTION_LEN_MAX)] = ""
    options: list[Option] = Field(min_length=OPTIONS_MIN, max_length=OPTIONS_MAX)
    record_at: ZonedTime
    deadline: ZonedTime
    quorum_bp: Integer = Field(ge=0, le=BP_WHOLE)
    threshold_bp: Integer = Field(ge=THRESHOLD_BP_MIN, le=BP_WHOLE)
    period_id: Integer | None = Field(default=None, ge=1, le=PERIOD_ID_MAX)

    def terms(self) -> ProposalTerms:
        """The ledger's terms of this body."""
        return ProposalTerms(
            title=self.title,
            options=tuple(self.options),
            record_at=self.record_at,
            deadline=self.deadline,
            quorum_bp=self.quorum_bp,
            threshold_bp=self.threshold_bp,
            description=self.description,
            period_id=self.period_id,
        )


class ProposalOut(BaseModel):
    """A proposal; ``id`` is the seq of its ``vote.propose`` entry."""

    id: int
    asset_id: str
    period_id: int | None
    proposer: str
    title: str
    description: str
    options: list[str]
    record_at: datetime
    deadline: datetime
    quorum_bp: int
    threshold_bp: int


class OptionWeightOut(BaseModel):
    option: str
    weight_units: int


class ResultOut(BaseModel):
    """A proposal's result as it stands (final once the deadline has passed): the weight
    cast per option, in the proposal's order; ``eligible_weight``, the members' rights at
    the record time (as they stand now, until it comes); ``turnout_bp`` and
    ``leading_share_bp`` floored, which decides exactly what the exact fractions would;
    ``leading`` null when nothing was cast or two options share the most (``tied``)."""

    tally: list[OptionWeightOut]
    weight_cast: int
    eligible_weight: int
    turnout_bp: int
    quorum_met: bool
    leading: str | None
    leading_share_bp: int
    tied: bool
    passed: bool
    final: bool
    voters: int


class ProposalWithResultOut(ProposalOut):
    result: ResultOut


class VoteIn(Strict):
    """Your vote on a proposal: one of its options. Voting again replaces it."""

    option: Option


class BallotOut(BaseModel):
    """A counted vote (a voter's last) and ``seq``, its ``vote.cast`` entry's: check it
    against ``GET /v1/journal``."""

    proposal_id: int
    voter: str
    option: str
    weight_units: int
    seq: int


class WorkLogIn(Strict):
    """Work ``member`` did for the asset in a period, in whole minutes (an hour is 60;
    at most a month's worth, 44,640, in one log), on ``worked_on`` (inside the period)."""

    member: Member
    period_id: Integer = Field(ge=1, le=PERIOD_ID_MAX)
    task: Task
    minutes: Integer = Field(ge=1, le=MINUTES_MAX)
    worked_on: ZonedTime
    note: Annotated[str, StringConstraints(max_length=NOTE_LEN_MAX)] = ""


class WorkLogOut(BaseModel):
    """A work log; ``seq`` is its ``work.log`` entry's."""

    seq: int
    asset_id: str
    period_id: int
    member: str
    task: str
    minutes: int
    worked_on: datetime
    note: str
    recorded_by: str


class TaskMinutesOut(BaseModel):
    task: str
    minutes: int


class ParticipationRowOut(BaseModel):
    """A member with rights at the period's record time, and what it did: an output
    request for the period, votes on the period's proposals, work logged in it."""

    member: str
    owned_units: int
    rights_units: int
    requested: bool
    votes: int
    work_minutes: int
    work_by_task: list[TaskMinutesOut]
    took_part: bool


class ParticipationOut(BaseModel):
    """Who took part in a period, among the members with rights at its record time (as
    they stand now, while it is still to come: ``provisional``). The counts cover them
    all; ``items`` is a page of them by address (only those who did or did not take part,
    with ``took_part``). It reports; it does not judge."""

    period_id: int
    asset_id: str
    record_at: datetime
    provisional: bool
    members: int
    took_part: int
    took_no_part: int
    items: list[ParticipationRowOut]
    next_cursor: str | None = Field(default=None, max_length=64)


def proposal_out(proposal: Proposal) -> ProposalOut:
    """A proposal on the wire."""
    return ProposalOut(**_proposal_fields(proposal))


def _proposal_fields(proposal: Proposal) -> dict[str, Any]:
    terms = proposal.terms
    return {
        "id": proposal.id,
        "asset_id": proposal.asset_id,
        "period_id": terms.period_id,
        "proposer": proposal.proposer,
        "title": terms.title,
        "description": terms.description,
        "options": list(terms.options),
        "record_at": terms.record_at,
        "deadline": terms.deadline,
        "quorum_bp": terms.quorum_bp,
        "threshold_bp": terms.threshold_bp,
    }


def result_out(result: VoteResult) -> ResultOut:
    """A result on the wire."""
    return ResultOut(
        tally=[OptionWeightOut(option=o, weight_units=w) for o, w in result.tally],
        weight_cast=result.weight_cast,
        eligible_weight=result.eligible_weight,
        turnout_bp=result.turnout_bp,
        quorum_met=result.quorum_met,
        leading=result.leading,
        leading_share_bp=result.leading_share_bp,
        tied=result.tied,
        passed=result.passed,
        final=result.final,
        voters=result.voters,
    )


def proposal_with_result_out(proposal: Proposal, result: VoteResult) -> ProposalWithResultOut:
    """A proposal with its result on the wire."""
    return ProposalWithResultOut(**_proposal_fields(proposal), result=result_out(result))


def ballot_out(ballot: BallotRecord) -> BallotOut:
    """A counted vote on the wire."""
    return BallotOut(
        proposal_id=ballot.proposal_id,
        voter=ballot.voter,
        option=ballot.option,
        weight_units=ballot.weight_units,
        seq=ballot.cast_seq,
    )


def work_log_out(log: WorkLogRecord) -> WorkLogOut:
    """A work log on the wire."""
    return WorkLogOut(
        seq=log.seq,
        asset_id=log.asset_id,
        period_id=log.period_id,
        member=log.member,
        task=log.task,
        minutes=log.minutes,
        worked_on=log.worked_on,
        note=log.note,
        recorded_by=log.recorded_by,
    )


def _row_out(row: MemberParticipation) -> ParticipationRowOut:
    return ParticipationRowOut(
        member=row.member,
        owned_units=row.owned_units,
        rights_units=row.rights_units,
        requested=row.requested,
        votes=row.votes,
        work_minutes=row.work_minutes,
        work_by_task=[TaskMinutesOut(task=t, minutes=m) for t, m in row.work_by_task],
        took_part=row.took_part,
    )


def participation_out(report: ParticipationReport, limit: int) -> ParticipationOut:
    """A page of a participation report on the wire; a full page has a cursor (its last
    member's address)."""
    rows = report.rows
    return ParticipationOut(
        period_id=report.period_id,
        asset_id=report.asset_id,
        record_at=report.record_at,
        provisional=report.provisional,
        members=report.members,
        took_part=report.took_part,
        took_no_part=report.took_no_part,
        items=[_row_out(r) for r in rows],
        next_cursor=rows[-1].member if rows and len(rows) == limit else None,
    )
