"""A database outage under a running ``dpn serve``: every kind of route answers 503
``database_unavailable`` as problem+json, never a 500, and the server recovers by itself
once the database is back.

The server runs over a PostgreSQL database of its own. The outage is real: the database
stops taking connections (``ALLOW_CONNECTIONS false``) and the server's open ones are
terminated, so a request meets either a pooled connection that died or a refused new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import _PG_SKIP, postgres_url

from .signin import post, sign_in
from .test_server import ADMIN, ANN, BOB, HTTP_TIMEOUT_S, migrate, start, stop, wait_until_ready

PHOTO = b"\x89PNG\r\n\x1a\n the greenhouse during the outage"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@contextlib.contextmanager
def own_database() -> Iterator[tuple[str, str, Engine]]:
    """(URL, name) of a new database, dropped afterwards, and an engine on the test
    server's own database to administer it from."""
    base = postgres_url()
    if base is None:
        pytest.skip(_PG_SKIP)
    name = f"dpn_outage_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False), name, admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextlib.contextmanager
def database_down(admin: Engine, name: str) -> Iterator[None]:
    """The database refuses new connections and the server's pooled ones are cut,
    until the block ends."""
    with admin.connect() as conn:
        conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        # All but the principal change listener's: losing it makes a worker forget the
        # principals it remembers, and the test wants some remembered (see below).
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
                " AND query NOT LIKE 'LISTEN %'"
            ),
            {"name": name},
        )
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))


Request = Callable[[httpx.Client], httpx.Response]


def test_an_outage_is_503_on_every_kind_of_route_and_the_server_recovers(
    tmp_path: Path,
) -> None:
    with own_database() as (url, name, admin_engine):
        migrate(url)
        server = start(url, tmp_path / "server.log")
        try:
            wait_until_ready(server)
            with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT_S) as client:
                admin = sign_in(client, ADMIN)
                # Credentials not presented before the outage: no worker has their
                # principal in memory, so checking them needs the database.
                ann = sign_in(client, ANN)
                robot = post(client, "/v1/api-keys", admin, {"name": "robot"}, "robot")
                assert robot.status_code == 201, robot.text
                api_key = {"X-API-Key": robot.json()["key"]}
                cash = {
                    "member": ADMIN.address,
                    "currency": "EUR",
                    "amount": "100",
                    "reference": "r",
                }
                assert post(client, "/v1/deposits", admin, cash, "cash").status_code == 201
                # A signed challenge (asking for one needs no database once the server
                # has read its challenge key), redeemed during the outage.
                message = client.post("/v1/auth/challenge", json={"address": BOB.address})
                signed = {"message": message.json()["message"]}
                signed["signature"] = BOB.sign(signed["message"])

                transfer = {"recipient": ANN.address, "instrument": "ccy:EUR", "amount": "5"}
                # Requests with a credential seen just before come first: its principal
                # is still in the worker's memory (for ``FRESH_S``), so they pass the
                # credential check and meet the outage in the route itself.
                requests: dict[str, Request] = {
                    "journal write (group commit)": lambda c: post(
                        c, "/v1/transfers", admin, transfer, "t1"
                    ),
                    "journal write": lambda c: post(
                        c, "/v1/deposits", admin, cash | {"reference": "r2"}, "cash-2"
                    ),
                    "stored answer: API key": lambda c: post(
                        c, "/v1/api-keys", admin, {"name": "second"}, "k2"
                    ),
                    "photo upload": lambda c: c.post(
                        "/v1/photos",
                        content=PHOTO,
                        headers=admin | {"Idempotency-Key": "p1", "Content-Type": "image/png"},
                    ),
                    "read, a token seen": lambda c: c.get("/v1/api-keys", headers=admin),
                    "stored answer: sign-in": lambda c: c.post(
                        "/v1/auth/token", json=signed, headers={"Idempotency-Key": "bob"}
                    ),
                    "anonymous read": lambda c: c.get("/v1/currencies"),
                    "anonymous journal read": lambda c: c.get("/v1/journal"),
                    "read, a token not yet seen": lambda c: c.get("/v1/holdings/me", headers=ann),
                    "read, an API key not yet seen": lambda c: c.get(
                        "/v1/members/me", headers=api_key
                    ),
                }

                assert client.get("/v1/members/me", headers=admin).status_code == 200
                with database_down(admin_engine, name):
                    during = {what: ask(client) for what, ask in requests.items()}
                    ready = client.get("/readyz")
                failures = {
                    what: (r.status_code, r.headers.get("content-type"), r.text[:300])
                    for what, r in during.items()
                    if r.status_code != 503
                    or r.headers.get("content-type") != "application/problem+json"
                    or r.json()["code"] != "database_unavailable"
                }
                assert failures == {}, server.output()
                assert ready.status_code == 503
                assert ready.json() == {"status": "unavailable", "reason": "database_unavailable"}
                assert server.process.poll() is None, server.output()

                # Back: the same requests, under the same keys, now do what they ask.
                wait_until_ready(server)
                after = {what: ask(client).status_code for what, ask in requests.items()}
                assert after == {
                    what: 201 if what.startswith(("journal", "stored", "photo")) else 200
                    for what in requests
                }, server.output()
                stored = client.get(f"/v1/photos/{hashlib.sha256(PHOTO).hexdigest()}")
                assert stored.status_code == 200 and stored.content == PHOTO
        finally:
            stop(server)
