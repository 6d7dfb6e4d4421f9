"""Platform rules through the real app: request ids on every log line and response,
body limits, Idempotency-Keys claimed before the action, bounded lists and who may
register assets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings

from .signin import MovableClock, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB = wallet(41), wallet(42), wallet(43), wallet(44)
ASSET, OTHER_ASSET = "1M8GDM9AXKP042788", "11111111111111111"
PNG = b"\x89PNG "


def _app(engine: Engine, **settings: Any) -> FastAPI:
    return create_app(
        Settings(admins=frozenset({ADMIN.address}), **settings), engine=engine, clock=MovableClock()
    )


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with TestClient(_app(sqlite_engine)) as test_client:
        yield test_client


def _post(client: TestClient, path: str, who: dict[str, str], key: str, body: Any) -> Any:
    return client.post(path, json=body, headers=who | {"Idempotency-Key": key})


def _asset(id_: str = ASSET) -> dict[str, Any]:
    return {
        "id": id_,
        "make": "Richel",
        "model": "Greenhouse",
        "serial": "R-1",
        "location": "Wageningen",
        "jurisdiction": "NL",
    }


# -- who registers assets ------------------------------------------------------------------


def test_only_an_admin_or_an_operator_of_any_asset_registers_assets(client: TestClient) -> None:
    admin, operator, ann = sign_in(client, ADMIN), sign_in(client, OPERATOR), sign_in(client, ANN)
    assert _post(client, "/v1/assets", admin, "a1", _asset()).status_code == 201
    granted = _post(
        client,
        "/v1/roles",
        admin,
        "g1",
        {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET},
    )
    assert granted.status_code == 204, granted.text
    # An operator of one asset acts on that asset only: registering another is refused.
    refused = _post(client, "/v1/assets", operator, "a2", _asset(OTHER_ASSET))
    assert refused.status_code == 403 and refused.json()["code"] == "not_operator"
    member = _post(client, "/v1/assets", ann, "a3", _asset(OTHER_ASSET))
    assert member.status_code == 403 and member.json()["code"] == "not_operator"
    # An operator of any asset (the role granted without one) registers.
    granted = _post(client, "/v1/roles", admin, "g2", {"address": ANN.address, "role": "operator"})
    assert granted.status_code == 204, granted.text
    made = _post(client, "/v1/assets", ann, "a4", _asset(OTHER_ASSET))
    assert made.status_code == 201, made.text
