"""``ledger.db.engine``'s connections are the one boundary where database exceptions
become ledger errors: a database that cannot be reached is ``Unavailable``
(``database_unavailable``, HTTP 503), a value it refuses is ``InvalidInput``
(``data_invalid``, HTTP 422), through ``read_connection`` and ``write_connection`` alike,
and through the services that used to take connections of their own."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, literal, select
from sqlalchemy.engine import make_url

from ledger.core.errors import InvalidInput, Unavailable
from ledger.db.engine import make_engine, read_connection, write_connection
from ledger.idempotency import Answer, answer_once
from ledger.journal.write import Ledger
from ledger.money import deposit, reverse
from tests.conftest import StepClock

Opener = Callable[[Engine], AbstractContextManager[Connection]]
OPENERS: list[Opener] = [read_connection, write_connection]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture(params=["sqlite", "postgresql"])
def dead_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database that cannot be reached: a SQLite "file" that is a
    directory, so it cannot be opened; a PostgreSQL port nothing listens on."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}", connect_args={"timeout": 1})
    else:
        url = make_url("postgresql+psycopg://postgres@127.0.0.1/test").set(port=_closed_port())
        engine = make_engine(url.render_as_string(), connect_args={"connect_timeout": 2})
    yield engine
    engine.dispose()


@pytest.mark.parametrize("opener", OPENERS, ids=["read", "write"])
def test_an_unreachable_database_is_unavailable(dead_engine: Engine, opener: Opener) -> None:
    with pytest.raises(Unavailable) as refused, opener(dead_engine) as conn:
        conn.execute(select(literal(1)))
    assert refused.value.code == "database_unavailable"


def test_services_that_took_their_own_connections_now_say_unavailable(
    dead_engine: Engine,
) -> None:
    ledger = Ledger(dead_engine, clock=StepClock())
    member = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    calls: list[Callable[[], object]] = [
        lambda: deposit(
            ledger, member=member, currency="EUR", amount=1, reference="r", key="k", actor=member
        ),
        lambda: reverse(ledger, 1, reason="r", key="k", actor=member),
        lambda: answer_once(
            ledger, scope="s", key="k", request={}, run=lambda: Answer(201, {}), secret=b"x"
        ),
    ]
    for call in calls:
        with pytest.raises(Unavailable):
            call()


@pytest.mark.postgres
@pytest.mark.parametrize("opener", OPENERS, ids=["read", "write"])
def test_a_value_the_database_refuses_is_invalid_input(
    postgres_engine: Engine, opener: Opener
) -> None:
    with pytest.raises(InvalidInput) as refused, opener(postgres_engine) as conn:
        conn.execute(select(literal("a\x00b")))
    assert refused.value.code == "data_invalid"
