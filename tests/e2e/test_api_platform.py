"""Platform rules through the real app: request ids on every log line and response,
body limits, Idempotency-Keys claimed before the action, bounded lists and who may
register assets."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

import api.routes.auth as auth_routes
from api.app import create_app
from api.problems import PROBLEM_JSON
from api.settings import Settings
from ledger.access.api_keys import API_KEYS_LIVE_MAX, create_api_key
from ledger.db.schema import ApiKey, table

from .signin import MovableClock, greenhouse, post, sign_in, wallet

ADMIN, OPERATOR, ANN, BOB = wallet(41), wallet(42), wallet(43), wallet(44)
ASSET, OTHER_ASSET = "1M8GDM9AXKP042788", "11111111111111111"
PNG = b"\x89PNG\r\n\x1a\n"  # the signature every PNG starts with


def _app(engine: Engine, **settings: Any) -> FastAPI:
    return create_app(
        Settings(admins=frozenset({ADMIN.address}), **settings), engine=engine, clock=MovableClock()
    )


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with TestClient(_app(sqlite_engine)) as test_client:
        yield test_client


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
            yield b"x" * 993  # 1,001 bytes in all

        refused = client.post(
            "/v1/photos",
            content=chunks(),
            headers=bob | {"Idempotency-Key": "p", "Content-Type": "image/png"},
        )
        assert refused.status_code == 413 and refused.json()["code"] == "photo_too_large"
        assert "x-request-id" in refused.headers
        kept = client.post(
            "/v1/photos",
            content=PNG + b"x" * 992,
            headers=bob | {"Idempotency-Key": "p2", "Content-Type": "image/png"},
        )
        assert kept.status_code == 201 and kept.json()["size_bytes"] == 1_000


# -- Idempotency-Keys claimed before the action --------------------------------------------


def test_a_key_reused_for_another_photo_stores_nothing(client: TestClient) -> None:
    bob = sign_in(client, BOB)
    first, other = PNG + b"first", PNG + b"other"

    def upload(data: bytes, who: dict[str, str] = bob) -> Any:
        headers = who | {"Idempotency-Key": "photo", "Content-Type": "image/png"}
        return client.post("/v1/photos", content=data, headers=headers)

    kept = upload(first)
    assert kept.status_code == 201
    assert upload(first).json() == kept.json()
    refused = upload(other)
    assert refused.status_code == 409 and refused.json()["code"] == "idempotency_conflict"
    unknown = client.get(f"/v1/photos/{hashlib.sha256(other).hexdigest()}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_photo"
    # Keys are the caller's own: another member's "photo" is a request of its own.
    ann = sign_in(client, ANN)
    assert upload(other, ann).status_code == 201


def test_a_failed_action_leaves_its_key_free(client: TestClient) -> None:
    bob = sign_in(client, BOB)
    headers = bob | {"Idempotency-Key": "again", "Content-Type": "image/gif"}
    wrong = client.post("/v1/photos", content=b"GIF89a", headers=headers)
    assert wrong.status_code == 422 and wrong.json()["code"] == "photo_type"
    headers = bob | {"Idempotency-Key": "again", "Content-Type": "image/png"}
    assert client.post("/v1/photos", content=PNG, headers=headers).status_code == 201


def test_concurrent_twins_make_one_api_key(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    made = create_api_key
    entered = threading.Event()

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        time.sleep(0.5)  # the twin arrives meanwhile
        return made(*args, **kwargs)

    monkeypatch.setattr(auth_routes, "create_api_key", slow_create)
    app = create_app(Settings(), engine=engine)  # the system clock: requests in threads
    with TestClient(app) as client:
        ann = sign_in(client, ANN)

        def create() -> Any:
            return post(client, "/v1/api-keys", ann, key="twin", body={"name": "robot"})

        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(create)
            assert entered.wait(timeout=10)
            second = pool.submit(create)
            answers = [first.result(timeout=30), second.result(timeout=30)]
        assert [a.status_code for a in answers] == [201, 201]
        assert answers[0].json() == answers[1].json()
        listed = client.get("/v1/api-keys", headers=ann).json()["items"]
        assert [k["id"] for k in listed] == [answers[0].json()["id"]]
    keys = table(ApiKey)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(keys)).scalar_one() == 1


# -- bounded lists -------------------------------------------------------------------------


def test_api_keys_are_capped_and_listed_in_pages(client: TestClient) -> None:
    ann = sign_in(client, ANN)
    ids = []
    for n in range(API_KEYS_LIVE_MAX):
        made = post(client, "/v1/api-keys", ann, key=f"k{n}", body={"name": f"robot {n}"})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    over = post(client, "/v1/api-keys", ann, key="over", body={"name": "one too many"})
    assert over.status_code == 422 and over.json()["code"] == "api_keys_too_many"
    assert over.json()["limit"] == API_KEYS_LIVE_MAX
    # A revoked key frees its place, and is still listed.
    assert client.delete(f"/v1/api-keys/{ids[0]}", headers=ann).status_code == 204
    again = post(client, "/v1/api-keys", ann, key="over-2", body={"name": "replacement"})
    assert again.status_code == 201
    ids.append(again.json()["id"])

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 20} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/api-keys", headers=ann, params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [k["id"] for k in seen] == ids  # oldest first, each once
    assert [k["id"] for k in seen if k["revoked_at"] is not None] == [ids[0]]
    assert client.get("/v1/api-keys", headers=ann, params={"limit": 201}).status_code == 422
    unknown = client.get("/v1/api-keys", headers=ann, params={"cursor": "feedfeedfeedfeed"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "cursor_unknown"
    # Another member's keys are none of Ann's: not listed, not a cursor for her.
    bob = sign_in(client, BOB)
    assert client.get("/v1/api-keys", headers=bob).json() == {"items": [], "next_cursor": None}
    theirs = client.get("/v1/api-keys", headers=bob, params={"cursor": ids[1]})
    assert theirs.status_code == 422 and theirs.json()["code"] == "cursor_unknown"


def test_documents_are_listed_in_pages(client: TestClient) -> None:
    admin = sign_in(client, ADMIN)
    docs = [{"title": f"Deed {n}", "sha256": f"{n:02x}" * 32} for n in range(5)]
    made = post(
        client, "/v1/assets", admin, key="asset", body=greenhouse(ASSET) | {"documents": docs[:2]}
    )
    assert made.status_code == 201, made.text
    for n, doc in enumerate(docs[2:]):
        added = post(client, f"/v1/assets/{ASSET}/documents", admin, key=f"d{n}", body=doc)
        assert added.status_code == 201, added.text
    path = f"/v1/assets/{ASSET}/documents"
    first = client.get(path, params={"limit": 3}).json()
    assert first["items"] == docs[:3] and first["next_cursor"] is not None
    rest = client.get(path, params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert rest == {"items": docs[3:], "next_cursor": None}
    assert client.get(path, params={"limit": 201}).status_code == 422
    unknown = client.get(f"/v1/assets/{OTHER_ASSET}/documents")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_asset"


# -- who registers assets ------------------------------------------------------------------


def test_only_an_admin_or_an_operator_of_any_asset_registers_assets(client: TestClient) -> None:
    admin, operator, ann = sign_in(client, ADMIN), sign_in(client, OPERATOR), sign_in(client, ANN)
    assert post(client, "/v1/assets", admin, key="a1", body=greenhouse(ASSET)).status_code == 201
    role = {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET}
    granted = post(client, "/v1/roles", admin, role, "g1")
    assert granted.status_code == 204, granted.text
    # An operator of one asset acts on that asset only: registering another is refused.
    refused = post(client, "/v1/assets", operator, key="a2", body=greenhouse(OTHER_ASSET))
    assert refused.status_code == 403 and refused.json()["code"] == "not_operator"
    member = post(client, "/v1/assets", ann, key="a3", body=greenhouse(OTHER_ASSET))
    assert member.status_code == 403 and member.json()["code"] == "not_operator"
    # An operator of any asset (the role granted without one) registers.
    granted = post(
        client, "/v1/roles", admin, key="g2", body={"address": ANN.address, "role": "operator"}
    )
    assert granted.status_code == 204, granted.text
    made = post(client, "/v1/assets", ann, key="a4", body=greenhouse(OTHER_ASSET))
    assert made.status_code == 201, made.text
