"""Buy-out plans on SQLite and PostgreSQL: proposed, accepted (the sellers' units held),
cancelled, and settled as installments fall due (paid, missed and retried every 24 hours,
defaulted after the last retry). Every refusal leaves the journal, balances, holds and the
plans' rows as they were; the holds always equal what is left to deliver; units and cash
are conserved (``verify`` passes); running the settlement twice, or two at once, never
settles anything twice; and the market engine neither sells nor leases held units."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, update

from ledger.core import AccountKey, with_check_character
from ledger.core.accounts import currency_of, member_holder, units_of
from ledger.core.errors import Conflict, Forbidden, InvalidInput, LedgerError, NotFound, Refused
from ledger.core.kinds import EntryKind
from ledger.db.schema import BuyoutInstallment, BuyoutPlan, BuyoutSeller, Hold, table
from ledger.funding import ProjectTerms, create_project
from ledger.journal.entries import load_entries
from ledger.journal.reads import account_state, digest
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.outputs.audit import audit_outputs
from ledger.outputs.buyout_clock import (
    RETRIES_MAX,
    RETRY_INTERVAL,
    BuyoutClock,
    Outcome,
    Refusal,
    run_due,
)
from ledger.outputs.buyout_records import (
    InstallmentState,
    PlanRole,
    PlanState,
    get_plan,
    list_plans,
)
from ledger.outputs.buyouts import (
    BuyoutTerms,
    InstallmentTerms,
    accept_plan,
    cancel_plan,
    propose_plan,
)
from ledger.registry.members import register_member
from market.book import Side
from market.engine import MarketEngine, OrderRequest, OrderType

from .network import ANN, ASSET, BOB, CAT, DAN, build_network
from .test_market_engine import T0_MS, Clock, balances, open_holds

UNITS = units_of(ASSET)
USD = currency_of("USD")
CASH = 1_000_000
FEB, MAR = datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
Q2 = "2027-04-01/2027-07-01"


@pytest.fixture
def world(ledger: Ledger) -> Ledger:
    """ANN 500,000 units, BOB 300,000, CAT 200,000; each member (DAN too) 1,000,000 USD."""
    build_network(ledger, cash_minor=CASH)
    return ledger


class Keys:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"k{self.n}"


key = Keys()


def step(seller: str, due: datetime, units: int, price: int) -> InstallmentTerms:
    return InstallmentTerms(seller, due, units, price)


def propose(ledger: Ledger, buyer: str, *steps: InstallmentTerms, asset: str = ASSET) -> int:
    terms = BuyoutTerms(asset, "USD", tuple(steps))
    return propose_plan(ledger, buyer, terms, key=key(), actor="test").id


def accept(ledger: Ledger, plan_id: int, seller: str) -> Any:
    return accept_plan(ledger, plan_id, seller=seller, key=key(), actor="test")


def state(ledger: Ledger) -> tuple[Any, ...]:
    """Everything a refusal must leave as it was."""
    with ledger.engine.connect() as conn:
        rows = tuple(
            tuple(tuple(r) for r in conn.execute(select(table(t))))
            for t in (BuyoutPlan, BuyoutSeller, BuyoutInstallment)
        )
        return digest(conn), balances(conn), open_holds(conn), rows


def refused(
    ledger: Ledger, kind: type[LedgerError], code: str, act: Callable[[], object]
) -> LedgerError:
    before = state(ledger)
    with pytest.raises(kind) as caught:
        act()
    assert caught.value.code == code, caught.value
    assert state(ledger) == before
    return caught.value


def units(ledger: Ledger, who: str) -> tuple[int, int]:
    with ledger.engine.connect() as conn:
        s = account_state(conn, AccountKey(member_holder(who), UNITS))
    return s.balance, s.held


def cash(ledger: Ledger, who: str) -> int:
    with ledger.engine.connect() as conn:
        return account_state(conn, AccountKey(member_holder(who), USD)).balance


def assert_consistent(ledger: Ledger) -> None:
    """``verify`` passes; units and cash are conserved; each open buy-out hold holds
    exactly what its seller has left to deliver under an active or proposed plan."""
    with ledger.engine.connect() as conn:
        report = verify(conn)
        assert report.ok, report.problems
        accounts = balances(conn)
        owners = {k: b for k, (b, _) in accounts.items() if not k.holder.startswith("external:")}
        assert sum(b for k, b in owners.items() if k.instrument == UNITS) == 1_000_000
        members = sum(b for k, b in owners.items() if k.instrument == USD)
        assert members == 4 * CASH + extra_cash
        holds = {h: r for h, (_, r) in open_holds(conn).items() if h.startswith("buyout:")}
        wanted: dict[str, int] = {}
        for plan_id in conn.execute(select(table(BuyoutPlan).c.id)).scalars():
            plan = get_plan(conn, plan_id)
            for s in plan.sellers:
                if s.hold_id is None or plan.state is PlanState.CANCELLED:
                    continue
                left = sum(
                    i.units
                    for i in plan.installments
                    if i.seller == s.seller
                    and i.state in (InstallmentState.SCHEDULED, InstallmentState.MISSED)
                )
                if left:
                    wanted[s.hold_id] = left
        assert holds == wanted
        assert audit_outputs(conn) == []  # what dpn verify checks of the same


extra_cash = 0  # cash deposited by a test beyond the network's


@pytest.fixture(autouse=True)
def _no_extra_cash() -> Iterator[None]:
    global extra_cash
    extra_cash = 0
    yield


# -- the whole life of a plan -----------------------------------------------------------


def test_a_plan_is_proposed_accepted_and_settled_installment_by_installment(
    world: Ledger,
) -> None:
    ledger = world
    plan_id = propose(
        ledger,
        DAN,
        step(ANN, FEB, 100_000, 2),
        step(BOB, FEB, 50_000, 3),
        step(ANN, MAR, 100_000, 2),
    )
    plan = plan_of(ledger, plan_id)
    assert plan.state is PlanState.PROPOSED and plan.buyer == DAN
    assert [(s.seller, s.units, s.accepted) for s in plan.sellers] == sorted(
        [(ANN, 200_000, False), (BOB, 50_000, False)]
    )
    assert [(i.number, i.state, i.attempts, i.next_attempt_at) for i in plan.installments] == [
        (1, InstallmentState.SCHEDULED, 0, FEB),
        (2, InstallmentState.SCHEDULED, 0, FEB),
        (3, InstallmentState.SCHEDULED, 0, MAR),
    ]
    with ledger.engine.connect() as conn:
        (entry,) = load_entries(conn, [plan_id])
    assert entry.kind == EntryKind.BUYOUT_PROPOSE
    assert len(entry.payload["installments"]) == 3  # type: ignore[arg-type]
    assert run_due(ledger, MAR) == []  # a proposal settles nothing
    assert units(ledger, ANN) == (500_000, 0)

    assert accept(ledger, plan_id, ANN).state is PlanState.PROPOSED
    assert units(ledger, ANN) == (500_000, 200_000)
    active = accept(ledger, plan_id, BOB)
    assert active.state is PlanState.ACTIVE and active.state_seq == digest_seq(ledger)
    assert units(ledger, BOB) == (300_000, 50_000)
    assert_consistent(ledger)

    assert run_due(ledger, FEB - timedelta(seconds=1)) == []
    done = run_due(ledger, FEB)
    assert [(d.plan_id, d.number, d.outcome) for d in done] == [
        (plan_id, 1, Outcome.PAID),
        (plan_id, 2, Outcome.PAID),
    ]
    with ledger.engine.connect() as conn:
        (paid,) = load_entries(conn, [done[0].seq])
    assert paid.kind == EntryKind.BUYOUT_SETTLE  # units and cash in one entry
    assert {(p.account.holder, p.account.instrument): p.amount for p in paid.postings} == {
        (member_holder(ANN), UNITS): -100_000,
        (member_holder(DAN), UNITS): 100_000,
        (member_holder(DAN), USD): -200_000,
        (member_holder(ANN), USD): 200_000,
    }
    assert units(ledger, ANN) == (400_000, 100_000) and units(ledger, BOB) == (250_000, 0)
    assert units(ledger, DAN) == (150_000, 0)
    assert cash(ledger, DAN) == CASH - 200_000 - 150_000
    assert_consistent(ledger)
    assert run_due(ledger, FEB + timedelta(days=1)) == []  # nothing twice

    (last,) = run_due(ledger, MAR)
    assert last.outcome is Outcome.PAID
    plan = plan_of(ledger, plan_id)
    assert plan.state is PlanState.COMPLETED and plan.state_seq == last.seq
    assert units(ledger, ANN) == (300_000, 0) and units(ledger, DAN) == (250_000, 0)
    assert_consistent(ledger)


def plan_of(ledger: Ledger, plan_id: int) -> Any:
    with ledger.engine.connect() as conn:
        return get_plan(conn, plan_id)


def digest_seq(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return digest(conn).seq


def test_a_buyer_who_cannot_pay_misses_is_retried_daily_and_defaults(world: Ledger) -> None:
    ledger = world
    plan_id = propose(ledger, DAN, step(ANN, FEB, 10_000, 200), step(ANN, MAR, 1_000, 1))
    accept(ledger, plan_id, ANN)  # 2,000,000 due in February: DAN has 1,000,000
    head = digest_seq(ledger)
    (miss,) = run_due(ledger, FEB)
    assert (miss.outcome, miss.attempts, miss.next_attempt_at) == (
        Outcome.MISSED,
        1,
        FEB + RETRY_INTERVAL,
    )
    with ledger.engine.connect() as conn:
        (entry,) = load_entries(conn, [miss.seq])
    assert miss.seq == head + 1 and entry.kind == EntryKind.BUYOUT_MISS
    assert entry.postings == () and entry.hold_changes == ()  # nothing moves
    assert cash(ledger, DAN) == CASH and units(ledger, ANN) == (500_000, 11_000)
    assert run_due(ledger, FEB + RETRY_INTERVAL - timedelta(seconds=1)) == []
    at = FEB
    for retry in range(1, RETRIES_MAX):
        at += RETRY_INTERVAL
        (again,) = run_due(ledger, at)
        assert (again.outcome, again.attempts) == (Outcome.MISSED, retry + 1)
    plan = plan_of(ledger, plan_id)
    assert plan.installments[0].state is InstallmentState.MISSED
    assert plan.installments[0].attempts == RETRIES_MAX
    assert_consistent(ledger)
    at += RETRY_INTERVAL  # the seventh retry
    (gone,) = run_due(ledger, at)
    assert gone.outcome is Outcome.DEFAULTED and gone.attempts == RETRIES_MAX + 1
    with ledger.engine.connect() as conn:
        (entry,) = load_entries(conn, [gone.seq])
    assert entry.kind == EntryKind.BUYOUT_DEFAULT and entry.postings == ()
    assert units(ledger, ANN) == (500_000, 1_000)  # the defaulted units are ANN's again
    assert plan_of(ledger, plan_id).state is PlanState.ACTIVE
    assert_consistent(ledger)
    assert run_due(ledger, at + RETRY_INTERVAL) == []  # a default is not retried
    (march,) = run_due(ledger, MAR)
    assert march.outcome is Outcome.PAID  # the next installment goes on: DAN pays this one
    plan = plan_of(ledger, plan_id)
    assert [i.state for i in plan.installments] == [
        InstallmentState.DEFAULTED,
        InstallmentState.PAID,
    ]
    assert plan.state is PlanState.COMPLETED and units(ledger, ANN) == (499_000, 0)
    assert_consistent(ledger)


def test_an_installment_the_ledger_refuses_stays_due_and_the_run_goes_on(
    world: Ledger,
) -> None:
    ledger = world
    first = propose(ledger, DAN, step(ANN, FEB, 1_000, 1))
    second = propose(ledger, DAN, step(BOB, FEB, 2_000, 1))
    accept(ledger, first, ANN)
    accept(ledger, second, BOB)
    # A damaged database: ANN's buy-out hold no longer covers her installment, so the
    # ledger refuses its settlement (the units it would consume are not held).
    with ledger.engine.begin() as conn:
        hold_id = conn.execute(
            select(table(BuyoutSeller).c.hold_id).where(table(BuyoutSeller).c.plan_id == first)
        ).scalar_one()
        conn.execute(update(table(Hold)).where(table(Hold).c.id == hold_id).values(remaining=10))
    refusals: list[Refusal] = []
    (paid,) = run_due(ledger, FEB, on_refused=refusals.append)  # the first does not stall it
    assert (paid.plan_id, paid.outcome) == (second, Outcome.PAID)
    assert [(r.plan_id, r.number) for r in refusals] == [(first, 1)]
    assert refusals[0].code
    (still,) = plan_of(ledger, first).installments
    assert (still.state, still.attempts) == (InstallmentState.SCHEDULED, 0)  # nothing written
    assert units(ledger, DAN) == (2_000, 0)
    # The server's clock counts it and names it on /readyz, and tries it again each tick.
    clock = BuyoutClock(Ledger(ledger.engine, clock=lambda: FEB))
    assert clock.tick() == []
    status = clock.status()
    assert status.refused == 1 and status.settled == 0
    assert status.last_error is not None and f"plan {first} installment 1" in status.last_error


class _SetAfter(threading.Event):
    """An event that reads as set from its ``n + 1``-th look on."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.looks_left = n

    def is_set(self) -> bool:
        self.looks_left -= 1
        return self.looks_left < 0


