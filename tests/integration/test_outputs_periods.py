"""Operators, output kinds and periods (``ledger.outputs.operators``, ``.periods``) on
SQLite and PostgreSQL: who operates an asset and its share, the kinds it produces, the
periods it opens; every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from ledger.core import with_check_character
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused
from ledger.db.engine import read_connection
from ledger.funding import ProjectTerms, create_project
from ledger.journal.entries import load_entries
from ledger.journal.write import Ledger
from ledger.outputs.operators import (
    OUTPUT_KINDS_PER_ASSET_MAX,
    OperatorSource,
    define_output_kind,
    list_output_kinds,
    operator_of,
    set_output_terms,
)
from ledger.outputs.periods import PeriodState, PeriodTimes, get_period, list_periods, open_period
from ledger.registry.assets import get_asset

from .network import build_network
from .outputs_world import (
    ANN,
    ASSET,
    BOB,
    DAY,
    GREENHOUSE,
    NODE,
    T0,
    a_period,
    funded_greenhouse,
    now_of,
    refused,
    times,
    with_terms,
)

EVE = "0x9F2a4E5b7fA1bD1D0A3b2c2f7e0d8A5C7EE6CB31"  # not a member


def test_output_terms_name_the_operator_of_an_asset_without_project(ledger: Ledger) -> None:
    build_network(ledger)
    with read_connection(ledger.engine) as conn:
        refused(ledger, NotFound, "no_operator_terms", lambda: operator_of(conn, ASSET))
    terms = set_output_terms(ledger, ASSET, ANN, 1_000, key="t1", actor="admin")
    assert (terms.operator, terms.operator_share_bp, terms.source) == (
        ANN,
        1_000,
        OperatorSource.TERMS,
    )
    again = set_output_terms(ledger, ASSET, ANN, 1_000, key="t1", actor="admin")  # a replay
    assert again == terms
    changed = set_output_terms(ledger, ASSET, BOB, 2_500, key="t2", actor="admin")
    assert (changed.operator, changed.operator_share_bp) == (BOB, 2_500)
    refused(
        ledger,
        Conflict,
        "idempotency_conflict",
        lambda: set_output_terms(ledger, ASSET, ANN, 7, key="t1", actor="x"),
    )
    refused(
        ledger,
        InvalidInput,
        "operator_share_bp",
        lambda: set_output_terms(ledger, ASSET, ANN, 10_001, key="t3", actor="x"),
    )
    refused(
        ledger,
        NotFound,
        "unknown_member",
        lambda: set_output_terms(ledger, ASSET, EVE, 0, key="t4", actor="x"),
    )
    refused(
        ledger,
        NotFound,
        "unknown_asset",
        lambda: set_output_terms(ledger, GREENHOUSE, ANN, 0, key="t5", actor="x"),
    )


def test_a_projects_asset_takes_its_terms_from_the_project(ledger: Ledger) -> None:
    build_network(ledger)
    funded_greenhouse(ledger)
    with read_connection(ledger.engine) as conn:
        terms = operator_of(conn, GREENHOUSE)
    assert (terms.operator, terms.operator_share_bp, terms.source) == (
        BOB,
        1_000,
        OperatorSource.PROJECT,
    )
    refused(
        ledger,
        Conflict,
        "terms_from_project",
        lambda: set_output_terms(ledger, GREENHOUSE, ANN, 0, key="t", actor="x"),
    )


def test_nothing_is_defined_for_an_asset_whose_project_is_not_funded(ledger: Ledger) -> None:
    build_network(ledger)
    funded_greenhouse(ledger)
    # A second project, still a draft: its asset is not registered, and has no outputs.
    other = with_check_character("1M8GDM9A0KP042791")
    terms = ProjectTerms(
        title="A mill",
        description="A mill by the river.",
        organizer=BOB,
        asset_id=other,
        jurisdiction="US-IA",
        currency="USD",
        goal_minor=1_000,
        deadline=now_of(ledger) + 30 * DAY,
        min_pledge_minor=1,
        organizer_contribution_minor=0,
        retained_min_units=0,
        operator_share_bp=0,
        manual_pledges_allowed=True,
        total_units=1_000,
    )
    create_project(ledger, NODE, terms, key="p2", actor=NODE)
    refused(
        ledger,
        Refused,
        "project_not_funded",
        lambda: define_output_kind(ledger, other, "flour", "g", key="k", actor=BOB),
    )


def test_kinds_are_defined_once_each_and_at_most_twenty(ledger: Ledger) -> None:
    build_network(ledger)
    refused(
        ledger,
        NotFound,
        "no_operator_terms",
        lambda: define_output_kind(ledger, ASSET, "tomato", "g", key="k0", actor=ANN),
    )
    set_output_terms(ledger, ASSET, ANN, 1_000, key="terms", actor="admin")
    tomato = define_output_kind(ledger, ASSET, "tomato", "g", "red, round", key="k1", actor=ANN)
    assert (tomato.name, tomato.unit, tomato.description) == ("tomato", "g", "red, round")
    assert (
        define_output_kind(ledger, ASSET, "tomato", "g", "red, round", key="k1", actor=ANN)
        == tomato
    )
    refused(
        ledger,
        Conflict,
        "output_kind_exists",
        lambda: define_output_kind(ledger, ASSET, "tomato", "kg", key="k2", actor=ANN),
    )
    for name, unit, code in [
        ("Tomato", "g", "kind_name_malformed"),
        ("-x", "g", "kind_name_malformed"),
        ("x" * 33, "g", "kind_name_malformed"),
        ("kale", "", "kind_unit_malformed"),
        ("kale", "k g", "kind_unit_malformed"),
        ("kale", "g" * 17, "kind_unit_malformed"),
    ]:
        refused(
            ledger,
            InvalidInput,
            code,
            partial(define_output_kind, ledger, ASSET, name, unit, key="k3", actor=ANN),
        )
    refused(
        ledger,
        InvalidInput,
        "field_too_long",
        lambda: define_output_kind(ledger, ASSET, "kale", "g", "d" * 201, key="k4", actor=ANN),
    )
    for i in range(1, OUTPUT_KINDS_PER_ASSET_MAX):
        define_output_kind(ledger, ASSET, f"k{i:02d}", "Wh", key=f"kk{i}", actor=ANN)
    refused(
        ledger,
        Refused,
        "too_many_output_kinds",
        lambda: define_output_kind(ledger, ASSET, "one-more", "g", key="k5", actor=ANN),
    )
    with read_connection(ledger.engine) as conn:
        kinds = list_output_kinds(conn, ASSET)
    assert len(kinds) == OUTPUT_KINDS_PER_ASSET_MAX and kinds[0].name == "k01"


def test_a_period_opens_with_its_times_and_its_entry(ledger: Ledger) -> None:
    build_network(ledger)
    set_output_terms(ledger, ASSET, ANN, 1_000, key="terms", actor="admin")
    refused(ledger, Refused, "no_output_kinds", lambda: a_period(ledger))
    define_output_kind(ledger, ASSET, "tomato", "g", key="k1", actor=ANN)
    period = a_period(ledger)
    assert period.state is PeriodState.OPEN and period.id == period.opened_seq
    replay = open_period(ledger, ASSET, "2027-Q1", period.times, key="open:2027-Q1", actor=ANN)
    assert replay == period
    with read_connection(ledger.engine) as conn:
        assert get_period(conn, period.id) == period
        (entry,) = load_entries(conn, [period.id])
        assert entry.payload["name"] == "2027-Q1" and entry.payload["asset_id"] == ASSET
        assert [p.id for p in list_periods(conn, ASSET)] == [period.id]
        refused(ledger, NotFound, "unknown_period", lambda: get_period(conn, period.id + 99))
    refused(
        ledger,
        Conflict,
        "period_exists",
        lambda: open_period(ledger, ASSET, "2027-Q1", period.times, key="other", actor=ANN),
    )


def test_period_times_are_checked(ledger: Ledger) -> None:
    with_terms(ledger)
    now = now_of(ledger)
    day = DAY
    cases = [
        (T0 + 90 * day, T0, now + day, now + 2 * day, InvalidInput, "period_ends_before_start"),
        (T0, T0 + 367 * day, now + day, now + 2 * day, InvalidInput, "period_too_long"),
        (T0, T0 + 90 * day, now + 2 * day, now + 2 * day, InvalidInput, "record_after_deadline"),
        (T0, T0 + 90 * day, now - 2 * day, now - day, Refused, "request_deadline_passed"),
        (T0, T0 + 90 * day, now, now + 800 * day, Refused, "period_too_far"),
    ]
    for starts, ends, record, deadline, error, code in cases:
        refused(
            ledger,
            error,
            code,
            partial(
                open_period,
                ledger,
                ASSET,
                "p",
                PeriodTimes(starts, ends, record, deadline),
                key="x",
                actor=ANN,
            ),
        )
    refused(
        ledger,
        InvalidInput,
        "field_too_long",
        lambda: open_period(ledger, ASSET, "n" * 33, times(now, now + day), key="y", actor=ANN),
    )
    refused(
        ledger,
        NotFound,
        "unknown_asset",
        lambda: open_period(ledger, GREENHOUSE, "p", times(now, now + day), key="z", actor=ANN),
    )
    # A record time before the asset was registered: nobody had rights then, so such a
    # period could never be requested for nor produced.
    with read_connection(ledger.engine) as conn:
        (registered,) = load_entries(conn, [get_asset(conn, ASSET).registered_seq])
    before = registered.recorded_at - timedelta(microseconds=1)
    refused(
        ledger,
        Refused,
        "record_before_asset",
        lambda: open_period(ledger, ASSET, "early", times(before, now + day), key="e", actor=ANN),
    )
    # A record time in the past is allowed (rights as they stood then), a deadline ahead:
    # from the asset's registration on (an hour before now was before it here).
    past = open_period(
        ledger, ASSET, "back", times(registered.recorded_at, now + day), key="ok", actor=ANN
    )
    assert past.times.record_at < now
