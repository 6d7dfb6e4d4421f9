"""Platform rules through the real app: request ids on every log line and response,
body limits, Idempotency-Keys claimed before the action, bounded lists and who may
register assets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.problems import PROBLEM_JSON
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


# -- request ids ---------------------------------------------------------------------------


def test_an_unexpected_error_is_logged_and_answered_with_the_request_id(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(sqlite_engine)

    @app.get("/test-only/boom")
    def boom() -> None:  # a sync route: it runs in a worker thread
        logging.getLogger("dpn.test").info("about to fail")
        raise RuntimeError("boom")

    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="dpn"):
        answer = client.get("/test-only/boom", headers={"X-Request-ID": "req-500"})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.headers["x-request-id"] == "req-500"
    assert answer.json()["code"] == "internal_error"
    assert answer.json()["request_id"] == "req-500"
    lines = [(r.name, r.getMessage(), getattr(r, "request_id", None)) for r in caplog.records]
    assert ("dpn.test", "about to fail", "req-500") in lines
    assert ("dpn.api", "unexpected error", "req-500") in lines
    logged = next(r for r in caplog.records if r.getMessage() == "unexpected error")
    assert logged.exc_info is not None and "boom" in str(logged.exc_info[1])


def test_a_refused_body_carries_the_request_id(client: TestClient) -> None:
    declared = client.post(
        "/v1/auth/challenge",
        content=b"{" + b" " * 300_000 + b"}",
        headers={
            "Idempotency-Key": "big",
            "Content-Type": "application/json",
            "X-Request-ID": "req-413",
        },
    )
    assert declared.status_code == 413 and declared.json()["code"] == "body_too_large"
    assert declared.headers["x-request-id"] == "req-413"
    assert declared.json()["request_id"] == "req-413"

    # Without a Content-Length the body is counted as it arrives: still 413, not the
    # 400 FastAPI would make of a body it could not read.
    def chunks() -> Iterator[bytes]:
        yield b'{"address": "'
        for _ in range(10):
            yield b"0" * 30_000

    streamed = client.post(
        "/v1/auth/challenge",
        content=chunks(),
        headers={
            "Idempotency-Key": "big-2",
            "Content-Type": "application/json",
            "X-Request-ID": "req-413-2",
        },
    )
    assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large"
    assert streamed.headers["x-request-id"] == "req-413-2"


def test_a_photo_streamed_past_the_photo_limit_is_refused(sqlite_engine: Engine) -> None:
    with TestClient(_app(sqlite_engine, photo_bytes_max=1_000)) as client:
        bob = sign_in(client, BOB)

        def chunks() -> Iterator[bytes]:
            yield PNG
            yield b"x" * 996  # 1,001 bytes in all

        refused = client.post(
            "/v1/photos",
            content=chunks(),
            headers=bob | {"Idempotency-Key": "p", "Content-Type": "image/png"},
        )
        assert refused.status_code == 413 and refused.json()["code"] == "photo_too_large"
        assert "x-request-id" in refused.headers
        kept = client.post(
            "/v1/photos",
            content=PNG + b"x" * 995,
            headers=bob | {"Idempotency-Key": "p2", "Content-Type": "image/png"},
        )
        assert kept.status_code == 201 and kept.json()["size_bytes"] == 1_000


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