def test_a_run_asked_to_stop_ends_before_its_next_attempt(world: Ledger) -> None:
    ledger = world
    first = propose(ledger, DAN, step(ANN, FEB, 1_000, 1))
    second = propose(ledger, DAN, step(BOB, FEB, 2_000, 1))
    accept(ledger, first, ANN)
    accept(ledger, second, BOB)
    stopped = threading.Event()
    stopped.set()
    assert run_due(ledger, FEB, stopping=stopped) == []  # nothing attempted
    (paid,) = run_due(ledger, FEB, stopping=_SetAfter(1))  # stops after the first
    assert (paid.plan_id, paid.outcome) == (first, Outcome.PAID)
    assert plan_of(ledger, second).installments[0].state is InstallmentState.SCHEDULED
    (rest,) = run_due(ledger, FEB)  # the next run takes the rest
    assert (rest.plan_id, rest.outcome) == (second, Outcome.PAID)
    assert_consistent(ledger)


def test_a_missed_installment_is_paid_when_the_buyer_has_the_cash_at_a_retry(
    world: Ledger,
) -> None:
    global extra_cash
    ledger = world
    plan_id = propose(ledger, DAN, step(BOB, FEB, 1_000, 2_000))  # 2,000,000
    accept(ledger, plan_id, BOB)
    assert run_due(ledger, FEB)[0].outcome is Outcome.MISSED
    deposit(ledger, member=DAN, currency="USD", amount=1_000_000, reference="w", key=key(),
            actor="test")  # fmt: skip
    extra_cash = 1_000_000
    assert run_due(ledger, FEB + RETRY_INTERVAL / 2) == []  # not yet its time
    (paid,) = run_due(ledger, FEB + RETRY_INTERVAL)
    assert (paid.outcome, paid.attempts) == (Outcome.PAID, 2)
    assert cash(ledger, DAN) == 0 and units(ledger, DAN) == (1_000, 0)
    assert plan_of(ledger, plan_id).state is PlanState.COMPLETED
    assert_consistent(ledger)


