"""Public market data over HTTP: the list of books, depth, tape, candles and statistics
through the real app (no sign-in), and their problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from market.book import Side
from market.engine import BookKey, MarketEngine, OrderRequest, OrderType, Outcome, TradeRow
from tests.integration.network import ANN, ASSET, BOB, CAT, DAN, build_network

from .signin import MovableClock

USD = BookKey(ASSET, "USD")
BASE = f"/v1/markets/{ASSET}/USD"
WAIT_S = 30.0  # a bound, not a measure: a stream that never delivers fails, not hangs
SSE = {"Accept": "text/event-stream"}
_keys = iter(range(10**9))


def place(market: MarketEngine, owner: str, side: Side, price: int, qty: int) -> Outcome:
    return market.place(
        OrderRequest(
            owner, ASSET, "USD", side, OrderType.LIMIT, key=f"o{next(_keys)}", actor="test",
            price_minor=price, qty_units=qty,
        )
    )  # fmt: skip


def _levels(levels: Any) -> list[dict[str, Any]]:
    return [
        {"price_minor": str(lv.price_minor), "qty_units": str(lv.qty_units), "orders": lv.orders}
        for lv in levels
    ]


def _book_now(market: MarketEngine) -> dict[str, Any]:
    depth = market.books()[USD].depth(20)
    return {"bids": _levels(depth.bids), "asks": _levels(depth.asks)}


def _trade_json(t: TradeRow) -> dict[str, Any]:
    return {
        "id": t.id,
        "price_minor": str(t.price_minor),
        "qty_units": str(t.qty_units),
        "maker_order_id": t.maker_order_id,
        "taker_order_id": t.taker_order_id,
        "taker_side": t.taker_side,
    }


# -- the reads, in process -----------------------------------------------------------------


@pytest.fixture
def app(sqlite_engine: Engine) -> Iterator[FastAPI]:
    made = create_app(Settings(), engine=sqlite_engine, clock=MovableClock())
    build_network(made.state.ledger, cash_minor=10**9)
    yield made


def test_books_depth_tape_candles_and_stats_are_public(app: FastAPI) -> None:
    with TestClient(app) as client:
        market: MarketEngine = app.state.market
        assert client.get("/v1/markets").json() == {"items": [], "next_cursor": None}
        for price, qty in ((105, 10), (106, 4), (108, 1)):
            place(market, ANN, Side.SELL, price, qty)
        place(market, CAT, Side.BUY, 100, 7)
        made = place(market, DAN, Side.BUY, 106, 12).trades  # 10 at 105, 2 at 106
        made += place(market, BOB, Side.SELL, 99, 3).trades  # 3 at 100
        book = client.get(f"{BASE}/book").json()
        assert {k: book[k] for k in ("bids", "asks")} == _book_now(market)
        assert book["asset_id"] == ASSET and book["seq"] >= made[-1].id
        top = client.get(f"{BASE}/book", params={"levels": 1}).json()
        assert top["asks"] == _book_now(market)["asks"][:1] and top["bids"] == book["bids"][:1]

        first = client.get(f"{BASE}/trades", params={"limit": 2}).json()
        rest = client.get(f"{BASE}/trades", params={"cursor": first["next_cursor"]}).json()
        tape = first["items"] + rest["items"]
        assert [{k: t[k] for k in _trade_json(made[0])} for t in tape] == [
            _trade_json(t) for t in made
        ]
        assert rest["next_cursor"] == str(made[-1].id) and tape[0]["executed_at"].endswith("Z")
        after = client.get(f"{BASE}/trades", params={"cursor": rest["next_cursor"]}).json()
        assert after == {"items": [], "next_cursor": rest["next_cursor"]}

        (candle,) = client.get(f"{BASE}/candles", params={"interval": "1d"}).json()["items"]
        assert candle == {
            "start": "2027-01-01T00:00:00Z", "open_minor": "105", "high_minor": "106",
            "low_minor": "100", "close_minor": "100", "volume_units": "15",
            "notional_minor": str(105 * 10 + 106 * 2 + 100 * 3), "trades": 3,
        }  # fmt: skip
        later = {"interval": "1m", "from": "2027-01-01T00:01:00Z"}
        assert client.get(f"{BASE}/candles", params=later).json()["items"] == []

        stats = client.get(f"{BASE}/stats").json()
        assert {k: v for k, v in stats.items() if k not in ("as_of", "last_trade_at")} == {
            "asset_id": ASSET, "currency": "USD", "last_price_minor": "100",
            "open_24h_minor": "105", "high_24h_minor": "106", "low_24h_minor": "100",
            "volume_24h_units": "15", "notional_24h_minor": "1562", "trades_24h": 3,
            "change_24h_minor": "-5", "change_24h_bps": -476, "best_bid_minor": "100",
            "best_ask_minor": "106",
        }  # fmt: skip
        assert client.get("/v1/markets").json() == {
            "items": [
                {
                    "asset_id": ASSET, "currency": "USD", "last_price_minor": "100",
                    "volume_24h_units": "15", "trades_24h": 3, "best_bid_minor": "100",
                    "best_ask_minor": "106",
                }
            ],
            "next_cursor": None,
        }  # fmt: skip
        one = client.get("/v1/markets", params={"limit": 1}).json()
        assert one["next_cursor"] == f"{ASSET}/USD"
        assert (
            client.get("/v1/markets", params={"cursor": one["next_cursor"]}).json()["items"] == []
        )


def test_each_wrong_request_is_its_own_problem(app: FastAPI) -> None:
    unknown = "11111111111111111"
    cases: list[tuple[str, dict[str, Any], dict[str, str], int, str]] = [
        (f"/v1/markets/{ASSET}/USD/book", {"levels": 0}, {}, 422, "request_invalid"),
        (f"/v1/markets/{ASSET}x/USD/book", {}, {}, 422, "asset_id_length"),
        (f"/v1/markets/{ASSET}/usd/trades", {}, {}, 422, "currency_malformed"),
        (f"/v1/markets/{unknown}/USD/stats", {}, {}, 404, "unknown_asset"),
        (f"/v1/markets/{ASSET}/XYZ/book", {}, {}, 404, "unknown_currency"),
        (f"{BASE}/candles", {"interval": "2m"}, {}, 422, "interval_unknown"),
        (f"{BASE}/candles", {"from": "2027-01-01T00:00:00"}, {}, 422, "time_naive"),
        (f"{BASE}/trades", {"cursor": 2**63}, {}, 422, "request_invalid"),
        ("/v1/markets", {"cursor": "no-slash"}, {}, 422, "cursor_malformed"),
    ]
    with TestClient(app) as client:
        for path, params, headers, status, code in cases:
            answer = client.get(path, params=params, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (status, code), path
            assert answer.headers["content-type"] == "application/problem+json"
        # A book no order has opened yet reads empty.
        empty = client.get(f"/v1/markets/{ASSET}/EUR/book").json()
        assert (empty["bids"], empty["asks"]) == ([], [])
        assert client.get(f"/v1/markets/{ASSET}/EUR/stats").json()["last_price_minor"] is None
