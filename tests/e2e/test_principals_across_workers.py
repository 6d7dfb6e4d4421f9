"""Two workers over one PostgreSQL journal, each remembering principals: a key revoked
or a role granted through one counts at once on the other (LISTEN/NOTIFY), though each
may remember a principal for a minute here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.principals import ChangeListener, PrincipalCache
from api.settings import Settings

from .signin import sign_in, wallet

pytestmark = pytest.mark.postgres

ANN, BOB = wallet(81), wallet(82)
REMEMBERED_S = 60.0
HEARD_WITHIN_S = 5.0  # far below REMEMBERED_S: only the announcement can explain it


@pytest.fixture
def workers(postgres_engine: Engine) -> Iterator[tuple[TestClient, TestClient]]:
    settings = Settings(admins=frozenset({ANN.address}), principals_fresh_s=REMEMBERED_S)
    first, second = (
        create_app(settings, engine=postgres_engine),
        create_app(settings, engine=postgres_engine),
    )
    with TestClient(first) as one, TestClient(second) as two:
        for app in (first, second):
            listener: ChangeListener = app.state.principal_listener
            assert listener.wait_listening(HEARD_WITHIN_S)
        yield one, two


def _until(check: object) -> bool:
    deadline = time.monotonic() + HEARD_WITHIN_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_key_revoked_on_one_worker_is_refused_by_the_other(
    workers: tuple[TestClient, TestClient],
) -> None:
    one, two = workers
    ann = sign_in(one, ANN)
    made = one.post(
        "/v1/api-keys", json={"name": "robot"}, headers=ann | {"Idempotency-Key": "k"}
    ).json()
    robot = {"Authorization": f"Bearer {made['key']}"}
    assert two.get("/v1/members/me", headers=robot).status_code == 200  # now remembered
    assert one.delete(f"/v1/api-keys/{made['id']}", headers=ann).status_code == 204
    assert _until(lambda: two.get("/v1/members/me", headers=robot).status_code == 401)


def test_a_role_granted_on_one_worker_counts_on_the_other(
    workers: tuple[TestClient, TestClient],
) -> None:
    one, two = workers
    ann, bob = sign_in(one, ANN), sign_in(one, BOB)
    assert two.get("/v1/verify", headers=bob).json()["code"] == "not_admin"  # remembered
    granted = one.post(
        "/v1/roles",
        json={"address": BOB.address, "role": "admin"},
        headers=ann | {"Idempotency-Key": "g"},
    )
    assert granted.status_code == 204, granted.text
    assert _until(lambda: two.get("/v1/verify", headers=bob).status_code == 200)


def test_a_listener_vouches_while_connected_and_stops_once_cut_off(
    workers: tuple[TestClient, TestClient], postgres_engine: Engine
) -> None:
    app = cast(FastAPI, workers[0].app)
    listener: ChangeListener = app.state.principal_listener
    cache: PrincipalCache = app.state.principals
    assert _until(lambda: cache.vouched)
    cut = listener.backend_pid
    with postgres_engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": cut})
    assert _until(lambda: not cache.vouched)  # back to principals_fresh_s
    assert _until(lambda: cache.vouched and listener.backend_pid != cut)  # reconnected