def test_cancelling_a_proposal_releases_every_hold(world: Ledger) -> None:
    ledger = world
    plan_id = propose(ledger, DAN, step(ANN, FEB, 7_000, 1), step(CAT, FEB, 3_000, 1))
    accept(ledger, plan_id, ANN)
    assert units(ledger, ANN) == (500_000, 7_000)
    refused(ledger, Forbidden, "not_party",
            lambda: cancel_plan(ledger, plan_id, by=BOB, key=key(), actor="t"))  # fmt: skip
    cancelled = cancel_plan(ledger, plan_id, by=CAT, key="cancel", actor="t")
    assert cancelled.state is PlanState.CANCELLED
    assert {i.state for i in cancelled.installments} == {InstallmentState.CANCELLED}
    assert units(ledger, ANN) == (500_000, 0)
    with ledger.engine.connect() as conn:
        (entry,) = load_entries(conn, [cancelled.state_seq])
    assert entry.kind == EntryKind.BUYOUT_CANCEL and len(entry.hold_changes) == 1
    # The same request again answers the same; another is refused.
    again = cancel_plan(ledger, plan_id, by=CAT, key="cancel", actor="t")
    assert again == cancelled
    refused(ledger, Refused, "plan_cancelled",
            lambda: cancel_plan(ledger, plan_id, by=DAN, key=key(), actor="t"))  # fmt: skip
    refused(ledger, Refused, "plan_not_proposed", lambda: accept(ledger, plan_id, CAT))
    assert run_due(ledger, MAR) == []
    assert_consistent(ledger)


