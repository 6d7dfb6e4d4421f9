"""Entitlements follow rights at the record time, on SQLite and PostgreSQL: a property
(stored entitlements sum exactly to production; each holder's pro rata part is within
one unit of exact) and a lease made through the real market engine, which shifts one
period's entitlements exactly and not the next one's."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.core import with_check_character
from ledger.db.engine import read_connection
from ledger.db.schema import OutputEntitlement, table
from ledger.journal.write import Ledger
from ledger.outputs.operators import define_output_kind, set_output_terms
from ledger.outputs.periods import open_period
from ledger.outputs.production import record_production
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import find_member

from .network import ANN, ASSET, BOB, CAT, DAN, build_network
from .outputs_world import now_of, set_now, times
from .test_market_engine import BUY, SELL, Market, market

__all__ = ["market"]

MINUTE = timedelta(minutes=1)
_numbers = itertools.count(1)


def _entitled(ledger: Ledger, period_id: int, kind: str) -> dict[str, tuple[int, int]]:
    ents = table(OutputEntitlement)
    with read_connection(ledger.engine) as conn:
        rows = conn.execute(
            select(ents.c.holder, ents.c.rights_units, ents.c.entitled).where(
                ents.c.period_id == period_id, ents.c.kind == kind
            )
        ).all()
    return {r.holder: (r.rights_units, r.entitled) for r in rows}


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    units=st.lists(st.integers(0, 10**6), min_size=4, max_size=4),
    unissued=st.integers(0, 10**6),
    share_bp=st.integers(0, 10_000),
    produced=st.integers(0, 10**12),
    operator=st.sampled_from([ANN, BOB, CAT, DAN]),
)
def test_entitlements_sum_exactly_and_each_is_within_a_unit(
    ledger: Ledger,
    units: list[int],
    unissued: int,
    share_bp: int,
    produced: int,
    operator: str,
) -> None:
    if not any(units) and not unissued:
        unissued = 1
    n = next(_numbers)
    with read_connection(ledger.engine) as conn:
        if find_member(conn, ANN) is None:  # the first example on this database
            build_network(ledger)
    asset = with_check_character(f"1M8GDM9A0KP{n:06d}")
    total = sum(units) + unissued
    register_asset(ledger, asset, make="Deere", model="8R", serial=f"S{n}", location="Ames",
                   total_units=total, jurisdiction="US-IA", key=f"a{n}", actor="t")  # fmt: skip
    issued = [(a, u) for a, u in zip([ANN, BOB, CAT, DAN], units, strict=True) if u]
    if issued:
        issue_units(ledger, asset, issued, key=f"i{n}", actor="t")
    set_output_terms(ledger, asset, operator, share_bp, key=f"t{n}", actor="t")
    define_output_kind(ledger, asset, "power", "Wh", key=f"k{n}", actor=operator)
    set_now(ledger, now_of(ledger) + 10 * MINUTE)
    now = now_of(ledger)
    period = open_period(ledger, asset, "p", times(now - MINUTE, now + MINUTE), key=f"p{n}",
                         actor=operator)  # fmt: skip
    set_now(ledger, now + 2 * MINUTE)
    made = record_production(ledger, period.id, {"power": produced}, key=f"r{n}", actor=operator)
    found = _entitled(ledger, period.id, "power")
    assert sum(e for _, e in found.values()) == produced
    first = produced * share_bp // 10_000
    assert made.operator_first == {"power": first}
    rest = produced - first
    rights = {a: u for a, u in zip([ANN, BOB, CAT, DAN], units, strict=True) if u}
    rights[operator] = rights.get(operator, 0) + unissued
    assert {h: r for h, (r, _) in found.items() if r} == {h: r for h, r in rights.items() if r}
    for holder, (held, entitled) in found.items():
        part = entitled - (first if holder == operator else 0)
        assert abs(part - Fraction(rest * held, total)) < 1


Q2 = "2027-04-01/2027-07-01"


def test_a_lease_shifts_one_periods_entitlements_exactly(market: Market) -> None:
    ledger = market.ledger
    set_output_terms(ledger, ASSET, CAT, 1_000, key="terms", actor="admin")
    define_output_kind(ledger, ASSET, "tomato", "g", key="kind", actor=CAT)
    # ANN leases 100,000 of her 500,000 units to BOB over Q2, through the engine.
    market.place(ANN, SELL, 3, 100_000, term=Q2)
    lease = market.place(BOB, BUY, 3, 100_000, term=Q2)
    assert [(x.lessor, x.lessee, x.qty_units) for x in lease.leases] == [(ANN, BOB, 100_000)]
    in_q2 = datetime(2027, 5, 1, tzinfo=UTC)
    after_q2 = datetime(2027, 8, 1, tzinfo=UTC)
    deadline = datetime(2027, 8, 15, tzinfo=UTC)
    leased = open_period(ledger, ASSET, "2027-Q2", times(in_q2, deadline), key="p1", actor=CAT)
    free = open_period(ledger, ASSET, "2027-Q3", times(after_q2, deadline), key="p2", actor=CAT)
    set_now(ledger, deadline + MINUTE)
    for period in (leased, free):
        record_production(ledger, period.id, {"tomato": 1_000_000}, key=f"r{period.id}",
                          actor=CAT)  # fmt: skip
    during, outside = _entitled(ledger, leased.id, "tomato"), _entitled(ledger, free.id, "tomato")
    # 100,000 first to CAT; 900,000 by rights. The leased 100,000 units' share is 90,000.
    assert outside == {ANN: (500_000, 450_000), BOB: (300_000, 270_000), CAT: (200_000, 280_000)}
    assert during == {ANN: (400_000, 360_000), BOB: (400_000, 360_000), CAT: (200_000, 280_000)}
    assert during[BOB][1] - outside[BOB][1] == 90_000 == outside[ANN][1] - during[ANN][1]
