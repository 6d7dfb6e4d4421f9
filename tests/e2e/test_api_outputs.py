"""Outputs over HTTP, on SQLite and PostgreSQL: operator terms, kinds, periods, requests
and the plan, production and entitlements, deliveries, waivers and sell-backs, the
reports; who may write what (anonymous 401, another member 403, the rightful one 2xx);
hostile bodies and other members' resources, each a problem that changes nothing;
idempotent replays.

The world is the trading suites' (``test_api_orders.World``): ANN holds 600,000 units
of ASSET, BOB 400,000, CAT none; OPERATOR has the operator role for ASSET, which no
project brought in, so an admin sets its output terms (OPERATOR, 10 %)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings

from .signin import MovableClock, sign_in
from .test_api_orders import ADMIN, ANN, ASSET, BOB, CAT, FEE_BPS, OPERATOR, World, problem

OUTPUTS = f"/v1/assets/{ASSET}"
HOUR = 3600


class OutputsWorld(World):
    """The trading world with ASSET's output terms, two kinds, and cash for buy-backs."""

    def __init__(self, client: TestClient, clock: MovableClock) -> None:
        super().__init__(client, clock)
        self.deposit(OPERATOR.address, 1_000_000)
        terms = {"operator": OPERATOR.address, "operator_share_bp": 1_000}
        self.ok(self.put(f"{OUTPUTS}/output-terms", self.admin, terms))
        self.ok(
            self.post(
                f"{OUTPUTS}/output-kinds",
                self.operator,
                {"name": "tomato", "unit": "g", "description": "red"},
            )
        )
        self.ok(self.post(f"{OUTPUTS}/output-kinds", self.operator, {"name": "basil", "unit": "g"}))

    def put(self, path: str, who: dict[str, str] | None, body: Any, key: str | None = None) -> Any:
        self.keys += 1
        headers = (who or {}) | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.put(path, json=body, headers=headers)

    def advance(self, hours: float) -> None:
        """Move the clock, and sign everyone in again (tokens are short-lived)."""
        self.clock.advance(hours * HOUR)
        self.resign()

    def resign(self) -> None:
        for name, who in [
            ("admin", ADMIN),
            ("operator", OPERATOR),
            ("ann", ANN),
            ("bob", BOB),
            ("cat", CAT),
        ]:
            setattr(self, name, sign_in(self.client, who))

    def at(self, hours: float) -> str:
        return (self.clock.now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def period(self, name: str = "2027-Q1") -> dict[str, Any]:
        """A period opened now: record time in an hour, deadline in two."""
        body = {
            "name": name,
            "starts_at": "2027-01-01T00:00:00Z",
            "ends_at": "2027-04-01T00:00:00Z",
            "record_at": self.at(1),
            "request_deadline": self.at(2),
        }
        return self.ok(self.post(f"{OUTPUTS}/periods", self.operator, body))

    def produced(self, period_id: int) -> dict[str, Any]:
        """The period produced (past its deadline): 1,000 g of tomato, 7 of basil."""
        self.clock.now = datetime.fromisoformat(
            self.get(f"/v1/periods/{period_id}")["period"]["request_deadline"]
        ) + timedelta(minutes=1)
        self.resign()
        body = {
            "produced": {"tomato": 1_000, "basil": 7},
            "buyback": {"tomato": {"currency": "EUR", "price_minor": "50"}},
        }
        return self.ok(self.post(f"/v1/periods/{period_id}/production", self.operator, body))

    def state(self) -> tuple[Any, ...]:
        """What a refusal must not change: the journal's head and the outputs reads."""
        periods = self.get(f"{OUTPUTS}/periods")["items"]
        return (
            self.head(),
            self.get(f"{OUTPUTS}/outputs"),
            periods,
            [self.get(f"/v1/periods/{p['id']}/entitlements") for p in periods],
            [self.get(f"/v1/periods/{p['id']}/settlements") for p in periods],
        )


@pytest.fixture
def world(engine: Engine) -> Iterator[OutputsWorld]:
    clock = MovableClock()
    settings = Settings(admins=frozenset({ADMIN.address}), market_fee_bps=FEE_BPS)
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        yield OutputsWorld(client, clock)


def test_a_period_from_requests_to_reports(world: OutputsWorld) -> None:
    kinds = world.get(f"{OUTPUTS}/output-kinds")
    assert [(k["name"], k["unit"]) for k in kinds] == [("basil", "g"), ("tomato", "g")]
    period = world.period()
    assert period["state"] == "open"
    assert [p["id"] for p in world.get(f"{OUTPUTS}/periods")["items"]] == [period["id"]]
    pid = period["id"]
    world.advance(1.5)
    mine = world.put(f"/v1/periods/{pid}/request", world.ann, {"mix": {"tomato": 10_000}}, "r1")
    assert world.ok(mine)["rights_units"] == 600_000
    again = world.put(f"/v1/periods/{pid}/request", world.ann, {"mix": {"tomato": 10_000}}, "r1")
    assert again.json() == mine.json()
    problem(
        world.put(f"/v1/periods/{pid}/request", world.ann, {"mix": {"basil": 10_000}}, "r1"),
        409,
        "idempotency_conflict",
    )
    world.ok(
        world.put(
            f"/v1/periods/{pid}/request", world.bob, {"mix": {"tomato": 5_000, "basil": 5_000}}
        )
    )
    plan = world.get(f"/v1/periods/{pid}/plan")
    # tomato: 600,000 x 10,000 + 400,000 x 5,000; basil: 400,000 x 5,000 -> 80 % / 20 %.
    assert [(x["kind"], x["weight"], x["share_bp"]) for x in plan["lines"]] == [
        ("basil", "2000000000", 2_000),
        ("tomato", "8000000000", 8_000),
    ]
    page = world.get(f"{OUTPUTS}/outputs")
    assert page["operator"]["operator"] == OPERATOR.address
    assert page["open_periods"][0]["plan"] == plan and page["past_periods"] == []
    production = world.produced(pid)
    assert production["operator"] == OPERATOR.address and production["holders"] == 3
    detail = world.get(f"/v1/periods/{pid}")
    assert detail["period"]["state"] == "produced" and detail["production"] == production
    first = world.get(f"/v1/periods/{pid}/entitlements", limit=2)
    rest = world.get(f"/v1/periods/{pid}/entitlements", limit=2, cursor=first["next_cursor"])
    table = {
        (h["holder"], x["kind"]): x["entitled"]
        for h in first["items"] + rest["items"]
        for x in h["lines"]
    }
    # tomato: 100 first; 900 by 6:4:0. basil 7: 0 first; 4.2 / 2.8 -> 4 + 0, 2 + 1.
    assert table == {
        (ANN.address, "tomato"): 540,
        (BOB.address, "tomato"): 360,
        (OPERATOR.address, "tomato"): 100,
        (ANN.address, "basil"): 4,
        (BOB.address, "basil"): 3,
        (OPERATOR.address, "basil"): 0,
    }
    delivery = {"holder": ANN.address, "kind": "tomato", "quantity": 500, "note": "crate"}
    assert (
        world.ok(world.post(f"/v1/periods/{pid}/deliveries", world.operator, delivery))[
            "outstanding"
        ]
        == 40
    )
    world.ok(
        world.post(f"/v1/periods/{pid}/waivers", world.ann, {"kind": "tomato", "quantity": 40})
    )
    eur_before = world.eur(world.bob)[0]
    sold = world.ok(
        world.post(
            f"/v1/periods/{pid}/sell-backs", world.bob, {"kind": "tomato", "quantity": 60}, "s1"
        )
    )
    assert (sold["cash_minor"], sold["currency"], sold["outstanding"]) == ("3000", "EUR", 300)
    assert world.eur(world.bob)[0] == eur_before + 3_000
    replay = world.post(
        f"/v1/periods/{pid}/sell-backs", world.bob, {"kind": "tomato", "quantity": 60}, "s1"
    )
    assert replay.json() == sold and world.eur(world.bob)[0] == eur_before + 3_000
    ann = world.get(f"/v1/periods/{pid}/entitlements/{ANN.address}")
    assert ann["lines"][1] == {
        "kind": "tomato",
        "rights_units": 600_000,
        "entitled": 540,
        "delivered": 500,
        "waived": 40,
        "sold_back": 0,
        "outstanding": 0,
    }
    settled = world.get(f"/v1/periods/{pid}/settlements")["items"]
    assert [(s["action"], s["quantity"], s["cash_minor"]) for s in settled] == [
        ("deliver", 500, None),
        ("waive", 40, None),
        ("sell_back", 60, "3000"),
    ]
    past = world.get(f"{OUTPUTS}/outputs")["past_periods"][0]["yields"]
    assert [(y["kind"], y["per_unit"], y["numerator"], y["denominator"]) for y in past] == [
        ("basil", "0.000007", 7, 1_000_000),
        ("tomato", "0.000900", 900, 1_000_000),
    ]


def test_who_may_write(world: OutputsWorld) -> None:
    """Every write route: anonymous 401, another member 403, the rightful one 2xx."""
    period = world.period()
    pid = period["id"]
    p_body = {
        "name": "2027-Q2",
        "starts_at": "2027-04-01T00:00:00Z",
        "ends_at": "2027-07-01T00:00:00Z",
        "record_at": world.at(1),
        "request_deadline": world.at(2),
    }
    routes: list[tuple[str, str, Any, dict[str, str], int]] = [
        (
            "PUT",
            f"{OUTPUTS}/output-terms",
            {"operator": OPERATOR.address, "operator_share_bp": 1_000},
            world.admin,
            200,
        ),
        ("POST", f"{OUTPUTS}/output-kinds", {"name": "kale", "unit": "g"}, world.operator, 201),
        ("POST", f"{OUTPUTS}/periods", p_body, world.operator, 201),
    ]
    for method, path, body, rightful, status in routes:
        call = world.put if method == "PUT" else world.post
        assert call(path, None, body).status_code == 401, path
        problem(
            call(path, world.cat, body), 403, "not_admin" if method == "PUT" else "not_operator"
        )
        assert call(path, rightful, body).status_code == status, path
    world.advance(1.5)
    mix = {"mix": {"tomato": 10_000}}
    assert world.put(f"/v1/periods/{pid}/request", None, mix).status_code == 401
    problem(world.put(f"/v1/periods/{pid}/request", world.cat, mix), 403, "no_rights")
    world.ok(world.put(f"/v1/periods/{pid}/request", world.ann, mix))
    world.advance(1)
    production = {
        "produced": {"tomato": 10, "basil": 0, "kale": 0},
        "buyback": {"tomato": {"currency": "EUR", "price_minor": "1"}},
    }
    path = f"/v1/periods/{pid}/production"
    assert world.post(path, None, production).status_code == 401
    problem(world.post(path, world.ann, production), 403, "not_operator")
    # Another holder of the asset's operator role runs its records, but neither
    # records production nor delivers in the name of the operator the terms name (who
    # pays for what is sold back).
    granted = world.post("/v1/roles", world.admin, {"address": CAT.address, "role": "operator",
                                                     "asset_id": ASSET})  # fmt: skip
    assert granted.status_code == 204, granted.text
    problem(world.post(path, world.cat, production), 403, "not_operator")
    world.ok(world.post(path, world.operator, production))
    delivery = {"holder": ANN.address, "kind": "tomato", "quantity": 1}
    path = f"/v1/periods/{pid}/deliveries"
    problem(world.post(path, world.cat, delivery), 403, "not_operator")
    assert world.post(path, None, delivery).status_code == 401
    problem(world.post(path, world.ann, delivery), 403, "not_operator")
    world.ok(world.post(path, world.operator, delivery))
    # Waivers and sell-backs act on the caller's own entitlement: another member has none.
    for route in ("waivers", "sell-backs"):
        path, body = f"/v1/periods/{pid}/{route}", {"kind": "tomato", "quantity": 1}
        assert world.post(path, None, body).status_code == 401
        problem(world.post(path, world.cat, body), 404, "no_entitlement")
        world.ok(world.post(path, world.bob, body))


def test_hostile_bodies_and_bad_paths_are_problems_that_change_nothing(
    world: OutputsWorld,
) -> None:
    pid = world.period()["id"]
    world.advance(1.5)
    before = world.state()
    huge = 10**30
    cases: list[tuple[str, str, dict[str, str], Any, int, str | None]] = [
        (
            "PUT",
            f"{OUTPUTS}/output-terms",
            world.admin,
            {"operator": OPERATOR.address, "operator_share_bp": 10_001},
            422,
            None,
        ),
        (
            "PUT",
            f"{OUTPUTS}/output-terms",
            world.admin,
            {"operator": OPERATOR.address, "operator_share_bp": "1000"},
            422,
            None,
        ),
        (
            "PUT",
            f"{OUTPUTS}/output-terms",
            world.admin,
            {"operator": "0x" + "a" * 40, "operator_share_bp": 1},
            422,
            "address_checksum",
        ),
        (
            "POST",
            f"{OUTPUTS}/output-kinds",
            world.operator,
            {"name": "Tomato", "unit": "g"},
            422,
            None,
        ),
        (
            "POST",
            f"{OUTPUTS}/output-kinds",
            world.operator,
            {"name": "kale", "unit": "g" * 17},
            422,
            None,
        ),
        (
            "POST",
            f"{OUTPUTS}/output-kinds",
            world.operator,
            {"name": "kale", "unit": "g", "description": "d" * 201},
            422,
            None,
        ),
        (
            "POST",
            f"{OUTPUTS}/output-kinds",
            world.operator,
            {"name": "tomato", "unit": "g"},
            409,
            "output_kind_exists",
        ),
        (
            "POST",
            f"{OUTPUTS}/output-kinds",
            world.operator,
            {"name": "kale", "unit": "g", "extra": 1},
            422,
            None,
        ),
        (
            "POST",
            f"{OUTPUTS}/periods",
            world.operator,
            {
                "name": "x" * 33,
                "starts_at": world.at(0),
                "ends_at": world.at(9),
                "record_at": world.at(1),
                "request_deadline": world.at(2),
            },
            422,
            None,
        ),
        (
            "POST",
            f"{OUTPUTS}/periods",
            world.operator,
            {
                "name": "late",
                "starts_at": world.at(0),
                "ends_at": world.at(9),
                "record_at": world.at(-3),
                "request_deadline": world.at(-2),
            },
            422,
            "request_deadline_passed",
        ),
        (
            "POST",
            f"{OUTPUTS}/periods",
            world.operator,
            {
                "name": "2027-Q1",
                "starts_at": world.at(0),
                "ends_at": world.at(9),
                "record_at": world.at(1),
                "request_deadline": world.at(2),
            },
            409,
            "period_exists",
        ),
        (
            "POST",
            f"{OUTPUTS}/periods",
            world.operator,
            {
                "name": "n",
                "starts_at": 1_800_000_000,
                "ends_at": world.at(9),
                "record_at": world.at(1),
                "request_deadline": world.at(2),
            },
            422,
            None,
        ),
        ("PUT", f"/v1/periods/{pid}/request", world.ann, {"mix": {"tomato": huge}}, 422, None),
        (
            "PUT",
            f"/v1/periods/{pid}/request",
            world.ann,
            {"mix": {"tomato": 9_999}},
            422,
            "mix_not_whole",
        ),
        (
            "PUT",
            f"/v1/periods/{pid}/request",
            world.ann,
            {"mix": {"kale": 10_000}},
            422,
            "unknown_output_kind",
        ),
        ("PUT", f"/v1/periods/{pid}/request", world.ann, {"mix": {"tomato": 1.0e4}}, 422, None),
        (
            "PUT",
            f"/v1/periods/{pid}/request",
            world.ann,
            {"mix": {f"k{i}": 1 for i in range(21)}},
            422,
            None,
        ),
        ("PUT", f"/v1/periods/{pid}/request", world.ann, {"mix": ["tomato"]}, 422, None),
        (
            "PUT",
            "/v1/periods/999999/request",
            world.ann,
            {"mix": {"tomato": 10_000}},
            404,
            "unknown_period",
        ),
        (
            "POST",
            f"/v1/periods/{pid}/production",
            world.operator,
            {"produced": {"tomato": 1, "basil": 1}},
            422,
            "requests_still_open",
        ),
        (
            "POST",
            f"/v1/periods/{pid}/production",
            world.operator,
            {"produced": {"tomato": huge, "basil": 1}},
            422,
            None,
        ),
        (
            "POST",
            f"/v1/periods/{pid}/production",
            world.operator,
            {
                "produced": {"tomato": 1, "basil": 1},
                "buyback": {"tomato": {"currency": "EUR", "price_minor": "-1"}},
            },
            422,
            None,
        ),
        (
            "POST",
            f"/v1/periods/{pid}/deliveries",
            world.operator,
            {"holder": ANN.address, "kind": "tomato", "quantity": 1},
            422,
            "period_not_produced",
        ),
        (
            "POST",
            f"/v1/periods/{pid}/deliveries",
            world.operator,
            {"holder": ANN.address, "kind": "tomato", "quantity": 0},
            422,
            None,
        ),
        (
            "POST",
            f"/v1/periods/{pid}/waivers",
            world.ann,
            {"kind": "tomato", "quantity": huge},
            422,
            None,
        ),
        ("POST", f"/v1/periods/{pid}/sell-backs", world.ann, {"kind": 7, "quantity": 1}, 422, None),
    ]
    for method, path, who, body, status, code in cases:
        answer = (world.put if method == "PUT" else world.post)(path, who, body)
        assert answer.status_code == status, (path, body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if code is not None:
            assert answer.json()["code"] == code, answer.text
    for path, status in [
        ("/v1/periods/0", 422),
        ("/v1/periods/999999", 404),
        ("/v1/periods/abc/plan", 422),
        ("/v1/assets/1FTFW1E01DFC10312/outputs", 404),
        (f"/v1/periods/{pid}/entitlements/0xnot", 422),
        (f"/v1/periods/{pid}/entitlements?limit=1000", 422),
        (f"/v1/periods/{pid}/entitlements?cursor=abc%00", 422),
        (f"{OUTPUTS}/periods?limit=0", 422),
    ]:
        assert world.client.get(path).status_code == status, path
    assert world.state() == before
    # Production beyond the entitlements, then settlements past what is outstanding.
    world.ok(world.put(f"/v1/periods/{pid}/request", world.ann, {"mix": {"tomato": 10_000}}))
    world.produced(pid)
    after = world.state()
    for path, who, body, code in [
        (
            f"/v1/periods/{pid}/deliveries",
            world.operator,
            {"holder": ANN.address, "kind": "tomato", "quantity": 541},
            "beyond_entitlement",
        ),
        (
            f"/v1/periods/{pid}/waivers",
            world.bob,
            {"kind": "tomato", "quantity": 361},
            "beyond_entitlement",
        ),
        (
            f"/v1/periods/{pid}/sell-backs",
            world.bob,
            {"kind": "basil", "quantity": 1},
            "no_buyback",
        ),
        (
            f"/v1/periods/{pid}/sell-backs",
            world.operator,
            {"kind": "tomato", "quantity": 1},
            "sell_back_to_self",
        ),
        (
            f"/v1/periods/{pid}/production",
            world.operator,
            {"produced": {"tomato": 1, "basil": 1}},
            "period_not_open",
        ),
    ]:
        problem(world.post(path, who, body), 422, code)
    assert world.state() == after
