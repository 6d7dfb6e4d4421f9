"""``dpn verify``'s market checks: clean after trading, and each kind of disagreement named."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from ledger.db.engine import read_connection
from ledger.journal.write import Ledger
from market.book import Side
from market.engine import CancelRequest, MarketEngine, OrderRequest, OrderType
from market.engine.audit import audit_market

from .network import ANN, ASSET, BOB, CAT, build_network


def _limit(owner: str, side: Side, price: int, qty: int, key: str) -> OrderRequest:
    return OrderRequest(
        owner=owner,
        asset_id=ASSET,
        currency="USD",
        side=side,
        type=OrderType.LIMIT,
        key=key,
        actor=owner,
        price_minor=price,
        qty_units=qty,
    )


@pytest.fixture
def traded(ledger: Ledger) -> MarketEngine:
    build_network(ledger)
    market = MarketEngine(ledger)
    market.place(_limit(ANN, Side.SELL, 10, 100, "a"))
    market.place(_limit(BOB, Side.BUY, 11, 60, "b"))
    resting = market.place(_limit(CAT, Side.BUY, 9, 50, "c"))
    market.place(_limit(CAT, Side.BUY, 8, 10, "d"))
    market.cancel(CancelRequest(owner=CAT, order_id=resting.order.id, key="e", actor=CAT))
    market.stop()
    return market


def _audit(engine: Engine) -> list[str]:
    with read_connection(engine, snapshot=False) as conn:
        return audit_market(conn)


def test_a_market_that_traded_agrees_with_itself(traded: MarketEngine, engine: Engine) -> None:
    assert _audit(engine) == []


def test_a_fill_its_trades_do_not_explain_is_named(traded: MarketEngine, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE market_orders SET filled_units = 61 WHERE filled_units = 60"))
    assert any("filled 61 units but traded 60" in p for p in _audit(engine))


def test_an_open_order_that_rests_nowhere_is_named(traded: MarketEngine, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE market_orders SET status = 'open' WHERE status = 'cancelled'"))
    problems = _audit(engine)
    assert problems and "does not replay" in problems[0]


def test_a_row_that_disagrees_with_its_book_is_named(traded: MarketEngine, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE market_orders SET remaining_units = 7 WHERE status = 'open'"))
    problems = _audit(engine)
    assert any("its row says 7" in p for p in problems)
    assert any("needs 56 held" in p for p in problems)  # 8 x 7, against a hold of 80


def test_a_lessor_leasing_out_more_than_it_owns_is_named(
    traded: MarketEngine, engine: Engine
) -> None:
    with engine.begin() as conn:  # a lease no engine would make: ANN owns 500,000 - 60
        conn.execute(
            text(
                "INSERT INTO market_leases (id, asset_id, currency, term, starts_ms, ends_ms,"
                " price_minor, qty_units, fee_minor, maker_order_id, taker_order_id, lessor,"
                " lessee, taker_side, executed_ms) VALUES (10000, :asset, 'USD',"
                " '2099-01-01/2099-04-01', 4070908800000, 4078684800000, 1, 499941, 0, 0, 0,"
                " :ann, :bob, 'buy', 0)"
            ),
            {"asset": ASSET, "ann": ANN, "bob": BOB},
        )
    assert _audit(engine) == [f"{ANN} has leased out 499941 units of {ASSET} but owns 499940"]
