"""One rule for whether an asset's units may change hands and pay out yet
(``ledger.funding.standing``), asked alike by the market, buy-outs and output terms: not
while a project that means to buy the asset is draft or open; and a cancelled (or
failed) project leaves no rule behind, so an asset registered by hand after it trades,
is bought out and pays out like any other. A funded project's operator keeps its
retained minimum through a buy-out as through a trade."""

from __future__ import annotations

import pytest

from ledger.core import with_check_character
from ledger.core.errors import Refused
from ledger.db.engine import read_connection
from ledger.funding import cancel_project, create_project, open_project, record_manual_pledge
from ledger.funding.standing import FundedProject, funded_project_of
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.outputs.buyout_records import PlanState, get_plan
from ledger.outputs.buyouts import (
    BuyoutTerms,
    InstallmentTerms,
    accept_plan,
    propose_plan,
)
from ledger.outputs.operators import OperatorSource, operator_of, set_output_terms
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member
from market.engine import MarketEngine

from .test_buyouts import FEB
from .test_market_engine import BUY, SELL, Clock, Market, _terms, assert_consistent

NODE = "0x" + "5" * 40
ORGANIZER = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"
SELLER = "0x5050A4F4b3f9338C3472dcC01A87C76A144b3c9c"
BUYER = "0x3325a78425F17a7E487Eb5666b2bFd93aBb06c70"
DROPPED = with_check_character("1M8GDM9AXKP042761")  # its project is cancelled
BOUGHT = with_check_character("1M8GDM9AXKP042762")  # its project is funded
WAITING = with_check_character("1M8GDM9AXKP042763")  # its project is open
NEVER = with_check_character("1M8GDM9AXKP042764")  # no project names it


@pytest.fixture
def projects(ledger: Ledger) -> Ledger:
    register_member(ledger, NODE, "finance_node", "North", key="node", actor="admin")
    for who in (ORGANIZER, SELLER, BUYER):
        register_member(ledger, who, "individual", who[:6], key=f"m:{who}", actor="admin")
    dropped = create_project(ledger, NODE, _terms(DROPPED, ORGANIZER), key="p1", actor=NODE)
    cancel_project(ledger, dropped.id, by=NODE, key="cancel", actor=NODE)
    bought = create_project(ledger, NODE, _terms(BOUGHT, ORGANIZER), key="p2", actor=NODE)
    open_project(ledger, bought.id, by=NODE, key="open2", actor=NODE)
    for who in (SELLER, BUYER):
        record_manual_pledge(
            ledger, bought.id, who, 1_200_000, who[2:].lower().ljust(64, "0"), by=NODE,
            key=f"pl:{who}", actor=NODE,
        )  # fmt: skip
    waiting = create_project(ledger, NODE, _terms(WAITING, ORGANIZER), key="p3", actor=NODE)
    open_project(ledger, waiting.id, by=NODE, key="open3", actor=NODE)
    return ledger


def test_each_asset_stands_as_its_projects_left_it(projects: Ledger) -> None:
    with read_connection(projects.engine) as conn:
        assert funded_project_of(conn, NEVER, refusal="-") is None
        assert funded_project_of(conn, DROPPED, refusal="-") is None
        bought = funded_project_of(conn, BOUGHT, refusal="-")
        assert bought is not None
        assert bought == FundedProject(bought.id, ORGANIZER, 1_000, 100_000)
        with pytest.raises(Refused) as caught:
            funded_project_of(conn, WAITING, refusal="nothing of it trades yet")
    assert caught.value.code == "project_not_funded"
    assert caught.value.message.endswith("which is open: nothing of it trades yet")


def test_an_asset_registered_by_hand_after_its_project_was_cancelled_is_like_any(
    projects: Ledger,
) -> None:
    ledger = projects
    register_asset(
        ledger, DROPPED, make="Deere", model="8R", serial="S-9", location="Ames, IA",
        jurisdiction="US-IA", key="by-hand", actor="admin",
    )  # fmt: skip
    issue_units(ledger, DROPPED, [(SELLER, 1_000)], key="issue", actor="admin")
    deposit(ledger, member=BUYER, currency="USD", amount=10_000, reference="wire",
            key="cash", actor="admin")  # fmt: skip
    # It trades, with no operator's minimum to keep: no project bought it.
    market = Market(ledger, MarketEngine(ledger, now_ms=Clock()), Clock(), asset=DROPPED)
    try:
        market.place(SELLER, SELL, 5, 500)  # keeps 500 free
        bought = market.place(BUYER, BUY, 5, 400)
        assert [(t.qty_units, t.price_minor) for t in bought.trades] == [(400, 5)]
        assert_consistent(ledger.engine, market.engine)
    finally:
        market.engine.stop()
    # It may be bought out.
    plan = propose_plan(
        ledger, BUYER, BuyoutTerms(DROPPED, "USD", (InstallmentTerms(SELLER, FEB, 100, 1),)),
        key="plan", actor="t",
    )  # fmt: skip
    assert plan.id > 0
    # Its operator is whoever its output terms name.
    set_output_terms(ledger, DROPPED, SELLER, 500, key="terms", actor="admin")
    with read_connection(ledger.engine) as conn:
        terms = operator_of(conn, DROPPED)
    assert (terms.operator, terms.operator_share_bp, terms.source) == (
        SELLER, 500, OperatorSource.TERMS,
    )  # fmt: skip


def test_a_buyout_does_not_take_the_operator_below_its_retained_minimum(
    projects: Ledger,
) -> None:
    """The operator of BOUGHT holds 200,000 units (its own 600,000 of the 3,000,000) and
    keeps at least 100,000: it may accept selling 100,000 of them, not one more."""
    ledger = projects

    def plan(units: int, key: str) -> int:
        terms = BuyoutTerms(BOUGHT, "USD", (InstallmentTerms(ORGANIZER, FEB, units, 1),))
        return propose_plan(ledger, BUYER, terms, key=key, actor="t").id

    too_many = plan(100_001, "plan-1")
    with pytest.raises(Refused) as caught:
        accept_plan(ledger, too_many, seller=ORGANIZER, key="accept-1", actor="t")
    assert caught.value.code == "operator_retained_minimum"
    assert caught.value.detail == {"retained_min_units": "100000"}
    with read_connection(ledger.engine) as conn:
        assert get_plan(conn, too_many).state is PlanState.PROPOSED  # nothing written
    accepted = accept_plan(ledger, plan(100_000, "plan-2"), seller=ORGANIZER, key="a2", actor="t")
    assert accepted.state is PlanState.ACTIVE