# -- refusals change nothing ------------------------------------------------------------


def test_every_refused_proposal_changes_nothing(world: Ledger, ledger: Ledger) -> None:
    nobody = "0x000000000000000000000000000000000000dEaD"
    past = datetime(2026, 12, 1, tzinfo=UTC)
    far = datetime(2037, 6, 1, tzinfo=UTC)
    draft_asset = with_check_character("1M8GDM9A0KP051231")
    register_member(ledger, "0x" + "5" * 40, "finance_node", "F", key=key(), actor="t")
    create_project(
        ledger,
        "0x" + "5" * 40,
        ProjectTerms(
            title="t", description="d", organizer=ANN, asset_id=draft_asset, jurisdiction="NL",
            currency="USD", goal_minor=1_000, deadline=datetime(2027, 6, 1, tzinfo=UTC),
            min_pledge_minor=1,
        ),
        key=key(),
        actor="t",
    )  # fmt: skip
    cases: list[tuple[type[LedgerError], str, Callable[[], object]]] = [
        (Refused, "buyout_exceeds_holding",
         lambda: propose(ledger, DAN, step(CAT, FEB, 200_001, 1))),
        (Refused, "buyout_exceeds_holding",
         lambda: propose(ledger, DAN, step(CAT, FEB, 100_000, 1), step(CAT, MAR, 100_001, 1))),
        (InvalidInput, "buyout_self", lambda: propose(ledger, ANN, step(ANN, FEB, 1, 1))),
        (NotFound, "unknown_member", lambda: propose(ledger, DAN, step(nobody, FEB, 1, 1))),
        (NotFound, "unknown_member", lambda: propose(ledger, nobody, step(ANN, FEB, 1, 1))),
        (Refused, "due_passed", lambda: propose(ledger, DAN, step(ANN, past, 1, 1))),
        (Refused, "due_too_far", lambda: propose(ledger, DAN, step(ANN, far, 1, 1))),
        (InvalidInput, "installment_out_of_range",
         lambda: propose(ledger, DAN, step(ANN, FEB, 0, 1))),
        (InvalidInput, "installment_out_of_range",
         lambda: propose(ledger, DAN, step(ANN, FEB, 1, 10**37))),
        (InvalidInput, "amount_over_limit",
         lambda: propose(ledger, DAN, step(ANN, FEB, 10**6, 10**36))),
        (InvalidInput, "installments_count", lambda: propose(ledger, DAN)),
        (InvalidInput, "installments_count",
         lambda: propose(ledger, DAN, *[step(ANN, FEB, 1, 1)] * 121)),
        (InvalidInput, "time_naive",
         lambda: propose(ledger, DAN, step(ANN, datetime(2027, 2, 1), 1, 1))),
        (NotFound, "unknown_asset", lambda: propose(ledger, DAN, step(ANN, FEB, 1, 1),
                                                     asset=with_check_character("1M8GDM9A0KP051232"))),
        (Refused, "project_not_funded",
         lambda: propose(ledger, DAN, step(ANN, FEB, 1, 1), asset=draft_asset)),
        (NotFound, "unknown_currency", lambda: propose_plan(
            ledger, DAN, BuyoutTerms(ASSET, "XXX", (step(ANN, FEB, 1, 1),)), key=key(), actor="t")),
    ]  # fmt: skip
    for kind, code, act in cases:
        refused(ledger, kind, code, act)
    # At the limits: 120 installments of one seller, exactly what it has.
    plan_id = propose(ledger, DAN, *[step(CAT, FEB, 1, 1)] * 119, step(CAT, MAR, 199_881, 1))
    assert len(plan_of(ledger, plan_id).installments) == 120


