"""Work logs and the participation report on SQLite and PostgreSQL: an operator logs
work in whole minutes by task inside a period; the report lists every member with
rights at the period's record time and what each did (someone who only voted, only
requested, only worked), and names the one who did nothing; every refused work log
changes nothing (the journal's head, the work logs).

The world is the votes tests' small one (``test_votes.small_world``): ANN 4,000, BOB
3,000, CAT 2,000, DAN 1,000 of SMALL's 12,000 units; EVE, who holds nothing, operates it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused
from ledger.db.engine import read_connection
from ledger.db.schema import WorkLog, table
from ledger.journal.reads import digest
from ledger.journal.write import Ledger
from ledger.outputs.participation import (
    MemberParticipation,
    ParticipationReport,
    WorkEntry,
    WorkLogRecord,
    list_work_logs,
    log_work,
    participation_report,
)
from ledger.outputs.periods import PeriodRecord
from ledger.outputs.requests import submit_request
from ledger.registry.assets import register_asset
from ledger.registry.members import register_member

from .network import ANN, ASSET, BOB, CAT, DAN
from .test_market_engine import BUY, SELL, Market, market
from .test_votes import (
    DEADLINE,
    EVE,
    NOWHERE,
    Q1,
    RECORD,
    SMALL,
    a_period,
    at,
    put,
    small_world,
    vote,
)

__all__ = ["market"]  # the fixture, shared with the trading tests

START = datetime(2027, 1, 1, tzinfo=UTC)  # the period runs 90 days from here
WORKED = RECORD + timedelta(hours=2)


def work(ledger: Ledger, period: PeriodRecord, key: str, **fields: Any) -> WorkLogRecord:
    """A work log of SMALL by EVE: CAT's 90 minutes of harvest at WORKED unless ``fields``
    say otherwise."""
    base = WorkEntry(CAT, period.id, "harvest", 90, WORKED)
    return log_work(ledger, period.asset_id, replace(base, **fields), by=EVE, key=key, actor=EVE)


def report(ledger: Ledger, period: PeriodRecord, **options: Any) -> ParticipationReport:
    now = ledger.clock()
    with read_connection(ledger.engine) as conn:
        return participation_report(conn, period.id, now, **options)


def state(ledger: Ledger) -> tuple[Any, ...]:
    logs = table(WorkLog)
    with read_connection(ledger.engine) as conn:
        rows = [tuple(r) for r in conn.execute(select(logs).order_by(logs.c.seq))]
        return digest(conn), rows


def refused(ledger: Ledger, kind: type[LedgerError], code: str, attempt: Callable[[], Any]) -> None:
    before = state(ledger)
    with pytest.raises(kind) as caught:
        attempt()
    assert caught.value.code == code, caught.value
    assert state(ledger) == before


@pytest.fixture
def period(ledger: Ledger) -> PeriodRecord:
    small_world(ledger)
    return a_period(ledger, SMALL)


def test_the_report_names_who_took_part_how_and_who_did_not(
    ledger: Ledger, period: PeriodRecord
) -> None:
    early = report(ledger, period)
    assert early.provisional and (early.members, early.took_part, early.took_no_part) == (4, 0, 4)

    on_period = put(ledger, "on", period_id=period.id)
    elsewhere = put(ledger, "elsewhere")  # a proposal of no period counts for none
    at(ledger, RECORD + timedelta(hours=3))
    vote(ledger, on_period, ANN, "yes", "ann")  # ANN only votes
    vote(ledger, elsewhere, DAN, "yes", "dan")  # DAN votes, but not on this period
    submit_request(ledger, period.id, BOB, {"tomato": 10_000}, key="bob", actor=BOB)  # only asks
    work(ledger, period, "w1")  # CAT only works: 90 + 60 minutes of harvest, 30 of pruning
    work(ledger, period, "w2", task="pruning", minutes=30)
    work(ledger, period, "w3", minutes=60, note="the late plums")
    work(ledger, period, "w4", member=EVE, minutes=15)  # EVE holds nothing: no row

    found = report(ledger, period)
    assert not found.provisional and found.record_at == RECORD
    assert (found.period_id, found.asset_id) == (period.id, SMALL)
    assert (found.members, found.took_part, found.took_no_part) == (4, 3, 1)
    assert {r.member: r for r in found.rows} == {
        ANN: MemberParticipation(ANN, 4_000, 4_000, False, 1, (), 0),
        BOB: MemberParticipation(BOB, 3_000, 3_000, True, 0, (), 0),
        CAT: MemberParticipation(
            CAT, 2_000, 2_000, False, 0, (("harvest", 150), ("pruning", 30)), 180
        ),
        DAN: MemberParticipation(DAN, 1_000, 1_000, False, 0, (), 0),
    }
    assert [r.member for r in found.rows] == sorted((ANN, BOB, CAT, DAN))
    assert [r.took_part for r in found.rows] == [r.member != DAN for r in found.rows]
    # The one who took no part is named; the counts stay those of all members.
    idle = report(ledger, period, took_part=False)
    assert [r.member for r in idle.rows] == [DAN] and idle.took_no_part == 1
    busy = report(ledger, period, took_part=True, limit=2)
    rest = report(ledger, period, took_part=True, after_member=busy.rows[-1].member, limit=2)
    assert [r.member for r in busy.rows + rest.rows] == sorted((ANN, BOB, CAT))
    with read_connection(ledger.engine) as conn, pytest.raises(NotFound) as unknown:
        participation_report(conn, 10**9, RECORD)
    assert unknown.value.code == "unknown_period"


def test_work_logs_are_listed_newest_first_with_their_notes(
    ledger: Ledger, period: PeriodRecord
) -> None:
    at(ledger, WORKED + timedelta(hours=1))
    made = [work(ledger, period, f"w{i}", minutes=60 * (i + 1), note=f"day {i}") for i in range(3)]
    assert made[0] == WorkLogRecord(
        made[0].seq, SMALL, period.id, CAT, "harvest", 60, WORKED, "day 0", EVE
    )
    with read_connection(ledger.engine) as conn:
        assert list_work_logs(conn, period.id) == made[::-1]
        assert list_work_logs(conn, period.id, before_seq=made[2].seq, limit=1) == [made[1]]
        with pytest.raises(InvalidInput):
            list_work_logs(conn, period.id, limit=201)
    # A replay answers the same log and writes nothing; the key with another body is refused.
    before = state(ledger)
    assert work(ledger, period, "w0", minutes=60, note="day 0") == made[0]
    assert state(ledger) == before
    refused(ledger, Conflict, "idempotency_conflict", lambda: work(ledger, period, "w0"))


def test_every_refused_work_log_changes_nothing(ledger: Ledger, period: PeriodRecord) -> None:
    register_asset(
        ledger, NOWHERE, make="Deere", model="8R", serial="S-2", location="Ames",
        jurisdiction="US-IA", key="other", actor="t",
    )  # fmt: skip
    other = a_period(ledger, NOWHERE)
    at(ledger, DEADLINE)
    cases: list[tuple[type[LedgerError], str, dict[str, Any]]] = [
        (InvalidInput, "task_malformed", {"task": "Harvest"}),
        (InvalidInput, "task_malformed", {"task": "_harvest"}),
        (InvalidInput, "task_malformed", {"task": "h" * 33}),
        (InvalidInput, "minutes_out_of_range", {"minutes": 0}),
        (InvalidInput, "minutes_out_of_range", {"minutes": 44_641}),
        (InvalidInput, "minutes_out_of_range", {"minutes": True}),
        (InvalidInput, "field_too_long", {"note": "n" * 201}),
        (InvalidInput, "field_control_character", {"note": "a\tb"}),
        (InvalidInput, "address_checksum", {"member": CAT.lower()}),
        (InvalidInput, "time_naive", {"worked_on": datetime(2027, 1, 3)}),
        (InvalidInput, "worked_on_outside_period", {"worked_on": START - timedelta(seconds=1)}),
        (InvalidInput, "worked_on_outside_period", {"worked_on": START + timedelta(days=90)}),
        (Refused, "worked_on_in_future", {"worked_on": DEADLINE + timedelta(days=1)}),
        (NotFound, "unknown_member", {"member": "0x13fbaFdeEe7fefcBe2f5d3Cb088603d5e1c0e0E4"}),
        (NotFound, "unknown_period", {"period_id": 10**9}),
        (InvalidInput, "period_not_of_asset", {"period_id": other.id}),
    ]
    for i, (kind, code, fields) in enumerate(cases):
        refused(ledger, kind, code, lambda: work(ledger, period, f"bad{i}", **fields))  # noqa: B023
    # At the limits: a task of 32, a month of minutes, the period's first instant, a note of 200.
    widest = work(ledger, period, "wide", task="h" * 32, minutes=44_640, worked_on=START,
                  note="n" * 200)  # fmt: skip
    assert (widest.task, widest.minutes, widest.worked_on) == ("h" * 32, 44_640, START)


def test_an_owner_who_leased_all_out_is_still_named(market: Market) -> None:
    # ANN leases all her 500,000 units to DAN over Q1 (the record time falls in it): she
    # has no rights then, but is an owner who took no part; DAN, who owns nothing, had
    # the rights and asked for his mix.
    ledger = market.ledger
    register_member(ledger, EVE, "individual", "Eve", key="eve", actor="t")  # operates it
    period = a_period(ledger, ASSET)
    market.place(ANN, SELL, 1, 500_000, term=Q1)
    market.place(DAN, BUY, 1, 500_000, term=Q1)
    at(ledger, RECORD + timedelta(hours=1))
    submit_request(ledger, period.id, DAN, {"tomato": 10_000}, key="dan", actor=DAN)
    rows = {r.member: r for r in report(ledger, period).rows}
    assert (rows[ANN].owned_units, rows[ANN].rights_units, rows[ANN].took_part) == (
        500_000, 0, False,
    )  # fmt: skip
    assert (rows[DAN].owned_units, rows[DAN].rights_units, rows[DAN].took_part) == (
        0, 500_000, True,
    )  # fmt: skip
    assert [r.member for r in report(ledger, period, took_part=False).rows] == sorted(
        [ANN, BOB, CAT]
    )
