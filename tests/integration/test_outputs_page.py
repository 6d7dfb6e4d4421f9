"""An asset's outputs page (``ledger.outputs.reports.asset_outputs``) on SQLite and
PostgreSQL: it reads each kind of row for all its periods at once, so the statements it
runs do not grow with the periods it shows, and it shows what the single-period reads
give, period by period."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, event

from ledger.core.errors import LedgerError
from ledger.db.engine import read_connection
from ledger.journal.write import Ledger
from ledger.outputs.operators import OperatorTerms, list_output_kinds, operator_of
from ledger.outputs.periods import PeriodState, get_period, list_periods
from ledger.outputs.production import Buyback, record_production
from ledger.outputs.reports import (
    ASSET_PAGE_PERIODS_MAX,
    AssetOutputs,
    PastPeriod,
    asset_outputs,
    period_production,
    yield_lines,
)
from ledger.outputs.requests import plan_of, submit_request
from ledger.registry.assets import get_asset

from .outputs_world import ANN, ASSET, BOB, CAT, a_period, set_now, with_terms

HOUR = timedelta(hours=1)
STATEMENTS_MAX = 16  # what the page may run, however many periods it shows


def add_periods(ledger: Ledger, first: int, count: int) -> None:
    """``count`` produced periods, then ``count`` open ones, numbered from ``first``:
    requests from BOB and CAT in some, none in others; a different production each."""
    for i in range(first, first + count):
        period = a_period(ledger, f"made-{i}")
        set_now(ledger, period.times.record_at + HOUR)
        submit_request(ledger, period.id, BOB, {"tomato": 10_000}, key=f"rb:{i}", actor=BOB)
        if i % 2:
            mix = {"tomato": 2_500, "basil": 7_500}
            submit_request(ledger, period.id, CAT, mix, key=f"rc:{i}", actor=CAT)
        set_now(ledger, period.times.request_deadline + HOUR)
        offers = {"tomato": Buyback("USD", 50 + i)} if i % 3 else {}
        produced = {"tomato": 1_000 + 37 * i, "basil": 7 * i}
        record_production(ledger, period.id, produced, offers, key=f"p:{i}", actor=ANN)
    for i in range(first, first + count):
        period = a_period(ledger, f"open-{i}")
        if i % 2:
            set_now(ledger, period.times.record_at + HOUR)
            mix = {"tomato": 4_000, "basil": 6_000}
            submit_request(ledger, period.id, CAT, mix, key=f"ro:{i}", actor=CAT)


def page_period_by_period(conn: Connection, asset_id: str) -> AssetOutputs:
    """The page as the single-period reads build it: a read per period."""
    asset = get_asset(conn, asset_id)
    try:
        operator: OperatorTerms | None = operator_of(conn, asset_id)
    except LedgerError:
        operator = None
    periods = list_periods(conn, asset_id, limit=100)
    open_ids = [p.id for p in periods if p.state is PeriodState.OPEN][:ASSET_PAGE_PERIODS_MAX]
    made_ids = [p.id for p in periods if p.state is PeriodState.PRODUCED]
    past = []
    for period_id in made_ids[:ASSET_PAGE_PERIODS_MAX]:
        period = get_period(conn, period_id)
        production = period_production(conn, period)
        assert production is not None
        past.append(PastPeriod(period, yield_lines(production, asset.total_units)))
    return AssetOutputs(
        asset_id,
        asset.total_units,
        list_output_kinds(conn, asset_id),
        operator,
        [(get_period(conn, i), plan_of(conn, i)) for i in open_ids],
        past,
    )


@contextmanager
def statements(conn: Connection) -> Iterator[list[str]]:
    """The SQL statements run on ``conn`` inside the block."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    engine = conn.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def page_and_statements(ledger: Ledger) -> tuple[AssetOutputs, AssetOutputs, int]:
    """The page, the page built period by period, and the statements the page ran."""
    with read_connection(ledger.engine) as conn:
        with statements(conn) as seen:
            page = asset_outputs(conn, ASSET)
        return page, page_period_by_period(conn, ASSET), len(seen)


def test_the_page_runs_as_many_statements_for_eight_periods_as_for_two(ledger: Ledger) -> None:
    with_terms(ledger)
    add_periods(ledger, 0, 2)
    small, small_by_period, small_count = page_and_statements(ledger)
    add_periods(ledger, 2, 6)
    large, large_by_period, large_count = page_and_statements(ledger)
    assert (len(small.open_periods), len(small.past_periods)) == (2, 2)
    assert (len(large.open_periods), len(large.past_periods)) == (8, 8)
    assert small == small_by_period and large == large_by_period
    assert small_count == large_count <= STATEMENTS_MAX, (small_count, large_count)
    # Newest first, the plans those of their periods, the yields as produced.
    assert [p.id for p, _ in large.open_periods] == sorted(
        (p.id for p, _ in large.open_periods), reverse=True
    )
    assert all(plan.period_id == p.id for p, plan in large.open_periods)
    assert {plan.requesters for _, plan in large.open_periods} == {0, 1}
    assert [p.period.name for p in large.past_periods][-2:] == ["made-1", "made-0"]
    newest = {line.kind: line for line in large.past_periods[0].lines}
    assert (newest["tomato"].produced, newest["basil"].produced) == (1_000 + 37 * 7, 49)


def test_the_page_shows_at_most_its_limit_of_periods(ledger: Ledger) -> None:
    with_terms(ledger)
    add_periods(ledger, 0, ASSET_PAGE_PERIODS_MAX + 1)
    page, by_period, count = page_and_statements(ledger)
    assert len(page.open_periods) == len(page.past_periods) == ASSET_PAGE_PERIODS_MAX
    assert page == by_period and count <= STATEMENTS_MAX
    assert page.past_periods[-1].period.name == "made-1"  # made-0 is the 21st newest
