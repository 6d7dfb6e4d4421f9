"""Votes: an asset's operator puts a proposal; its rights holders vote on it, weighted
by their rights at the proposal's record time; anyone reads the result.

A proposal (``vote.propose``, its whole terms in the payload; its id is that entry's
seq) offers 2..``OPTIONS_MAX`` distinct options and names a record time, a deadline,
a quorum and a threshold (``ledger.core.tally`` says how they decide). Its deadline is
ahead of the ledger's clock, at most ``DEADLINE_AHEAD_MAX_DAYS`` ahead; its record
time comes before the deadline (and not before the asset was registered). It may name
one of the asset's production periods (what to grow then, say).

A vote (``vote.cast``: proposal, voter, option, weight) is open from the record time
until the deadline (``record_at <= now < deadline``) to whoever had rights at the record
time (``ledger.rights``: owned less leased out plus leased in); its weight is those
rights, which nothing after the record time changes. A voter may vote again until the
deadline: the last vote counts (one ``vote_ballots`` row per voter, replaced). Every
``vote.cast`` entry stays in the journal, so ``ledger.outputs.recount`` can count the
result again from the journal alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Row, delete, insert, select

from ledger.core import EntryDraft, EntryKind, JsonValue, check_display_text, format_time
from ledger.core.errors import Forbidden, InvalidInput, NotFound, Refused
from ledger.core.tally import BP_WHOLE
from ledger.core.timestamps import parse_time, to_utc
from ledger.db.schema import VoteBallot, VoteProposal, table
from ledger.journal.write import Ledger
from ledger.outputs.periods import get_period
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset
from ledger.rights import check_record_time, holder_rights

__all__ = [
    "BALLOTS_PAGE_MAX",
    "DEADLINE_AHEAD_MAX_DAYS",
    "DESCRIPTION_LEN_MAX",
    "OPTIONS_MAX",
    "OPTIONS_MIN",
    "OPTION_LEN_MAX",
    "PROPOSALS_PAGE_MAX",
    "QUORUM_BP_MAX",
    "THRESHOLD_BP_MIN",
    "TITLE_LEN_MAX",
    "BallotRecord",
    "Proposal",
    "ProposalTerms",
    "ballot_of",
    "cast_vote",
    "get_proposal",
    "list_ballots",
    "list_proposals",
    "proposal_of",
    "propose",
]

TITLE_LEN_MAX: Final = 200
DESCRIPTION_LEN_MAX: Final = 2_000
OPTIONS_MIN: Final = 2
OPTIONS_MAX: Final = 10
OPTION_LEN_MAX: Final = 64
QUORUM_BP_MAX: Final = BP_WHOLE
THRESHOLD_BP_MIN: Final = BP_WHOLE // 2 + 1  # more than half: two options cannot both pass
DEADLINE_AHEAD_MAX_DAYS: Final = 365
PROPOSALS_PAGE_MAX: Final = 200
BALLOTS_PAGE_MAX: Final = 200

_proposals = table(VoteProposal)
_ballots = table(VoteBallot)


@dataclass(frozen=True, slots=True)
class ProposalTerms:
    """What a proposer asks: the question, its options and the rules of the vote."""

    title: str
    options: tuple[str, ...]
    record_at: datetime
    deadline: datetime
    quorum_bp: int
    threshold_bp: int
    description: str = ""
    period_id: int | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal as recorded; ``id`` is the seq of its ``vote.propose`` entry."""

    id: int
    asset_id: str
    proposer: str
    terms: ProposalTerms


@dataclass(frozen=True, slots=True)
class BallotRecord:
    """A voter's counted vote (its last), and the seq of the ``vote.cast`` entry."""

    proposal_id: int
    voter: str
    option: str
    weight_units: int
    cast_seq: int


