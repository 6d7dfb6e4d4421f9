"""Votes on SQLite and PostgreSQL: proposals put, votes weighed by rights at the record
time (a lease over it counts; a trade or a lease after it does not), a vote changed
until the deadline, quorum and threshold at their edges and a tie, the pool left out of
the eligible weight, the result counted again from the journal alone equal to the one
served, and every refusal changing nothing (the journal's head, proposals, ballots).

The ledger's clock is a ``StepClock`` (a second a reading) that the tests move by hand
(``at``); the market engine's own clock stays at 2027-01-15, which only decides
whether a lease term is still to come.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ledger.core import with_check_character
from ledger.core.errors import Conflict, Forbidden, InvalidInput, LedgerError, NotFound, Refused
from ledger.core.tally import VoteResult
from ledger.db.engine import read_connection, write_connection
from ledger.db.schema import VoteBallot, VoteProposal, table
from ledger.journal.reads import Digest, digest
from ledger.journal.write import Ledger
from ledger.outputs.operators import define_output_kind, set_output_terms
from ledger.outputs.periods import PeriodRecord, PeriodTimes, open_period
from ledger.outputs.vote_results import journal_ballots, proposal_result, recount
from ledger.outputs.votes import (
    BallotRecord,
    Proposal,
    ProposalTerms,
    cast_vote,
    get_proposal,
    list_ballots,
    list_proposals,
    propose,
)
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member
from ledger.rights import holder_rights
from tests.conftest import StepClock

from .network import ANN, ASSET, BOB, CAT, DAN
from .test_market_engine import BUY, SELL, Market, market

__all__ = ["market"]  # the fixture, shared with the trading tests

EVE = "0x777b72429357CbA6628b53eF68F295Cf9214a983"  # a member who holds nothing
SMALL = with_check_character("1M8GDM9A0KP061401")  # 12,000 units; the pool keeps 2,000
NOWHERE = with_check_character("1M8GDM9A0KP061411")
Q1 = "2027-01-01/2027-04-01"
Q2 = "2027-04-01/2027-07-01"
RECORD = datetime(2027, 1, 2, tzinfo=UTC)
DEADLINE = datetime(2027, 1, 10, tzinfo=UTC)


def at(ledger: Ledger, moment: datetime) -> None:
    """Move the ledger's clock to ``moment`` (its next reading is a second later)."""
    clock = ledger.clock
    assert isinstance(clock, StepClock)
    clock.now = moment


def small_world(ledger: Ledger) -> None:
    """ANN 4,000, BOB 3,000, CAT 2,000, DAN 1,000 of SMALL's 12,000 units; EVE none."""
    for i, address in enumerate((ANN, BOB, CAT, DAN, EVE)):
        register_member(ledger, address, "individual", f"m{i}", key=f"m:{address}", actor="t")
    register_asset(
        ledger, SMALL, make="Richel", model="Greenhouse", serial="R-9", location="Ede",
        jurisdiction="NL", total_units=12_000, key="asset", actor="t",
    )  # fmt: skip
    allocations = [(ANN, 4_000), (BOB, 3_000), (CAT, 2_000), (DAN, 1_000)]
    issue_units(ledger, SMALL, allocations, key="issue", actor="t")


def a_period(ledger: Ledger, asset: str, name: str = "2027-Q1") -> PeriodRecord:
    """A quarter of ``asset`` from 2027-01-01 (EVE operates it, by output terms), its
    record time RECORD."""
    set_output_terms(ledger, asset, EVE, 1_000, key=f"terms:{asset}", actor="admin")
    define_output_kind(ledger, asset, "tomato", "g", key=f"kind:{asset}", actor=EVE)
    start = datetime(2027, 1, 1, tzinfo=UTC)
    span = PeriodTimes(start, start + timedelta(days=90), RECORD, DEADLINE)
    return open_period(ledger, asset, name, span, key=f"open:{asset}:{name}", actor=EVE)


def terms(**changes: Any) -> ProposalTerms:
    base = ProposalTerms(
        title="Tomatoes again next season?",
        options=("yes", "no"),
        record_at=RECORD,
        deadline=DEADLINE,
        quorum_bp=5_000,
        threshold_bp=8_000,
        description="The operator asks; the holders decide.",
    )
    return replace(base, **changes)


