"""The demo leaves a live market: ``run_demo`` (what ``dpn demo`` and ``dpn run`` load)
fills the greenhouse's EUR and USD books, and its EUR lease books over this quarter and
the next, through the real market engine, with one lease under way; a second run writes
nothing."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, Row, func, select

from api.app import create_app
from api.demo import DEMO_ASSET_ID, run_demo
from api.demo_market import (
    GTD_AHEAD_MS,
    LEASE_CURRENCY,
    MARKET_CURRENCIES,
    demo_terms,
    run_market_demo,
)
from api.settings import Settings
from ledger.core.timestamps import ms_of
from ledger.db.engine import read_connection
from ledger.db.schema import (
    Account,
    Balance,
    BuyoutInstallment,
    Hold,
    MarketCandle,
    MarketLease,
    MarketOrder,
    MarketTrade,
    table,
)
from ledger.journal.reads import digest
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from market.engine import BookKey
from market.engine.lease_terms import term_span

from .signin import MovableClock

ORDERS, TRADES, CANDLES = table(MarketOrder), table(MarketTrade), table(MarketCandle)
LEASES = table(MarketLease)
INSTALLMENTS = table(BuyoutInstallment)
HOLDS, BALANCES, ACCOUNTS = table(Hold), table(Balance), table(Account)
OFFER_HOLD = "demo:offer:river"  # api/demo.py's hold on River's offer, not an order's


@pytest.fixture
def demo(ledger: Ledger) -> Ledger:
    run_demo(ledger)
    return ledger


def _open_orders(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(ORDERS).where(ORDERS.c.status == "open").order_by(ORDERS.c.id)))


def _open_trading_orders(conn: Connection) -> list[Row[Any]]:
    return [o for o in _open_orders(conn) if not o.term]


def _now_ms(ledger: Ledger) -> int:
    return ms_of(ledger.clock())


def test_both_books_rest_orders_on_both_sides_with_a_spread(demo: Ledger) -> None:
    with read_connection(demo.engine) as conn:
        orders = _open_trading_orders(conn)
    sides = Counter((o.currency, o.side) for o in orders)
    for currency in MARKET_CURRENCIES:
        assert sides[(currency, "buy")] >= 4 and sides[(currency, "sell")] >= 3
        bids = {o.price_minor for o in orders if (o.currency, o.side) == (currency, "buy")}
        asks = {o.price_minor for o in orders if (o.currency, o.side) == (currency, "sell")}
        assert len(bids) >= 3 and len(asks) >= 3  # a few levels a side
        assert max(bids) < min(asks)  # a spread: nothing rests crossed
    assert {o.asset_id for o in orders} == {DEMO_ASSET_ID}


def test_trades_at_several_prices_and_times_make_a_tape_and_candles(demo: Ledger) -> None:
    with read_connection(demo.engine) as conn:
        trades = list(conn.execute(select(TRADES).order_by(TRADES.c.id)))
        candles = list(conn.execute(select(CANDLES)))
    assert len(trades) == 9
    for currency in MARKET_CURRENCIES:
        tape = [t for t in trades if t.currency == currency]
        assert len({t.price_minor for t in tape}) >= 3
        assert len({t.executed_ms for t in tape}) >= 3
        assert [t.executed_ms for t in tape] == sorted(t.executed_ms for t in tape)
        hourly = [c for c in candles if (c.currency, c.interval_s) == (currency, 3600)]
        assert len(hourly) >= 3  # the trades span hours
        assert sum(c.volume_units for c in hourly) == sum(t.qty_units for t in tape)
        assert sum(c.trades for c in hourly) == len(tape)
    # Every trade's value moved at its own price: buyer's cash to the seller, no fee.
    assert all(t.fee_minor == 0 and t.maker_owner != t.taker_owner for t in trades)


def test_a_partly_filled_order_and_a_gtd_order_a_day_ahead_rest(demo: Ledger) -> None:
    with read_connection(demo.engine) as conn:
        orders = _open_trading_orders(conn)
    partly = [o for o in orders if o.filled_units > 0]
    assert {o.currency for o in partly} == set(MARKET_CURRENCIES)
    assert all(o.remaining_units == o.qty_units - o.filled_units > 0 for o in partly)
    gtd = [o for o in orders if o.time_in_force == "gtd"]
    assert len(gtd) == 1
    (order,) = gtd
    placed_last = max(o.placed_ms for o in orders)
    assert order.placed_ms == placed_last  # the last order, ten minutes before the present
    assert order.expires_at_ms == placed_last + 10 * 60_000 + GTD_AHEAD_MS
    best_bid = max(o.price_minor for o in orders if (o.currency, o.side) == ("EUR", "buy"))
    assert order.price_minor == best_bid


def test_holds_equal_what_the_open_orders_need_and_verify_is_clean(demo: Ledger) -> None:
    with read_connection(demo.engine) as conn:
        orders = _open_orders(conn)
        holds = list(conn.execute(select(HOLDS).where(HOLDS.c.closed_seq.is_(None))))
        held = {b.account_id: b.held for b in conn.execute(select(BALANCES))}
        unpaid = conn.execute(
            select(func.sum(INSTALLMENTS.c.units)).where(INSTALLMENTS.c.state == "scheduled")
        ).scalar_one()
        report = verify(conn)
    assert report.ok, report.problems
    by_id = {h.id: h for h in holds}
    for o in orders:
        need = o.remaining_units if o.side == "sell" else o.price_minor * o.remaining_units
        assert by_id[o.hold_id].remaining == need, o
    # Beside the orders': River's offer, and Hill's units under the demo's buy-out, held
    # for the installments still to come.
    (buyout_hold,) = set(by_id) - {o.hold_id for o in orders} - {OFFER_HOLD}
    assert by_id[buyout_hold].remaining == unpaid > 0
    on_account: defaultdict[int, int] = defaultdict(int)
    for h in holds:
        on_account[h.account_id] += h.remaining
    assert {a: v for a, v in held.items() if v} == dict(on_account)


def test_a_second_run_replays_every_order_and_writes_nothing(demo: Ledger) -> None:
    with read_connection(demo.engine) as conn:
        before = digest(conn)
        placed = [o.id for o in conn.execute(select(ORDERS.c.id).order_by(ORDERS.c.id))]
    run_demo(demo)
    outcomes = run_market_demo(demo)
    with read_connection(demo.engine) as conn:
        assert digest(conn) == before
    assert all(o.replayed for o in outcomes)
    assert [o.order.id for o in outcomes] == placed
    assert [o.order.status for o in outcomes].count("filled") == 10 + 1  # Mara's lease bid


def test_lease_books_rest_offers_and_bids_on_two_terms_and_one_lease_is_under_way(
    demo: Ledger,
) -> None:
    now_ms = _now_ms(demo)
    terms = demo_terms(now_ms)
    with read_connection(demo.engine) as conn:
        offered = [o for o in _open_orders(conn) if o.term]
        leases = list(conn.execute(select(LEASES).order_by(LEASES.c.id)))
        report = verify(conn)
    assert report.ok, report.problems
    assert len(terms) == 2 and term_span(terms[0])[0] <= now_ms < term_span(terms[0])[1]
    for term in terms:  # the quarter under way and the next
        book = [o for o in offered if o.term == term]
        assert {o.side for o in book} == {"buy", "sell"}
        best_bid = max(o.price_minor for o in book if o.side == "buy")
        best_offer = min(o.price_minor for o in book if o.side == "sell")
        assert best_bid < best_offer  # nothing rests crossed
        # A member offers or bids on a book, never both.
        assert not {o.owner for o in book if o.side == "buy"} & {
            o.owner for o in book if o.side == "sell"
        }
    assert {(o.asset_id, o.currency) for o in offered} == {(DEMO_ASSET_ID, LEASE_CURRENCY)}
    assert {o.time_in_force for o in offered} == {"gtd"}  # a lease order rests to its term's end
    assert {o.expires_at_ms for o in offered} == {term_span(t)[1] for t in terms}
    (lease,) = leases
    assert lease.term == terms[0] and lease.starts_ms <= now_ms < lease.ends_ms
    assert (lease.qty_units, lease.price_minor, lease.fee_minor) == (8_000, 2, 0)
    assert lease.lessor != lease.lessee
    offer = next(o for o in offered if o.owner == lease.lessor and o.term == terms[0])
    assert (offer.filled_units, offer.remaining_units) == (8_000, 12_000)  # part leased


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    clock = MovableClock()
    run_demo(Ledger(sqlite_engine, clock=clock))
    app = create_app(Settings(), engine=sqlite_engine, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


def test_a_server_on_the_demo_serves_the_books_at_once(client: TestClient) -> None:
    app = client.app
    market = app.state.market  # type: ignore[attr-defined]
    books = market.books()
    terms = demo_terms(ms_of(market.ledger.clock()))
    assert set(books) == {BookKey(DEMO_ASSET_ID, c) for c in MARKET_CURRENCIES} | {
        BookKey(DEMO_ASSET_ID, LEASE_CURRENCY, t) for t in terms
    }
    for currency, (bid, ask) in (("EUR", (25, 26)), ("USD", (26, 28))):
        depth = books[BookKey(DEMO_ASSET_ID, currency)].depth(10)
        assert (depth.bids[0].price_minor, depth.asks[0].price_minor) == (bid, ask)
        assert len(depth.bids) >= 4 and len(depth.asks) >= 3
    ready = client.get("/readyz").json()["market"]
    assert (ready["books"], ready["open_orders"]) == (2 + 2, 16 + 7)  # and lease books
    # Through the server's engine (its own clock), the demo market replays.
    ledger = market.ledger
    with read_connection(ledger.engine) as conn:
        before = digest(conn)
    outcomes = run_market_demo(ledger, market)
    assert all(o.replayed for o in outcomes)
    with read_connection(ledger.engine) as conn:
        assert digest(conn) == before
    assert market.status().running  # the server's engine was not stopped


def test_the_gtd_bid_expires_a_day_on(client: TestClient) -> None:
    market = client.app.state.market  # type: ignore[attr-defined]
    clock = market.ledger.clock
    clock.advance(GTD_AHEAD_MS // 1000 + 1)
    market.expire_now()
    book = market.books()[BookKey(DEMO_ASSET_ID, "EUR")]
    assert book.depth(1).bids[0].price_minor == 24  # the 25 bid is gone
    with read_connection(market.ledger.engine) as conn:
        assert verify(conn).ok
        assert not any(o.time_in_force == "gtd" for o in _open_trading_orders(conn))
