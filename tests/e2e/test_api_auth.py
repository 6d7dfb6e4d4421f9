"""Sign-In with Ethereum, tokens, API keys and the platform rules, through the real app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.problems import PROBLEM_JSON
from api.settings import Settings

from .signin import MovableClock, Wallet, sign_in, wallet

ANN, BOB = wallet(1), wallet(2)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def client(sqlite_engine: Engine, clock: MovableClock) -> Iterator[TestClient]:
    app = create_app(Settings(admins=frozenset({ANN.address})), engine=sqlite_engine, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


def _challenge(client: TestClient, who: Wallet, key: str = "c1") -> str:
    answer = client.post(
        "/v1/auth/challenge", json={"address": who.address}, headers={"Idempotency-Key": key}
    )
    assert answer.status_code == 201, answer.text
    message: str = answer.json()["message"]
    return message


def _token(client: TestClient, message: str, signature: str, key: str = "t1") -> tuple[int, dict]:  # type: ignore[type-arg]
    answer = client.post(
        "/v1/auth/token",
        json={"message": message, "signature": signature},
        headers={"Idempotency-Key": key},
    )
    return answer.status_code, answer.json()


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert client.get("/openapi.json").json()["info"]["title"] == "DPN Ledger"


def test_sign_in_registers_the_member_and_returns_it(client: TestClient) -> None:
    message = _challenge(client, BOB)
    assert f"{BOB.address}\n" in message and "Chain ID: 1" in message and "Nonce: " in message
    status, token = _token(client, message, BOB.sign(message))
    assert status == 201 and token["token_type"] == "bearer"
    me = client.get("/v1/members/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json()["address"] == BOB.address and me.json()["roles"] == ["member"]


@pytest.mark.parametrize("failure", ["wrong_signer", "reused", "expired", "altered", "garbage"])
def test_a_failed_sign_in_is_401_with_a_code(
    client: TestClient, clock: MovableClock, failure: str
) -> None:
    message = _challenge(client, BOB)
    signature = BOB.sign(message)
    expected = {
        "wrong_signer": "siwe_wrong_signer",
        "reused": "siwe_nonce_used",
        "expired": "siwe_expired",
        "altered": "siwe_message_altered",
        "garbage": "siwe_signature_malformed",
    }[failure]
    if failure == "wrong_signer":
        signature = ANN.sign(message)
    elif failure == "reused":
        assert _token(client, message, signature, key="first")[0] == 201
    elif failure == "expired":
        clock.advance(301)
    elif failure == "altered":
        message = message.replace("Chain ID: 1", "Chain ID: 5")
        signature = BOB.sign(message)
    else:
        signature = "0x1234"
    answer = client.post(
        "/v1/auth/token",
        json={"message": message, "signature": signature},
        headers={"Idempotency-Key": "second"},
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["code"] == expected


def test_api_keys_are_shown_once_scoped_and_revocable(client: TestClient) -> None:
    ann = sign_in(client, ANN)
    made = client.post(
        "/v1/api-keys",
        json={"name": "robot", "roles": ["admin"]},
        headers=ann | {"Idempotency-Key": "k1"},
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("dpn_key_")
    # The same request again: the same answer, the same key.
    again = client.post(
        "/v1/api-keys",
        json={"name": "robot", "roles": ["admin"]},
        headers=ann | {"Idempotency-Key": "k1"},
    )
    assert again.json() == made.json()
    listed = client.get("/v1/api-keys", headers=ann).json()
    assert listed["next_cursor"] is None
    assert [k["name"] for k in listed["items"]] == ["robot"]
    assert all(k["key"] is None for k in listed["items"])
    robot = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/verify", headers=robot).status_code == 200
    member_only = client.post(
        "/v1/api-keys", json={"name": "reader"}, headers=ann | {"Idempotency-Key": "k2"}
    ).json()["key"]
    assert (
        client.get("/v1/verify", headers={"Authorization": f"Bearer {member_only}"}).json()["code"]
        == "not_admin"
    )
    assert client.delete(f"/v1/api-keys/{made.json()['id']}", headers=ann).status_code == 204
    assert client.get("/v1/verify", headers=robot).json()["code"] == "api_key_invalid"
    bob = sign_in(client, BOB)
    forbidden = client.post(
        "/v1/api-keys",
        json={"name": "x", "roles": ["admin"]},
        headers=bob | {"Idempotency-Key": "k3"},
    )
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "role_not_held"


def test_idempotency_key_rules(client: TestClient) -> None:
    message = _challenge(client, ANN)
    signed = {"message": message, "signature": ANN.sign(message)}
    missing = client.post("/v1/auth/token", json=signed)
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_missing"
    first = client.post("/v1/auth/token", json=signed, headers={"Idempotency-Key": "same"})
    second = client.post("/v1/auth/token", json=signed, headers={"Idempotency-Key": "same"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    malformed = client.post(
        "/v1/auth/challenge",
        json={"address": ANN.address.lower()},
        headers={"Idempotency-Key": "same"},
    )
    assert malformed.status_code == 422 and malformed.json()["code"] == "address_checksum"


def test_a_challenge_needs_no_idempotency_key_and_a_retry_is_harmless(client: TestClient) -> None:
    # A challenge records nothing: without a key, or with the same key twice, each
    # answer is a message of its own, and either one signs in.
    bare = client.post("/v1/auth/challenge", json={"address": ANN.address})
    keyed = client.post(
        "/v1/auth/challenge", json={"address": ANN.address}, headers={"Idempotency-Key": "c"}
    )
    again = client.post(
        "/v1/auth/challenge", json={"address": ANN.address}, headers={"Idempotency-Key": "c"}
    )
    assert (bare.status_code, keyed.status_code, again.status_code) == (201, 201, 201)
    assert len({bare.json()["nonce"], keyed.json()["nonce"], again.json()["nonce"]}) == 3
    bob = client.post("/v1/auth/challenge", json={"address": BOB.address})
    assert f"\n{BOB.address}\n" in bob.json()["message"]
    for n, answer in enumerate((bare, again)):
        message = answer.json()["message"]
        assert _token(client, message, ANN.sign(message), key=f"t{n}")[0] == 201


def test_token_keys_are_scoped_to_the_wallet_signing_in(client: TestClient) -> None:
    ann_message, bob_message = _challenge(client, ANN, "c1"), _challenge(client, BOB, "c1")
    ann_signed = (ann_message, ANN.sign(ann_message))
    # Two wallets signing in with the same key: both succeed, with tokens of their own.
    ann_status, ann_token = _token(client, *ann_signed, key="login")
    bob_status, bob_token = _token(client, bob_message, BOB.sign(bob_message), key="login")
    assert (ann_status, bob_status) == (201, 201)
    assert ann_token["access_token"] != bob_token["access_token"]
    me = client.get(
        "/v1/members/me", headers={"Authorization": f"Bearer {bob_token['access_token']}"}
    )
    assert me.json()["address"] == BOB.address
    # The same request again: the same answer.
    assert _token(client, *ann_signed, key="login") == (201, ann_token)
    # The same wallet, the same key, another sign-in: refused before the new nonce is
    # spent, so that message still signs in under a fresh key.
    fresh = _challenge(client, ANN, "c2")
    status, refused = _token(client, fresh, ANN.sign(fresh), key="login")
    assert (status, refused["code"]) == (409, "idempotency_conflict")
    status, token = _token(client, fresh, ANN.sign(fresh), key="login-2")
    assert status == 201 and token["access_token"] != ann_token["access_token"]


def test_a_stranger_cannot_take_a_wallets_sign_in_key(client: TestClient) -> None:
    # A stranger fetches a real message for Ann and fails to sign in with it under the
    # key Ann will use: the failure is not remembered, so Ann's own sign-in goes through.
    message = _challenge(client, ANN, "c1")
    status, failed = _token(client, message, BOB.sign(message), key="ann-login")
    assert (status, failed["code"]) == (401, "siwe_wrong_signer")
    status, token = _token(client, message, ANN.sign(message), key="ann-login")
    assert status == 201 and token["token_type"] == "bearer"
    # A message naming no wallet is refused as a sign-in failure.
    status, garbage = _token(client, "not a sign-in message", ANN.sign("x"), key="g")
    assert (status, garbage["code"], garbage["part"]) == (401, "siwe_message_malformed", "address")


def test_errors_are_problem_json_with_request_ids(client: TestClient) -> None:
    answer = client.get("/v1/assets/1M8GDM9AYKP042788", headers={"X-Request-ID": "abc-123"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.headers["x-request-id"] == "abc-123"
    body = answer.json()
    assert body["code"] == "asset_id_check_digit" and body["request_id"] == "abc-123"
    assert client.get("/v1/nowhere").json()["code"] == "route_not_found"
    assert client.get("/v1/members/me").json()["code"] == "credentials_missing"
    bad = client.post(
        "/v1/auth/challenge",
        json={"address": ANN.address, "extra": 1},
        headers={"Idempotency-Key": "x"},
    )
    assert bad.status_code == 422 and bad.json()["code"] == "request_invalid"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_request_bodies_have_a_limit(client: TestClient) -> None:
    huge = client.post(
        "/v1/auth/challenge",
        content=b"{" + b" " * 300_000 + b"}",
        headers={"Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["code"] == "body_too_large"


def test_a_granted_role_counts_at_once_though_principals_are_remembered(
    client: TestClient,
) -> None:
    ann, bob = sign_in(client, ANN), sign_in(client, BOB)  # ANN is an admin
    assert client.get("/v1/verify", headers=bob).json()["code"] == "not_admin"  # remembered
    granted = client.post(
        "/v1/roles",
        json={"address": BOB.address, "role": "admin"},
        headers=ann | {"Idempotency-Key": "grant"},
    )
    assert granted.status_code == 204, granted.text
    assert client.get("/v1/verify", headers=bob).status_code == 200


def test_an_operator_granted_on_an_asset_counts_at_once_too(client: TestClient) -> None:
    # Any route that changes roles makes the worker forget, not only /v1/roles.
    ann, bob = sign_in(client, ANN), sign_in(client, BOB)  # ANN is an admin
    asset = "1M8GDM9AXKP042788"
    body = {"id": asset, "make": "m", "model": "m", "serial": "s", "location": "l",
            "jurisdiction": "NL"}  # fmt: skip
    made = client.post("/v1/assets", json=body, headers=ann | {"Idempotency-Key": "a"})
    assert made.status_code == 201, made.text
    document = {"title": "Deed", "sha256": "ab" * 32}
    path = f"/v1/assets/{asset}/documents"
    refused = client.post(path, json=document, headers=bob | {"Idempotency-Key": "d1"})
    assert refused.json()["code"] == "not_operator"  # and BOB's principal is remembered
    granted = client.post(
        f"/v1/assets/{asset}/operators",
        json={"address": BOB.address},
        headers=ann | {"Idempotency-Key": "op"},
    )
    assert granted.status_code == 204, granted.text
    added = client.post(path, json=document, headers=bob | {"Idempotency-Key": "d2"})
    assert added.status_code == 201, added.text
