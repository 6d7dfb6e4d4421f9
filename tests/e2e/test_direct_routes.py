"""The direct routes (``api.direct``: ``POST /v1/orders`` and ``POST /v1/transfers``),
through the real app on both databases: the usual request skips FastAPI's dependency
solving and is answered byte for byte as FastAPI answers the same model; every other
request (a body that does not validate, another content type, a missing or bad
credential or key, a refusal of the engine or the ledger) gets exactly the answer
FastAPI's own handler gives, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.utils import solve_dependencies
from sqlalchemy import Engine

import api.app
from ledger.core.json_input import parse_json_input

from .test_api_orders import ANN, ASSET, BOB, World, orders_world

ORDER = {"asset_id": ASSET, "currency": "EUR", "side": "sell", "price_minor": "250"}
JSON = "application/json"


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    with orders_world(engine) as found:
        yield found


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI solved dependencies for, from now on."""
    paths: list[str] = []
    solve = solve_dependencies

    async def counted(*, request: Any, **kwargs: Any) -> Any:
        paths.append(f"{request.method} {request.url.path}")
        return await solve(request=request, **kwargs)

    monkeypatch.setattr("fastapi.routing.solve_dependencies", counted)
    return paths


def _never() -> None:  # pragma: no cover - only ever overridden, never called
    """A dependency no route takes: overriding it sends every request the general way."""


@contextmanager
def _general(world: World) -> Iterator[None]:
    app = cast(FastAPI, world.client.app)
    app.dependency_overrides[_never] = _never
    try:
        yield
    finally:
        app.dependency_overrides.clear()


def test_an_order_skips_dependency_solving_and_reads_back_as_fastapi_serves_it(
    world: World, solved: list[str]
) -> None:
    placed = world.order(world.ann, "direct-1", side="sell", price_minor="250", qty_units="100")
    assert placed.status_code == 201, placed.text
    assert placed.headers["content-type"] == JSON
    assert solved == []  # the direct way
    order_id = placed.json()["id"]
    read = world.client.get(f"/v1/orders/{order_id}", headers=world.ann)
    assert solved == [f"GET /v1/orders/{order_id}"]  # FastAPI's way, the same model
    assert read.status_code == 200 and read.headers["content-type"] == JSON
    assert placed.content == read.content
    # The same key and body again: the same order, still without dependency solving.
    again = world.order(world.ann, "direct-1", side="sell", price_minor="250", qty_units="100")
    assert (again.status_code, again.json()["id"]) == (201, order_id)
    assert solved == [f"GET /v1/orders/{order_id}"]


def test_a_transfer_skips_dependency_solving(world: World, solved: list[str]) -> None:
    body = {"recipient": BOB.address, "instrument": f"units:{ASSET}", "amount": "7"}
    sent = world.post("/v1/transfers", world.ann, body, "direct-t")
    assert sent.status_code == 201, sent.text
    assert solved == []
    assert world.units(world.bob)[0] == 400_007


def _ask(world: World, path: str, headers: dict[str, str], content: bytes) -> httpx.Response:
    answer: httpx.Response = world.client.post(path, content=content, headers=headers)
    return answer


def _answer(response: httpx.Response) -> tuple[int, str, Any]:
    found = response.json()
    if isinstance(found, dict):
        found.pop("request_id", None)
    return response.status_code, response.headers["content-type"], found


def _cases(world: World) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(what, path, headers, body) of requests that must each be refused."""
    ann = world.ann | {"Content-Type": JSON}
    keyed = ann | {"Idempotency-Key": "refused"}

    def body(**fields: Any) -> bytes:
        return json.dumps(ORDER | {"qty_units": "100"} | fields).encode()

    transfer = {"recipient": BOB.address, "instrument": "ccy:EUR", "amount": "1"}
    return [
        ("a side that is none", "/v1/orders", keyed, body(side="hold")),
        ("a fractional quantity", "/v1/orders", keyed, body(qty_units=1.5)),
        ("an owner named", "/v1/orders", keyed, body(owner=BOB.address)),
        ("an array", "/v1/orders", keyed, b"[]"),
        ("null", "/v1/orders", keyed, b"null"),
        ("an empty body", "/v1/orders", keyed, b""),
        ("text, not JSON", "/v1/orders", keyed | {"Content-Type": "text/plain"}, body()),
        (
            "a form",
            "/v1/orders",
            keyed | {"Content-Type": "application/x-www-form-urlencoded"},
            b"a=1",
        ),
        ("no key", "/v1/orders", ann, body()),
        ("a malformed key", "/v1/orders", ann | {"Idempotency-Key": "a b"}, body()),
        ("no credential", "/v1/orders", {"Content-Type": JSON, "Idempotency-Key": "k"}, body()),
        ("a bad token", "/v1/orders", keyed | {"Authorization": "Bearer nope"}, body()),
        ("basic auth", "/v1/orders", keyed | {"Authorization": "Basic eDp5"}, body()),
        (
            "an empty API key",
            "/v1/orders",
            {"Content-Type": JSON, "Idempotency-Key": "k", "X-API-Key": ""},
            body(),
        ),
        (
            "a bad body without a credential",
            "/v1/orders",
            {"Content-Type": JSON, "Idempotency-Key": "k"},
            body(side="hold"),
        ),
        ("a price off the tick", "/v1/orders", keyed, body(price_minor="251")),
        ("a quantity off the lot", "/v1/orders", keyed, body(qty_units="15")),
        ("more units than held", "/v1/orders", keyed, body(qty_units="9000000")),
        ("an unknown asset", "/v1/orders", keyed, body(asset_id="1M8GDM9A0KP0512X0")),
        (
            "a +json type",
            "/v1/orders",
            keyed | {"Content-Type": "application/x+json"},
            body(price_minor="251"),
        ),
        (
            "a negative amount",
            "/v1/transfers",
            keyed,
            json.dumps(transfer | {"amount": "-1"}).encode(),
        ),
        (
            "no such instrument",
            "/v1/transfers",
            keyed,
            json.dumps(transfer | {"instrument": "gold"}).encode(),
        ),
        (
            "more money than held",
            "/v1/transfers",
            keyed,
            json.dumps(transfer | {"amount": "99999999"}).encode(),
        ),
        ("a transfer without a key", "/v1/transfers", ann, json.dumps(transfer).encode()),
        (
            "to nobody",
            "/v1/transfers",
            keyed,
            json.dumps(transfer | {"recipient": ANN.address[:-1]}).encode(),
        ),
    ]


def test_every_refusal_is_the_one_fastapi_gives_and_changes_nothing(world: World) -> None:
    before = world.everything()
    for what, path, headers, content in _cases(world):
        direct = _ask(world, path, headers, content)
        assert 400 <= direct.status_code < 500, (what, direct.text)
        with _general(world):
            general = _ask(world, path, headers, content)
        assert _answer(direct) == _answer(general), what
    assert world.everything() == before


def test_a_direct_route_takes_the_body_the_guard_parsed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard's value, altered on its way: the order shows it, not the bytes sent.
    def parsed_larger(document: bytes) -> Any:
        return parse_json_input(document) | {"qty_units": "20"}

    monkeypatch.setattr(api.app, "parse_json_input", parsed_larger)
    placed = world.order(world.ann, "once", side="sell", price_minor="250", qty_units="10")
    assert placed.status_code == 201, placed.text
    assert placed.json()["qty_units"] == "20"