def put(ledger: Ledger, key: str, asset: str = SMALL, **changes: Any) -> Proposal:
    return propose(ledger, asset, terms(**changes), by=EVE, key=key, actor="t")


def vote(ledger: Ledger, proposal: Proposal, voter: str, option: str, key: str) -> BallotRecord:
    return cast_vote(ledger, proposal.id, voter, option, key=key, actor="t")


def result(ledger: Ledger, proposal: Proposal) -> VoteResult:
    """The result served, checked equal to the one counted from the journal alone."""
    now = ledger.clock()
    with read_connection(ledger.engine) as conn:
        served = proposal_result(conn, get_proposal(conn, proposal.id), now)
        assert recount(conn, proposal.id, now) == served
    return served


def everything(ledger: Ledger) -> tuple[Digest, list[Any], list[Any]]:
    """The journal's head, every proposal and every ballot."""
    proposals, ballots = table(VoteProposal), table(VoteBallot)
    with read_connection(ledger.engine) as conn:
        return (
            digest(conn),
            [tuple(r) for r in conn.execute(select(proposals).order_by(proposals.c.id))],
            [tuple(r) for r in conn.execute(select(ballots).order_by(*ballots.primary_key))],
        )


def refused(ledger: Ledger, kind: type[LedgerError], code: str, attempt: Callable[[], Any]) -> None:
    before = everything(ledger)
    with pytest.raises(kind) as caught:
        attempt()
    assert caught.value.code == code, caught.value
    assert everything(ledger) == before


# -- weights: rights at the record time ---------------------------------------------------


def test_votes_weigh_rights_at_the_record_time_and_nothing_after(market: Market) -> None:
    ledger = market.ledger
    record, deadline = datetime(2027, 4, 15, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC)
    asked = terms(options=("tomato", "pepper"), record_at=record, deadline=deadline)
    proposal = propose(ledger, ASSET, asked, by=EVE, key="p", actor="t")
    # Before the record time: ANN leases 100,000 to DAN over Q2 (it covers the record
    # time), BOB 50,000 to CAT over Q1 (it ends before).
    market.place(ANN, SELL, 5, 100_000, term=Q2)
    market.place(DAN, BUY, 5, 100_000, term=Q2)
    market.place(BOB, SELL, 5, 50_000, term=Q1)
    market.place(CAT, BUY, 5, 50_000, term=Q1)
    refused(
        ledger, Refused, "voting_not_open", lambda: vote(ledger, proposal, ANN, "tomato", "early")
    )

    at(ledger, datetime(2027, 4, 20, tzinfo=UTC))
    # After the record time: BOB sells 50,000 to CAT, CAT leases 20,000 to DAN over Q2.
    market.place(BOB, SELL, 5, 50_000)
    market.place(CAT, BUY, 5, 50_000)
    market.place(CAT, SELL, 5, 20_000, term=Q2)
    market.place(DAN, BUY, 5, 20_000, term=Q2)
    with read_connection(ledger.engine) as conn:  # the trade and lease did happen
        now = ledger.clock()
        assert holder_rights(conn, ASSET, CAT, now).rights == 230_000
        assert holder_rights(conn, ASSET, DAN, now).rights == 120_000

    weights = {
        voter: vote(ledger, proposal, voter, option, f"v-{voter}").weight_units
        for voter, option in ((ANN, "tomato"), (BOB, "pepper"), (CAT, "pepper"), (DAN, "tomato"))
    }
    assert weights == {ANN: 400_000, BOB: 300_000, CAT: 200_000, DAN: 100_000}
    with read_connection(ledger.engine) as conn:
        for voter, weight in weights.items():
            assert holder_rights(conn, ASSET, voter, record).rights == weight
    found = result(ledger, proposal)
    assert found.tally == (("tomato", 500_000), ("pepper", 500_000))
    assert (found.weight_cast, found.eligible_weight, found.turnout_bp) == (10**6, 10**6, 10_000)
    assert (found.tied, found.leading, found.passed, found.final) == (True, None, False, False)
    # A member with no rights at the record time may not vote, whatever it holds now.
    refused(ledger, Forbidden, "no_rights", lambda: vote(ledger, proposal, EVE, "tomato", "eve"))


