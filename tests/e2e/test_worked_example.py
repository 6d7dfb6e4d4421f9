"""Issue 14's worked example, end to end over HTTP, through the real app on SQLite and
PostgreSQL, its buy-out clock running inside the server.

A finance node lists a greenhouse; the organizer OLGA puts in 20 % of the goal and will
operate it, with a 10 % operator share. Manual pledges fund the rest: PAT 40 %, RIVER and
CAT 20 % each; the units are issued in those shares. Then, per quarter, a production
period: OLGA opens it, records 1,000,000 g of tomatoes, and the entitlements follow the
holdings at its record time. Before any buy-out, OLGA receives 28 % (10 % first, then
20 % of the other 90 %).

OLGA buys PAT and RIVER out over 8 quarterly installments (PAT 50,000 and RIVER 25,000
units each quarter, 3 cents a unit): both accept, their units are held, and the server
pays each installment when it falls due (units and cash in one entry). Quarter by quarter
OLGA's entitlement grows by 75,000 units' worth, PAT's and RIVER's shrink, and CAT, a
static owner who is not in the plan, keeps exactly 18 % throughout. After the eighth
installment the plan has taken every unit its sellers put in (100 %): OLGA holds 80 %,
CAT still 20 %, and the last period gives OLGA 82 %.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.core import with_check_character
from ledger.core.accounts import currency_of, member_holder, units_of
from ledger.db.engine import read_connection
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.outputs.audit import audit_outputs
from ledger.registry.members import register_member

from .signin import MovableClock, Wallet, sign_in, wallet

ADMIN, NORTH, OLGA, PAT, RIVER = (wallet(n) for n in (141, 142, 143, 144, 145))
CAT = wallet(146).address  # pays by bank transfer and never signs in: a static owner
ASSET = with_check_character("1M8GDM9A0KP061230")
TOTAL = 1_000_000
PRODUCED = 1_000_000  # grams of tomatoes a quarter
QUARTERS = 8
PAT_EACH, RIVER_EACH = 50_000, 25_000  # units an installment
PRICE_MINOR = 3  # a unit: EUR 30,000.00 over 1,000,000 units
WAIT_S = 10.0  # for the server's buy-out clock to pay what fell due


class Example:
    """The app, its clock, and the calls its users make."""

    def __init__(self, client: TestClient, clock: MovableClock) -> None:
        self.client = client
        self.clock = clock
        self.ledger: Ledger = cast(FastAPI, client.app).state.ledger
        self.keys = 0
        register_member(self.ledger, NORTH.address, "finance_node", "North", key="n", actor="t")
        for who in (OLGA, PAT, RIVER):  # signing in makes them members
            sign_in(client, who)

    def post(self, path: str, who: Wallet, body: Any, status: int = 201) -> Any:
        self.keys += 1
        headers = sign_in(self.client, who) | {"Idempotency-Key": f"k{self.keys}"}
        answer = self.client.post(path, json=body, headers=headers)
        assert answer.status_code == status, answer.text
        return answer.json()

    def put(self, path: str, who: Wallet, body: Any) -> Any:
        self.keys += 1
        headers = sign_in(self.client, who) | {"Idempotency-Key": f"k{self.keys}"}
        answer = self.client.put(path, json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def get(self, path: str) -> Any:
        answer = self.client.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def at(self, moment: datetime) -> None:
        assert moment >= self.clock.now
        self.clock.now = moment

    def units(self) -> dict[str, int]:
        cap = self.get(f"/v1/assets/{ASSET}/cap-table")
        return {h["holder"]: int(h["units"]) for h in cap["holders"]}


@pytest.fixture
def example(engine: Engine) -> Iterator[Example]:
    clock = MovableClock()  # 2027-01-01
    app = create_app(
        Settings(admins=frozenset({ADMIN.address})),
        engine=engine,
        clock=clock,
        buyout_interval_s=0.05,
    )
    with TestClient(app) as client:
        yield Example(client, clock)


def _evidence(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _fund(ex: Example) -> None:
    """List, open and fund the greenhouse: OLGA 20 % (her contribution), PAT 40 %, RIVER
    and CAT 20 % each, by manual pledges."""
    project = ex.post(
        "/v1/projects",
        NORTH,
        {
            "title": "A greenhouse for the valley",
            "description": "OLGA operates it and keeps 10 % of every harvest.",
            "organizer": OLGA.address,
            "asset_id": ASSET,
            "jurisdiction": "NL",
            "documents": [{"title": "Deed", "sha256": _evidence("deed")}],
            "currency": "EUR",
            "goal_minor": "3000000",
            "min_pledge_minor": "1",
            "organizer_contribution_minor": "600000",
            "deadline": "2027-03-01T12:00:00Z",
            "total_units": TOTAL,
            "retained_min_units": 100_000,
            "operator_share_bp": 1_000,
            "manual_pledges_allowed": True,
        },
    )
    ex.post(f"/v1/projects/{project['id']}/open", NORTH, None, status=200)
    for who, amount in ((PAT.address, 1_200_000), (RIVER.address, 600_000), (CAT, 600_000)):
        ex.post(
            f"/v1/projects/{project['id']}/manual-pledges",
            NORTH,
            {"contributor": who, "amount_minor": str(amount), "evidence_sha256": _evidence(who)},
        )
    assert ex.units() == {
        member_holder(OLGA.address): 200_000,
        member_holder(PAT.address): 400_000,
        member_holder(RIVER.address): 200_000,
        member_holder(CAT): 200_000,
    }


def _months_on(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _period(ex: Example, k: int, starts: datetime) -> dict[str, dict[str, int]]:
    """Quarter ``k`` from ``starts``: opened, its rights read a month in, its tomatoes
    recorded after its requests close; the entitlements by holder."""
    record_at = _months_on(starts, 1)
    period = ex.post(
        f"/v1/assets/{ASSET}/periods",
        OLGA,
        {
            "name": f"Q{k}",
            "starts_at": starts.isoformat(),
            "ends_at": _months_on(starts, 3).isoformat(),
            "record_at": record_at.isoformat(),
            "request_deadline": (record_at + timedelta(days=7)).isoformat(),
        },
    )
    ex.at(record_at + timedelta(days=8))
    ex.post(f"/v1/periods/{period['id']}/production", OLGA, {"produced": {"tomato": PRODUCED}})
    page = ex.get(f"/v1/periods/{period['id']}/entitlements?limit=10")
    return {h["holder"]: {x["kind"]: x for x in h["lines"]}["tomato"] for h in page["items"]}


def _paid(ex: Example, plan_id: int, number: int) -> dict[str, Any]:
    """The plan once the server has paid installments up to ``number`` (by the clock)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        plan = ex.get(f"/v1/buyouts/{plan_id}")
        states = [i["state"] for i in plan["installments"]]
        if states.count("paid") == number:
            return cast(dict[str, Any], plan)
        assert time.monotonic() < deadline, states
        time.sleep(0.05)


