"""The network directory through the real app: members sign in with their wallets,
register and update their nodes; anyone searches them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.db.engine import read_connection
from ledger.journal.reads import journal_page
from ledger.journal.verify import verify

from .signin import MovableClock, sign_in, wallet

ANN, BOB = wallet(21), wallet(22)
WOODSHOP: dict[str, Any] = {
    "name": "Birch Street Woodshop",
    "place": "Tartu, Estonia",
    "latitude_e6": 58_378_025,
    "longitude_e6": 26_728_493,
    "functions": ["joinery", "cnc-milling"],
    "flows": [{"flow": "lumber", "direction": "in"}, {"flow": "furniture", "direction": "out"}],
}
FARM: dict[str, Any] = {
    "name": "Hill Farm",
    "place": "Valga County, Estonia",
    "functions": ["tomato-growing"],
    "flows": [{"flow": "lumber", "direction": "out"}, {"flow": "tomato", "direction": "out"}],
}
MILL: dict[str, Any] = {
    "name": "River Mill",
    "place": "Riga, Latvia",
    "functions": ["sawing"],
    "flows": [{"flow": "logs", "direction": "in"}, {"flow": "lumber", "direction": "out"}],
}


class Directory:
    """A client with two signed-in members, and the database behind it."""

    def __init__(self, client: TestClient, engine: Engine) -> None:
        self.client = client
        self.engine = engine
        self.ann = sign_in(client, ANN)
        self.bob = sign_in(client, BOB)

    def post(self, who: dict[str, str] | None, body: Any, key: str) -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/v1/nodes", json=body, headers=_with_key(who, key)
        )
        return response

    def put(self, node_id: int, who: dict[str, str] | None, body: Any, key: str) -> httpx.Response:
        response: httpx.Response = self.client.put(
            f"/v1/nodes/{node_id}", json=body, headers=_with_key(who, key)
        )
        return response

    def kinds(self) -> list[str]:
        with read_connection(self.engine) as conn:
            return [e.kind for e in reversed(journal_page(conn, limit=200))]


def _with_key(who: dict[str, str] | None, key: str) -> dict[str, str]:
    return (who or {}) | {"Idempotency-Key": key}


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code, response.text


@pytest.fixture
def directory(sqlite_engine: Engine) -> Iterator[Directory]:
    app = create_app(Settings(), engine=sqlite_engine, clock=MovableClock())
    with TestClient(app) as client:
        yield Directory(client, sqlite_engine)


def test_members_register_nodes_and_anyone_finds_them(directory: Directory) -> None:
    made = directory.post(directory.ann, WOODSHOP, "n1")
    assert made.status_code == 201, made.text
    shop = made.json()
    assert made.headers["location"] == f"/v1/nodes/{shop['id']}"
    assert shop["owner"] == ANN.address and shop["registered_seq"] == shop["id"]
    assert shop["functions"] == ["cnc-milling", "joinery"]
    assert shop["flows"] == [
        {"flow": "furniture", "direction": "out"},
        {"flow": "lumber", "direction": "in"},
    ]
    farm = directory.post(directory.bob, FARM, "n1").json()  # Bob's own key space
    mill = directory.post(directory.ann, MILL, "n2").json()
    assert farm["owner"] == BOB.address and farm["latitude_e6"] is None

    anonymous = directory.client
    assert anonymous.get(f"/v1/nodes/{shop['id']}").json() == shop

    def found(**query: Any) -> list[int]:
        page = anonymous.get("/v1/nodes", params=query)
        assert page.status_code == 200, page.text
        return [n["id"] for n in page.json()["items"]]

    assert found() == [shop["id"], farm["id"], mill["id"]]
    assert found(function="cnc-milling") == [shop["id"]]
    assert found(flow="lumber") == [shop["id"], farm["id"], mill["id"]]
    assert found(flow="lumber", direction="in") == [shop["id"]]
    assert found(flow="lumber", direction="out") == [farm["id"], mill["id"]]
    assert found(place="ESTONIA") == [shop["id"], farm["id"]]
    assert found(place="estonia", flow="tomato") == [farm["id"]]

    # Pages of one, following the cursor to the end.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"flow": "lumber", "limit": 1}
        page = anonymous.get("/v1/nodes", params=params | ({"cursor": cursor} if cursor else {}))
        seen += [n["id"] for n in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [shop["id"], farm["id"], mill["id"]]
    assert directory.kinds().count("node.register") == 3


def test_only_the_owner_replaces_a_node(directory: Directory) -> None:
    shop = directory.post(directory.ann, WOODSHOP, "n1").json()
    new = MILL | {"latitude_e6": 56_949_649, "longitude_e6": 24_105_186}
    replaced = directory.put(shop["id"], directory.ann, new, "u1")
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["id"], body["owner"], body["name"]) == (shop["id"], ANN.address, "River Mill")
    assert body["functions"] == ["sawing"] and body["latitude_e6"] == 56_949_649
    assert directory.client.get(f"/v1/nodes/{shop['id']}").json() == body
    assert directory.client.get("/v1/nodes", params={"function": "joinery"}).json()["items"] == []

    before = directory.kinds()
    _problem(directory.put(shop["id"], directory.bob, WOODSHOP, "u1"), 403, "not_owner")
    _problem(directory.put(shop["id"], None, WOODSHOP, "u2"), 401, "credentials_missing")
    _problem(directory.post(None, WOODSHOP, "n9"), 401, "credentials_missing")
    _problem(directory.put(shop["id"] + 100, directory.ann, WOODSHOP, "u3"), 404, "unknown_node")
    assert directory.client.get(f"/v1/nodes/{shop['id']}").json() == body
    assert directory.kinds() == before
    assert before[-2:] == ["node.register", "node.update"]


# All in one app and database: the checks come before any write, and a fresh app with
# two sign-ins per case would cost more than the rest of the file.
BAD_NODES: list[tuple[dict[str, Any], str]] = [
    ({"functions": ["CNC Milling"]}, "slug_malformed"),
    ({"flows": [{"flow": "lumber", "direction": "up"}]}, "flow_direction"),
    ({"flows": [{"flow": "lumber", "direction": "sideways"}]}, "request_invalid"),
    ({"latitude_e6": 90_000_001}, "coordinate_range"),
    ({"longitude_e6": None}, "coordinates_incomplete"),
    ({"functions": ["joinery", "joinery"]}, "duplicate_function"),
    ({"name": " "}, "field_empty"),
    ({"name": "n" * 129}, "request_invalid"),
    ({"functions": [f"f{i}" for i in range(33)]}, "request_invalid"),
    ({"latitude_e6": 1.5}, "request_invalid"),
    ({"owner": BOB.address}, "request_invalid"),  # unknown fields are refused
]


def test_bad_nodes_are_problems(directory: Directory) -> None:
    shop = directory.post(directory.ann, WOODSHOP, "n1").json()
    before = directory.kinds()
    for change, code in BAD_NODES:
        _problem(directory.post(directory.ann, WOODSHOP | change, "n2"), 422, code)
        _problem(directory.put(shop["id"], directory.ann, WOODSHOP | change, "u1"), 422, code)
    assert directory.kinds() == before


BAD_SEARCHES: list[tuple[dict[str, Any], str]] = [
    ({"direction": "in"}, "direction_without_flow"),
    ({"flow": "lumber", "direction": "up"}, "flow_direction"),
    ({"function": "Joinery"}, "slug_malformed"),
    ({"limit": 201}, "request_invalid"),
    ({"cursor": "abc"}, "request_invalid"),
    ({"place": "p" * 129}, "request_invalid"),
]


def test_bad_searches_are_problems(directory: Directory) -> None:
    for query, code in BAD_SEARCHES:
        _problem(directory.client.get("/v1/nodes", params=query), 422, code)


def test_writes_need_an_idempotency_key(directory: Directory) -> None:
    response = directory.client.post("/v1/nodes", json=WOODSHOP, headers=directory.ann)
    _problem(response, 400, "idempotency_key_missing")
    _problem(directory.client.get("/v1/nodes/0"), 422, "request_invalid")
    _problem(directory.client.get("/v1/nodes/99"), 404, "unknown_node")


def test_a_repeated_key_gives_the_same_answer(directory: Directory) -> None:
    first = directory.post(directory.ann, WOODSHOP, "n1")
    again = directory.post(directory.ann, WOODSHOP, "n1")
    assert (again.status_code, again.json()) == (201, first.json())
    _problem(directory.post(directory.ann, FARM, "n1"), 409, "idempotency_conflict")
    node_id = first.json()["id"]
    put = directory.put(node_id, directory.ann, MILL, "u1")
    assert put.status_code == 200
    directory.put(node_id, directory.ann, FARM, "u2")
    repeated = directory.put(node_id, directory.ann, MILL, "u1")
    assert (repeated.status_code, repeated.json()) == (200, put.json())
    _problem(directory.put(node_id, directory.ann, WOODSHOP, "u1"), 409, "idempotency_conflict")
    # Another member's identical key is their own.
    assert directory.post(directory.bob, WOODSHOP, "n1").json()["owner"] == BOB.address
    kinds = [k for k in directory.kinds() if k.startswith("node.")]
    assert kinds == ["node.register", "node.update", "node.update", "node.register"]
    with read_connection(directory.engine) as conn:
        assert verify(conn).ok
