"""A world for the outputs tests: the small network (``network.py``: ASSET registered by
hand, ANN 500,000 / BOB 300,000 / CAT 200,000 units of 1,000,000, DAN none) with ANN
as its operator by output terms (10 %), a funded project's asset (GREENHOUSE, organizer
BOB), and ways to see that a refusal changed nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ledger.core.errors import LedgerError
from ledger.db.schema import (
    OutputEntitlement,
    OutputKind,
    OutputPeriod,
    OutputProduction,
    OutputRequest,
    OutputSettlement,
    OutputTerms,
    table,
)
from ledger.funding import ProjectTerms, create_project, open_project
from ledger.funding.contributions import record_manual_pledge
from ledger.journal.reads import digest
from ledger.journal.write import Ledger
from ledger.outputs.operators import define_output_kind, set_output_terms
from ledger.outputs.periods import PeriodRecord, PeriodTimes, open_period
from ledger.registry.members import register_member
from tests.conftest import StepClock

from .network import ANN, ASSET, BOB, CAT, DAN, build_network

__all__ = ["ANN", "ASSET", "BOB", "CAT", "DAN"]

NODE = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"  # a finance node
GREENHOUSE = "1HGBH41JXMN109186"
T0 = datetime(2027, 1, 1, tzinfo=UTC)  # the StepClock's start
DAY = timedelta(days=1)
_TABLES = [OutputTerms, OutputKind, OutputPeriod, OutputRequest, OutputProduction,
           OutputEntitlement, OutputSettlement]  # fmt: skip


def set_now(ledger: Ledger, at: datetime) -> None:
    """Move the ledger's clock (a ``StepClock``) to ``at``."""
    clock = ledger.clock
    if not isinstance(clock, StepClock):
        raise TypeError("the outputs tests move a StepClock")
    clock.now = at


def now_of(ledger: Ledger) -> datetime:
    clock = ledger.clock
    if not isinstance(clock, StepClock):
        raise TypeError("the outputs tests read a StepClock")
    return clock.now


def outputs_state(ledger: Ledger) -> tuple[Any, ...]:
    """The journal's head and every outputs table's rows: what a refusal must not change."""
    with ledger.engine.connect() as conn:
        rows = tuple(
            sorted(tuple(map(str, r)) for r in conn.execute(select(table(t))).all())
            for t in _TABLES
        )
        return (digest(conn), rows)


def refused(
    ledger: Ledger, kind: type[LedgerError], code: str, act: Callable[[], Any]
) -> LedgerError:
    """``act()`` raises ``kind`` with ``code`` and changes nothing."""
    before = outputs_state(ledger)
    with pytest.raises(kind) as caught:
        act()
    assert caught.value.code == code, caught.value
    assert outputs_state(ledger) == before
    return caught.value


def with_terms(ledger: Ledger, share_bp: int = 1_000) -> None:
    """The network, with ANN operating ASSET at ``share_bp`` and two kinds of output."""
    build_network(ledger)
    set_output_terms(ledger, ASSET, ANN, share_bp, key="terms", actor="admin")
    define_output_kind(ledger, ASSET, "tomato", "g", "red, round", key="k1", actor=ANN)
    define_output_kind(ledger, ASSET, "basil", "g", key="k2", actor=ANN)


def times(record_at: datetime, deadline: datetime) -> PeriodTimes:
    """A quarter from 2027-01-01 with these record time and deadline."""
    return PeriodTimes(T0, T0 + 90 * DAY, record_at, deadline)


def a_period(ledger: Ledger, name: str = "2027-Q1", *, record_in: timedelta = DAY,
             deadline_in: timedelta = 10 * DAY) -> PeriodRecord:  # fmt: skip
    """A period of ASSET opened now, its record time and deadline ahead by these."""
    now = now_of(ledger)
    return open_period(ledger, ASSET, name, times(now + record_in, now + deadline_in),
                       key=f"open:{name}", actor=ANN)  # fmt: skip


def funded_greenhouse(ledger: Ledger) -> None:
    """GREENHOUSE, brought in by a project NODE listed and BOB organizes (10 % share),
    funded by manual pledges: BOB 20 %, CAT 80 % (the network's members must exist)."""
    register_member(ledger, NODE, "finance_node", "North", key="node", actor="admin")
    terms = ProjectTerms(
        title="A greenhouse for the valley",
        description="Glass, heat and a watering line; the organizer operates it.",
        organizer=BOB,
        asset_id=GREENHOUSE,
        jurisdiction="US-IA",
        currency="USD",
        goal_minor=1_000_000,
        deadline=now_of(ledger) + 30 * DAY,
        min_pledge_minor=7,
        organizer_contribution_minor=200_000,
        retained_min_units=0,
        operator_share_bp=1_000,
        manual_pledges_allowed=True,
        total_units=1_000_000,
    )
    project = create_project(ledger, NODE, terms, key="p", actor=NODE).id
    open_project(ledger, project, by=NODE, key="p-open", actor=NODE)
    proof = hashlib.sha256(b"bank").hexdigest()
    record_manual_pledge(ledger, project, CAT, 800_000, proof, by=NODE, key="p-cat", actor=NODE)
