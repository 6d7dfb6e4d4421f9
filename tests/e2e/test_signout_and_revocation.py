"""Signing out, revoking a role, API keys that expire, and challenges that store
nothing, through the real app on both databases. Principals are remembered for a minute
here, so a refusal right after a change can only come from the change being announced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.principals import ChangeListener
from api.settings import Settings
from ledger.db.engine import read_connection
from ledger.db.schema import Base

from .signin import MovableClock, greenhouse, post, sign_in, wallet

ADMIN, ANN, BOB = wallet(91), wallet(92), wallet(93)
ASSET = "1M8GDM9AXKP042788"
REMEMBERED_S = 60.0
HEARD_WITHIN_S = 5.0  # far below REMEMBERED_S: only the announcement can explain it
CHALLENGES = 1_000


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def _settings() -> Settings:
    return Settings(admins=frozenset({ADMIN.address}), principals_fresh_s=REMEMBERED_S)


@pytest.fixture
def client(engine: Engine, clock: MovableClock) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(), engine=engine, clock=clock)) as test_client:
        yield test_client


def _rows(engine: Engine) -> dict[str, int]:
    with read_connection(engine) as conn:
        return {
            name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for name, t in Base.metadata.tables.items()
        }


def _me(client: TestClient, who: dict[str, str]) -> Any:
    return client.get("/v1/members/me", headers=who)


# -- challenges ---------------------------------------------------------------------------


def test_a_thousand_challenges_store_nothing(client: TestClient, engine: Engine) -> None:
    before = _rows(engine)
    nonces = set()
    for n in range(CHALLENGES):
        who = ANN if n % 2 else BOB
        answer = client.post("/v1/auth/challenge", json={"address": who.address})
        assert answer.status_code == 201, answer.text
        nonces.add(answer.json()["nonce"])
    assert len(nonces) == CHALLENGES
    assert _rows(engine) == before


def test_a_signature_without_0x_signs_in_and_a_second_use_is_refused(
    client: TestClient,
) -> None:
    message = client.post("/v1/auth/challenge", json={"address": ANN.address}).json()["message"]
    bare = ANN.sign(message).removeprefix("0x")  # what eth_account 0.14's .hex() gives
    signed = {"message": message, "signature": bare}
    first = client.post("/v1/auth/token", json=signed, headers={"Idempotency-Key": "t1"})
    assert first.status_code == 201, first.text
    second = client.post("/v1/auth/token", json=signed, headers={"Idempotency-Key": "t2"})
    assert (second.status_code, second.json()["code"]) == (401, "siwe_nonce_used")


@pytest.mark.parametrize(
    ("change", "code", "part"),
    [
        (lambda m, s: (m, s[:-2]), "siwe_signature_malformed", None),
        (lambda m, s: (m.replace("Nonce: ", "Nonce: x"), s), "siwe_message_malformed", "nonce"),
        (
            lambda m, s: (m.replace("Issued At: ", "Issued At: x"), s),
            "siwe_message_malformed",
            "issued_at",
        ),
        (
            lambda m, s: (m.replace("Expiration Time: ", "Expiration Time: x"), s),
            "siwe_message_malformed",
            "expiration_time",
        ),
        (lambda m, s: (m.replace("URI: http", "URI: ftp"), s), "siwe_message_altered", "uri"),
    ],
    ids=["signature", "nonce", "issued_at", "expiration_time", "uri"],
)
def test_a_malformed_sign_in_names_its_part(
    client: TestClient,
    change: Callable[[str, str], tuple[str, str]],
    code: str,
    part: str | None,
) -> None:
    message = client.post("/v1/auth/challenge", json={"address": ANN.address}).json()["message"]
    message, signature = change(message, ANN.sign(message))
    answer = client.post(
        "/v1/auth/token",
        json={"message": message, "signature": signature},
        headers={"Idempotency-Key": "t"},
    )
    assert answer.status_code == 401
    assert (answer.json()["code"], answer.json().get("part")) == (code, part)


# -- signing out --------------------------------------------------------------------------


def test_signing_out_revokes_that_token_at_once_and_only_it(client: TestClient) -> None:
    first, second = sign_in(client, ANN), sign_in(client, ANN)
    assert _me(client, first).status_code == 200  # remembered from now on
    assert client.delete("/v1/auth/token", headers=first).status_code == 204
    refused = _me(client, first)
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    again = client.delete("/v1/auth/token", headers=first)
    assert (again.status_code, again.json()["code"]) == (401, "token_invalid")
    assert _me(client, second).status_code == 200  # another sign-in of the same wallet


def test_an_api_key_does_not_sign_out(client: TestClient) -> None:
    ann = sign_in(client, ANN)
    made = post(client, "/v1/api-keys", ann, {"name": "robot"}, "k").json()
    robot = {"Authorization": f"Bearer {made['key']}"}
    refused = client.delete("/v1/auth/token", headers=robot)
    assert (refused.status_code, refused.json()["code"]) == (422, "sign_out_api_key")
    assert _me(client, robot).status_code == 200
    assert client.delete("/v1/auth/token").json()["code"] == "credentials_missing"


# -- revoking a role ----------------------------------------------------------------------


def _operator_world(client: TestClient) -> tuple[dict[str, str], dict[str, str]]:
    admin, bob = sign_in(client, ADMIN), sign_in(client, BOB)
    assert post(client, "/v1/assets", admin, greenhouse(ASSET), "a").status_code == 201
    role = {"address": BOB.address, "role": "operator", "asset_id": ASSET}
    assert post(client, "/v1/roles", admin, role, "g").status_code == 204
    return admin, bob


def _add_document(client: TestClient, who: dict[str, str], key: str) -> Any:
    document = {"title": f"Deed {key}", "sha256": "ab" * 32}
    return post(client, f"/v1/assets/{ASSET}/documents", who, document, key)


def _journal_kinds(client: TestClient) -> list[str]:
    return [e["kind"] for e in client.get("/v1/journal", params={"limit": 200}).json()["items"]]


def test_an_admin_revokes_an_operator_who_is_refused_at_once(client: TestClient) -> None:
    admin, bob = _operator_world(client)
    assert _add_document(client, bob, "d1").status_code == 201  # remembered as operator
    role = {"address": BOB.address, "role": "operator", "asset_id": ASSET}
    assert post(client, "/v1/roles/revoke", admin, role, "r").status_code == 204
    refused = _add_document(client, bob, "d2")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_operator")
    # The same request again: the same answer, and one entry.
    assert post(client, "/v1/roles/revoke", admin, role, "r").status_code == 204
    assert _journal_kinds(client).count("role.revoke") == 1
    revoked = client.get("/v1/journal", params={"kind": "role.revoke"}).json()["items"][0]
    assert revoked["payload"] == role and revoked["actor"] == ADMIN.address
    assert client.get("/v1/verify", headers=admin).json()["ok"]


def test_only_an_admin_revokes_and_only_what_is_granted(client: TestClient) -> None:
    admin, bob = _operator_world(client)
    role = {"address": BOB.address, "role": "operator", "asset_id": ASSET}
    refused = post(client, "/v1/roles/revoke", bob, role, "r1")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_admin")
    head = client.get("/v1/digest").json()
    not_held = post(
        client, "/v1/roles/revoke", admin, role | {"role": "admin", "asset_id": None}, "r2"
    )
    assert (not_held.status_code, not_held.json()["code"]) == (404, "role_not_held")
    by_settings = post(
        client, "/v1/roles/revoke", admin, {"address": ADMIN.address, "role": "admin"}, "r3"
    )
    assert (by_settings.status_code, by_settings.json()["code"]) == (422, "role_not_granted")
    assert client.get("/v1/digest").json() == head  # nothing journaled
    assert _add_document(client, bob, "d").status_code == 201  # still the operator


# -- API keys that expire -----------------------------------------------------------------


def test_an_api_key_is_refused_once_its_expiry_passes(
    client: TestClient, clock: MovableClock
) -> None:
    ann = sign_in(client, ANN)
    past = (clock.now - timedelta(seconds=1)).isoformat()
    refused = post(client, "/v1/api-keys", ann, {"name": "old", "expires_at": past}, "k0")
    assert (refused.status_code, refused.json()["code"]) == (422, "api_key_expiry_past")
    too_far = (clock.now + timedelta(days=367)).isoformat()
    refused = post(client, "/v1/api-keys", ann, {"name": "far", "expires_at": too_far}, "k1")
    assert (refused.status_code, refused.json()["code"]) == (422, "api_key_expiry_too_far")
    expiry = clock.now + timedelta(minutes=10)
    body = {"name": "robot", "expires_at": expiry.isoformat()}
    made = post(client, "/v1/api-keys", ann, body, "k2")
    assert made.status_code == 201, made.text
    assert post(client, "/v1/api-keys", ann, body, "k2").json() == made.json()  # a replay
    robot = {"Authorization": f"Bearer {made.json()['key']}"}
    assert _me(client, robot).status_code == 200  # remembered, for a minute at most
    listed = client.get("/v1/api-keys", headers=ann).json()["items"]
    assert [k["expires_at"] for k in listed] == [made.json()["expires_at"]]
    assert made.json()["expires_at"].startswith(expiry.strftime("%Y-%m-%dT%H:%M:%S"))
    clock.advance(10 * 60)
    expired = _me(client, robot)
    assert (expired.status_code, expired.json()["code"]) == (401, "api_key_expired")


# -- several workers (PostgreSQL) ---------------------------------------------------------


@pytest.fixture
def workers(postgres_engine: Engine) -> Iterator[tuple[TestClient, TestClient]]:
    first = create_app(_settings(), engine=postgres_engine)
    second = create_app(_settings(), engine=postgres_engine)
    with TestClient(first) as one, TestClient(second) as two:
        for app in (first, second):
            listener: ChangeListener = app.state.principal_listener
            assert listener.wait_listening(HEARD_WITHIN_S)
        yield one, two


def _until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + HEARD_WITHIN_S
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.postgres
def test_signing_out_and_a_revoke_count_on_every_worker(
    workers: tuple[TestClient, TestClient],
) -> None:
    one, two = workers
    admin, bob = _operator_world(one)
    ann = sign_in(one, ANN)
    assert _me(two, ann).status_code == 200  # remembered by the second worker
    assert _add_document(two, bob, "d1").status_code == 201
    assert one.delete("/v1/auth/token", headers=ann).status_code == 204
    role = {"address": BOB.address, "role": "operator", "asset_id": ASSET}
    assert post(one, "/v1/roles/revoke", admin, role, "r").status_code == 204
    assert _until(lambda: _me(two, ann).status_code == 401)
    keys = iter(range(1_000))
    assert _until(lambda: _add_document(two, bob, f"d{next(keys) + 2}").status_code == 403)