def test_a_voter_changes_its_vote_until_the_deadline_and_the_last_counts(ledger: Ledger) -> None:
    small_world(ledger)
    proposal = put(ledger, "p", quorum_bp=0, threshold_bp=6_000)
    at(ledger, RECORD)
    first = vote(ledger, proposal, ANN, "no", "ann-1")
    vote(ledger, proposal, BOB, "yes", "bob-1")
    assert result(ledger, proposal).tally == (("yes", 3_000), ("no", 4_000))
    changed = vote(ledger, proposal, ANN, "yes", "ann-2")
    assert changed.cast_seq > first.cast_seq and changed.weight_units == 4_000
    found = result(ledger, proposal)
    assert found.tally == (("yes", 7_000), ("no", 0))
    assert (found.leading, found.leading_share_bp, found.passed) == ("yes", 10_000, True)
    assert found.voters == 2
    # Both of ANN's votes stay in the journal; the last one counts.
    with read_connection(ledger.engine) as conn:
        assert [(b.voter, b.option, b.cast_seq) for b in journal_ballots(conn, proposal.id)] == [
            (ANN, "yes", changed.cast_seq),
            (BOB, "yes", changed.cast_seq - 1),
        ]
        assert list_ballots(conn, proposal.id) == sorted(
            journal_ballots(conn, proposal.id), key=lambda b: b.voter
        )
    # A replay answers the first vote again and changes nothing; the key with another
    # option is a conflict.
    before = everything(ledger)
    assert vote(ledger, proposal, ANN, "no", "ann-1") == first
    assert everything(ledger) == before
    refused(
        ledger,
        Conflict,
        "idempotency_conflict",
        lambda: vote(ledger, proposal, ANN, "yes", "ann-1"),
    )
    # At the deadline voting closes and the result is final; a replay still answers.
    at(ledger, DEADLINE - timedelta(seconds=1))
    refused(
        ledger, Refused, "vote_deadline_passed", lambda: vote(ledger, proposal, ANN, "no", "late")
    )
    assert vote(ledger, proposal, ANN, "yes", "ann-2") == changed
    final = result(ledger, proposal)
    assert final.final and final.passed and final.tally == found.tally


def test_quorum_and_threshold_at_their_edges_and_a_tie(ledger: Ledger) -> None:
    small_world(ledger)
    # Eligible: the members' 10,000 units (the pool's 2,000 do not vote).
    exact = put(ledger, "exact")  # quorum 50 %, threshold 80 %
    over_quorum = put(ledger, "over-quorum", quorum_bp=5_001)
    over_threshold = put(ledger, "over-threshold", threshold_bp=8_001)
    tie = put(ledger, "tie", quorum_bp=0, threshold_bp=5_001)
    at(ledger, RECORD + timedelta(hours=1))
    for proposal in (exact, over_quorum, over_threshold):
        vote(ledger, proposal, ANN, "yes", f"{proposal.id}-ann")  # 4,000
        vote(ledger, proposal, DAN, "no", f"{proposal.id}-dan")  # 1,000
    vote(ledger, tie, BOB, "yes", "tie-bob")  # 3,000
    vote(ledger, tie, CAT, "no", "tie-cat")  # 2,000
    vote(ledger, tie, DAN, "no", "tie-dan")  # 1,000

    found = result(ledger, exact)  # turnout exactly 50 %, "yes" exactly 80 %
    assert (found.eligible_weight, found.weight_cast, found.turnout_bp) == (10_000, 5_000, 5_000)
    assert (found.quorum_met, found.leading, found.leading_share_bp) == (True, "yes", 8_000)
    assert found.passed and not found.final
    below_quorum = result(ledger, over_quorum)
    assert (below_quorum.quorum_met, below_quorum.leading, below_quorum.passed) == (
        False,
        "yes",
        False,
    )
    below_threshold = result(ledger, over_threshold)
    assert below_threshold.quorum_met and not below_threshold.passed
    tied = result(ledger, tie)
    assert tied.tally == (("yes", 3_000), ("no", 3_000))
    assert (tied.tied, tied.leading, tied.leading_share_bp, tied.passed) == (
        True,
        None,
        5_000,
        False,
    )
    # Nothing voted yet: nothing leads, nothing passes, even with no quorum.
    empty = put(ledger, "empty", quorum_bp=0, record_at=RECORD + timedelta(hours=2))
    nothing = result(ledger, empty)
    assert (nothing.weight_cast, nothing.leading, nothing.quorum_met, nothing.passed) == (
        0, None, True, False,
    )  # fmt: skip
    at(ledger, DEADLINE)
    assert all(result(ledger, p).final for p in (exact, over_quorum, over_threshold, tie, empty))
    assert result(ledger, exact).passed


