"""The garbage collector waits while a block keeps many new objects alive (a write
transaction, a rights table) and is given back as it was found, whatever happens."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection

from ledger import rights as rights_module
from ledger.core import with_check_character
from ledger.core.errors import NotFound
from ledger.db.collector import collector_held
from ledger.db.engine import read_connection
from ledger.journal.write import Ledger
from ledger.rights import rights_table


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:  # pragma: no cover - the suite runs with the collector on
        gc.disable()


@pytest.mark.usefixtures("collector_restored")
def test_the_collector_waits_inside_a_transaction_and_runs_after(ledger: Ledger) -> None:
    gc.enable()
    with ledger.write():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), ledger.write():
        assert not gc.isenabled()
        raise RuntimeError("rolled back")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
def test_a_collector_the_program_disabled_stays_disabled(ledger: Ledger) -> None:
    gc.disable()
    with ledger.write():
        assert not gc.isenabled()
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
def test_the_block_that_held_it_gives_it_back_not_one_that_overlapped() -> None:
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait()
        with collector_held():  # found disabled by the first block: leaves it alone
            second_in.set()
            first_out.wait()
            seen.append(gc.isenabled())  # given back by the first, still running here
        seen.append(gc.isenabled())

    other = threading.Thread(target=second)
    other.start()
    with collector_held():
        first_in.set()
        second_in.wait()
    first_out.set()
    other.join()
    assert seen == [True, True]


@pytest.mark.usefixtures("collector_restored")
def test_a_rights_table_holds_the_collector_and_gives_it_back_on_a_refusal(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()
    held: list[bool] = []
    point = rights_module._point

    def watched(conn: Connection, at: datetime) -> tuple[int, int, int]:
        held.append(not gc.isenabled())
        return point(conn, at)

    monkeypatch.setattr(rights_module, "_point", watched)
    unknown = with_check_character("1M8GDM9A0KP000001")
    with read_connection(ledger.engine) as conn, pytest.raises(NotFound):
        rights_table(conn, unknown, datetime.now(UTC))
    assert held == [True]
    assert gc.isenabled()
