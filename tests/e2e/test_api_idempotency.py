"""A stored answer that carries a secret (a new API key), through the real app: sealed in
the database, given again to the same request, and refused, never returned, when its
row was altered or when the retry brings another credential."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.app import create_app
from api.problems import PROBLEM_JSON
from api.settings import Settings
from ledger.db.schema import HttpIdempotency, table

from .signin import sign_in, wallet

ANN = wallet(71)
records = table(HttpIdempotency)
ROBOT = {"name": "robot"}


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), engine=sqlite_engine)) as test_client:
        yield test_client


def test_an_altered_stored_api_key_is_refused_not_returned(
    client: TestClient, sqlite_engine: Engine
) -> None:
    ann = sign_in(client, ANN)
    made = client.post("/v1/api-keys", json=ROBOT, headers=ann | {"Idempotency-Key": "k1"})
    assert made.status_code == 201, made.text
    secret = made.json()["key"]
    with sqlite_engine.begin() as conn:
        body = conn.execute(select(records.c.body).where(records.c.key == "k1")).scalar_one()
        assert secret not in body  # sealed: a copy of the database cannot read it
        mark, key_id, nonce, sealed = body.split(":")
        flipped = bytearray(base64.b64decode(sealed))
        flipped[0] ^= 0x80
        altered = ":".join([mark, key_id, nonce, base64.b64encode(bytes(flipped)).decode()])
        conn.execute(update(records).where(records.c.key == "k1").values(body=altered))

    again = client.post("/v1/api-keys", json=ROBOT, headers=ann | {"Idempotency-Key": "k1"})
    assert again.status_code == 500 and again.headers["content-type"] == PROBLEM_JSON
    assert again.json()["code"] == "idempotency_answer_tampered"
    assert secret not in again.text


def test_a_retry_with_another_credential_is_told_the_answer_is_unreadable(
    client: TestClient,
) -> None:
    first, second = sign_in(client, ANN), sign_in(client, ANN)
    made = client.post("/v1/api-keys", json=ROBOT, headers=first | {"Idempotency-Key": "k1"})
    assert made.status_code == 201, made.text
    again = client.post("/v1/api-keys", json=ROBOT, headers=second | {"Idempotency-Key": "k1"})
    assert again.status_code == 409 and again.json()["code"] == "idempotency_answer_unreadable"
    same = client.post("/v1/api-keys", json=ROBOT, headers=first | {"Idempotency-Key": "k1"})
    assert same.status_code == 201 and same.json() == made.json()