def test_the_recount_reads_the_journal_not_the_ballot_rows(ledger: Ledger) -> None:
    small_world(ledger)
    proposal = put(ledger, "p")
    at(ledger, RECORD)
    vote(ledger, proposal, ANN, "yes", "a")
    vote(ledger, proposal, BOB, "no", "b")
    now = ledger.clock()
    with read_connection(ledger.engine) as conn:
        counted = recount(conn, proposal.id, now)
    ballots = table(VoteBallot)
    with write_connection(ledger.engine) as conn:  # a row changed behind the ledger's back
        conn.execute(update(ballots).where(ballots.c.voter == BOB).values(option="yes"))
    with read_connection(ledger.engine) as conn:
        served = proposal_result(conn, get_proposal(conn, proposal.id), now)
        assert served.tally == (("yes", 7_000), ("no", 0))
        assert recount(conn, proposal.id, now) == counted != served
        assert counted.tally == (("yes", 4_000), ("no", 3_000))


def test_a_proposal_may_name_a_period_of_its_asset_only(ledger: Ledger) -> None:
    small_world(ledger)
    register_asset(
        ledger, NOWHERE, make="Deere", model="8R", serial="S-2", location="Ames",
        jurisdiction="US-IA", key="other", actor="t",
    )  # fmt: skip
    mine, other = a_period(ledger, SMALL), a_period(ledger, NOWHERE)
    made = put(ledger, "p", period_id=mine.id)
    assert made.terms.period_id == mine.id
    with read_connection(ledger.engine) as conn:
        assert get_proposal(conn, made.id) == made
    refused(
        ledger, InvalidInput, "period_not_of_asset", lambda: put(ledger, "q", period_id=other.id)
    )
    refused(ledger, InvalidInput, "period_id_out_of_range", lambda: put(ledger, "r", period_id=0))


# -- reading -------------------------------------------------------------------------------


def test_proposals_are_listed_newest_first_and_ballots_paged_by_voter(ledger: Ledger) -> None:
    small_world(ledger)
    made = [put(ledger, f"p{i}", title=f"Question {i}") for i in range(3)]
    assert made[0].terms == terms(title="Question 0")
    assert (made[0].asset_id, made[0].proposer) == (SMALL, EVE)
    with read_connection(ledger.engine) as conn:
        assert list_proposals(conn, SMALL) == made[::-1]
        assert list_proposals(conn, SMALL, before_id=made[2].id, limit=1) == [made[1]]
        assert get_proposal(conn, made[0].id) == made[0]
        with pytest.raises(NotFound) as unknown:
            list_proposals(conn, NOWHERE)
        assert unknown.value.code == "unknown_asset"
        with pytest.raises(InvalidInput):
            list_proposals(conn, SMALL, limit=0)
    at(ledger, RECORD)
    for voter in (DAN, ANN, CAT, BOB):
        vote(ledger, made[0], voter, "yes", f"v{voter}")
    with read_connection(ledger.engine) as conn:
        every = list_ballots(conn, made[0].id)
        assert [b.voter for b in every] == sorted((ANN, BOB, CAT, DAN))
        first = list_ballots(conn, made[0].id, limit=2)
        rest = list_ballots(conn, made[0].id, after_voter=first[-1].voter, limit=2)
        assert first + rest == every
        assert list_ballots(conn, made[1].id) == []


# -- refusals: each changes nothing ----------------------------------------------------------


