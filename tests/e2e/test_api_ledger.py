"""Assets, photos, sightings, holdings, transfers and the journal through the real app,
and the access matrix: every write route as anonymous, as another member, as the
rightful caller."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.db.engine import read_connection
from ledger.journal.verify import verify
from ledger.registry.photos import PHOTO_BYTES_MAX

from .signin import MovableClock, greenhouse, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB = wallet(11), wallet(12), wallet(13), wallet(14)
ASSET = "1M8GDM9AXKP042788"
PHOTO = b"\x89PNG\r\n\x1a\n a photo of the greenhouse"


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

    def post(
        self,
        path: str,
        who: dict[str, str] | None,
        body: Any = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> Any:
        self.keys += 1
        headers = (who or {}) | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.post(path, json=body, headers=headers, **kwargs)


@pytest.fixture
def world(client: TestClient) -> World:
    w = World(client)
    # Registering takes an admin or an operator of any asset (api.policy); OPERATOR,
    # granted ASSET alone once it is registered, may not (tests/e2e/test_api_platform.py).
    made = w.post(
        "/v1/assets",
        w.admin,
        greenhouse(ASSET) | {"total_units": 1_000_000},
    )
    assert made.status_code == 201, made.text
    assert (
        w.post(
            "/v1/roles",
            w.admin,
            {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET},
        ).status_code
        == 204
    )
    issued = w.post(
        f"/v1/assets/{ASSET}/issue",
        w.operator,
        {"allocations": [[ANN.address, "600000"], [BOB.address, "399000"]]},
    )
    assert issued.status_code == 201, issued.text
    assert (
        w.post(
            "/v1/deposits",
            w.admin,
            {"member": BOB.address, "currency": "EUR", "amount": "500000", "reference": "SEPA 1"},
        ).status_code
        == 201
    )
    return w


def _holdings(w: World, who: dict[str, str], **params: Any) -> dict[str, str]:
    answer = w.client.get("/v1/holdings/me", headers=who, params=params)
    assert answer.status_code == 200, answer.text
    return {h["instrument"]: h["balance"] for h in answer.json()}


def test_transfers_move_units_and_money_and_show_in_holdings(world: World) -> None:
    units = f"units:{ASSET}"
    sale = world.post(
        "/v1/transfers",
        world.ann,
        {"recipient": BOB.address, "instrument": units, "amount": "10000"},
        key="sale-1",
    )
    assert sale.status_code == 201, sale.text
    entry = sale.json()
    assert entry["kind"] == "transfer" and len(entry["hash"]) == 64
    again = world.post(
        "/v1/transfers",
        world.ann,
        {"recipient": BOB.address, "instrument": units, "amount": "10000"},
        key="sale-1",
    )
    assert again.status_code == 201 and again.json() == entry
    other = world.post(
        "/v1/transfers",
        world.ann,
        {"recipient": BOB.address, "instrument": units, "amount": "10001"},
        key="sale-1",
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    pay = world.post(
        "/v1/transfers",
        world.bob,
        {"recipient": ANN.address, "instrument": "ccy:EUR", "amount": "250000"},
    )
    assert pay.status_code == 201
    assert _holdings(world, world.ann) == {units: "590000", "ccy:EUR": "250000"}
    assert _holdings(world, world.ann, as_of_seq=entry["seq"] - 1) == {units: "600000"}
    too_much = world.post(
        "/v1/transfers",
        world.bob,
        {"recipient": ANN.address, "instrument": "ccy:EUR", "amount": "250001"},
    )
    assert too_much.status_code == 422 and too_much.json()["code"] == "insufficient_funds"
    cap = world.client.get(f"/v1/assets/{ASSET}/cap-table").json()
    assert sum(int(h["units"]) for h in cap["holders"]) == 1_000_000


def test_journal_pages_digest_and_verify(world: World) -> None:
    first = world.client.get("/v1/journal", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"] is not None
    rest = world.client.get(
        "/v1/journal", params={"cursor": first["next_cursor"], "limit": 200}
    ).json()
    seqs = [e["seq"] for e in first["items"] + rest["items"]]
    assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1 and rest["next_cursor"] is None
    by_asset = world.client.get("/v1/journal", params={"asset": ASSET}).json()["items"]
    assert [e["kind"] for e in by_asset] == ["asset.issue", "asset.register"]
    head = world.client.get("/v1/digest").json()
    assert head["seq"] == seqs[0] and head["head_hash"] == first["items"][0]["hash"]
    report = world.client.get("/v1/verify", headers=world.admin).json()
    assert report["ok"] and report["head_seq"] == head["seq"]
    assert world.client.get("/v1/journal", params={"limit": 201}).status_code == 422


def test_photos_and_sightings(world: World) -> None:
    upload = world.client.post(
        "/v1/photos",
        content=PHOTO,
        headers=world.bob | {"Idempotency-Key": "p1", "Content-Type": "image/png"},
    )
    assert upload.status_code == 201, upload.text
    digest = upload.json()["sha256"]
    assert digest == hashlib.sha256(PHOTO).hexdigest()
    assert world.client.get(f"/v1/photos/{digest}").content == PHOTO
    seen = world.post(
        f"/v1/assets/{ASSET}/sightings",
        world.bob,
        {"seen_at": "2027-03-01T09:30:00Z", "location": "Bay 3", "photo_sha256": digest},
    )
    assert seen.status_code == 201, seen.text
    history = world.client.get(f"/v1/assets/{ASSET}/sightings").json()["items"]
    assert [(s["reporter"], s["photo_sha256"]) for s in history] == [(BOB.address, digest)]
    wrong_type = world.client.post(
        "/v1/photos",
        content=b"GIF89a",
        headers=world.bob | {"Idempotency-Key": "p2", "Content-Type": "image/gif"},
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["code"] == "photo_type"


def test_photos_have_their_own_larger_body_limit(world: World) -> None:
    photo_max, json_max = PHOTO_BYTES_MAX, Settings().body_bytes_max
    assert photo_max > json_max  # else this test tells the two limits apart no more
    largest = b"\x89PNG\r\n\x1a\n" + bytes(photo_max - 8)
    kept = world.client.post(
        "/v1/photos",
        content=largest,
        headers=world.bob | {"Idempotency-Key": "p3", "Content-Type": "image/png"},
    )
    assert kept.status_code == 201, kept.text[:200]
    assert kept.json()["size_bytes"] == photo_max
    assert world.client.get(f"/v1/photos/{kept.json()['sha256']}").content == largest
    too_big = world.client.post(
        "/v1/photos",
        content=largest + b"x",
        headers=world.bob | {"Idempotency-Key": "p4", "Content-Type": "image/png"},
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "photo_too_large"
    # Any other route keeps the ordinary limit.
    padded = b'{"name": "Bob"' + b" " * json_max + b"}"
    json_body = world.client.patch(
        "/v1/members/me",
        content=padded,
        headers=world.bob | {"Idempotency-Key": "m1", "Content-Type": "application/json"},
    )
    assert json_body.status_code == 413 and json_body.json()["code"] == "body_too_large"


# -- the access matrix --------------------------------------------------------------------

NODE = {
    "name": "Mill",
    "place": "Ede",
    "functions": ["cnc-milling"],
    "flows": [{"flow": "lumber", "direction": "in"}],
}
DOC = {"title": "Deed", "sha256": "ab" * 32}
# (method, path, body, rightful caller, another caller: None when any member may)
WRITES: list[tuple[str, str, Any, str, str | None]] = [
    (
        "POST",
        "/v1/assets",
        {
            "id": "11111111111111111",
            "make": "m",
            "model": "m",
            "serial": "s",
            "location": "l",
            "jurisdiction": "j",
        },
        "admin",
        "bob",
    ),
    ("POST", f"/v1/assets/{ASSET}/operators", {"address": BOB.address}, "admin", "operator"),
    ("POST", f"/v1/assets/{ASSET}/issue", {"allocations": [[BOB.address, "1"]]}, "operator", "bob"),
    ("POST", f"/v1/assets/{ASSET}/documents", DOC, "operator", "ann"),
    (
        "POST",
        "/v1/deposits",
        {"member": ANN.address, "currency": "USD", "amount": "5", "reference": "r"},
        "admin",
        "ann",
    ),
    ("POST", "/v1/roles", {"address": ANN.address, "role": "finance_node"}, "admin", "bob"),
    (
        "POST",
        "/v1/roles/revoke",
        {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET},
        "admin",
        "bob",
    ),
    (
        "POST",
        "/v1/transfers",
        {"recipient": BOB.address, "instrument": f"units:{ASSET}", "amount": "1"},
        "ann",
        None,
    ),
    ("PATCH", "/v1/members/me", {"name": "Ann"}, "ann", None),
    ("POST", "/v1/api-keys", {"name": "bot"}, "ann", None),
    ("DELETE", "/v1/auth/token", None, "ann", None),
    ("POST", "/v1/nodes", NODE, "ann", None),
    ("GET", "/v1/verify", None, "admin", "ann"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "rightful", "other"), WRITES, ids=[f"{m} {p}" for m, p, *_ in WRITES]
)
def test_access_matrix(
    world: World, method: str, path: str, body: Any, rightful: str, other: str | None
) -> None:
    def call(who: dict[str, str] | None, key: str) -> Any:
        headers = (who or {}) | {"Idempotency-Key": key}
        return world.client.request(method, path, json=body, headers=headers)

    anonymous = call(None, "anon")
    assert anonymous.status_code == 401, anonymous.text
    if other is not None:
        refused = call(getattr(world, other), "other")
        assert refused.status_code == 403, refused.text
    allowed = call(getattr(world, rightful), "right")
    assert allowed.status_code in (200, 201, 204), allowed.text


def test_every_write_route_is_in_the_matrix(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    writes = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    covered = {(m, p.replace(ASSET, "{asset_id}")) for m, p, *_ in WRITES}
    # Sign-in is anonymous by design; the rest is covered here or in its own suite.
    exempt = {
        ("POST", "/v1/auth/challenge"),
        ("POST", "/v1/auth/token"),
        ("POST", "/v1/photos"),
        ("POST", "/v1/assets/{asset_id}/sightings"),
        ("DELETE", "/v1/api-keys/{key_id}"),
        ("PUT", "/v1/nodes/{node_id}"),
        # Projects: their own matrix, in tests/e2e/test_api_projects.py.
        ("POST", "/v1/projects"),
        ("POST", "/v1/projects/{project_id}/open"),
        ("POST", "/v1/projects/{project_id}/cancel"),
        ("POST", "/v1/projects/{project_id}/manual-pledges"),
        ("POST", "/v1/projects/{project_id}/finalize"),
        # Orders and trading terms: their own matrices, in tests/e2e/test_api_orders.py
        # and tests/e2e/test_api_market_terms.py.
        ("POST", "/v1/orders"),
        ("PATCH", "/v1/orders/{order_id}"),
        ("DELETE", "/v1/orders/{order_id}"),
        ("PUT", "/v1/markets/{asset_id}/terms"),
        # Lease orders: their own matrix, in tests/e2e/test_api_leases.py.
        ("POST", "/v1/lease-orders"),
        ("PATCH", "/v1/lease-orders/{order_id}"),
        ("DELETE", "/v1/lease-orders/{order_id}"),
        # Outputs: their own matrix, in tests/e2e/test_api_outputs.py.
        ("PUT", "/v1/assets/{asset_id}/output-terms"),
        ("POST", "/v1/assets/{asset_id}/output-kinds"),
        ("POST", "/v1/assets/{asset_id}/periods"),
        ("PUT", "/v1/periods/{period_id}/request"),
        ("POST", "/v1/periods/{period_id}/production"),
        ("POST", "/v1/periods/{period_id}/deliveries"),
        ("POST", "/v1/periods/{period_id}/waivers"),
        ("POST", "/v1/periods/{period_id}/sell-backs"),
        # Votes and work: their own matrix, in tests/e2e/test_api_votes.py.
        ("POST", "/v1/assets/{asset_id}/proposals"),
        ("POST", "/v1/proposals/{proposal_id}/votes"),
        ("POST", "/v1/assets/{asset_id}/work-logs"),
        # Buy-outs: their own matrix, in tests/e2e/test_api_buyouts.py.
        ("POST", "/v1/buyouts"),
        ("POST", "/v1/buyouts/{plan_id}/accept"),
        ("POST", "/v1/buyouts/{plan_id}/cancel"),
    }
    assert writes - covered - exempt == set()


def test_the_journal_stays_sound(world: World, sqlite_engine: Engine) -> None:
    world.post(
        "/v1/transfers",
        world.ann,
        {"recipient": BOB.address, "instrument": f"units:{ASSET}", "amount": "7"},
    )
    with read_connection(sqlite_engine) as conn:
        assert verify(conn).ok
