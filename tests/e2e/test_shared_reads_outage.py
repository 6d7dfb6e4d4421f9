"""Reads shared between requests (``GET /v1/holdings/me`` now) meet a database outage as
every route does: each waiting request answers 503 ``database_unavailable``, and the
next reads, once the database is back, answer again."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade

from .signin import sign_in
from .test_database_outage import database_down, own_database
from .test_server import ADMIN, ANN

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_shared_holdings_reads_answer_503_in_an_outage_and_recover() -> None:
    with own_database() as (url, name, admin_engine):
        engine = make_engine(url)
        try:
            upgrade(engine)
            app = create_app(Settings(admins=frozenset({ADMIN.address})), engine=engine)
            with TestClient(app) as client:
                callers = [sign_in(client, ADMIN), sign_in(client, ANN)]
                # Read once: the callers' principals are remembered, so during the
                # outage the requests pass the credential check and meet it in the read.
                for who in callers:
                    assert client.get("/v1/holdings/me", headers=who).json() == []

                async def together() -> list[httpx.Response]:
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                        return list(
                            await asyncio.gather(
                                *(c.get("/v1/holdings/me", headers=who) for who in callers * 4)
                            )
                        )

                with database_down(admin_engine, name):
                    during = asyncio.run(together())
                assert {
                    (r.status_code, r.headers["content-type"], r.json()["code"]) for r in during
                } == {(503, "application/problem+json", "database_unavailable")}
                assert [r.status_code for r in asyncio.run(together())] == [200] * 8
        finally:
            engine.dispose()