def test_every_refused_proposal_changes_nothing(ledger: Ledger) -> None:
    small_world(ledger)
    put(ledger, "fine")
    now = datetime(2027, 1, 1, 12, tzinfo=UTC)
    at(ledger, now)
    bad: list[tuple[type[LedgerError], str, dict[str, Any]]] = [
        (InvalidInput, "field_empty", {"title": " "}),
        (InvalidInput, "field_too_long", {"title": "x" * 201}),
        (InvalidInput, "field_too_long", {"description": "x" * 2_001}),
        (InvalidInput, "field_control_character", {"description": "two\nlines"}),
        (InvalidInput, "options_count", {"options": ("only",)}),
        (InvalidInput, "options_count", {"options": tuple(f"o{i}" for i in range(11))}),
        (InvalidInput, "options_not_distinct", {"options": ("yes", "yes")}),
        (InvalidInput, "field_too_long", {"options": ("yes", "n" * 65)}),
        (InvalidInput, "field_empty", {"options": ("yes", "")}),
        (InvalidInput, "quorum_bp_out_of_range", {"quorum_bp": 10_001}),
        (InvalidInput, "quorum_bp_out_of_range", {"quorum_bp": -1}),
        (InvalidInput, "threshold_bp_out_of_range", {"threshold_bp": 5_000}),
        (InvalidInput, "threshold_bp_out_of_range", {"threshold_bp": 10_001}),
        (InvalidInput, "record_after_deadline", {"record_at": DEADLINE}),
        (InvalidInput, "time_naive", {"deadline": datetime(2027, 2, 1)}),
        (Refused, "deadline_passed", {"record_at": now - timedelta(days=2), "deadline": now}),
        (Refused, "deadline_too_far", {"deadline": now + timedelta(days=366)}),
        (Refused, "record_before_asset", {"record_at": datetime(2026, 12, 1, tzinfo=UTC)}),
        (NotFound, "unknown_period", {"period_id": 10**9}),
    ]
    for i, (kind, code, changes) in enumerate(bad):
        refused(ledger, kind, code, lambda: put(ledger, f"bad-{i}", **changes))  # noqa: B023
    refused(ledger, NotFound, "unknown_asset", lambda: put(ledger, "nowhere", asset=NOWHERE))
    refused(ledger, Conflict, "idempotency_conflict", lambda: put(ledger, "fine", title="Other"))
    # At the limits: ten options of 64 characters, a deadline a year ahead, quorum 100 %.
    widest = tuple(f"{i}" + "o" * 63 for i in range(10))
    year = put(
        ledger, "limits", options=widest, deadline=now + timedelta(days=365),
        quorum_bp=10_000, threshold_bp=10_000, title="t" * 200, description="d" * 2_000,
    )  # fmt: skip
    assert year.terms.options == widest


def test_every_refused_vote_changes_nothing(ledger: Ledger) -> None:
    small_world(ledger)
    proposal = put(ledger, "p")
    refused(ledger, Refused, "voting_not_open", lambda: vote(ledger, proposal, ANN, "yes", "k1"))
    at(ledger, RECORD)
    vote(ledger, proposal, ANN, "yes", "ann")
    gone = replace(proposal, id=10**9)
    cases: list[tuple[type[LedgerError], str, Callable[[], Any]]] = [
        (Forbidden, "no_rights", lambda: vote(ledger, proposal, EVE, "yes", "k2")),
        (InvalidInput, "unknown_option", lambda: vote(ledger, proposal, BOB, "maybe", "k3")),
        (InvalidInput, "address_checksum", lambda: vote(ledger, proposal, BOB.lower(), "yes", "k")),
        (NotFound, "unknown_proposal", lambda: vote(ledger, gone, BOB, "yes", "k5")),
        (Conflict, "idempotency_conflict", lambda: vote(ledger, proposal, ANN, "no", "ann")),
    ]
    for kind, code, attempt in cases:
        refused(ledger, kind, code, attempt)
    at(ledger, DEADLINE)
    refused(
        ledger, Refused, "vote_deadline_passed", lambda: vote(ledger, proposal, BOB, "no", "k6")
    )
