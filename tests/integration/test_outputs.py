"""Requests, the plan, production and entitlements, settlements and reports
(``ledger.outputs``) on SQLite and PostgreSQL. The network: ANN operates ASSET at 10 %
and holds 500,000 of its 1,000,000 units, BOB 300,000, CAT 200,000, DAN none. Every
refusal changes nothing (``refused``: the journal's head and every outputs table)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Refused
from ledger.db.engine import read_connection
from ledger.journal.entries import load_entries
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import transfer
from ledger.outputs.periods import PeriodRecord, PeriodState, get_period
from ledger.outputs.production import Buyback, entitlements_digest, record_production
from ledger.outputs.reports import (
    asset_outputs,
    holder_entitlements,
    period_entitlements,
    period_production,
    period_settlements,
    yield_text,
)
from ledger.outputs.requests import plan_of, request_of, submit_request
from ledger.outputs.settlements import SettlementAction, deliver, sell_back, waive

from .network import UNITS
from .outputs_world import ANN, ASSET, BOB, CAT, DAN, a_period, refused, set_now, with_terms

HOUR = timedelta(hours=1)


@pytest.fixture
def period(ledger: Ledger) -> PeriodRecord:
    with_terms(ledger)
    return a_period(ledger)


def at_requests(ledger: Ledger, period: PeriodRecord) -> None:
    set_now(ledger, period.times.record_at + HOUR)


def after_deadline(ledger: Ledger, period: PeriodRecord) -> None:
    set_now(ledger, period.times.request_deadline + HOUR)


def produce(ledger: Ledger, period: PeriodRecord, key: str = "prod", **more: object) -> object:
    after_deadline(ledger, period)
    return record_production(
        ledger,
        period.id,
        {"tomato": 1_000, "basil": 7},
        {"tomato": Buyback("USD", 50), "basil": Buyback("USD", 1_000_000)},
        key=key,
        actor=ANN,
    )


def test_requests_are_taken_between_record_time_and_deadline(
    ledger: Ledger, period: PeriodRecord
) -> None:
    mix = {"tomato": 7_000, "basil": 3_000}
    refused(ledger, Refused, "requests_not_open",
            lambda: submit_request(ledger, period.id, BOB, mix, key="r0", actor=BOB))  # fmt: skip
    at_requests(ledger, period)
    first = submit_request(ledger, period.id, BOB, mix, key="r1", actor=BOB)
    assert (first.mix, first.rights_units) == ({"basil": 3_000, "tomato": 7_000}, 300_000)
    assert submit_request(ledger, period.id, BOB, mix, key="r1", actor=BOB) == first  # replay
    refused(ledger, Conflict, "idempotency_conflict",
            lambda: submit_request(ledger, period.id, BOB, {"tomato": 10_000}, key="r1",
                                   actor=BOB))  # fmt: skip
    # A new request replaces the last one.
    second = submit_request(ledger, period.id, BOB, {"tomato": 10_000}, key="r2", actor=BOB)
    assert second.mix == {"tomato": 10_000}
    submit_request(ledger, period.id, CAT, {"basil": 10_000}, key="r3", actor=CAT)
    with read_connection(ledger.engine) as conn:
        assert request_of(conn, period.id, BOB) == second
        plan = plan_of(conn, period.id)
    # tomato: 300,000 x 10,000; basil: 200,000 x 10,000 -> 60 % / 40 %.
    assert [(x.kind, x.weight, x.share_bp) for x in plan.lines] == [
        ("basil", 2_000_000_000, 4_000), ("tomato", 3_000_000_000, 6_000)]  # fmt: skip
    assert (plan.requesters, plan.requested_rights, plan.total_units) == (2, 500_000, 1_000_000)
    for mix_, error, code in [
        ({}, InvalidInput, "mix_empty"),
        ({"tomato": 9_999}, InvalidInput, "mix_not_whole"),
        ({"tomato": 10_001, "basil": -1}, InvalidInput, "mix_weight"),
        ({"tomato": True}, InvalidInput, "mix_weight"),
        ({"kale": 10_000}, InvalidInput, "unknown_output_kind"),
    ]:
        refused(ledger, error, code,
                lambda m=mix_: submit_request(ledger, period.id, ANN, m, key="bad",
                                              actor=ANN))  # type: ignore[misc]  # fmt: skip
    refused(ledger, Forbidden, "no_rights",
            lambda: submit_request(ledger, period.id, DAN, mix, key="r4", actor=DAN))  # fmt: skip
    refused(ledger, NotFound, "unknown_period",
            lambda: submit_request(ledger, 10**9, ANN, mix, key="r5", actor=ANN))  # fmt: skip
    after_deadline(ledger, period)
    refused(ledger, Refused, "request_deadline_passed",
            lambda: submit_request(ledger, period.id, ANN, mix, key="r6", actor=ANN))  # fmt: skip


def test_a_plan_without_requests_is_all_zero(ledger: Ledger, period: PeriodRecord) -> None:
    with read_connection(ledger.engine) as conn:
        plan = plan_of(conn, period.id)
    assert [(x.kind, x.weight, x.share_bp) for x in plan.lines] == [
        ("basil", 0, 0), ("tomato", 0, 0)]  # fmt: skip
    assert plan.requesters == 0


def test_production_shares_each_kind_exactly(ledger: Ledger, period: PeriodRecord) -> None:
    set_now(ledger, period.times.request_deadline - HOUR)
    refused(ledger, Refused, "requests_still_open",
            lambda: record_production(ledger, period.id, {"tomato": 1, "basil": 1}, key="p0",
                                      actor=ANN))  # fmt: skip
    after_deadline(ledger, period)
    for produced, error, code in [
        ({"tomato": 1}, InvalidInput, "produced_incomplete"),
        ({"tomato": 1, "basil": 1, "kale": 1}, InvalidInput, "unknown_output_kind"),
        ({"tomato": 10**15 + 1, "basil": 1}, InvalidInput, "produced_quantity"),
        ({"tomato": -1, "basil": 1}, InvalidInput, "produced_quantity"),
        ({}, InvalidInput, "produced_empty"),
    ]:
        refused(ledger, error, code,
                lambda p=produced: record_production(ledger, period.id, p, key="p1",
                                                     actor=ANN))  # type: ignore[misc]  # fmt: skip
    refused(ledger, NotFound, "unknown_currency",
            lambda: record_production(ledger, period.id, {"tomato": 1, "basil": 1},
                                      {"tomato": Buyback("XYZ", 1)}, key="p2",
                                      actor=ANN))  # fmt: skip
    made = produce(ledger, period)
    assert made == produce(ledger, period)  # a replay of the key
    with read_connection(ledger.engine) as conn:
        stored = get_period(conn, period.id)
        assert stored.state is PeriodState.PRODUCED
        production = period_production(conn, stored)
        assert production is not None and production == made
        table = {(h.holder, x.kind): x.entitled for h in period_entitlements(conn, period.id)
                 for x in h.lines}  # fmt: skip
        assert verify(conn).ok
    # tomato 1,000: ANN 100 first, then 900 by 5:3:2. basil 7: nothing first (rounded
    # down), then 3.5 / 2.1 / 1.4 -> 3, 2, 1 and the unit left to the largest remainder.
    assert table == {
        (ANN, "tomato"): 550, (BOB, "tomato"): 270, (CAT, "tomato"): 180,
        (ANN, "basil"): 4, (BOB, "basil"): 2, (CAT, "basil"): 1,
    }  # fmt: skip
    assert (production.operator, production.operator_share_bp, production.holders) == (
        ANN,
        1_000,
        3,
    )
    assert production.operator_first == {"basil": 0, "tomato": 100}
    rows = sorted(((h, k, e) for (h, k), e in table.items()), key=lambda r: (r[1], r[0]))
    assert production.entitlements_sha256 == entitlements_digest(rows)
    refused(ledger, Refused, "period_not_open",
            lambda: record_production(ledger, period.id, {"tomato": 1, "basil": 1}, key="p3",
                                      actor=ANN))  # fmt: skip
    refused(ledger, Refused, "request_deadline_passed",
            lambda: submit_request(ledger, period.id, BOB, {"tomato": 10_000}, key="late",
                                   actor=BOB))  # fmt: skip


def test_the_pool_s_rights_and_a_rightless_operator(ledger: Ledger) -> None:
    """Units nobody holds are run by the operator: the pool's rights are its claim; an
    operator with no units of its own still has an entitlement row."""
    with_terms(ledger)
    from ledger.outputs.operators import set_output_terms

    set_output_terms(ledger, ASSET, DAN, 0, key="terms-dan", actor="admin")
    transfer(ledger, sender=CAT, recipient=BOB, instrument=UNITS, amount=200_000, key="t",
             actor=CAT)  # fmt: skip
    period = a_period(ledger)
    after_deadline(ledger, period)
    record_production(ledger, period.id, {"tomato": 10, "basil": 0}, key="p", actor=DAN)
    with read_connection(ledger.engine) as conn:
        rows = {h.holder: [(x.kind, x.rights_units, x.entitled) for x in h.lines]
                for h in period_entitlements(conn, period.id)}  # fmt: skip
    assert rows == {
        ANN: [("basil", 500_000, 0), ("tomato", 500_000, 5)],
        BOB: [("basil", 500_000, 0), ("tomato", 500_000, 5)],
        DAN: [("basil", 0, 0), ("tomato", 0, 0)],
    }


def test_deliveries_waivers_and_sell_backs_never_pass_an_entitlement(
    ledger: Ledger, period: PeriodRecord
) -> None:
    refused(ledger, Refused, "period_not_produced",
            lambda: deliver(ledger, period.id, BOB, "tomato", 1, key="d0", actor=ANN))  # fmt: skip
    produce(ledger, period)
    delivered = deliver(ledger, period.id, BOB, "tomato", 200, "crate 1", key="d1", actor=ANN)
    assert (delivered.action, delivered.outstanding) == (SettlementAction.DELIVER, 70)
    assert deliver(ledger, period.id, BOB, "tomato", 200, "crate 1", key="d1",
                   actor=ANN).seq == delivered.seq  # fmt: skip
    refused(ledger, Refused, "beyond_entitlement",
            lambda: deliver(ledger, period.id, BOB, "tomato", 71, key="d2", actor=ANN))  # fmt: skip
    waived = waive(ledger, period.id, BOB, "tomato", 20, key="w1", actor=BOB)
    assert waived.outstanding == 50
    sold = sell_back(ledger, period.id, BOB, "tomato", 50, key="s1", actor=BOB)
    assert (sold.outstanding, sold.cash_minor, sold.currency) == (0, 2_500, "USD")
    with read_connection(ledger.engine) as conn:
        (entry,) = load_entries(conn, [sold.seq])
        moved = {p.account.holder.split(":")[-1]: p.amount for p in entry.postings}
        assert moved == {ANN: -2_500, BOB: 2_500}
    for act, error, code in [
        (lambda: waive(ledger, period.id, BOB, "tomato", 1, key="w2", actor=BOB),
         Refused, "beyond_entitlement"),
        (lambda: sell_back(ledger, period.id, ANN, "tomato", 1, key="s2", actor=ANN),
         Refused, "sell_back_to_self"),
        (lambda: sell_back(ledger, period.id, CAT, "basil", 1, key="s3", actor=CAT),
         Refused, "insufficient_funds"),
        (lambda: deliver(ledger, period.id, DAN, "tomato", 1, key="d3", actor=ANN),
         NotFound, "no_entitlement"),
        (lambda: deliver(ledger, period.id, BOB, "kale", 1, key="d4", actor=ANN),
         NotFound, "no_entitlement"),
        (lambda: deliver(ledger, period.id, BOB, "tomato", 0, key="d5", actor=ANN),
         InvalidInput, "quantity_out_of_range"),
        (lambda: deliver(ledger, period.id, CAT, "tomato", 1, "x" * 201, key="d6", actor=ANN),
         InvalidInput, "field_too_long"),
    ]:  # fmt: skip
        refused(ledger, error, code, act)
    with read_connection(ledger.engine) as conn:
        (bob,) = [h for h in period_entitlements(conn, period.id) if h.holder == BOB]
        assert holder_entitlements(conn, period.id, BOB) == bob
        tomato = next(x for x in bob.lines if x.kind == "tomato")
        assert (tomato.entitled, tomato.delivered, tomato.waived, tomato.sold_back,
                tomato.outstanding) == (270, 200, 20, 50, 0)  # fmt: skip
        listed = period_settlements(conn, period.id)
        assert [(s.action, s.quantity, s.cash_minor) for s in listed] == [
            ("deliver", 200, None), ("waive", 20, None), ("sell_back", 50, 2_500)]  # fmt: skip
        assert [s.seq for s in period_settlements(conn, period.id, after_seq=listed[0].seq,
                                                  limit=1)] == [listed[1].seq]  # fmt: skip
        assert verify(conn).ok


def test_the_asset_page_shows_the_plan_and_past_yields(
    ledger: Ledger, period: PeriodRecord
) -> None:
    at_requests(ledger, period)
    submit_request(ledger, period.id, BOB, {"tomato": 10_000}, key="r", actor=BOB)
    with read_connection(ledger.engine) as conn:
        page = asset_outputs(conn, ASSET)
    assert [k.name for k in page.kinds] == ["basil", "tomato"]
    assert page.operator is not None and page.operator.operator == ANN
    ((open_period, plan),) = page.open_periods
    assert open_period.id == period.id and plan.requesters == 1 and page.past_periods == []
    produce(ledger, period)
    with read_connection(ledger.engine) as conn:
        page = asset_outputs(conn, ASSET)
        pages = period_entitlements(conn, period.id, limit=2)
        rest = period_entitlements(conn, period.id, after=pages[-1].holder, limit=2)
    assert page.open_periods == []
    ((past),) = page.past_periods
    tomato = next(x for x in past.lines if x.kind == "tomato")
    assert (tomato.numerator, tomato.denominator, tomato.per_unit) == (900, 1_000_000, "0.000900")
    assert [h.holder for h in pages + rest] == sorted([ANN, BOB, CAT])
    assert yield_text(2, 3) == "0.666666" and yield_text(7, 1) == "7.000000"
