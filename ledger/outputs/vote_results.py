"""A proposal's result: as the ledger serves it, and counted again from the journal alone.

``proposal_result`` tallies the counted votes (``vote_ballots``) against the members'
rights at the record time (``ledger.rights``). ``recount`` is what anyone holding a copy
of the journal can do: it reads the proposal from its ``vote.propose`` entry, every
``vote.cast`` entry after it (in seq order, so each voter's last vote is the one that
counts), and the eligible weight from the journal's postings as of the record time (the
members' units then: a lease moves rights between members, never in or out of them). It
never reads ``vote_proposals`` or ``vote_ballots``; it does check each counted vote's
weight against the voter's rights at the record time (``ledger.rights``), and raises if
one differs. Its result must equal ``proposal_result``'s.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from ledger.core import EntryKind
from ledger.core.accounts import HolderKind, parse_holder
from ledger.core.errors import IntegrityFailure, NotFound
from ledger.core.tally import Ballot, VoteResult, tally
from ledger.core.timestamps import to_utc
from ledger.db.schema import VoteBallot, table
from ledger.journal.entries import load_entries
from ledger.journal.reads import JOURNAL_PAGE_MAX, cap_table_of, digest, journal_page, seq_at
from ledger.outputs.votes import BallotRecord, Proposal, ballot_of, proposal_of
from ledger.rights import holder_rights, members_rights

__all__ = ["eligible_weight", "journal_ballots", "journal_proposal", "proposal_result", "recount"]

_ballots = table(VoteBallot)


def eligible_weight(conn: Connection, asset_id: str, record_at: datetime) -> int:
    """The rights of every member in ``asset_id`` at ``record_at`` (the unissued pool
    does not vote): as they stand now, while the record time is still to come. One
    balance read (``ledger.rights.members_rights``), not the whole rights table: every
    read of a proposal's result asks for it."""
    return members_rights(conn, asset_id, record_at)


def proposal_result(conn: Connection, proposal: Proposal, now: datetime) -> VoteResult:
    """``proposal``'s result as it stands at ``now`` (the ledger's clock), from its
    counted votes (``vote_ballots``); final once ``now`` is at or past the deadline.
    Read it in one snapshot (``read_connection``)."""
    terms = proposal.terms
    rows = conn.execute(
        select(_ballots.c.voter, _ballots.c.option, _ballots.c.weight_units).where(
            _ballots.c.proposal_id == proposal.id
        )
    ).all()
    return tally(
        terms.options,
        (Ballot(r.voter, r.option, int(r.weight_units)) for r in rows),
        eligible_weight=eligible_weight(conn, proposal.asset_id, terms.record_at),
        quorum_bp=terms.quorum_bp,
        threshold_bp=terms.threshold_bp,
        final=to_utc(now) >= terms.deadline,
    )


def journal_proposal(conn: Connection, proposal_id: int) -> Proposal:
    """The proposal as its ``vote.propose`` entry recorded it;
    ``NotFound(unknown_proposal)`` if entry ``proposal_id`` is not one."""
    if not 1 <= proposal_id <= digest(conn).seq:
        raise NotFound("unknown_proposal", f"no proposal {proposal_id}")
    (entry,) = load_entries(conn, [proposal_id])
    if entry.kind != EntryKind.VOTE_PROPOSE:
        raise NotFound("unknown_proposal", f"entry {proposal_id} is not a proposal")
    return proposal_of(entry.seq, entry.payload)


def journal_ballots(conn: Connection, proposal_id: int) -> list[BallotRecord]:
    """Each voter's last ``vote.cast`` entry on ``proposal_id``, by voter address."""
    last: dict[str, BallotRecord] = {}
    after = proposal_id  # nothing votes on a proposal before it is put
    while True:
        page = journal_page(conn, kind=EntryKind.VOTE_CAST, after_seq=after, limit=JOURNAL_PAGE_MAX)
        for entry in page:
            if entry.payload.get("proposal") == proposal_id:
                ballot = ballot_of(entry.seq, entry.payload)
                last[ballot.voter] = ballot
        if len(page) < JOURNAL_PAGE_MAX:
            return [last[voter] for voter in sorted(last)]
        after = page[-1].seq


def recount(conn: Connection, proposal_id: int, now: datetime) -> VoteResult:
    """The result of ``proposal_id`` at ``now`` counted from the journal alone (see the
    module's docstring). ``NotFound(unknown_proposal)``; ``IntegrityFailure``
    (``vote_weight_mismatch``) if a counted vote's weight is not its voter's rights at
    the record time. Read it in one snapshot (``read_connection``)."""
    proposal = journal_proposal(conn, proposal_id)
    terms = proposal.terms
    ballots = journal_ballots(conn, proposal_id)
    for ballot in ballots:
        rights = holder_rights(conn, proposal.asset_id, ballot.voter, terms.record_at).rights
        if rights != ballot.weight_units:
            raise IntegrityFailure(
                "vote_weight_mismatch",
                f"entry {ballot.cast_seq} weighs {ballot.weight_units} units; {ballot.voter}"
                f" had {rights} at the record time",
            )
    caps = cap_table_of(conn, proposal.asset_id, as_of_seq=seq_at(conn, terms.record_at))
    eligible = sum(
        row.units for row in caps.rows if parse_holder(row.holder).kind is HolderKind.MEMBER
    )
    return tally(
        terms.options,
        (Ballot(b.voter, b.option, b.weight_units) for b in ballots),
        eligible_weight=eligible,
        quorum_bp=terms.quorum_bp,
        threshold_bp=terms.threshold_bp,
        final=to_utc(now) >= terms.deadline,
    )
