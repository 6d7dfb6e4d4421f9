"""An asset's tick and lot over HTTP: who may set them, when, and that orders obey them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import Settings

from .signin import MovableClock, greenhouse, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB = wallet(31), wallet(32), wallet(33), wallet(34)
ASSET = "1M8GDM9AXKP042788"


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        Settings(admins=frozenset({ADMIN.address})), engine=sqlite_engine, clock=MovableClock()
    )
    with TestClient(app) as test_client:
        yield test_client


class World:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.admin = sign_in(client, ADMIN)
        self.operator = sign_in(client, OPERATOR)
        self.ann = sign_in(client, ANN)
        self.bob = sign_in(client, BOB)
        self.keys = 0

    def send(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        self.keys += 1
        headers = who | {"Idempotency-Key": f"k{self.keys}"}
        return self.client.request(method, path, json=body, headers=headers)

    def head(self) -> int:
        return int(self.client.get("/v1/digest").json()["seq"])


@pytest.fixture
def world(client: TestClient) -> World:
    w = World(client)
    made = w.send("POST", "/v1/assets", w.admin, greenhouse(ASSET) | {"total_units": 1_000_000})
    assert made.status_code == 201, made.text
    granted = w.send(
        "POST",
        "/v1/roles",
        w.admin,
        {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET},
    )
    assert granted.status_code == 204, granted.text
    issued = w.send(
        "POST",
        f"/v1/assets/{ASSET}/issue",
        w.operator,
        {"allocations": [[ANN.address, "600000"], [BOB.address, "400000"]]},
    )
    assert issued.status_code == 201, issued.text
    return w


def test_terms_start_at_one_and_one(world: World) -> None:
    got = world.client.get(f"/v1/markets/{ASSET}/terms")
    assert got.status_code == 200
    assert got.json() == {
        "asset_id": ASSET, "tick_size_minor": "1", "lot_size_units": "1", "lease_period": "quarter"
    }  # fmt: skip


def test_only_the_operator_or_an_admin_sets_terms(world: World) -> None:
    body = {"tick_size_minor": "5", "lot_size_units": 100}
    before = world.head()
    refused = world.send("PUT", f"/v1/markets/{ASSET}/terms", world.ann, body)
    assert refused.status_code == 403 and refused.json()["code"] == "not_operator"
    anonymous = world.client.put(
        f"/v1/markets/{ASSET}/terms", json=body, headers={"Idempotency-Key": "anon"}
    )
    assert anonymous.status_code == 401
    assert world.head() == before
    done = world.send("PUT", f"/v1/markets/{ASSET}/terms", world.operator, body)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "asset_id": ASSET, "tick_size_minor": "5", "lot_size_units": "100",
        "lease_period": "quarter",
    }  # fmt: skip
    assert world.client.get(f"/v1/markets/{ASSET}/terms").json() == done.json()
    by_admin = world.send(
        "PUT",
        f"/v1/markets/{ASSET}/terms",
        world.admin,
        {"tick_size_minor": 2, "lot_size_units": 1},
    )
    assert by_admin.status_code == 200


def test_a_repeated_request_is_answered_once_and_another_body_conflicts(world: World) -> None:
    path = f"/v1/markets/{ASSET}/terms"
    headers = world.operator | {"Idempotency-Key": "terms-1"}
    first = world.client.put(
        path, json={"tick_size_minor": 5, "lot_size_units": 10}, headers=headers
    )
    head = world.head()
    again = world.client.put(
        path, json={"tick_size_minor": 5, "lot_size_units": 10}, headers=headers
    )
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert world.head() == head
    other = world.client.put(
        path, json={"tick_size_minor": 6, "lot_size_units": 10}, headers=headers
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"tick_size_minor": 0, "lot_size_units": 1}, "tick_size_out_of_range"),
        ({"tick_size_minor": 1, "lot_size_units": "0"}, "lot_size_out_of_range"),
        ({"tick_size_minor": str(2**63), "lot_size_units": 1}, "tick_size_out_of_range"),
        ({"tick_size_minor": 1, "lot_size_units": 10**12 + 1}, "lot_size_out_of_range"),
    ],
)
def test_terms_out_of_range_are_refused(world: World, body: dict[str, Any], code: str) -> None:
    before = world.head()
    answer = world.send("PUT", f"/v1/markets/{ASSET}/terms", world.operator, body)
    assert answer.status_code == 422 and answer.json()["code"] == code, answer.text
    assert world.head() == before


def test_malformed_terms_are_refused(world: World) -> None:
    for body in ({"tick_size_minor": 1.5, "lot_size_units": 1}, {"tick_size_minor": 1}, {}):
        answer = world.send("PUT", f"/v1/markets/{ASSET}/terms", world.operator, body)
        assert answer.status_code == 422, answer.text


def test_terms_change_only_while_no_order_rests_and_orders_obey_them(
    world: World, sqlite_engine: Engine
) -> None:
    path = f"/v1/markets/{ASSET}/terms"
    assert (
        world.send(
            "PUT", path, world.operator, {"tick_size_minor": 5, "lot_size_units": 100}
        ).status_code
        == 200
    )
    market = world.client.app.state.market  # type: ignore[attr-defined]
    from market.book import Side
    from market.engine import CancelRequest, OrderRequest, OrderType

    def sell(price: int, qty: int, key: str) -> Any:
        return market.submit(
            OrderRequest(
                owner=ANN.address,
                asset_id=ASSET,
                currency="USD",
                side=Side.SELL,
                type=OrderType.LIMIT,
                key=key,
                actor=ANN.address,
                price_minor=price,
                qty_units=qty,
            )
        )

    with pytest.raises(Exception, match="price_off_tick"):
        sell(12, 100, "s1").result()
    with pytest.raises(Exception, match="qty_off_lot"):
        sell(10, 150, "s2").result()
    resting = sell(10, 200, "s3").result()
    assert resting.order.status == "open"
    busy = world.send("PUT", path, world.operator, {"tick_size_minor": 1, "lot_size_units": 1})
    assert busy.status_code == 422 and busy.json()["code"] == "market_busy"
    market.cancel(CancelRequest(owner=ANN.address, order_id=resting.order.id, key="c", actor="t"))
    assert (
        world.send(
            "PUT", path, world.operator, {"tick_size_minor": 1, "lot_size_units": 1}
        ).status_code
        == 200
    )
    assert sell(12, 150, "s4").result().order.status == "open"
    # The order log reopens the book with the new terms: a rebuild gives the same book.
    hashes = market.state_hashes()
    market.forget()
    assert market.state_hashes() == hashes
    with sqlite_engine.connect() as conn:
        bodies = [r[0] for r in conn.execute(text("SELECT body FROM market_commands ORDER BY seq"))]
    assert bodies[0].startswith('[["B",5,100]') and '[["B",1,1]]' in bodies