def _check_bp(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{name}_out_of_range", f"{name} must be a whole {low}..{high}")


def _checked(terms: ProposalTerms) -> ProposalTerms:
    """``terms`` with times in UTC, or ``InvalidInput`` naming the first rule broken."""
    check_display_text("title", terms.title, TITLE_LEN_MAX)
    if terms.description:
        check_display_text("description", terms.description, DESCRIPTION_LEN_MAX)
    if not OPTIONS_MIN <= len(terms.options) <= OPTIONS_MAX:
        raise InvalidInput(
            "options_count", f"a proposal offers {OPTIONS_MIN}..{OPTIONS_MAX} options"
        )
    for option in terms.options:
        check_display_text("option", option, OPTION_LEN_MAX)
    if len(set(terms.options)) != len(terms.options):
        raise InvalidInput("options_not_distinct", "a proposal's options must differ")
    _check_bp("quorum_bp", terms.quorum_bp, 0, QUORUM_BP_MAX)
    _check_bp("threshold_bp", terms.threshold_bp, THRESHOLD_BP_MIN, BP_WHOLE)
    record_at, deadline = to_utc(terms.record_at), to_utc(terms.deadline)
    if record_at >= deadline:
        raise InvalidInput("record_after_deadline", "the record time must come before the deadline")
    if terms.period_id is not None and terms.period_id < 1:
        raise InvalidInput("period_id_out_of_range", "a period id is a positive seq")
    return ProposalTerms(
        title=terms.title,
        options=tuple(terms.options),
        record_at=record_at,
        deadline=deadline,
        quorum_bp=terms.quorum_bp,
        threshold_bp=terms.threshold_bp,
        description=terms.description,
        period_id=terms.period_id,
    )


def _payload(asset_id: str, proposer: str, terms: ProposalTerms) -> dict[str, JsonValue]:
    return {
        "asset_id": asset_id,
        "proposer": proposer,
        "title": terms.title,
        "description": terms.description,
        "options": list(terms.options),
        "record_at": format_time(terms.record_at),
        "deadline": format_time(terms.deadline),
        "quorum_bp": terms.quorum_bp,
        "threshold_bp": terms.threshold_bp,
        "period_id": terms.period_id,
    }


def proposal_of(seq: int, payload: Any) -> Proposal:
    """The proposal a ``vote.propose`` entry at ``seq`` with ``payload`` recorded: how a
    write answers (the same on a replay) and how the journal is read back."""
    return Proposal(
        id=seq,
        asset_id=payload["asset_id"],
        proposer=payload["proposer"],
        terms=ProposalTerms(
            title=payload["title"],
            options=tuple(payload["options"]),
            record_at=parse_time(payload["record_at"]),
            deadline=parse_time(payload["deadline"]),
            quorum_bp=payload["quorum_bp"],
            threshold_bp=payload["threshold_bp"],
            description=payload["description"],
            period_id=payload["period_id"],
        ),
    )


def propose(
    ledger: Ledger, asset_id: str, terms: ProposalTerms, *, by: str, key: str, actor: str
) -> Proposal:
    """Put a proposal to ``asset_id``'s rights holders; journaled as ``vote.propose``.
    ``by`` is the proposer (whether it may is the policy layer's rule: the asset's
    operator or an admin).

    Refuses, writing nothing: terms out of bounds (``InvalidInput``: ``field_*``,
    ``options_count``, ``options_not_distinct``, ``quorum_bp_out_of_range``,
    ``threshold_bp_out_of_range``, ``record_after_deadline``, ``time_naive``); an unknown
    asset, ``NotFound(unknown_asset)``; an unknown period,
    ``NotFound(unknown_period)``, or one of another asset,
    ``InvalidInput(period_not_of_asset)``; a deadline not ahead of the ledger's clock,
    ``Refused(deadline_passed)``, or more than ``DEADLINE_AHEAD_MAX_DAYS`` ahead,
    ``Refused(deadline_too_far)``; a record time before the asset was registered,
    ``Refused(record_before_asset)``. A replay of the key returns the same proposal."""
    checked = _checked(terms)
    proposer = validate_address(by)
    draft = EntryDraft(
        kind=EntryKind.VOTE_PROPOSE,
        idempotency_key=key,
        actor=actor,
        payload=_payload(asset_id, proposer, checked),
    )
    with ledger.write() as tx:

        def write(seq: int) -> None:
            get_asset(tx.conn, asset_id)  # an unknown asset: 404 before anything else
            if checked.period_id is not None:
                period = get_period(tx.conn, checked.period_id)
                if period.asset_id != asset_id:
                    raise InvalidInput(
                        "period_not_of_asset", f"period {period.id} is not one of {asset_id}'s"
                    )
            now = to_utc(tx.ledger.clock())
            if checked.deadline <= now:
                raise Refused("deadline_passed", "the deadline must be ahead of now")
            if checked.deadline > now + timedelta(days=DEADLINE_AHEAD_MAX_DAYS):
                raise Refused(
                    "deadline_too_far",
                    f"the deadline must be within {DEADLINE_AHEAD_MAX_DAYS} days of now",
                )
            check_record_time(tx.conn, asset_id, checked.record_at, now)
            tx.conn.execute(
                insert(_proposals).values(
                    id=seq,
                    asset_id=asset_id,
                    period_id=checked.period_id,
                    proposer=proposer,
                    title=checked.title,
                    description=checked.description,
                    options=json.dumps(list(checked.options)),
                    record_at=checked.record_at,
                    deadline=checked.deadline,
                    quorum_bp=checked.quorum_bp,
                    threshold_bp=checked.threshold_bp,
                    created_seq=seq,
                )
            )

        appended = tx.append_once(draft, write)
    return proposal_of(appended.entry.seq, appended.entry.payload)


def cast_vote(
    ledger: Ledger, proposal_id: int, voter: str, option: str, *, key: str, actor: str
) -> BallotRecord:
    """Vote ``option`` on proposal ``proposal_id`` as ``voter``, weighted by its rights at
    the proposal's record time; journaled as ``vote.cast``. A later vote of the same
    voter replaces this one (until the deadline).

    Refuses, writing nothing: ``NotFound(unknown_proposal)``; an option the proposal
    does not offer, ``InvalidInput(unknown_option)``; before the record time,
    ``Refused(voting_not_open)``; at or after the deadline,
    ``Refused(vote_deadline_passed)``; a voter without rights at the record time,
    ``Forbidden(no_rights)``. A replay of the key returns the same vote."""
    address = validate_address(voter)
    with ledger.write() as tx:
        proposal = get_proposal(tx.conn, proposal_id)
        terms = proposal.terms
        if option not in terms.options:
            raise InvalidInput(
                "unknown_option", f"proposal {proposal_id} offers no option {option[:64]!r}"
            )
        now = to_utc(tx.ledger.clock())
        # Rights at a past record time never change, so a replay weighs the same; before
        # the record time there is no weight yet (and the vote is refused below).
        weight = 0
        if terms.record_at <= now:
            weight = holder_rights(tx.conn, proposal.asset_id, address, terms.record_at).rights
        draft = EntryDraft(
            kind=EntryKind.VOTE_CAST,
            idempotency_key=key,
            actor=actor,
            payload={
                "proposal": proposal_id,
                "asset_id": proposal.asset_id,
                "voter": address,
                "option": option,
                "weight_units": weight,
            },
        )

        def write(seq: int) -> None:
            if now < terms.record_at:
                raise Refused(
                    "voting_not_open",
                    f"voting opens at the record time, {format_time(terms.record_at)}",
                )
            if now >= terms.deadline:
                raise Refused(
                    "vote_deadline_passed",
                    f"voting closed at the deadline, {format_time(terms.deadline)}",
                )
            if weight <= 0:
                raise Forbidden(
                    "no_rights",
                    f"{address} had no rights in {proposal.asset_id} at the record time",
                )
            tx.conn.execute(
                delete(_ballots).where(
                    _ballots.c.proposal_id == proposal_id, _ballots.c.voter == address
                )
            )
            tx.conn.execute(
                insert(_ballots).values(
                    proposal_id=proposal_id,
                    voter=address,
                    option=option,
                    weight_units=weight,
                    cast_seq=seq,
                )
            )

        appended = tx.append_once(draft, write)
    return ballot_of(appended.entry.seq, appended.entry.payload)


def ballot_of(seq: int, payload: Any) -> BallotRecord:
    """The vote a ``vote.cast`` entry at ``seq`` with ``payload`` recorded: how a write
    answers (the same on a replay) and how the journal is read back."""
    return BallotRecord(
        proposal_id=payload["proposal"],
        voter=payload["voter"],
        option=payload["option"],
        weight_units=payload["weight_units"],
        cast_seq=seq,
    )


def _proposal(r: Row[Any]) -> Proposal:
    return Proposal(
        id=r.id,
        asset_id=r.asset_id,
        proposer=r.proposer,
        terms=ProposalTerms(
            title=r.title,
            options=tuple(json.loads(r.options)),
            record_at=to_utc(r.record_at),
            deadline=to_utc(r.deadline),
            quorum_bp=r.quorum_bp,
            threshold_bp=r.threshold_bp,
            description=r.description,
            period_id=r.period_id,
        ),
    )


def get_proposal(conn: Connection, proposal_id: int) -> Proposal:
    """The proposal ``proposal_id``, or ``NotFound(unknown_proposal)``."""
    row = conn.execute(select(_proposals).where(_proposals.c.id == proposal_id)).first()
    if row is None:
        raise NotFound("unknown_proposal", f"no proposal {proposal_id}")
    return _proposal(row)


def list_proposals(
    conn: Connection, asset_id: str, *, before_id: int | None = None, limit: int = 50
) -> list[Proposal]:
    """``asset_id``'s proposals, newest first, at most ``limit`` (1..``PROPOSALS_PAGE_MAX``),
    those with an id below ``before_id`` if given; ``NotFound(unknown_asset)``."""
    if not 1 <= limit <= PROPOSALS_PAGE_MAX:
        raise InvalidInput("page_size", f"limit must be within 1..{PROPOSALS_PAGE_MAX}")
    get_asset(conn, asset_id)
    query = select(_proposals).where(_proposals.c.asset_id == asset_id)
    if before_id is not None:
        query = query.where(_proposals.c.id < before_id)
    rows = conn.execute(query.order_by(_proposals.c.id.desc()).limit(limit)).all()
    return [_proposal(r) for r in rows]


def list_ballots(
    conn: Connection, proposal_id: int, *, after_voter: str | None = None, limit: int = 50
) -> list[BallotRecord]:
    """The counted votes on ``proposal_id`` (each voter's last), by voter address, at most
    ``limit`` (1..``BALLOTS_PAGE_MAX``), those after ``after_voter`` if given;
    ``NotFound(unknown_proposal)``."""
    if not 1 <= limit <= BALLOTS_PAGE_MAX:
        raise InvalidInput("page_size", f"limit must be within 1..{BALLOTS_PAGE_MAX}")
    get_proposal(conn, proposal_id)
    query = select(_ballots).where(_ballots.c.proposal_id == proposal_id)
    if after_voter is not None:
        query = query.where(_ballots.c.voter > after_voter)
    rows = conn.execute(query.order_by(_ballots.c.voter).limit(limit)).all()
    return [
        BallotRecord(r.proposal_id, r.voter, r.option, int(r.weight_units), r.cast_seq)
        for r in rows
    ]
