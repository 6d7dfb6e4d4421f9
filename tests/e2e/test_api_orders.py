"""Orders and trades through the real app, on both databases: members sign in, place,
cross, amend and cancel; each trade shows on both sides and moves balances exactly
(with the network's fee); holds are taken and given back; a GTD order expires by the
clock; every refusal is problem+json with a stable code and changes nothing (the
journal's head, every member's balances and holds, every member's orders); and who may
see and do what."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from api.app import create_app
from api.settings import Settings
from ledger.core import with_check_character
from ledger.db.engine import write_connection
from ledger.db.schema import MarketTerms, table
from ledger.journal.write import Ledger
from ledger.registry.members import register_member
from market.engine import MarketEngine

from .signin import MovableClock, greenhouse, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB, CAT = wallet(81), wallet(82), wallet(83), wallet(84), wallet(85)
NORTH, OLGA, PAT = wallet(86), wallet(87), wallet(88)
ASSET = "1M8GDM9AXKP042788"
FUNDED = with_check_character("1M8GDM9A0KP051230")  # a project's asset, once funded
DRAFT = with_check_character("1M8GDM9A0KP051231")  # a project's asset, never funded
NOWHERE = with_check_character("1M8GDM9A0KP051232")  # no asset, no project
TICK, LOT = 5, 10  # ASSET's terms: prices in steps of 5, quantities of 10
FEE_BPS = 10  # 0.1 % of each trade's value, paid by the seller
PROBLEM = "application/problem+json"
MEMBERS = ("ann", "bob", "cat")


class World:
    """The app with a fee, its members signed in: ANN holds 600,000 units of ASSET and
    10,000.00 EUR, BOB 400,000 units and 50,000.00 EUR, CAT nothing."""

    def __init__(self, client: TestClient, clock: MovableClock) -> None:
        self.client = client
        self.clock = clock
        app = cast(FastAPI, client.app)
        self.ledger: Ledger = app.state.ledger
        self.market: MarketEngine = app.state.market
        self.keys = 0
        register_member(self.ledger, NORTH.address, "finance_node", "North", key="n", actor="t")
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
        self.deposit(ANN.address, 1_000_000)
        self.deposit(BOB.address, 5_000_000)
        # No route sets an asset's terms yet: the row the engine reads, before any order.
        with write_connection(self.ledger.engine) as conn:
            conn.execute(
                insert(table(MarketTerms)).values(
                    asset_id=ASSET, tick_size_minor=TICK, lot_size_units=LOT, set_seq=self.head()
                )
            )

    # -- calls --------------------------------------------------------------------------

    def post(self, path: str, who: dict[str, str] | None, body: Any, key: str | None = None) -> Any:
        self.keys += 1
        headers = (who or {}) | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.post(path, json=body, headers=headers)

    def order(self, who: dict[str, str], key: str | None = None, **fields: Any) -> Any:
        """``POST /v1/orders`` on ASSET's EUR book unless ``fields`` say otherwise."""
        return self.post("/v1/orders", who, {"asset_id": ASSET, "currency": "EUR"} | fields, key)

    def placed(self, who: dict[str, str], **fields: Any) -> dict[str, Any]:
        return self.ok(self.order(who, **fields))

    def amend(self, who: dict[str, str], order_id: int, body: Any, key: str | None = None) -> Any:
        self.keys += 1
        headers = who | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.patch(f"/v1/orders/{order_id}", json=body, headers=headers)

    def cancel(self, who: dict[str, str], order_id: int, key: str | None = None) -> Any:
        headers = who if key is None else who | {"Idempotency-Key": key}
        return self.client.delete(f"/v1/orders/{order_id}", headers=headers)

    def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> Any:
        answer = self.client.get(path, headers=who or {}, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def deposit(self, member: str, amount: int) -> None:
        body = {"member": member, "currency": "EUR", "amount": str(amount), "reference": "SEPA"}
        self.ok(self.post("/v1/deposits", self.admin, body))

    @staticmethod
    def ok(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        found: dict[str, Any] = answer.json()
        return found

    # -- what there is ------------------------------------------------------------------

    def head(self) -> int:
        return int(self.get("/v1/digest")["seq"])

    def holdings(self, who: dict[str, str]) -> dict[str, tuple[int, int, int]]:
        """instrument -> (balance, held, available)."""
        return {
            h["instrument"]: (int(h["balance"]), int(h["held"]), int(h["available"]))
            for h in self.get("/v1/holdings/me", who)
        }

    def units(self, who: dict[str, str], asset_id: str = ASSET) -> tuple[int, int, int]:
        return self.holdings(who).get(f"units:{asset_id}", (0, 0, 0))

    def eur(self, who: dict[str, str]) -> tuple[int, int, int]:
        return self.holdings(who).get("ccy:EUR", (0, 0, 0))

    def everything(self) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """The journal's head, and each member's holdings and orders."""
        members = {name: getattr(self, name) for name in MEMBERS}
        return (
            self.head(),
            {name: self.holdings(who) for name, who in members.items()},
            {name: self.get("/v1/orders", who) for name, who in members.items()},
        )


@contextmanager
def orders_world(engine: Engine) -> Iterator[World]:
    """The ``World`` of these tests over ``engine``: the app with a fee, on a clock the
    test moves. Other test modules of the market make their ``world`` fixture of it."""
    clock = MovableClock()
    settings = Settings(admins=frozenset({ADMIN.address}), market_fee_bps=FEE_BPS)
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        yield World(client, clock)


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    with orders_world(engine) as found:
        yield found


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    found: dict[str, Any] = answer.json()
    assert found["code"] == code, answer.text
    return found


def fee(value: int) -> int:
    return value * FEE_BPS // 10_000


# -- the whole way: placed, crossed, settled, read on both sides, cancelled -----------------


def test_a_crossing_buy_trades_with_a_resting_sell_and_settles_exactly(world: World) -> None:
    sell = world.ok(world.order(world.ann, "ann-1", side="sell", price_minor="250", qty_units=1000))
    assert {k: sell[k] for k in ("side", "type", "time_in_force", "status", "trades")} == {
        "side": "sell",
        "type": "limit",
        "time_in_force": "GTC",
        "status": "open",
        "trades": [],
    }
    assert (sell["price_minor"], sell["qty_units"], sell["remaining_units"]) == (
        "250",
        "1000",
        "1000",
    )
    assert (sell["spend_minor"], sell["expires_at"], sell["reason"]) == (None, None, None)
    assert sell["self_trade"] == "cancel_newest" and sell["post_only"] is False
    assert world.units(world.ann) == (600_000, 1000, 599_000)

    # BOB bids 300 for 600: he pays the resting price, 250, and his hold gives back the rest.
    buy_body = {"asset_id": ASSET, "currency": "EUR", "side": "buy", "price_minor": 300}
    buy = world.ok(world.post("/v1/orders", world.bob, buy_body | {"qty_units": "600"}, "bob-1"))
    value = 250 * 600
    trade = {
        "id": buy["trades"][0]["id"],
        "asset_id": ASSET,
        "currency": "EUR",
        "price_minor": "250",
        "qty_units": "600",
        "maker_order_id": sell["id"],
        "taker_order_id": buy["id"],
        "taker_side": "buy",
        "executed_at": buy["placed_at"],
        "fee_minor": str(fee(value)),
    }
    assert buy["trades"] == [trade]
    assert (buy["status"], buy["filled_units"], buy["remaining_units"]) == ("filled", "600", "0")
    assert buy["filled_minor"] == str(value) and buy["reason"] is None
    assert world.eur(world.bob) == (5_000_000 - value, 0, 5_000_000 - value)
    assert world.units(world.bob) == (400_600, 0, 400_600)
    assert world.eur(world.ann) == (
        1_000_000 + value - fee(value),
        0,
        1_000_000 + value - fee(value),
    )
    assert world.units(world.ann) == (599_400, 400, 599_000)

    # Each side reads the trade: the order with it, and its own trades.
    mine = world.get(f"/v1/orders/{sell['id']}", world.ann)
    assert mine["trades"] == [trade]
    assert (mine["status"], mine["filled_units"], mine["remaining_units"]) == ("open", "600", "400")
    assert world.get("/v1/trades", world.ann)["items"] == [
        trade | {"order_id": sell["id"], "side": "sell", "liquidity": "maker"}
    ]
    assert world.get("/v1/trades", world.bob)["items"] == [
        trade | {"order_id": buy["id"], "side": "buy", "liquidity": "taker"}
    ]
    assert world.get("/v1/trades", world.cat)["items"] == []

    # The same key and body again: the same order (201, as the first answer); another
    # body under that key is refused; neither writes anything.
    head = world.head()
    again = world.post("/v1/orders", world.bob, buy_body | {"qty_units": 600}, "bob-1")
    assert again.status_code == 201 and again.json() == buy
    other = world.post("/v1/orders", world.bob, buy_body | {"qty_units": 610}, "bob-1")
    problem(other, 409, "idempotency_conflict")
    assert world.head() == head
    # Cancelled: the rest of the hold comes back; a repeat answers the same; a new
    # attempt under a key of its own is refused.
    cancelled = world.ok(world.cancel(world.ann, sell["id"]))
    assert (cancelled["status"], cancelled["reason"], cancelled["remaining_units"]) == (
        "cancelled",
        "user",
        "0",
    )
    assert cancelled["filled_units"] == "600"
    assert world.units(world.ann) == (599_400, 0, 599_400)
    before = world.everything()
    repeat = world.ok(world.cancel(world.ann, sell["id"]))
    assert {k: v for k, v in repeat.items() if k != "trades"} == {
        k: v for k, v in cancelled.items() if k != "trades"
    }
    problem(world.cancel(world.ann, sell["id"], key="ann-cancel-2"), 422, "order_not_open")
    assert world.everything() == before
    assert world.get("/v1/verify", world.admin)["ok"] is True


def test_a_key_spelling_the_hash_of_a_long_one_is_another_key(world: World) -> None:
    # A long key is hashed to fit the journal's limit: no short key may name it.
    body = {"asset_id": ASSET, "currency": "EUR", "side": "buy", "price_minor": 5}
    long_key = "L" * 100
    first = world.ok(world.post("/v1/orders", world.bob, body | {"qty_units": 10}, long_key))
    again = world.post("/v1/orders", world.bob, body | {"qty_units": 10}, long_key)
    assert again.status_code == 201 and again.json() == first
    spelled = f"sha256:{hashlib.sha256(long_key.encode()).hexdigest()}"
    second = world.ok(world.post("/v1/orders", world.bob, body | {"qty_units": 10}, spelled))
    assert second["id"] != first["id"]
    other = world.ok(world.post("/v1/orders", world.bob, body | {"qty_units": 20}, spelled + "x"))
    assert other["id"] not in (first["id"], second["id"])


def test_an_ioc_buy_trades_what_it_can_and_releases_the_rest(world: World) -> None:
    sell = world.placed(world.ann, side="sell", price_minor=250, qty_units=100)
    buy = world.placed(world.bob, side="buy", price_minor=260, qty_units=300, time_in_force="ioc")
    assert buy["time_in_force"] == "IOC"
    assert (buy["status"], buy["reason"]) == ("cancelled", "ioc_remainder")
    assert (buy["filled_units"], buy["remaining_units"], buy["filled_minor"]) == (
        "100",
        "0",
        "25000",
    )
    assert [t["maker_order_id"] for t in buy["trades"]] == [sell["id"]]
    assert world.eur(world.bob) == (5_000_000 - 25_000, 0, 5_000_000 - 25_000)
    assert world.get(f"/v1/orders/{sell['id']}", world.ann)["status"] == "filled"
    assert world.units(world.ann) == (599_900, 0, 599_900)


def test_market_orders_spend_at_most_their_budget_and_sell_what_they_can(world: World) -> None:
    world.placed(world.ann, side="sell", price_minor=250, qty_units=100)
    dearer = world.placed(world.ann, side="sell", price_minor=300, qty_units=100)
    # 41,000 buys 100 at 250 (25,000), then 50 at 300 (15,000): 53 would be off the lot.
    buy = world.placed(world.bob, side="buy", type="market", spend_minor="41000")
    assert (buy["type"], buy["price_minor"], buy["qty_units"]) == ("market", None, None)
    assert buy["spend_minor"] == "41000"
    assert [(t["price_minor"], t["qty_units"]) for t in buy["trades"]] == [
        ("250", "100"),
        ("300", "50"),
    ]
    assert (buy["filled_units"], buy["filled_minor"]) == ("150", "40000")
    # The 1,000 left buys no lot at 300, where asks still rest: it bought all it could.
    assert (buy["status"], buy["reason"]) == ("filled", None)
    assert world.eur(world.bob) == (5_000_000 - 40_000, 0, 5_000_000 - 40_000)
    assert world.units(world.bob) == (400_150, 0, 400_150)
    assert world.get(f"/v1/orders/{dearer['id']}", world.ann)["remaining_units"] == "50"

    # A market sell of 80 meets a bid for 50: the rest is cancelled, its units released.
    bid = world.placed(world.ann, side="buy", price_minor=200, qty_units=50)
    sold = world.placed(world.bob, side="sell", type="market", qty_units=80)
    assert (sold["status"], sold["reason"]) == ("cancelled", "market_remainder")
    assert (sold["filled_units"], sold["filled_minor"]) == ("50", "10000")
    assert world.units(world.bob) == (400_100, 0, 400_100)
    assert world.get(f"/v1/orders/{bid['id']}", world.ann)["status"] == "filled"
    assert world.get("/v1/verify", world.admin)["ok"] is True


def test_a_gtd_order_expires_on_time_and_its_hold_is_released(world: World) -> None:
    expires = world.clock.now.replace(microsecond=0) + timedelta(seconds=60)
    text = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    sell = world.placed(
        world.ann, side="sell", price_minor=250, qty_units=100, time_in_force="GTD", expires_at=text
    )
    assert (sell["time_in_force"], sell["expires_at"], sell["status"]) == ("GTD", text, "open")
    assert world.units(world.ann)[1] == 100
    world.clock.advance(30)
    world.market.expire_now()
    assert world.get(f"/v1/orders/{sell['id']}", world.ann)["status"] == "open"
    world.clock.advance(31)
    world.market.expire_now()
    expired = world.get(f"/v1/orders/{sell['id']}", world.ann)
    assert (expired["status"], expired["reason"], expired["remaining_units"]) == (
        "expired",
        "expired",
        "0",
    )
    assert world.units(world.ann) == (600_000, 0, 600_000)
    assert [e["kind"] for e in world.get("/v1/journal", kind="order.expire")["items"]] == [
        "order.expire"
    ]
    problem(world.cancel(world.ann, sell["id"]), 422, "order_not_open")
    problem(world.amend(world.ann, sell["id"], {"qty_units": 50}), 422, "order_not_open")


def test_amending_keeps_or_loses_the_place_in_the_queue(world: World) -> None:
    world.deposit(CAT.address, 1_000_000)
    first = world.placed(world.ann, side="sell", price_minor=250, qty_units=100)
    second = world.placed(world.bob, side="sell", price_minor=250, qty_units=100)

    def maker_of_next_buy(qty: int) -> int:
        bought = world.placed(world.cat, side="buy", price_minor=250, qty_units=qty)
        assert len(bought["trades"]) == 1 and bought["status"] == "filled"
        return int(bought["trades"][0]["maker_order_id"])

    smaller = world.ok(world.amend(world.ann, first["id"], {"qty_units": "80"}))
    assert (smaller["remaining_units"], smaller["trades"]) == ("80", [])
    assert world.units(world.ann) == (600_000, 80, 599_920)
    assert maker_of_next_buy(30) == first["id"]  # a smaller quantity kept its place
    larger = world.ok(world.amend(world.ann, first["id"], {"qty_units": 90}))
    assert larger["remaining_units"] == "90" and world.units(world.ann)[1] == 90
    assert maker_of_next_buy(30) == second["id"]  # a larger one went to the back
    world.ok(world.amend(world.bob, second["id"], {"price_minor": 255}))
    back = world.ok(world.amend(world.bob, second["id"], {"price_minor": 250}))
    assert back["price_minor"] == "250"
    assert maker_of_next_buy(10) == first["id"]  # a new price went to the back too

    # A bid amended across the book trades at once, at the resting price.
    bid = world.placed(world.cat, side="buy", price_minor=200, qty_units=20)
    assert world.eur(world.cat)[1] == 200 * 20
    across = {"price_minor": 260, "qty_units": 20}
    crossed = world.ok(world.amend(world.cat, bid["id"], across, key="cross"))
    assert [(t["maker_order_id"], t["price_minor"]) for t in crossed["trades"]] == [
        (first["id"], "250")
    ]
    assert crossed["status"] == "filled" and world.eur(world.cat)[1] == 0
    # The same amendment under its key again is a replay: the order, nothing written; under
    # a new key it is refused, the order being done.
    head = world.head()
    assert world.ok(world.amend(world.cat, bid["id"], across, key="cross")) == crossed
    problem(world.amend(world.cat, bid["id"], {"price_minor": 260}), 422, "order_not_open")
    problem(
        world.amend(world.cat, bid["id"], {"price_minor": 265}, key="cross"),
        409,
        "idempotency_conflict",
    )
    assert world.head() == head
    assert world.get("/v1/verify", world.admin)["ok"] is True


# -- refusals: a stable code, and nothing changes -------------------------------------------


def test_every_refusal_is_a_problem_and_changes_nothing(world: World) -> None:
    done = world.placed(world.ann, side="sell", price_minor=245, qty_units=10)
    world.placed(world.bob, side="buy", price_minor=245, qty_units=10)
    resting = world.placed(world.ann, side="sell", price_minor=250, qty_units=100)
    rid, did = resting["id"], done["id"]
    late = (world.clock.now - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    far = (world.clock.now + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    buy = {"side": "buy", "price_minor": 100, "qty_units": 10}
    at_best = buy | {"price_minor": 250}  # meets the resting sell
    sell = {"side": "sell", "price_minor": 300, "qty_units": 10}
    market_buy = {"side": "buy", "type": "market", "spend_minor": 100}
    orders: list[tuple[dict[str, str], dict[str, Any], int, str]] = [
        (world.bob, buy | {"price_minor": 101}, 422, "price_off_tick"),
        (world.bob, buy | {"qty_units": 15}, 422, "qty_off_lot"),
        (world.bob, buy | {"qty_units": 0}, 422, "qty_out_of_range"),
        (world.bob, buy | {"price_minor": "0"}, 422, "price_out_of_range"),
        (world.bob, buy | {"price_minor": str(2**63)}, 422, "price_out_of_range"),
        (world.bob, buy | {"qty_units": str(10**13)}, 422, "qty_out_of_range"),
        (world.bob, {"side": "buy", "qty_units": 10}, 422, "price_out_of_range"),
        (world.cat, sell, 422, "insufficient_units"),
        (world.ann, sell | {"qty_units": 599_910}, 422, "insufficient_units"),
        (world.cat, buy, 422, "insufficient_funds"),
        (world.bob, buy | {"qty_units": 600_000}, 422, "insufficient_funds"),
        (world.bob, buy | {"asset_id": NOWHERE}, 404, "unknown_asset"),
        (world.bob, buy | {"currency": "XAU"}, 404, "unknown_currency"),
        (world.bob, buy | {"currency": "eur"}, 422, "currency_malformed"),
        (world.bob, buy | {"time_in_force": "GTD", "expires_at": late}, 422, "order_expired"),
        (world.bob, buy | {"time_in_force": "GTD", "expires_at": far}, 422, "expiry_too_far"),
        (world.bob, buy | {"time_in_force": "GTD"}, 422, "expiry_missing"),
        (world.bob, buy | {"expires_at": far}, 422, "expiry_without_gtd"),
        (world.bob, at_best | {"post_only": True}, 422, "post_only_would_cross"),
        (world.bob, at_best | {"qty_units": 110, "time_in_force": "FOK"}, 422, "fok_unfillable"),
        (world.bob, buy | {"type": "market"}, 422, "price_with_market"),
        (world.bob, market_buy | {"time_in_force": "GTD"}, 422, "bad_time_in_force"),
        (world.bob, market_buy | {"post_only": True}, 422, "bad_time_in_force"),
        (world.bob, market_buy | {"qty_units": 10}, 422, "qty_with_market_buy"),
        (world.bob, market_buy | {"self_trade": "decrement"}, 422, "bad_self_trade"),
        (world.bob, buy | {"spend_minor": 100}, 422, "spend_with_limit"),
    ]
    before = world.everything()
    for who, body, status, code in orders:
        problem(world.order(who, **body), status, code)
    assert world.everything() == before

    writes: list[tuple[Any, int, str]] = [
        (world.cancel(world.bob, rid), 403, "not_your_order"),
        (world.amend(world.bob, rid, {"qty_units": 50}), 403, "not_your_order"),
        (world.cancel(world.ann, did), 422, "order_not_open"),
        (world.amend(world.ann, did, {"qty_units": 5}), 422, "order_not_open"),
        (world.cancel(world.ann, 10**9), 404, "unknown_order"),
        (world.amend(world.ann, 10**9, {"qty_units": 10}), 404, "unknown_order"),
        (world.amend(world.ann, rid, {"price_minor": 251}), 422, "price_off_tick"),
        (world.amend(world.ann, rid, {"qty_units": 15}), 422, "qty_off_lot"),
        (world.amend(world.ann, rid, {}), 422, "not_amendable"),
        (world.amend(world.ann, rid, {"qty_units": 600_000}), 422, "insufficient_units"),
    ]
    for answer, status, code in writes:
        problem(answer, status, code)
    problem(world.client.get(f"/v1/orders/{rid}", headers=world.bob), 403, "not_your_order")
    problem(world.client.get(f"/v1/orders/{10**9}", headers=world.bob), 404, "unknown_order")
    assert world.everything() == before
    assert world.units(world.ann)[1] == 100  # the resting order's hold, untouched


def test_an_operator_keeps_its_retained_minimum_and_unfunded_assets_do_not_trade(
    world: World,
) -> None:
    north = sign_in(world.client, NORTH)
    olga = sign_in(world.client, OLGA)
    pat = sign_in(world.client, PAT)

    def project(asset_id: str) -> int:
        # OLGA organizes and puts in 20 % of 30,000.00 EUR; she keeps 100,000 units.
        terms = {
            "title": "A greenhouse for the valley",
            "description": "Glass, heat and a watering line; the organizer operates it.",
            "organizer": OLGA.address,
            "asset_id": asset_id,
            "jurisdiction": "NL",
            "currency": "EUR",
            "goal_minor": "3000000",
            "min_pledge_minor": "7",
            "organizer_contribution_minor": "600000",
            "deadline": "2027-03-01T12:00:00Z",
            "total_units": 1_000_000,
            "retained_min_units": 100_000,
            "manual_pledges_allowed": True,
        }
        return int(world.ok(world.post("/v1/projects", north, terms))["id"])

    funded = project(FUNDED)
    world.ok(world.post(f"/v1/projects/{funded}/open", north, None))
    pledge = {"contributor": PAT.address, "amount_minor": "2400000", "evidence_sha256": "ab" * 32}
    paid = world.ok(world.post(f"/v1/projects/{funded}/manual-pledges", north, pledge))
    assert paid["project"]["state"] == "forwarded"
    assert world.units(olga, FUNDED) == (200_000, 0, 200_000)
    project(DRAFT)  # listed, never funded: its asset does not exist yet

    before = world.head()
    refused = world.order(olga, asset_id=FUNDED, side="sell", price_minor=100, qty_units=100_001)
    assert problem(refused, 422, "operator_retained_minimum")["retained_min_units"] == "100000"
    for who, side in ((world.ann, "buy"), (olga, "sell")):
        unfunded = world.order(who, asset_id=DRAFT, side=side, price_minor=100, qty_units=1)
        problem(unfunded, 422, "project_not_funded")
    assert world.head() == before
    assert world.units(olga, FUNDED) == (200_000, 0, 200_000)

    # Down to the minimum, and not a unit further while that rests.
    world.placed(olga, asset_id=FUNDED, side="sell", price_minor=100, qty_units=100_000)
    assert world.units(olga, FUNDED) == (200_000, 100_000, 100_000)
    more = world.order(olga, asset_id=FUNDED, side="sell", price_minor=100, qty_units=1)
    problem(more, 422, "operator_retained_minimum")
    # Anyone else sells what they hold.
    world.placed(pat, asset_id=FUNDED, side="sell", price_minor=100, qty_units=800_000)


# -- who may do what; pages ---------------------------------------------------------------


def test_only_the_owner_sees_and_acts_on_an_order(world: World) -> None:
    sell = world.placed(world.ann, side="sell", price_minor=250, qty_units=100)
    path = f"/v1/orders/{sell['id']}"
    before = world.everything()
    anonymous = [
        world.client.post("/v1/orders", json={}, headers={"Idempotency-Key": "a"}),
        world.client.delete(path),
        world.client.patch(path, json={"qty_units": 10}, headers={"Idempotency-Key": "a"}),
        world.client.get(path),
        world.client.get("/v1/orders"),
        world.client.get("/v1/trades"),
    ]
    for answer in anonymous:
        problem(answer, 401, "credentials_missing")
    problem(world.client.get(path, headers=world.bob), 403, "not_your_order")
    problem(world.cancel(world.bob, sell["id"]), 403, "not_your_order")
    problem(world.amend(world.bob, sell["id"], {"qty_units": 10}), 403, "not_your_order")
    assert world.get("/v1/orders", world.bob)["items"] == []
    # Every write takes an Idempotency-Key (a cancel may do without, but not a bad one).
    body = {
        "asset_id": ASSET,
        "currency": "EUR",
        "side": "buy",
        "price_minor": 100,
        "qty_units": 10,
    }
    problem(
        world.client.post("/v1/orders", json=body, headers=world.bob),
        400,
        "idempotency_key_missing",
    )
    problem(
        world.client.patch(path, json={"qty_units": 10}, headers=world.ann),
        400,
        "idempotency_key_missing",
    )
    problem(world.cancel(world.ann, sell["id"], key="not a key!"), 400, "idempotency_key_malformed")
    # There is no owner field: a member orders for itself only.
    problem(
        world.order(world.bob, side="buy", price_minor=100, qty_units=10, owner=ANN.address),
        422,
        "request_invalid",
    )
    assert world.everything() == before
    assert world.get(path, world.ann)["status"] == "open"


def test_orders_and_trades_page_newest_first(world: World) -> None:
    ids = [
        world.placed(world.ann, side="sell", price_minor=300 + 5 * i, qty_units=10)["id"]
        for i in range(5)
    ]
    first = world.get("/v1/orders", world.ann, limit=2)
    assert [o["id"] for o in first["items"]] == ids[::-1][:2]
    assert "trades" not in first["items"][0] and first["next_cursor"] == str(ids[3])
    second = world.get("/v1/orders", world.ann, limit=2, cursor=first["next_cursor"])
    third = world.get("/v1/orders", world.ann, limit=2, cursor=second["next_cursor"])
    assert [o["id"] for o in second["items"] + third["items"]] == ids[::-1][2:]
    assert third["next_cursor"] is None
    world.ok(world.cancel(world.ann, ids[0]))
    for price in (305, 310, 315):  # fills ids[1], ids[2], ids[3], each at its own price
        world.placed(world.bob, side="buy", price_minor=price, qty_units=10)
    by_status = {
        s: [o["id"] for o in world.get("/v1/orders", world.ann, status=s)["items"]]
        for s in ("open", "filled", "cancelled", "expired")
    }
    assert by_status == {
        "open": [ids[4]],
        "filled": [ids[3], ids[2], ids[1]],
        "cancelled": [ids[0]],
        "expired": [],
    }
    trades = world.get("/v1/trades", world.ann, limit=2)
    rest = world.get("/v1/trades", world.ann, limit=2, cursor=trades["next_cursor"])
    assert [t["order_id"] for t in trades["items"] + rest["items"]] == [ids[3], ids[2], ids[1]]
    assert {t["side"] for t in trades["items"] + rest["items"]} == {"sell"}
    assert [o["status"] for o in world.get("/v1/orders", world.bob)["items"]] == ["filled"] * 3
    for params in ({"status": "resting"}, {"limit": 0}, {"limit": 201}, {"cursor": 0}):
        problem(
            world.client.get("/v1/orders", headers=world.ann, params=params), 422, "request_invalid"
        )
