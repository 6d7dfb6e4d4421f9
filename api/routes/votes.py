"""Participation: proposals and votes, work logs, and who took part in a period.

Proposals and their results are public: anyone reads what an asset's holders were
asked, how they voted (``/ballots``: each counted vote with the seq of its entry, to
check against ``GET /v1/journal``) and the result as it stands. An asset's operator (or
an admin) puts proposals and records work (``api.policy.require_asset_operator``); a
signed-in member votes for itself, and the ledger weighs the vote by the member's rights
at the proposal's record time (403 ``no_rights`` without any). Work logs and the
participation report name members, so they are for signed-in callers. Every POST takes
an ``Idempotency-Key``: the ledger's entries are keyed (``ledger_key``), so a repeat
answers what the first request recorded.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key
from api.policy import require_asset_operator
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Page
from api.schemas.votes import (
    BallotOut,
    ParticipationOut,
    ProposalIn,
    ProposalOut,
    ProposalWithResultOut,
    VoteIn,
    WorkLogIn,
    WorkLogOut,
    ballot_out,
    participation_out,
    proposal_out,
    proposal_with_result_out,
    work_log_out,
)
from ledger.db.engine import read_connection
from ledger.outputs.participation import (
    WorkEntry,
    list_work_logs,
    log_work,
    participation_report,
)
from ledger.outputs.vote_results import proposal_result
from ledger.outputs.votes import (
    cast_vote,
    get_proposal,
    list_ballots,
    list_proposals,
    propose,
)

router = APIRouter(prefix="/v1", tags=["participation"], responses=PROBLEM_RESPONSES)

AssetPath = Annotated[str, Path(min_length=1, max_length=32, description="the asset's id")]
ProposalPath = Annotated[int, Path(ge=1, le=2**62, description="the proposal's id")]
PeriodPath = Annotated[int, Path(ge=1, le=2**62, description="the period's id")]
SeqCursor = Annotated[
    int | None, Query(ge=0, le=2**62, description="the last id (seq) of the page before")
]
MemberCursor = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="the last address of the page before"),
]
LimitQuery = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]


# -- proposals and votes --------------------------------------------------------------------


@router.post("/assets/{asset_id}/proposals", response_model=ProposalOut, status_code=201)
def put_proposal(
    asset_id: AssetPath, body: ProposalIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> ProposalOut:
    """Put a proposal to the asset's rights holders (its operator or an admin: 403
    ``not_operator``). 422 ``field_*``, ``options_not_distinct``,
    ``record_after_deadline``, ``period_not_of_asset``, ``deadline_passed``,
    ``deadline_too_far`` (a year ahead at most), ``record_before_asset``; 404
    ``unknown_asset``, ``unknown_period``; 409 ``idempotency_conflict``."""
    require_asset_operator(caller, asset_id)
    made = propose(
        ledger,
        asset_id,
        body.terms(),
        by=caller.address,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return proposal_out(made)


@router.get("/assets/{asset_id}/proposals", response_model=Page[ProposalOut])
def asset_proposals(
    asset_id: AssetPath,
    ledger: LedgerDep,
    cursor: SeqCursor = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[ProposalOut]:
    """The asset's proposals, newest first (public). 404 ``unknown_asset``."""
    with read_connection(ledger.engine) as conn:
        found = list_proposals(conn, asset_id, before_id=cursor, limit=limit)
    return Page.of([proposal_out(p) for p in found], found, limit, lambda p: p.id)


@router.get("/proposals/{proposal_id}", response_model=ProposalWithResultOut)
def proposal(proposal_id: ProposalPath, ledger: LedgerDep) -> ProposalWithResultOut:
    """A proposal and its result as it stands (public); ``result.final`` once its
    deadline has passed. 404 ``unknown_proposal``."""
    now = ledger.clock()
    with read_connection(ledger.engine) as conn:
        found = get_proposal(conn, proposal_id)
        result = proposal_result(conn, found, now)
    return proposal_with_result_out(found, result)


@router.get("/proposals/{proposal_id}/ballots", response_model=Page[BallotOut])
def proposal_ballots(
    proposal_id: ProposalPath,
    ledger: LedgerDep,
    cursor: MemberCursor = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[BallotOut]:
    """The counted votes on a proposal (each voter's last), by voter address (public):
    voter, option, weight and the seq of the ``vote.cast`` entry. 404
    ``unknown_proposal``."""
    with read_connection(ledger.engine) as conn:
        found = list_ballots(conn, proposal_id, after_voter=cursor, limit=limit)
    return Page.of([ballot_out(b) for b in found], found, limit, lambda b: b.voter)


@router.post("/proposals/{proposal_id}/votes", response_model=BallotOut, status_code=201)
def vote(
    proposal_id: ProposalPath, body: VoteIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> BallotOut:
    """Vote on a proposal, for yourself, weighted by your rights at its record time;
    voting again before the deadline replaces your vote. 403 ``no_rights``; 422
    ``unknown_option``, ``voting_not_open`` (before the record time),
    ``vote_deadline_passed``; 404 ``unknown_proposal``; 409 ``idempotency_conflict``."""
    cast = cast_vote(
        ledger,
        proposal_id,
        caller.address,
        body.option,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return ballot_out(cast)


# -- work and participation -------------------------------------------------------------------


@router.post("/assets/{asset_id}/work-logs", response_model=WorkLogOut, status_code=201)
def record_work(
    asset_id: AssetPath, body: WorkLogIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> WorkLogOut:
    """Record work a member did for the asset in one of its periods (its operator or an
    admin: 403 ``not_operator``). 422 ``address_*``, ``task_malformed``,
    ``period_not_of_asset``, ``worked_on_outside_period``, ``worked_on_in_future``; 404
    ``unknown_period``, ``unknown_member``; 409 ``idempotency_conflict``."""
    require_asset_operator(caller, asset_id)
    work = WorkEntry(
        member=body.member,
        period_id=body.period_id,
        task=body.task,
        minutes=body.minutes,
        worked_on=body.worked_on,
        note=body.note,
    )
    logged = log_work(
        ledger,
        asset_id,
        work,
        by=caller.address,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return work_log_out(logged)


@router.get("/periods/{period_id}/work-logs", response_model=Page[WorkLogOut])
def period_work_logs(
    period_id: PeriodPath,
    caller: Caller,
    ledger: LedgerDep,
    cursor: SeqCursor = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[WorkLogOut]:
    """The work logged in a period, newest first (signed-in callers). 404
    ``unknown_period``."""
    with read_connection(ledger.engine) as conn:
        found = list_work_logs(conn, period_id, before_seq=cursor, limit=limit)
    return Page.of([work_log_out(w) for w in found], found, limit, lambda w: w.seq)


@router.get("/periods/{period_id}/participation", response_model=ParticipationOut)
def period_participation(
    period_id: PeriodPath,
    caller: Caller,
    ledger: LedgerDep,
    took_part: Annotated[
        bool | None, Query(description="only those who did (true) or did not (false)")
    ] = None,
    cursor: MemberCursor = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> ParticipationOut:
    """Who took part in a period (signed-in callers): each member with rights at its
    record time, whether it requested outputs, how many of the period's proposals it
    voted on, and its minutes of work by task; with counts, and ``took_part=false``
    names those who took no part. It reports; it does not judge. 404
    ``unknown_period``."""
    now = ledger.clock()
    with read_connection(ledger.engine) as conn:
        report = participation_report(
            conn, period_id, now, took_part=took_part, after_member=cursor, limit=limit
        )
    return participation_out(report, limit)
