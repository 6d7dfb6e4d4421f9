"""Pledges and the issue of units: manual pledges, the chain mirror's records (fed here
with events as the follower would hand them), reorganisations undone by entries, failure
past the deadline. Both databases; every refusal writes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.core import with_check_character
from ledger.core.accounts import member_holder
from ledger.core.errors import Conflict, Forbidden, IntegrityFailure, LedgerError, Refused
from ledger.db.schema import ChainEvent, ManualPledge, MemberRole, table
from ledger.funding import (
    ProjectState,
    ProjectTerms,
    create_project,
    get_project,
    open_project,
)
from ledger.funding.contributions import contributions, record_manual_pledge
from ledger.funding.mirror import (
    BlockMark,
    EscrowCreated,
    EscrowEvent,
    chain_cursor,
    mirror_batch,
    reconcile,
    undo_after,
)
from ledger.funding.projects import EscrowRef, escrow_goal
from ledger.journal.reads import cap_table
from ledger.journal.reads import digest as digest_of
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.assets import register_asset
from ledger.registry.members import register_member

from .network import ANN, BOB, CAT, DAN

TRACTOR = "1M8GDM9AXKP042788"
DEADLINE = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
ESCROW = "0x00000000000000000000000000000000000000E5"
CHAIN = 31337
EVE = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"  # a wallet that is not a member
# The network's example: the organizer puts in 20 %, finance nodes and wallets 80 %,
# in amounts whose shares of 1,000,000 units do not divide evenly.
TERMS = ProjectTerms(
    title="A greenhouse for the valley",
    description="Glass, heat and a watering line; the organizer operates it.",
    organizer=BOB,
    asset_id=TRACTOR,
    jurisdiction="US-IA",
    currency="USD",
    goal_minor=3_000_000,
    deadline=DEADLINE,
    min_pledge_minor=7,
    organizer_contribution_minor=600_000,
    retained_min_units=100_000,
    operator_share_bp=1_000,
    manual_pledges_allowed=True,
    total_units=1_000_000,
)


def evidence(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def listed(ledger: Ledger) -> int:
    register_member(ledger, ANN, "finance_node", "North", key="m1", actor="admin")
    register_member(ledger, BOB, "individual", "Bob", key="m2", actor="admin")
    register_member(ledger, CAT, "finance_node", "River", key="m3", actor="admin")
    register_member(ledger, DAN, "business", "Dan's", key="m4", actor="admin")
    return create_project(ledger, ANN, TERMS, key="p1", actor=ANN).id


def _counts(ledger: Ledger) -> tuple[object, ...]:
    with ledger.engine.connect() as conn:
        return (
            digest_of(conn),
            conn.execute(select(func.count()).select_from(table(ManualPledge))).scalar_one(),
            conn.execute(select(func.count()).select_from(table(ChainEvent))).scalar_one(),
        )


def _refused(ledger: Ledger, kind: type[LedgerError], code: str, act: Callable[[], Any]) -> None:
    before = _counts(ledger)
    with pytest.raises(kind) as caught:
        act()
    assert caught.value.code == code
    assert _counts(ledger) == before


def _units(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        return {r.holder: r.units for r in cap_table(conn, TRACTOR)}


def test_manual_pledges_fund_a_project_without_escrow_and_issue_exactly(
    ledger: Ledger, listed: int
) -> None:
    def manual(who: str, amount: int, key: str) -> None:
        record_manual_pledge(ledger, listed, who, amount, evidence(key), by=ANN, key=key, actor=ANN)

    manual(CAT, 1_000_001, "bank-1")  # draft: counts toward the goal
    open_project(ledger, listed, by=ANN, key="open", actor=ANN)
    manual(DAN, 700_000, "bank-2")
    manual(CAT, 7, "cash-3")  # CAT again: one contributor, one share
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).state is ProjectState.OPEN
    manual(EVE, 699_992, "bank-4")  # meets the goal: funded and issued at once
    with ledger.engine.connect() as conn:
        project = get_project(conn, listed)
        assert project.state is ProjectState.FORWARDED
        assert project.manual_total_minor == 2_400_000
        assert project.ledger_total_minor == 3_000_000
        roles = conn.execute(
            select(table(MemberRole)).where(table(MemberRole).c.asset_id == TRACTOR)
        ).all()
        assert [(r.address, r.role) for r in roles] == [(BOB, "operator")]
        assert verify(conn).ok
    # 1,000,000 units by 600,000 / 1,000,008 / 700,000 / 699,992 of 3,000,000.
    # Exact shares: 200,000, 333,336, 233,333.33, 233,330.67 -> the one unit left over
    # goes to the largest remainder, EVE's.
    units = _units(ledger)
    assert units == {
        member_holder(BOB): 200_000,
        member_holder(CAT): 333_336,
        member_holder(DAN): 233_333,
        member_holder(EVE): 233_331,
    }
    assert sum(units.values()) == TERMS.total_units


def test_manual_pledge_refusals_write_nothing(ledger: Ledger, listed: int) -> None:
    def act(**kw: Any) -> Callable[[], object]:
        return lambda: record_manual_pledge(
            ledger,
            listed,
            kw.get("who", CAT),
            kw.get("amount", 1_000),
            evidence(kw.get("ev", "x")),
            by=kw.get("by", ANN),
            key=kw.get("key", "k"),
            actor=ANN,
        )

    _refused(ledger, Forbidden, "not_listing_node", act(by=CAT))
    _refused(ledger, Refused, "pledge_below_minimum", act(amount=6))
    record_manual_pledge(ledger, listed, CAT, 1_000, evidence("x"), by=ANN, key="ok", actor=ANN)
    _refused(ledger, Conflict, "evidence_repeated", act(key="again"))
    open_project(
        ledger,
        listed,
        by=ANN,
        key="open",
        actor=ANN,
        escrow=EscrowRef(CHAIN, ESCROW, 2_399_000, 10),
    )
    _refused(ledger, Refused, "manual_pledge_after_escrow", act(ev="y", key="late"))
    closed = create_project(
        ledger,
        CAT,
        dataclasses.replace(
            TERMS, asset_id=with_check_character("1M8GDM9A0KP042789"), manual_pledges_allowed=False
        ),
        key="p2",
        actor=CAT,
    ).id
    _refused(
        ledger,
        Refused,
        "manual_pledges_not_allowed",
        lambda: record_manual_pledge(
            ledger, closed, DAN, 1_000, evidence("z"), by=CAT, key="no", actor=CAT
        ),
    )


def _pledge(
    n: int, who: str, amount: int, *, kind: str = "pledged", block: int = 20
) -> EscrowEvent:
    return EscrowEvent(
        kind=kind,
        escrow=ESCROW,
        account=who,
        amount=amount,
        block_number=block,
        block_hash=f"0x{block:064x}",
        tx_hash=f"0x{n:064x}",
        log_index=0,
    )


def _opened_with_escrow(ledger: Ledger, project_id: int) -> None:
    with ledger.engine.connect() as conn:
        goal = escrow_goal(get_project(conn, project_id))
    assert goal == 2_400_000
    open_project(
        ledger,
        project_id,
        by=ANN,
        key="open",
        actor=ANN,
        escrow=EscrowRef(CHAIN, ESCROW, goal, 10),
    )


BEFORE_DEADLINE = int(datetime(2027, 2, 1, tzinfo=UTC).timestamp())


def test_mirrored_pledges_finalize_into_exact_units_once(ledger: Ledger, listed: int) -> None:
    _opened_with_escrow(ledger, listed)
    events = [
        _pledge(1, CAT, 1_000_001, block=20),
        _pledge(2, EVE, 500_000, block=21),
        _pledge(3, EVE, 500_000, kind="withdrawn", block=22),  # EVE takes it back
        _pledge(4, DAN, 700_000, block=23),
        _pledge(5, EVE, 699_999, block=24),
        EscrowEvent("finalized", ESCROW, BOB, 2_400_000, 25, f"0x{25:064x}", f"0x{6:064x}", 1),
    ]
    mark = BlockMark(25, f"0x{25:064x}", BEFORE_DEADLINE)
    report = mirror_batch(ledger, CHAIN, [], events, mark)
    assert (report.recorded, report.replayed, report.funded_projects) == (6, 0, (listed,))
    again = mirror_batch(ledger, CHAIN, [], events, mark)  # a follower restarted mid-way
    assert (again.recorded, again.replayed) == (0, 6)
    units = _units(ledger)
    # 600,000 / 1,000,001 / 700,000 / 699,999 of 3,000,000 for 1,000,000 units.
    assert units == {
        member_holder(BOB): 200_000,
        member_holder(CAT): 333_334,
        member_holder(DAN): 233_333,
        member_holder(EVE): 233_333,
    }
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).state is ProjectState.FORWARDED
        assert chain_cursor(conn, CHAIN) == BlockMark(25, f"0x{25:064x}", 0)
        assert verify(conn).ok
        lines = reconcile(conn, CHAIN, lambda escrow: 2_399_999)
        assert [(line.ledger_total_minor, line.difference_minor) for line in lines] == [
            (2_400_000, -1)
        ]


def test_a_reorganisation_is_undone_by_entries(ledger: Ledger, listed: int) -> None:
    _opened_with_escrow(ledger, listed)
    first = [_pledge(1, CAT, 1_000, block=20), _pledge(2, DAN, 2_000, block=21)]
    mirror_batch(ledger, CHAIN, [], first, BlockMark(21, f"0x{21:064x}", BEFORE_DEADLINE))
    with ledger.engine.connect() as conn:
        seq_before = digest_of(conn).seq
    undone = undo_after(ledger, CHAIN, BlockMark(20, f"0x{20:064x}", 0))
    assert undone == 1
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).chain_total_minor == 1_000
        assert [c.contributor for c in contributions(conn, listed)] == [CAT]
        assert digest_of(conn).seq == seq_before + 1  # one compensating entry, nothing edited
        assert chain_cursor(conn, CHAIN) == BlockMark(20, f"0x{20:064x}", 0)
    # The same transaction mined again in another block is a new event.
    again = dataclasses.replace(first[1], block_number=22, block_hash=f"0x{222:064x}")
    report = mirror_batch(
        ledger, CHAIN, [], [again], BlockMark(22, f"0x{222:064x}", BEFORE_DEADLINE)
    )
    assert report.recorded == 1
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).chain_total_minor == 3_000
        assert verify(conn).ok


def test_a_reorganisation_past_an_issue_is_refused(ledger: Ledger, listed: int) -> None:
    _opened_with_escrow(ledger, listed)
    events = [
        _pledge(1, CAT, 2_400_000, block=20),
        EscrowEvent("finalized", ESCROW, BOB, 2_400_000, 21, f"0x{21:064x}", f"0x{9:064x}", 0),
    ]
    mirror_batch(ledger, CHAIN, [], events, BlockMark(21, f"0x{21:064x}", BEFORE_DEADLINE))
    _refused(
        ledger,
        IntegrityFailure,
        "reorg_past_issue",
        lambda: undo_after(ledger, CHAIN, BlockMark(19, f"0x{19:064x}", 0)),
    )


def test_a_deadline_passed_under_goal_fails_the_project(ledger: Ledger, listed: int) -> None:
    _opened_with_escrow(ledger, listed)
    mirror_batch(
        ledger, CHAIN, [], [_pledge(1, CAT, 1_000)], BlockMark(20, "0x" + "1" * 64, BEFORE_DEADLINE)
    )
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).state is ProjectState.OPEN
    after = int(DEADLINE.timestamp())  # the deadline is the first closed second
    report = mirror_batch(
        ledger,
        CHAIN,
        [],
        [_pledge(2, CAT, 1_000, kind="reclaimed", block=30)],
        BlockMark(30, "0x" + "2" * 64, after),
    )
    assert report.failed_projects == (listed,)
    with ledger.engine.connect() as conn:
        project = get_project(conn, listed)
        assert project.state is ProjectState.FAILED
        assert project.chain_total_minor == 0
        assert verify(conn).ok


def test_the_factory_announcement_attaches_the_escrow(ledger: Ledger, listed: int) -> None:
    with ledger.engine.connect() as conn:
        key = get_project(conn, listed).chain_key
    assert len(key) == 64
    created = EscrowCreated(
        bytes.fromhex(key), ESCROW, 2_400_000, 9, "0x" + "9" * 64, "0x" + "8" * 64, 0
    )
    stranger = EscrowCreated(
        b"\x01" * 32, "0x" + "F" * 40, 5, 9, "0x" + "9" * 64, "0x" + "8" * 64, 1
    )
    mirror_batch(
        ledger,
        CHAIN,
        [created, stranger],
        [_pledge(1, CAT, 1_000)],
        BlockMark(20, "0x" + "3" * 64, BEFORE_DEADLINE),
    )
    with ledger.engine.connect() as conn:
        project = get_project(conn, listed)
        assert project.escrow == EscrowRef(CHAIN, ESCROW, 2_400_000, 9)
        assert project.chain_total_minor == 1_000
    # The listing node's open must name the same escrow; it does, and nothing is attached twice.
    other = EscrowRef(CHAIN, "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE", 1, 9)
    _refused(
        ledger,
        Conflict,
        "escrow_mismatch",
        lambda: open_project(ledger, listed, by=ANN, key="open", actor=ANN, escrow=other),
    )
    same = EscrowRef(CHAIN, ESCROW, 2_400_000, 9)
    open_project(ledger, listed, by=ANN, key="open", actor=ANN, escrow=same)
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).state is ProjectState.OPEN
        assert verify(conn).ok


def test_an_asset_a_live_project_means_to_buy_is_not_registered_by_hand(
    ledger: Ledger, listed: int
) -> None:
    _refused(
        ledger,
        Conflict,
        "asset_in_project",
        lambda: register_asset(
            ledger,
            TRACTOR,
            make="Deere",
            model="8R",
            serial="1",
            location="Ames",
            jurisdiction="US-IA",
            key="by-hand",
            actor="admin",
        ),
    )


def test_the_clock_fails_an_open_project_without_escrow_past_its_deadline(
    ledger: Ledger, listed: int
) -> None:
    from ledger.funding.clock import DeadlineClock

    open_project(ledger, listed, by=ANN, key="open", actor=ANN)
    clock = DeadlineClock(ledger)
    assert clock.tick() == []
    ledger.clock.now = DEADLINE  # type: ignore[attr-defined]  # the StepClock of the tests
    assert clock.tick() == [listed]
    assert clock.tick() == []
    status = clock.status()  # on /readyz as "deadlines"
    assert (status.state, status.failed, status.last_error) == ("stopped", 1, None)
    assert status.last_run_at is not None
    with ledger.engine.connect() as conn:
        assert get_project(conn, listed).state is ProjectState.FAILED
        assert verify(conn).ok


def test_no_unit_of_a_project_asset_moves_before_it_is_funded(ledger: Ledger, listed: int) -> None:
    """DESIGN.md invariant 4: the asset's units do not exist until the project is funded
    (its asset.register is part of the issue), so nothing can move, hold or earn them."""
    from ledger.core.accounts import units_of
    from ledger.core.errors import NotFound
    from ledger.money import place_hold, transfer

    open_project(ledger, listed, by=ANN, key="open", actor=ANN)
    units = units_of(TRACTOR)
    _refused(
        ledger,
        NotFound,
        "unknown_asset",
        lambda: transfer(
            ledger, sender=BOB, recipient=CAT, instrument=units, amount=1, key="t", actor=BOB
        ),
    )
    _refused(
        ledger,
        NotFound,
        "unknown_asset",
        lambda: place_hold(
            ledger,
            member=BOB,
            instrument=units,
            amount=1,
            hold_id="h",
            reason="sell",
            key="h",
            actor=BOB,
        ),
    )


def test_a_member_granted_the_finance_node_role_may_list(ledger: Ledger, listed: int) -> None:
    from ledger.access.roles import grant_role

    other = dataclasses.replace(TERMS, asset_id=with_check_character("1M8GDM9A0KP042789"))
    _refused(
        ledger,
        Forbidden,
        "not_finance_node",
        lambda: create_project(ledger, DAN, other, key="p-dan", actor=DAN),
    )
    grant_role(ledger, DAN, "finance_node", None, key="g", actor="admin")
    assert create_project(ledger, DAN, other, key="p-dan", actor=DAN).lister == DAN
