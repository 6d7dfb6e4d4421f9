"""The demo's outputs, as a person who runs ``make run`` meets them over HTTP: the
greenhouse has two past periods with production, entitlements and deliveries, an open
period with requests, a vote under way, and a buy-out plan with paid and upcoming
installments (``api.demo_outputs``). Each past period's entitlements follow the holdings
at its record time; the demo replays without writing anything; ``dpn verify``'s checks of
outputs find nothing wrong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.app import create_app
from api.demo import DEMO_ASSET_ID, DEMO_MEMBERS, run_demo
from api.demo_outputs import BUYOUT_INSTALLMENTS, BUYOUT_UNITS, DEMO_KINDS, OPERATOR_SHARE_BP
from api.settings import Settings
from ledger.core import EntryKind
from ledger.db.engine import read_connection
from ledger.db.schema import Hold, OutputEntitlement, OutputPeriod, table
from ledger.journal.entries import entry_by_key, load_entries
from ledger.journal.reads import digest
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.outputs.audit import audit_outputs

from .signin import MovableClock, sign_in, wallet

COOP, NORTH, RIVER, HILL, MARA = (m.address for m in DEMO_MEMBERS)
ISSUED = {m.address: m.units for m in DEMO_MEMBERS if m.units}
TOTAL = 1_000_000


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    clock = MovableClock()  # the demo's present: 2027-01-01, 45 days into Q0's quarter
    run_demo(Ledger(sqlite_engine, clock=clock))
    app = create_app(Settings(), engine=sqlite_engine, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


def _get(client: TestClient, path: str, **headers: str) -> Any:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _entitlements(client: TestClient, period_id: int) -> dict[str, dict[str, dict[str, int]]]:
    page = _get(client, f"/v1/periods/{period_id}/entitlements?limit=50")
    assert page["next_cursor"] is None
    return {h["holder"]: {line["kind"]: line for line in h["lines"]} for h in page["items"]}


def test_the_greenhouse_shows_its_seasons_past_and_to_come(client: TestClient) -> None:
    page = _get(client, f"/v1/assets/{DEMO_ASSET_ID}/outputs")
    assert [k["name"] for k in page["kinds"]] == sorted(name for name, _, _ in DEMO_KINDS)
    assert page["operator"]["operator"] == COOP
    assert page["operator"]["operator_share_bp"] == OPERATOR_SHARE_BP
    assert [p["period"]["name"] for p in page["open_periods"]] == ["2027-Q1"]
    (upcoming,) = page["open_periods"]
    assert upcoming["plan"]["requesters"] == 2  # the co-op and North asked
    assert sorted(p["period"]["name"] for p in page["past_periods"]) == ["2026-Q2", "2026-Q3"]
    for past in page["past_periods"]:
        for line in past["yields"]:  # what one unit of rights yielded
            assert line["numerator"] == line["produced"] - line["operator_first"]
            assert line["denominator"] == TOTAL


def test_each_past_period_follows_the_holdings_at_its_record_time(client: TestClient) -> None:
    page = _get(client, f"/v1/assets/{DEMO_ASSET_ID}/outputs")
    past = {p["period"]["name"]: p for p in page["past_periods"]}
    paid_by = {"2026-Q2": 0, "2026-Q3": 1}  # buy-out installments paid by the record time
    for name, period in past.items():
        shares = {**ISSUED}
        shares[COOP] += paid_by[name] * BUYOUT_UNITS
        shares[HILL] -= paid_by[name] * BUYOUT_UNITS
        table = _entitlements(client, period["period"]["id"])
        for line in period["yields"]:
            kind, produced = line["kind"], line["produced"]
            first = produced * OPERATOR_SHARE_BP // 10_000
            assert line["operator_first"] == first
            got = {holder: kinds[kind]["entitled"] for holder, kinds in table.items()}
            assert sum(got.values()) == produced
            for holder, units in shares.items():
                exact = (produced - first) * units / TOTAL + (first if holder == COOP else 0)
                assert abs(got[holder] - exact) < 1, (name, kind, holder)
        # The worked example's figure: 20 % and a 10 % share make 28 % of P1's tomatoes.
        if name == "2026-Q2":
            tomatoes = next(y["produced"] for y in period["yields"] if y["kind"] == "tomato")
            assert table[COOP]["tomato"]["entitled"] * 100 == tomatoes * 28


def test_deliveries_waivers_and_a_sell_back_stand_against_the_entitlements(
    client: TestClient,
) -> None:
    past = {
        p["period"]["name"]: p["period"]["id"]
        for p in _get(client, f"/v1/assets/{DEMO_ASSET_ID}/outputs")["past_periods"]
    }
    first = _entitlements(client, past["2026-Q2"])
    assert all(kinds["tomato"]["outstanding"] == 0 for kinds in first.values())
    assert first[NORTH]["cucumber"]["delivered"] == first[NORTH]["cucumber"]["entitled"] > 0
    assert first[RIVER]["cucumber"]["waived"] == first[RIVER]["cucumber"]["entitled"] > 0
    assert first[HILL]["basil"]["sold_back"] == first[HILL]["basil"]["entitled"] > 0
    second = _entitlements(client, past["2026-Q3"])
    assert all(kinds["tomato"]["outstanding"] > 0 for kinds in second.values())
    assert all(kinds["tomato"]["delivered"] > 0 for kinds in second.values())
    actions = {
        s["action"]
        for s in _get(client, f"/v1/periods/{past['2026-Q2']}/settlements?limit=50")["items"]
    }
    assert actions == {"deliver", "waive", "sell_back"}
    # Hill took no part in P2: it neither asked, nor voted, nor worked.
    me = sign_in(client, wallet(99))
    report = _get(client, f"/v1/periods/{past['2026-Q3']}/participation?took_part=false", **me)
    assert [row["member"] for row in report["items"]] == [HILL]


def test_the_buy_out_has_paid_and_upcoming_installments(client: TestClient) -> None:
    plans = _get(client, f"/v1/buyouts?asset_id={DEMO_ASSET_ID}", **sign_in(client, wallet(99)))
    assert plans["items"] == []  # a stranger's own plans: none
    coop = next(m for m in DEMO_MEMBERS if m.address == COOP)
    mine = _get(
        client,
        f"/v1/buyouts?asset_id={DEMO_ASSET_ID}&role=buyer",
        Authorization=_bearer(client, coop.private_key),
    )
    (plan,) = mine["items"]
    assert (plan["buyer"], plan["state"]) == (COOP, "active")
    states = [i["state"] for i in plan["installments"]]
    assert len(states) == BUYOUT_INSTALLMENTS
    assert states == ["paid"] * 3 + ["scheduled"] * 5  # at 2027-01-01: three were due


def test_a_vote_is_under_way(client: TestClient) -> None:
    (proposal,) = _get(client, f"/v1/assets/{DEMO_ASSET_ID}/proposals")["items"]
    result = proposal["result"] if "result" in proposal else _get(
        client, f"/v1/proposals/{proposal['id']}"
    )["result"]  # fmt: skip
    assert not result["final"]
    assert result["voters"] == 2
    assert dict((t["option"], t["weight_units"]) for t in result["tally"])["tomato"] > 0


def test_the_demo_replays_and_its_outputs_verify(sqlite_engine: Engine) -> None:
    clock = MovableClock()
    run_demo(Ledger(sqlite_engine, clock=clock))
    with read_connection(sqlite_engine) as conn:
        before = digest(conn)
    clock.advance(86_400)  # a day later: the same requests, nothing new
    run_demo(Ledger(sqlite_engine, clock=clock))
    with read_connection(sqlite_engine) as conn:
        assert digest(conn) == before
        assert verify(conn).ok
        assert audit_outputs(conn) == []


def _bearer(client: TestClient, private_key: str) -> str:
    from eth_account import Account

    from .signin import Wallet

    who = Wallet(Account.from_key(private_key).address, bytes.fromhex(private_key[2:]))
    return sign_in(client, who)["Authorization"]


def test_verify_names_an_entitlement_changed_behind_the_ledger(sqlite_engine: Engine) -> None:
    run_demo(Ledger(sqlite_engine, clock=MovableClock()))
    rows = table(OutputEntitlement)
    with sqlite_engine.begin() as conn:
        row = conn.execute(select(rows).where(rows.c.entitled > 0).limit(1)).one()
        conn.execute(
            update(rows)
            .where(rows.c.period_id == row.period_id, rows.c.kind == row.kind)
            .where(rows.c.holder == row.holder)
            .values(entitled=row.entitled + 1, delivered=row.entitled + 2)
        )
    with read_connection(sqlite_engine) as conn:
        problems = audit_outputs(conn)
    where = f"period {row.period_id} {row.kind}"
    assert any(where in p and "entitlements sum to" in p for p in problems), problems
    assert any(row.holder in p and "settled" in p for p in problems), problems
    assert any(row.holder in p and "settlements say" in p for p in problems), problems


def test_the_past_is_recorded_when_it_happened(sqlite_engine: Engine) -> None:
    # Each step of the past is journaled at its own moment, in order: the harvest of a
    # quarter three days into the next, its deliveries two days later, the installment
    # paid 45 days into the quarter (an hour after it fell due).
    run_demo(Ledger(sqlite_engine, clock=MovableClock()))
    with read_connection(sqlite_engine) as conn:
        at = {
            name: entry.recorded_at
            for name in ("period:p2", "production:p1", "sell-back:p1", "production:p2")
            if (entry := entry_by_key(conn, f"demo:outputs:{name}")) is not None
        }
        paid = [e for e in load_entries(conn, list(range(1, digest(conn).seq + 1)))
                if e.kind == EntryKind.BUYOUT_SETTLE]  # fmt: skip
    p2 = datetime(2026, 7, 1, tzinfo=UTC)  # the demo's present is 2027-01-01
    assert at == {
        "period:p2": p2 - timedelta(days=21),
        "production:p1": p2 + timedelta(days=3),
        "sell-back:p1": p2 + timedelta(days=5),
        "production:p2": datetime(2026, 10, 4, tzinfo=UTC),
    }
    assert [e.recorded_at for e in paid[:2]] == [
        datetime(2026, 5, 16, 1, tzinfo=UTC),
        datetime(2026, 8, 15, 1, tzinfo=UTC),
    ]


def test_verify_finds_entitlements_moved_between_holders(sqlite_engine: Engine) -> None:
    # A unit moved from one holder's entitlement to another's keeps every sum: only the
    # production entry's hash of the rows can tell.
    run_demo(Ledger(sqlite_engine, clock=MovableClock()))
    rows = table(OutputEntitlement)
    with sqlite_engine.begin() as conn:
        first, second = conn.execute(
            select(rows).where(rows.c.entitled > 0, rows.c.delivered == 0, rows.c.waived == 0,
                               rows.c.sold_back == 0).order_by(*rows.primary_key).limit(2)
        ).all()  # fmt: skip
        assert (first.period_id, first.kind) == (second.period_id, second.kind)
        for row, change in ((first, -1), (second, 1)):
            conn.execute(
                update(rows)
                .where(rows.c.period_id == row.period_id, rows.c.kind == row.kind)
                .where(rows.c.holder == row.holder)
                .values(entitled=row.entitled + change)
            )
    with read_connection(sqlite_engine) as conn:
        problems = audit_outputs(conn)
    assert problems == [
        f"outputs: period {first.period_id}: its entitlements are not those entry"
        f" {_produced_seq(sqlite_engine, first.period_id)} hashed"
    ]


def _produced_seq(engine: Engine, period_id: int) -> int:
    periods = table(OutputPeriod)
    with engine.connect() as conn:
        found: int = conn.execute(
            select(periods.c.produced_seq).where(periods.c.id == period_id)
        ).scalar_one()
    return found


def test_verify_finds_a_buy_out_hold_changed_behind_the_ledger(sqlite_engine: Engine) -> None:
    run_demo(Ledger(sqlite_engine, clock=MovableClock()))
    holds = table(Hold)
    with sqlite_engine.begin() as conn:
        (hold_id,) = conn.execute(
            select(holds.c.id).where(holds.c.id.like("buyout:%"), holds.c.closed_seq.is_(None))
        ).one()
        conn.execute(update(holds).where(holds.c.id == hold_id).values(remaining="49999"))
    with read_connection(sqlite_engine) as conn:
        assert audit_outputs(conn) == [
            f"buy-outs: hold {hold_id} holds 49999 units, its seller has 50000 left to deliver"
        ]
