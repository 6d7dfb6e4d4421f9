"""A write transaction holds the garbage collector while it holds the journal lock, and
gives it back as it found it, whatever happens."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ledger.journal.write import Ledger


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