def test_every_refused_acceptance_changes_nothing(world: Ledger) -> None:
    ledger = world
    plan_id = propose(ledger, DAN, step(ANN, FEB, 300_000, 1), step(BOB, FEB, 1, 1))
    refused(ledger, NotFound, "unknown_plan", lambda: accept(ledger, plan_id + 100, ANN))
    refused(ledger, Forbidden, "not_seller", lambda: accept(ledger, plan_id, CAT))
    refused(ledger, Forbidden, "not_seller", lambda: accept(ledger, plan_id, DAN))
    # ANN's units went elsewhere since the proposal: the hold is refused.
    other = propose(ledger, BOB, step(ANN, FEB, 300_000, 1))
    accepted = accept_plan(ledger, other, seller=ANN, key="ann-accepts", actor="t")
    assert accept_plan(ledger, other, seller=ANN, key="ann-accepts", actor="t") == accepted
    refused(ledger, Conflict, "already_accepted", lambda: accept(ledger, other, ANN))
    refused(ledger, Refused, "insufficient_units", lambda: accept(ledger, plan_id, ANN))
    accept(ledger, plan_id, BOB)
    refused(ledger, Conflict, "already_accepted", lambda: accept(ledger, plan_id, BOB))
    refused(ledger, Refused, "plan_active",
            lambda: cancel_plan(ledger, other, by=BOB, key=key(), actor="t"))  # fmt: skip
    assert_consistent(ledger)


