"""The edges of the HTTP contract, alike on every route: one code per malformed
Idempotency-Key, 401 for any bad credential, a 409 that shows only the caller's own
key, HEAD wherever GET, the OpenAPI document saying what the server does, integers that
are integers, and a recursion limit no import can raise unnoticed."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Engine

import api.schemas.auth
import api.schemas.directory
import api.schemas.ledger
from api.app import RECURSION_LIMIT, create_app
from api.schemas.common import Strict
from api.settings import Settings

from .signin import MovableClock, greenhouse, post, sign_in, wallet

ADMIN, ANN = wallet(61), wallet(62)
ASSET = "1M8GDM9AXKP042788"
SCHEMA_MODULES = (api.schemas.auth, api.schemas.directory, api.schemas.ledger)


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        Settings(admins=frozenset({ADMIN.address})), engine=sqlite_engine, clock=MovableClock()
    )
    with TestClient(app) as test_client:
        yield test_client


def test_every_malformed_idempotency_key_has_one_code(client: TestClient) -> None:
    ann = sign_in(client, ANN)
    for key in ("k" * 101, "k" * 5_000, "spaces here", "slash/", ""):
        answer = client.patch(
            "/v1/members/me", json={"name": "Ann"}, headers=ann | {"Idempotency-Key": key}
        )
        assert answer.status_code == 400, (key[:20], answer.text)
        assert answer.json()["code"] == "idempotency_key_malformed"
    missing = client.patch("/v1/members/me", json={"name": "Ann"}, headers=ann)
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_missing"
    assert missing.json()["detail"].startswith("PATCH /v1/members/me needs")
    assert (
        client.patch(
            "/v1/members/me", json={"name": "Ann"}, headers=ann | {"Idempotency-Key": "k" * 100}
        ).status_code
        == 200
    )


def test_any_bad_credential_is_401(client: TestClient) -> None:
    for header in (
        {"Authorization": "Bearer " + "x" * 300},
        {"Authorization": "Bearer " + "x" * 10_000},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"X-API-Key": "dpn_key_" + "x" * 300},
        {"X-API-Key": "nonsense"},
        {},
    ):
        answer = client.get("/v1/members/me", headers=header)
        assert answer.status_code == 401, (header, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_an_api_key_works_as_x_api_key(client: TestClient) -> None:
    ann = sign_in(client, ANN)
    made = post(client, "/v1/api-keys", ann, {"name": "robot"}, "key1")
    assert made.status_code == 201, made.text
    me = client.get("/v1/members/me", headers={"X-API-Key": made.json()["key"]})
    assert me.status_code == 200 and me.json()["address"] == ANN.address


def test_a_conflict_shows_the_callers_key_only(client: TestClient) -> None:
    admin = sign_in(client, ADMIN)
    assert post(client, "/v1/assets", admin, greenhouse(ASSET), "same").status_code == 201
    other = greenhouse("11111111111111111")
    conflict = post(client, "/v1/assets", admin, other, "same")
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["code"] == "idempotency_conflict"
    assert "http:" not in conflict.text and ADMIN.address.lower() not in conflict.text.lower()


def test_head_is_answered_wherever_get_is(client: TestClient) -> None:
    admin = sign_in(client, ADMIN)
    assert post(client, "/v1/assets", admin, greenhouse(ASSET), "a").status_code == 201
    for path, who in (
        ("/healthz", {}),
        ("/readyz", {}),
        ("/v1/currencies", {}),
        (f"/v1/assets/{ASSET}/cap-table", {}),
        ("/v1/members/me", admin),
        ("/openapi.json", {}),
    ):
        got, head = client.get(path, headers=who), client.head(path, headers=who)
        assert got.status_code == head.status_code == 200, (path, head.text)
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/v1/no-such-thing").status_code == 404
    assert client.head("/v1/transfers").status_code == 405  # POST only


def _operations(client: TestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    schema = client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_openapi_declares_how_to_sign_in_and_which_keys_are_required(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]
    }  # fmt: skip
    assert schemes["apiKey"]["type"] == "apiKey" and schemes["apiKey"]["name"] == "X-API-Key"
    secured = keyed = 0
    for path, method, operation in _operations(client):
        names = {p["name"].lower(): p for p in operation.get("parameters", [])}
        assert "authorization" not in names, (method, path)
        if "idempotency-key" in names:
            keyed += 1
            assert names["idempotency-key"]["required"] is True, (method, path)
        if operation.get("security"):
            secured += 1
            assert {"bearer": []} in operation["security"], (method, path)
    assert secured > 10 and keyed > 10
    members_me = client.get("/openapi.json").json()["paths"]["/v1/members/me"]["get"]
    assert members_me["security"] == [{"bearer": []}, {"apiKey": []}]


def _request_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for module in SCHEMA_MODULES:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Strict) and value is not Strict:
                found.append(value)
    return found


def _takes_integers(annotation: Any) -> bool:
    if annotation is int:
        return True
    return any(_takes_integers(arg) for arg in get_args(annotation))


def test_every_integer_of_every_request_body_is_strict() -> None:
    checked = 0
    for model in _request_models():
        for name, field in model.model_fields.items():
            if not _takes_integers(field.annotation):
                continue
            adapter: TypeAdapter[Any] = TypeAdapter(field.rebuild_annotation())
            for loose in (True, 1.0, "42", 1e3):
                with pytest.raises(ValidationError):
                    adapter.validate_python(loose)
                    pytest.fail(f"{model.__name__}.{name} took {loose!r}")
            adapter.validate_python(1)
            checked += 1
    assert checked >= 3  # total_units, latitude_e6, longitude_e6 at least


def test_a_raised_recursion_limit_is_put_back_and_reported(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert sys.getrecursionlimit() == RECURSION_LIMIT  # creating the app put it back
    sys.setrecursionlimit(100_000)  # as py_ecc does when it is imported
    with caplog.at_level(logging.WARNING, logger="dpn"):
        assert client.get("/healthz").status_code == 200
    assert sys.getrecursionlimit() == RECURSION_LIMIT
    assert any("recursion limit was 100000" in r.getMessage() for r in caplog.records)


def test_readyz_turns_away_while_the_market_engine_does_not_run(client: TestClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["market"]["running"], ready.text
    market = client.app.state.market  # type: ignore[attr-defined]
    market.stop()
    try:
        stopped = client.get("/readyz")
        assert stopped.status_code == 503, stopped.text
        assert stopped.json()["reason"] == "market_unavailable"
        assert stopped.json()["market"]["running"] is False
    finally:
        market.start()
    assert client.get("/readyz").status_code == 200