def test_the_worked_example(example: Example) -> None:
    ex = example
    _fund(ex)
    ex.post(f"/v1/assets/{ASSET}/output-kinds", OLGA, {"name": "tomato", "unit": "g"})
    ex.post(
        "/v1/deposits",
        ADMIN,
        {"member": OLGA.address, "currency": "EUR", "amount": "2000000", "reference": "loan"},
    )
    first = datetime(2027, 4, 1, tzinfo=UTC)
    ex.at(first - timedelta(days=7))

    # Quarter 0: no buy-out yet. OLGA receives 28 %.
    shares = _period(ex, 0, first)
    assert shares[OLGA.address]["entitled"] == 280_000  # 100,000 first + 20 % of 900,000
    assert shares[CAT]["entitled"] == 180_000

    # The buy-out: 8 quarterly installments, due two weeks into each of the next quarters.
    starts = [_months_on(first, 3 * q) for q in range(1, QUARTERS + 2)]
    installments = [
        {"seller": seller, "due_at": (s + timedelta(days=14)).isoformat(), "units": units,
         "price_minor": str(PRICE_MINOR)}
        for s in starts[:QUARTERS]
        for seller, units in ((PAT.address, PAT_EACH), (RIVER.address, RIVER_EACH))
    ]  # fmt: skip
    plan = ex.post("/v1/buyouts", OLGA, {"asset_id": ASSET, "currency": "EUR",
                                         "installments": installments})  # fmt: skip
    assert plan["state"] == "proposed"
    ex.post(f"/v1/buyouts/{plan['id']}/accept", PAT, None, status=200)
    accepted = ex.post(f"/v1/buyouts/{plan['id']}/accept", RIVER, None, status=200)
    assert accepted["state"] == "active"
    # The sellers' units under the plan are held: they cannot be sold elsewhere.
    refused = ex.client.post(
        "/v1/orders",
        json={"asset_id": ASSET, "currency": "EUR", "side": "sell", "type": "limit",
              "price_minor": "3", "qty_units": "1", "time_in_force": "GTC"},
        headers=sign_in(ex.client, PAT) | {"Idempotency-Key": "sell-held"},
    )  # fmt: skip
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_units"
    given = ex.client.post(
        "/v1/transfers",
        json={"recipient": CAT, "instrument": units_of(ASSET), "amount": "1"},
        headers=sign_in(ex.client, PAT) | {"Idempotency-Key": "give-held"},
    )  # nor given away
    assert given.status_code == 422 and given.json()["code"] == "insufficient_units"

    for q in range(1, QUARTERS + 1):
        ex.at(starts[q - 1] + timedelta(days=15))  # the q-th installment fell due
        paid = _paid(ex, plan["id"], 2 * q)
        shares = _period(ex, q, starts[q - 1])
        bought = q * (PAT_EACH + RIVER_EACH)
        olga = 200_000 + bought
        assert shares[OLGA.address]["entitled"] == 100_000 + 900_000 * olga // TOTAL
        assert shares[CAT]["entitled"] == 180_000  # static: the same every quarter
        pat = 400_000 - q * PAT_EACH
        river = 200_000 - q * RIVER_EACH
        assert shares.get(PAT.address, {"entitled": 0})["entitled"] == 900_000 * pat // TOTAL
        assert shares.get(RIVER.address, {"entitled": 0})["entitled"] == (900_000 * river // TOTAL)
        assert sum(s["entitled"] for s in shares.values()) == PRODUCED
    assert paid["state"] == "completed"
    assert shares[OLGA.address]["entitled"] == 820_000  # 82 % of the last quarter
    assert ex.units() == {member_holder(OLGA.address): 800_000, member_holder(CAT): 200_000}
    held = ex.client.get("/v1/holdings/me", headers=sign_in(ex.client, PAT)).json()
    cash = {h["instrument"]: int(h["balance"]) for h in held}
    assert cash[currency_of("EUR")] == 400_000 * PRICE_MINOR  # paid for every unit
    with read_connection(ex.ledger.engine) as conn:
        assert verify(conn).ok
        assert audit_outputs(conn) == []
