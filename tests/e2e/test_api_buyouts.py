"""Buy-outs through the real app, on both databases: a plan proposed, accepted by its
sellers (their units held), settled by the server's own buy-out clock and by its tick,
cancelled; who may do what (anonymous 401, another member 403, the rightful one 2xx);
hostile bodies refused as problem+json with nothing changed; replays answered alike;
``/readyz`` reporting the clock. And ``dpn buyouts run`` as a real process settling a due
installment in a SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.app import create_app
from api.settings import Settings
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.db.schema import BuyoutInstallment, Hold, table
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.outputs.buyout_clock import BuyoutClock
from ledger.outputs.buyouts import BuyoutTerms, InstallmentTerms, accept_plan, propose_plan
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member

from .signin import MovableClock, greenhouse, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB, CAT = wallet(91), wallet(92), wallet(93), wallet(94), wallet(95)
ASSET = "1M8GDM9AXKP042788"
PROBLEM = "application/problem+json"
FEB = "2027-02-01T00:00:00Z"
MAR = "2027-03-01T00:00:00Z"
REPO = Path(__file__).resolve().parents[2]


class World:
    """The app (its buy-out clock ticking only when a test says so), members signed in:
    ANN 600,000 units, BOB 400,000, CAT none; the operator (the buyer) 10,000.00 EUR."""

    def __init__(self, client: TestClient, clock: MovableClock) -> None:
        self.client = client
        self.clock = clock
        self.app = cast(FastAPI, client.app)
        self.keys = 0
        self.admin = sign_in(client, ADMIN)
        self.operator = sign_in(client, OPERATOR)
        self.ann = sign_in(client, ANN)
        self.bob = sign_in(client, BOB)
        self.cat = sign_in(client, CAT)
        self.ok(self.post("/v1/assets", self.admin, greenhouse(ASSET)))
        role = {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET}
        assert self.post("/v1/roles", self.admin, role).status_code == 204
        issue = {"allocations": [[ANN.address, "600000"], [BOB.address, "400000"]]}
        self.ok(self.post(f"/v1/assets/{ASSET}/issue", self.operator, issue))
        body = {"member": OPERATOR.address, "currency": "EUR", "amount": "1000000",
                "reference": "SEPA"}  # fmt: skip
        self.ok(self.post("/v1/deposits", self.admin, body))

    def move_to(self, moment: datetime) -> None:
        """Move the clock to ``moment``; everyone signs in again (tokens last an hour)."""
        self.clock.now = moment
        for name, who in (("admin", ADMIN), ("operator", OPERATOR), ("ann", ANN), ("bob", BOB),
                          ("cat", CAT)):  # fmt: skip
            setattr(self, name, sign_in(self.client, who))

    def post(self, path: str, who: dict[str, str] | None, body: Any = None, key: str = "") -> Any:
        self.keys += 1
        headers = (who or {}) | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> Any:
        answer = self.client.get(path, headers=who or {}, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    @staticmethod
    def ok(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        found: dict[str, Any] = answer.json()
        return found

    def head(self) -> int:
        return int(self.get("/v1/digest")["seq"])

    def units(self, who: dict[str, str]) -> tuple[int, int]:
        for h in self.get("/v1/holdings/me", who):
            if h["instrument"].endswith(ASSET):
                return int(h["balance"]), int(h["held"])
        return 0, 0

    def plan_body(self, **changes: Any) -> dict[str, Any]:
        return {
            "asset_id": ASSET,
            "currency": "EUR",
            "installments": [
                {"seller": ANN.address, "due_at": FEB, "units": 100_000, "price_minor": "2"},
                {"seller": BOB.address, "due_at": FEB, "units": 50_000, "price_minor": 3},
                {"seller": ANN.address, "due_at": MAR, "units": 100_000, "price_minor": "2"},
            ],
        } | changes

    def proposed(self) -> dict[str, Any]:
        return self.ok(self.post("/v1/buyouts", self.operator, self.plan_body()))


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    clock = MovableClock()
    settings = Settings(admins=frozenset({ADMIN.address}))
    app = create_app(settings, engine=engine, clock=clock, buyout_interval_s=3600)
    with TestClient(app) as client:
        yield World(client, clock)


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    found: dict[str, Any] = answer.json()
    assert found["code"] == code, answer.text
    return found


def test_a_plan_is_proposed_accepted_and_settled_over_http(world: World) -> None:
    plan = world.proposed()
    assert plan["state"] == "proposed" and plan["buyer"] == OPERATOR.address
    assert [(s["seller"], s["units"], s["accepted"]) for s in plan["sellers"]] == sorted(
        [(ANN.address, 200_000, False), (BOB.address, 50_000, False)]
    )
    assert world.get(f"/v1/buyouts/{plan['id']}") == plan  # public
    accepted = world.ok(world.post(f"/v1/buyouts/{plan['id']}/accept", world.ann))
    assert accepted["state"] == "proposed" and world.units(world.ann) == (600_000, 200_000)
    active = world.ok(world.post(f"/v1/buyouts/{plan['id']}/accept", world.bob))
    assert active["state"] == "active"
    clock: BuyoutClock = world.app.state.buyout_clock
    assert clock.tick() == []  # nothing due yet
    world.move_to(datetime(2027, 2, 1, tzinfo=UTC))
    assert [s.number for s in clock.tick()] == [1, 2]
    now = world.get(f"/v1/buyouts/{plan['id']}")
    assert [(i["state"], i["attempts"], i["next_attempt_at"]) for i in now["installments"]] == [
        ("paid", 1, None),
        ("paid", 1, None),
        ("scheduled", 0, "2027-03-01T00:00:00Z"),
    ]
    assert world.units(world.operator) == (150_000, 0)
    assert world.units(world.ann) == (500_000, 100_000)
    ready = world.get("/readyz")["buyouts"]
    assert ready["settled"] == 2 and ready["missed"] == 0 and ready["state"] == "running"


def test_the_servers_own_clock_settles_what_falls_due(engine: Engine) -> None:
    clock = MovableClock()
    settings = Settings(admins=frozenset({ADMIN.address}))
    app = create_app(settings, engine=engine, clock=clock, buyout_interval_s=0.05)
    with TestClient(app) as client:
        world = World(client, clock)
        plan = world.ok(world.post("/v1/buyouts", world.operator, world.plan_body()))
        world.ok(world.post(f"/v1/buyouts/{plan['id']}/accept", world.ann))
        world.ok(world.post(f"/v1/buyouts/{plan['id']}/accept", world.bob))
        head = world.head()
        time.sleep(0.3)
        assert world.head() == head  # nothing due: the clock writes nothing
        world.move_to(datetime(2027, 3, 2, tzinfo=UTC))
        deadline = time.monotonic() + 20
        while world.get(f"/v1/buyouts/{plan['id']}")["state"] != "completed":
            assert time.monotonic() < deadline, world.get("/readyz")
            time.sleep(0.05)
        ready = world.get("/readyz")
        assert ready["status"] == "ready" and ready["buyouts"]["settled"] == 3
        assert ready["buyouts"]["last_error"] is None
    assert app.state.buyout_clock.status().state == "stopped"  # stopped on shutdown


def test_a_buyer_who_cannot_pay_is_missed_and_the_service_stays_ready(world: World) -> None:
    body = world.plan_body(installments=[
        {"seller": ANN.address, "due_at": FEB, "units": 1_000, "price_minor": "100000"},
    ])  # fmt: skip
    plan = world.ok(world.post("/v1/buyouts", world.operator, body))
    world.ok(world.post(f"/v1/buyouts/{plan['id']}/accept", world.ann))
    world.move_to(datetime(2027, 2, 1, tzinfo=UTC))
    world.app.state.buyout_clock.tick()
    (step,) = world.get(f"/v1/buyouts/{plan['id']}")["installments"]
    assert (step["state"], step["attempts"]) == ("missed", 1)
    assert step["next_attempt_at"].startswith("2027-02-02T00:00:00")  # the run, a day on
    assert world.units(world.ann) == (600_000, 1_000)  # nothing moved, still held
    ready = world.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["buyouts"]["missed"] == 1


# -- who may do what --------------------------------------------------------------------


def test_the_access_matrix_of_the_write_routes(world: World) -> None:
    body = world.plan_body()
    problem(world.post("/v1/buyouts", None, body), 401, "credentials_missing")
    plan = world.ok(world.post("/v1/buyouts", world.operator, body))
    path = f"/v1/buyouts/{plan['id']}"
    for action in ("accept", "cancel"):
        problem(world.post(f"{path}/{action}", None), 401, "credentials_missing")
    head = world.head()
    problem(world.post(f"{path}/accept", world.cat), 403, "not_seller")
    problem(world.post(f"{path}/accept", world.operator), 403, "not_seller")
    problem(world.post(f"{path}/cancel", world.cat), 403, "not_party")
    assert world.head() == head
    world.ok(world.post(f"{path}/accept", world.ann))
    problem(world.post(f"{path}/accept", world.ann), 409, "already_accepted")
    cancelled = world.ok(world.post(f"{path}/cancel", world.bob))  # a seller may
    assert cancelled["state"] == "cancelled" and world.units(world.ann) == (600_000, 0)
    problem(world.post(f"{path}/cancel", world.operator), 422, "plan_cancelled")
    problem(world.post(f"{path}/accept", world.bob), 422, "plan_not_proposed")
    other = world.ok(world.post("/v1/buyouts", world.operator, body))
    world.ok(world.post(f"/v1/buyouts/{other['id']}/accept", world.ann))
    world.ok(world.post(f"/v1/buyouts/{other['id']}/accept", world.bob))
    problem(world.post(f"/v1/buyouts/{other['id']}/cancel", world.operator), 422, "plan_active")
    # The listing is the caller's own.
    problem(world.client.get("/v1/buyouts"), 401, "credentials_missing")
    assert world.get("/v1/buyouts", world.cat)["items"] == []


def test_replays_answer_alike_and_a_reused_key_is_refused(world: World) -> None:
    first = world.post("/v1/buyouts", world.operator, world.plan_body(), key="plan-1")
    again = world.post("/v1/buyouts", world.operator, world.plan_body(), key="plan-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    head = world.head()
    other = world.plan_body(currency="USD")
    problem(world.post("/v1/buyouts", world.operator, other, key="plan-1"), 409,
            "idempotency_conflict")  # fmt: skip
    path = f"/v1/buyouts/{first.json()['id']}/accept"
    accepted = world.post(path, world.ann, key="yes")
    assert world.post(path, world.ann, key="yes").json() == accepted.json()
    assert world.head() == head + 1


def test_lists_are_the_callers_newest_first_and_paged(world: World) -> None:
    ids = [world.proposed()["id"] for _ in range(3)]
    mine = world.get("/v1/buyouts", world.ann, limit=2)
    assert [p["id"] for p in mine["items"]] == ids[:0:-1]
    rest = world.get("/v1/buyouts", world.ann, limit=2, cursor=mine["next_cursor"])
    assert [p["id"] for p in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert world.get("/v1/buyouts", world.ann, role="buyer")["items"] == []
    assert len(world.get("/v1/buyouts", world.operator, role="buyer", asset_id=ASSET)["items"]) == 3
    problem(world.client.get("/v1/buyouts/999999"), 404, "unknown_plan")
    for bad in ("0", "-1", "x", str(2**63)):
        assert world.client.get(f"/v1/buyouts/{bad}").status_code == 422
    problem(world.client.get("/v1/buyouts", headers=world.ann, params={"role": "x"}), 422,
            "request_invalid")  # fmt: skip


def test_hostile_bodies_are_problems_and_change_nothing(world: World) -> None:
    step = {"seller": ANN.address, "due_at": FEB, "units": 1, "price_minor": "1"}

    def with_step(**changes: Any) -> dict[str, Any]:
        return world.plan_body(installments=[step | changes])

    head = world.head()
    cases: list[tuple[Any, int, str]] = [
        (with_step(units=10**16), 422, "request_invalid"),
        (with_step(units=0), 422, "request_invalid"),
        (with_step(units=1.5), 422, "request_invalid"),
        (with_step(units="1"), 422, "request_invalid"),
        (with_step(units=True), 422, "request_invalid"),
        (with_step(price_minor=-1), 422, "request_invalid"),
        (with_step(price_minor="1e5"), 422, "request_invalid"),
        (with_step(price_minor=2**60), 422, "request_invalid"),
        (with_step(price_minor="0"), 422, "installment_out_of_range"),
        (with_step(price_minor="9" * 40), 422, "installment_out_of_range"),
        (with_step(units=10**15, price_minor="1" + "0" * 36), 422, "amount_over_limit"),
        (with_step(due_at=1_800_000_000), 422, "request_invalid"),
        (with_step(due_at="2027-02-01T00:00:00"), 422, "time_naive"),
        (with_step(due_at="1801699200"), 422, "request_invalid"),  # seconds since 1970
        (with_step(due_at=1801699200), 422, "request_invalid"),
        (with_step(due_at="2027-02-01T00:00:00.1234567Z"), 422, "request_invalid"),
        (with_step(due_at="2026-01-01T00:00:00Z"), 422, "due_passed"),
        (with_step(seller="0x" + "a" * 40), 422, "address_checksum"),
        (with_step(seller="x" * 65), 422, "request_invalid"),
        (with_step(seller=OPERATOR.address), 422, "buyout_self"),
        (with_step(seller=CAT.address), 422, "buyout_exceeds_holding"),
        (with_step(units=600_001), 422, "buyout_exceeds_holding"),
        (with_step(extra=1), 422, "request_invalid"),
        (world.plan_body(installments=[]), 422, "request_invalid"),
        (world.plan_body(installments=[step] * 121), 422, "request_invalid"),
        (world.plan_body(asset_id="X" * 33), 422, "request_invalid"),
        (world.plan_body(asset_id="1M8GDM9AXKP042789"), 422, "asset_id_check_digit"),
        (world.plan_body(currency="XXX"), 404, "unknown_currency"),
        (world.plan_body(currency="E" * 11), 422, "request_invalid"),
        ([], 422, "request_invalid"),
        ("plan", 422, "request_invalid"),
    ]
    for body, status, code in cases:
        problem(world.post("/v1/buyouts", world.operator, body), status, code)
    assert world.head() == head
    at_limit = world.post("/v1/buyouts", world.operator,
                          world.plan_body(installments=[step] * 120))  # fmt: skip
    assert at_limit.status_code == 201, at_limit.text


# -- the command line -------------------------------------------------------------------


def _dpn(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DPN_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "buyouts", "run", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _an_hour_ago() -> Callable[[], datetime]:
    """A clock running an hour behind the wall clock: the plan is made "then", due half
    an hour later, which the wall clock (``dpn``'s) has passed."""
    return lambda: datetime.now(UTC) - timedelta(hours=1)


def _a_due_plan(url: str, *, held: int | None = None) -> int:
    """A migrated SQLite database at ``url`` with one accepted plan whose one installment
    (100 of ANN's units for 500 EUR) fell due half an hour ago; its id. ``held`` damages
    the seller's hold to that many units (less than the installment: the ledger refuses)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        ledger = Ledger(engine, clock=_an_hour_ago())
        for n, who in enumerate((ANN, OPERATOR)):
            register_member(ledger, who.address, "individual", f"m{n}", key=f"m{n}", actor="t")
        register_asset(ledger, ASSET, make="R", model="G", serial="1", location="W",
                       jurisdiction="NL", key="asset", actor="t")  # fmt: skip
        issue_units(ledger, ASSET, [(ANN.address, 1_000)], key="issue", actor="t")
        deposit(ledger, member=OPERATOR.address, currency="EUR", amount=500, reference="w",
                key="d", actor="t")  # fmt: skip
        due = datetime.now(UTC) - timedelta(minutes=30)
        terms = BuyoutTerms(ASSET, "EUR", (InstallmentTerms(ANN.address, due, 100, 5),))
        plan = propose_plan(ledger, OPERATOR.address, terms, key="p", actor="t")
        accept_plan(ledger, plan.id, seller=ANN.address, key="a", actor="t")
        if held is not None:
            with engine.begin() as conn:
                conn.execute(update(table(Hold)).values(remaining=held))
        return plan.id
    finally:
        engine.dispose()


def test_dpn_buyouts_run_settles_a_due_installment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    plan_id = _a_due_plan(url)
    bad = _dpn(url, "--limit", "0")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("dpn: error: limit_malformed: ")
    ran = _dpn(url)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0].startswith(f"plan {plan_id} installment 1: paid")
    assert ran.stdout.splitlines()[-1] == "buy-outs: 1 paid, 0 missed, 0 defaulted, 0 refused"
    again = _dpn(url)
    assert (
        again.returncode == 0
        and again.stdout == "buy-outs: 0 paid, 0 missed, 0 defaulted, 0 refused\n"
    )
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(table(BuyoutInstallment).c.state)).scalars().all()
        assert rows == ["paid"]
    finally:
        engine.dispose()
    verified = subprocess.run(
        [sys.executable, "-m", "api.cli", "verify"], cwd=REPO, capture_output=True, text=True,
        env=os.environ | {"DPN_DATABASE_URL": url}, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr


def test_dpn_buyouts_run_reports_an_installment_the_ledger_refuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    plan_id = _a_due_plan(url, held=10)
    ran = _dpn(url)
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr.startswith(f"plan {plan_id} installment 1: refused (")
    assert ran.stdout == "buy-outs: 0 paid, 0 missed, 0 defaulted, 1 refused\n"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(table(BuyoutInstallment).c.state)).scalars().all()
        assert rows == ["scheduled"]  # nothing written: due again at the next run
    finally:
        engine.dispose()
