"""Projects listed by finance nodes: created, opened and cancelled as journal entries,
materialized as rows; every refusal writes nothing. Both databases."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from ledger.core import limits, with_check_character
from ledger.core.errors import Conflict, Forbidden, InvalidInput, LedgerError, NotFound, Refused
from ledger.db.schema import Project, ProjectDocument, table
from ledger.funding import (
    TRANSITIONS,
    ProjectState,
    ProjectTerms,
    cancel_project,
    create_project,
    get_project,
    list_projects,
    open_project,
)
from ledger.journal.reads import digest as digest_of
from ledger.journal.reads import journal_page
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.assets import DocumentRef, register_asset
from ledger.registry.members import register_member

from .network import ANN, BOB, CAT, DAN

DEED = hashlib.sha256(b"co-ownership agreement").hexdigest()
PLAN = hashlib.sha256(b"operating plan").hexdigest()
TRACTOR = "1M8GDM9AXKP042788"
COMBINE = with_check_character("1M8GDM9A0KP042789")
# The test ledger's clock starts at 2027-01-01 and steps a second a reading.
DEADLINE = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)

TERMS = ProjectTerms(
    title="A tractor for the valley",
    description="Buy a Deere 8R together; the organizer operates it.",
    organizer=BOB,
    asset_id=TRACTOR,
    jurisdiction="US-IA",
    currency="USD",
    goal_minor=50_000_000,
    deadline=DEADLINE,
    min_pledge_minor=10_000,
    organizer_contribution_minor=10_000_000,
    retained_min_units=100_000,
    operator_share_bp=1_500,
    manual_pledges_allowed=True,
    documents=(DocumentRef("Deed", DEED), DocumentRef("Plan", PLAN)),
)


def _members(ledger: Ledger) -> None:
    register_member(ledger, ANN, "finance_node", "North", key="m1", actor="admin")
    register_member(ledger, BOB, "individual", "Bob", key="m2", actor="admin")
    register_member(ledger, CAT, "finance_node", "River", key="m3", actor="admin")


def _rows(conn: Connection) -> tuple[int, int]:
    return (
        conn.execute(select(func.count()).select_from(table(Project))).scalar_one(),
        conn.execute(select(func.count()).select_from(table(ProjectDocument))).scalar_one(),
    )


def _refused(ledger: Ledger, kind: type[LedgerError], code: str, act: Callable[[], Any]) -> None:
    """``act`` raises ``kind`` with ``code`` and leaves the journal and the rows as they were."""
    with ledger.engine.connect() as conn:
        before = digest_of(conn), _rows(conn)
    with pytest.raises(kind) as caught:
        act()
    assert caught.value.code == code
    with ledger.engine.connect() as conn:
        assert (digest_of(conn), _rows(conn)) == before


def test_states_move_only_along_the_design() -> None:
    assert TRANSITIONS[ProjectState.DRAFT] == {ProjectState.OPEN, ProjectState.CANCELLED}
    assert TRANSITIONS[ProjectState.OPEN] == {
        ProjectState.FUNDED,
        ProjectState.FAILED,
        ProjectState.CANCELLED,
    }
    assert TRANSITIONS[ProjectState.FUNDED] == {ProjectState.FORWARDED}
    for end in (ProjectState.FORWARDED, ProjectState.FAILED, ProjectState.CANCELLED):
        assert TRANSITIONS[end] == frozenset()
    assert set(TRANSITIONS) == set(ProjectState)


def test_a_project_is_listed_opened_and_cancelled_as_entries(ledger: Ledger) -> None:
    _members(ledger)
    project = create_project(ledger, ANN, TERMS, key="p1", actor="north")
    assert project.state is ProjectState.DRAFT and project.lister == ANN
    assert project.terms == TERMS and project.id == project.registered_seq == project.state_seq
    assert create_project(ledger, ANN, TERMS, key="p1", actor="north") == project  # replay
    opened = open_project(ledger, project.id, by=ANN, key="p1-open", actor="north")
    assert opened.state is ProjectState.OPEN and opened.state_seq > project.state_seq
    assert open_project(ledger, project.id, by=ANN, key="p1-open", actor="north") == opened
    cancelled = cancel_project(ledger, project.id, by=ANN, key="p1-cancel", actor="north")
    assert cancelled.state is ProjectState.CANCELLED and cancelled.terms == TERMS
    with ledger.engine.connect() as conn:
        entries = journal_page(conn)[::-1]  # newest first
        assert [e.kind for e in entries] == [
            "member.register",
            "member.register",
            "member.register",
            "project.create",
            "project.open",
            "project.cancel",
        ]
        create, opening, cancel = entries[3:]
        assert create.seq == project.id and not create.postings
        payload = json.loads(json.dumps(create.payload))
        assert payload["goal_minor"] == 50_000_000 and isinstance(payload["goal_minor"], int)
        assert payload["deadline"] == "2027-03-01T12:00:00.000000Z"
        assert payload["operator_share_bp"] == 1_500 and payload["lister"] == ANN
        assert payload["manual_pledges_allowed"] is True
        assert payload["documents"] == [
            {"title": "Deed", "sha256": DEED},
            {"title": "Plan", "sha256": PLAN},
        ]
        assert opening.payload == {"project_id": project.id, "by": ANN}
        assert cancel.payload == {"project_id": project.id, "by": ANN}
        assert get_project(conn, project.id) == cancelled
        assert verify(conn).ok


def test_a_cancelled_project_frees_its_asset_and_the_deadline_keeps_its_zone(
    ledger: Ledger,
) -> None:
    _members(ledger)
    eastern = DEADLINE.astimezone(timezone(timedelta(hours=-5)))
    first = create_project(ledger, ANN, TERMS, key="p1", actor="north")
    cancel_project(ledger, first.id, by=ANN, key="c1", actor="north")
    again = create_project(
        ledger, CAT, dataclasses.replace(TERMS, deadline=eastern, documents=()), key="p2", actor="r"
    )
    assert again.terms.deadline == DEADLINE and again.terms.deadline.tzinfo == UTC
    assert again.terms.documents == ()


def test_the_same_key_for_other_terms_is_a_conflict(ledger: Ledger) -> None:
    _members(ledger)
    create_project(ledger, ANN, TERMS, key="p1", actor="north")
    other = dataclasses.replace(TERMS, goal_minor=60_000_000)
    _refused(
        ledger,
        Conflict,
        "idempotency_conflict",
        lambda: create_project(ledger, ANN, other, key="p1", actor="north"),
    )


@pytest.mark.parametrize(
    ("change", "kind", "code"),
    [
        ({"asset_id": "1M8GDM9A0KP042788"}, InvalidInput, "asset_id_check_digit"),
        ({"asset_id": "SHORT"}, InvalidInput, "asset_id_length"),
        ({"currency": "XYZ"}, NotFound, "unknown_currency"),
        ({"currency": ""}, InvalidInput, "field_empty"),
        ({"organizer": DAN}, NotFound, "unknown_member"),
        ({"organizer": "0xnope"}, InvalidInput, "address_malformed"),
        ({"deadline": datetime(2026, 12, 31, tzinfo=UTC)}, Refused, "deadline_passed"),
        ({"deadline": datetime(2027, 1, 1, tzinfo=UTC)}, Refused, "deadline_passed"),
        ({"deadline": datetime(2031, 1, 1, tzinfo=UTC)}, Refused, "deadline_too_far"),
        ({"deadline": datetime(2027, 3, 1)}, InvalidInput, "time_naive"),
        ({"goal_minor": 0}, InvalidInput, "amount_not_positive"),
        ({"goal_minor": limits.AMOUNT_MAX + 1}, InvalidInput, "amount_over_limit"),
        ({"goal_minor": 1.5}, InvalidInput, "amount_type"),
        ({"min_pledge_minor": 50_000_001}, InvalidInput, "min_pledge_range"),
        ({"min_pledge_minor": 0}, InvalidInput, "min_pledge_range"),
        ({"organizer_contribution_minor": 50_000_001}, InvalidInput, "contribution_range"),
        ({"organizer_contribution_minor": -1}, InvalidInput, "contribution_range"),
        ({"operator_share_bp": 10_001}, InvalidInput, "operator_share_range"),
        ({"operator_share_bp": True}, InvalidInput, "amount_type"),
        ({"retained_min_units": 1_000_001}, InvalidInput, "retained_units_range"),
        ({"total_units": 0}, InvalidInput, "total_units_range"),
        ({"total_units": limits.TOTAL_UNITS_MAX + 1}, InvalidInput, "total_units_range"),
        ({"manual_pledges_allowed": 1}, InvalidInput, "field_type"),
        ({"legal_framework": "freehold"}, InvalidInput, "legal_framework"),
        ({"title": ""}, InvalidInput, "field_empty"),
        ({"title": "t" * 129}, InvalidInput, "field_too_long"),
        ({"description": "d" * 1001}, InvalidInput, "field_too_long"),
        ({"description": "a\u202eb"}, InvalidInput, "field_bidi_control"),
        ({"jurisdiction": "US\nIA"}, InvalidInput, "field_control_character"),
        ({"documents": (DocumentRef("Deed", "ABC"),)}, InvalidInput, "sha256_malformed"),
        ({"documents": (DocumentRef("Deed", DEED.upper()),)}, InvalidInput, "sha256_malformed"),
        (
            {"documents": (DocumentRef("Deed", DEED), DocumentRef("Copy", DEED))},
            InvalidInput,
            "document_repeated",
        ),
        (
            {"documents": tuple(DocumentRef(f"D{i}", f"{i:064x}") for i in range(17))},
            InvalidInput,
            "too_many_documents",
        ),
    ],
)
def test_terms_out_of_bounds_are_refused_and_write_nothing(
    ledger: Ledger, change: dict[str, Any], kind: type[LedgerError], code: str
) -> None:
    _members(ledger)
    terms = dataclasses.replace(TERMS, **change)
    _refused(ledger, kind, code, lambda: create_project(ledger, ANN, terms, key="p", actor="n"))


def test_only_a_finance_node_lists(ledger: Ledger) -> None:
    _members(ledger)
    for lister in (BOB, DAN):  # an individual member, and no member at all
        _refused(
            ledger,
            Forbidden,
            "not_finance_node",
            partial(create_project, ledger, lister, TERMS, key="p", actor="x"),
        )


def test_an_asset_registered_or_already_in_a_project_is_refused(ledger: Ledger) -> None:
    _members(ledger)
    register_asset(
        ledger,
        COMBINE,
        make="Deere",
        model="S7",
        serial="C-1",
        location="Ames, IA",
        jurisdiction="US-IA",
        key="a",
        actor="admin",
    )
    registered = dataclasses.replace(TERMS, asset_id=COMBINE)
    _refused(
        ledger,
        Conflict,
        "asset_exists",
        lambda: create_project(ledger, ANN, registered, key="p", actor="n"),
    )
    create_project(ledger, ANN, TERMS, key="p1", actor="n")
    _refused(
        ledger,
        Conflict,
        "asset_in_project",
        lambda: create_project(ledger, CAT, TERMS, key="p2", actor="r"),
    )


def test_state_changes_by_others_or_out_of_order_are_refused(ledger: Ledger) -> None:
    _members(ledger)
    project = create_project(ledger, ANN, TERMS, key="p1", actor="n")
    for other in (CAT, BOB):
        _refused(
            ledger,
            Forbidden,
            "not_listing_node",
            partial(cancel_project, ledger, project.id, by=other, key="c", actor="x"),
        )
    _refused(
        ledger,
        Forbidden,
        "not_listing_node",
        lambda: open_project(ledger, project.id, by=CAT, key="o", actor="x"),
    )
    _refused(
        ledger,
        NotFound,
        "unknown_project",
        lambda: open_project(ledger, project.id + 99, by=ANN, key="o", actor="x"),
    )
    _refused(
        ledger,
        InvalidInput,
        "project_id",
        lambda: open_project(ledger, 0, by=ANN, key="o", actor="x"),
    )
    cancel_project(ledger, project.id, by=ANN, key="c1", actor="n")
    for act in (open_project, cancel_project):
        _refused(
            ledger,
            Refused,
            "project_state",
            partial(act, ledger, project.id, by=ANN, key="again", actor="n"),
        )
    with ledger.engine.connect() as conn:
        assert get_project(conn, project.id).state is ProjectState.CANCELLED
        assert verify(conn).ok


def test_an_open_project_is_not_opened_twice_nor_after_its_deadline(engine: Any) -> None:
    clock = _Clock(datetime(2027, 1, 1, tzinfo=UTC))
    ledger = Ledger(engine, clock=clock)
    _members(ledger)
    first = create_project(ledger, ANN, TERMS, key="p1", actor="n")
    open_project(ledger, first.id, by=ANN, key="o1", actor="n")
    _refused(
        ledger,
        Refused,
        "project_state",
        lambda: open_project(ledger, first.id, by=ANN, key="o2", actor="n"),
    )
    late = dataclasses.replace(TERMS, asset_id=COMBINE)
    second = create_project(ledger, ANN, late, key="p2", actor="n")
    clock.now = DEADLINE
    _refused(
        ledger,
        Refused,
        "deadline_passed",
        lambda: open_project(ledger, second.id, by=ANN, key="o3", actor="n"),
    )
    # A replay after the deadline still answers what was recorded.
    assert create_project(ledger, ANN, late, key="p2", actor="n") == second
    cancel_project(ledger, first.id, by=ANN, key="c1", actor="n")  # open may be cancelled


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_projects_are_listed_by_state_in_pages(ledger: Ledger) -> None:
    _members(ledger)
    made = []
    for i in range(5):
        asset = with_check_character(f"1M8GDM9A0KP04279{i}")
        terms = dataclasses.replace(TERMS, asset_id=asset, title=f"Project {i}")
        made.append(create_project(ledger, ANN, terms, key=f"p{i}", actor="n"))
    opened = [open_project(ledger, p.id, by=ANN, key=f"o{p.id}", actor="n") for p in made[1::2]]
    with ledger.engine.connect() as conn:
        assert [p.id for p in list_projects(conn)] == [p.id for p in made]
        page1 = list_projects(conn, state="draft", limit=2)
        assert [p.id for p in page1] == [made[0].id, made[2].id]
        page2 = list_projects(conn, state="draft", after_id=page1[-1].id, limit=2)
        assert [p.id for p in page2] == [made[4].id]
        assert list_projects(conn, state="draft", after_id=page2[-1].id, limit=2) == []
        assert list_projects(conn, state="open") == opened
        assert list_projects(conn, state="funded") == []
        assert list_projects(conn, limit=1)[0].terms.documents == TERMS.documents
        for bad, code in (
            ({"state": "pending"}, "project_state_unknown"),
            ({"limit": 0}, "page_limit"),
            ({"limit": limits.PROJECT_PAGE_MAX + 1}, "page_limit"),
        ):
            with pytest.raises(InvalidInput) as caught:
                list_projects(conn, **bad)
            assert caught.value.code == code
        with pytest.raises(NotFound) as missing:
            get_project(conn, 10_000)
        assert missing.value.code == "unknown_project"
        assert verify(conn).ok
