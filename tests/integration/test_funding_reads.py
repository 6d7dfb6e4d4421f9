"""Reads across projects (``ledger.funding.reads``): a member's contributions in every
project, paged, and the pledger count of many projects at once; a pledge withdrawn in
full counts nothing. Both databases."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

import pytest

from ledger.core import with_check_character
from ledger.core.errors import InvalidInput
from ledger.funding import (
    BlockMark,
    EscrowEvent,
    EscrowRef,
    ProjectState,
    ProjectTerms,
    contributions,
    create_project,
    escrow_goal,
    get_project,
    mirror_batch,
    open_project,
    record_manual_pledge,
)
from ledger.funding.reads import MemberContribution, contributions_of, pledger_counts
from ledger.journal.write import Ledger
from ledger.registry.members import register_member

from .network import ANN, BOB, CAT, DAN

CHAIN = 31337
ESCROW = "0x00000000000000000000000000000000000000E5"
TERMS = ProjectTerms(
    title="A greenhouse for the valley",
    description="Glass, heat and a watering line.",
    organizer=BOB,
    asset_id=with_check_character("1M8GDM9A0KP042788"),
    jurisdiction="NL",
    currency="USD",
    goal_minor=3_000_000,
    deadline=datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
    min_pledge_minor=7,
    organizer_contribution_minor=600_000,
    manual_pledges_allowed=True,
)


def evidence(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pledge(n: int, who: str, amount: int, kind: str = "pledged") -> EscrowEvent:
    block = 20 + n
    return EscrowEvent(kind, ESCROW, who, amount, block, f"0x{block:064x}", f"0x{n:064x}", 0)


@pytest.fixture
def projects(ledger: Ledger) -> list[int]:
    """Three projects: CAT pledges by hand to the first and third; on the second, an
    escrow's, DAN pledges and CAT pledges and then withdraws it all."""
    register_member(ledger, ANN, "finance_node", "North", key="m1", actor="admin")
    register_member(ledger, BOB, "individual", "Bob", key="m2", actor="admin")
    ids = [
        create_project(
            ledger,
            ANN,
            dataclasses.replace(TERMS, asset_id=with_check_character(f"1M8GDM9A0KP04279{n}")),
            key=f"p{n}",
            actor=ANN,
        ).id
        for n in range(3)
    ]
    record_manual_pledge(ledger, ids[0], CAT, 1_000, evidence("a"), by=ANN, key="a", actor=ANN)
    record_manual_pledge(ledger, ids[0], CAT, 7, evidence("b"), by=ANN, key="b", actor=ANN)
    record_manual_pledge(ledger, ids[2], CAT, 50, evidence("c"), by=ANN, key="c", actor=ANN)
    with ledger.engine.connect() as conn:
        goal = escrow_goal(get_project(conn, ids[1]))
    escrow = EscrowRef(CHAIN, ESCROW, goal, 10)
    open_project(ledger, ids[1], by=ANN, key="open", actor=ANN, escrow=escrow)
    events = [_pledge(1, DAN, 2_000), _pledge(2, CAT, 900), _pledge(3, CAT, 900, "withdrawn")]
    before_deadline = int(datetime(2027, 2, 1, tzinfo=UTC).timestamp())
    mirror_batch(ledger, CHAIN, [], events, BlockMark(23, f"0x{23:064x}", before_deadline))
    return ids


def test_a_members_contributions_in_every_project(ledger: Ledger, projects: list[int]) -> None:
    first, second, third = projects
    with ledger.engine.connect() as conn:
        found = contributions_of(conn, CAT)
        assert [c.contributor for c in contributions(conn, second)] == [DAN]  # CAT's is 0
        (dan,) = contributions_of(conn, DAN)
        assert dan == MemberContribution(
            second, TERMS.title, ProjectState.OPEN, "USD", 2_000, 0, dan.first_seq
        )
        assert dan.first_seq > found[-1].first_seq  # mirrored after CAT's manual pledges
        assert contributions_of(conn, BOB) == []  # the organizer's 20 % is a term
    assert [(c.project_id, c.manual_minor, c.chain_minor, c.total_minor) for c in found] == [
        (first, 1_007, 0, 1_007),
        (third, 50, 0, 50),
    ]
    assert all(c.state is ProjectState.DRAFT and c.currency == "USD" for c in found)


def test_pages_of_contributions(ledger: Ledger, projects: list[int]) -> None:
    first, _, third = projects
    with ledger.engine.connect() as conn:
        page = contributions_of(conn, CAT, limit=1)
        rest = contributions_of(conn, CAT, after_project_id=page[-1].project_id, limit=1)
        last = contributions_of(conn, CAT, after_project_id=rest[-1].project_id, limit=1)
        assert [c.project_id for c in page + rest + last] == [first, third]
        for bad in (0, 101, True):
            with pytest.raises(InvalidInput) as caught:
                contributions_of(conn, CAT, limit=bad)
            assert caught.value.code == "page_limit"
        with pytest.raises(InvalidInput) as malformed:
            contributions_of(conn, CAT.lower())
        assert malformed.value.code == "address_checksum"


def test_pledger_counts_of_many_projects(ledger: Ledger, projects: list[int]) -> None:
    with ledger.engine.connect() as conn:
        counts = pledger_counts(conn, [*projects, 999_999])
        assert counts == {projects[0]: 1, projects[1]: 1, projects[2]: 1, 999_999: 0}
        assert counts[projects[1]] == len(contributions(conn, projects[1]))
        assert pledger_counts(conn, []) == {}
        with pytest.raises(InvalidInput):
            pledger_counts(conn, list(range(1, 102)))
