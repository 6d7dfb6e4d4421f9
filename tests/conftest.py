"""Fixtures: a migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests read ``DPN_TEST_POSTGRES_URL``; when it is unset they try the local
server at 127.0.0.1:5432 and skip, saying so, when nothing answers. Each test gets
its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.journal.write import Ledger

LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str | None:
    """The PostgreSQL URL to test against, or None when there is none to reach."""
    url = os.environ.get("DPN_TEST_POSTGRES_URL")
    if url:
        return url
    try:
        probe = create_engine(LOCAL_POSTGRES_URL, connect_args={"connect_timeout": 2})
        with probe.connect():
            pass
        probe.dispose()
    except Exception:
        return None
    return LOCAL_POSTGRES_URL


_PG_URL = postgres_url()
_PG_SKIP = (
    "PostgreSQL not reachable: DPN_TEST_POSTGRES_URL is unset and nothing answers at 127.0.0.1:5432"
)


def pytest_report_header() -> str:
    return f"postgres: {_PG_URL or 'none (PostgreSQL tests skip)'}"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'dpn.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@contextmanager
def _postgres_schema() -> Iterator[Engine]:
    """An engine on a fresh, migrated schema of its own, dropped afterwards."""
    if _PG_URL is None:
        pytest.skip(_PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(_PG_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    with _postgres_schema() as engine:
        yield engine


@pytest.fixture
def other_postgres_engine() -> Iterator[Engine]:
    """A second PostgreSQL schema, with a journal of its own, in the same database."""
    with _postgres_schema() as engine:
        yield engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A freshly migrated database, once per backend."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


class StepClock:
    """A clock that moves one second per reading: deterministic recorded times."""

    def __init__(self, start: datetime = datetime(2027, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    return Ledger(engine, clock=StepClock())