# -- runs at once, and again ------------------------------------------------------------


def test_two_runs_at_once_settle_each_installment_once(world: Ledger) -> None:
    ledger = world
    plans = [
        propose(ledger, DAN, *[step(seller, FEB, 1_000, 1) for _ in range(4)])
        for seller in (ANN, BOB, CAT)
    ]
    for plan_id, seller in zip(plans, (ANN, BOB, CAT), strict=True):
        accept(ledger, plan_id, seller)
    results: list[list[Any]] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        results.append(run_due(ledger, FEB))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done = [(s.plan_id, s.number) for r in results for s in r]
    assert sorted(done) == sorted((p, n) for p in plans for n in range(1, 5))  # each once
    assert run_due(ledger, FEB) == []
    assert units(ledger, DAN) == (12_000, 0) and cash(ledger, DAN) == CASH - 12_000
    with ledger.engine.connect() as conn:
        kinds = [e.kind for e in load_entries(conn, list(range(1, digest(conn).seq + 1)))]
    assert kinds.count(EntryKind.BUYOUT_SETTLE) == 12
    assert_consistent(ledger)


# -- the market sees the hold -------------------------------------------------------------


def _order(owner: str, qty: int, term: str = "", side: Side = Side.SELL) -> OrderRequest:
    return OrderRequest(
        owner, ASSET, "USD", side, OrderType.LIMIT, key=key(), actor="t",
        price_minor=2, qty_units=qty, term=term,
    )  # fmt: skip


def test_the_market_engine_neither_sells_nor_leases_held_units(world: Ledger) -> None:
    ledger = world
    market = MarketEngine(ledger, now_ms=Clock(T0_MS))
    try:
        plan_id = propose(ledger, DAN, step(CAT, MAR, 150_000, 1))
        accept(ledger, plan_id, CAT)  # CAT: 200,000 units, 150,000 held
        for request in (_order(CAT, 50_001), _order(CAT, 50_001, term=Q2)):
            refused(ledger, Refused, "insufficient_units", partial(market.place, request))
        assert market.place(_order(CAT, 50_000)).order.status == "open"  # the free rest
    finally:
        market.stop()


def test_a_seller_keeps_what_it_leased_out_covered(world: Ledger) -> None:
    ledger = world
    market = MarketEngine(ledger, now_ms=Clock(T0_MS))
    try:  # ANN leases 450,000 of her 500,000 units to BOB over Q2
        market.place(_order(ANN, 450_000, term=Q2))
        assert len(market.place(_order(BOB, 450_000, term=Q2, side=Side.BUY)).leases) == 1
    finally:
        market.stop()
    plan_id = propose(ledger, DAN, step(ANN, MAR, 50_001, 1))  # she has them: not held
    error = refused(ledger, Refused, "units_leased_out", lambda: accept(ledger, plan_id, ANN))
    assert error.detail["promised_units"] == "450000"
    fits = propose(ledger, DAN, step(ANN, MAR, 50_000, 1))
    assert accept(ledger, fits, ANN).state is PlanState.ACTIVE
    assert_consistent(ledger)


def test_a_members_plans_are_listed_newest_first_by_role(world: Ledger) -> None:
    ledger = world
    first = propose(ledger, DAN, step(ANN, FEB, 1, 1))
    second = propose(ledger, ANN, step(BOB, FEB, 1, 1))
    third = propose(ledger, DAN, step(BOB, FEB, 1, 1), step(ANN, FEB, 1, 1))
    with ledger.engine.connect() as conn:
        assert [p.id for p in list_plans(conn, ANN)] == [third, second, first]
        assert [p.id for p in list_plans(conn, ANN, role=PlanRole.BUYER)] == [second]
        assert [p.id for p in list_plans(conn, ANN, role=PlanRole.SELLER)] == [third, first]
        assert [p.id for p in list_plans(conn, ANN, limit=2)] == [third, second]
        assert [p.id for p in list_plans(conn, ANN, before_id=second)] == [first]
        assert list_plans(conn, CAT) == []
        assert list_plans(conn, DAN, asset_id="1M8GDM9AXKP042789") == []
