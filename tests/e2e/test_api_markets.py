"""Public market data over HTTP: the list of books, depth, tape, candles and statistics
through the real app (no sign-in), their problems, and the live stream over real
loopback HTTP.

The stream is read from uvicorn serving the app in a thread (the in-process clients
wait for a response to end, and a stream does not): a client sees the depth, then the
trades and depths of orders placed through the engine; two apps over one SQLite file,
as two workers, each stream what the other's engine stored; a client that reconnects
with ``Last-Event-ID`` gets what it missed. ``dpn serve`` with two worker processes
over PostgreSQL streams, on every connection, trades another process stored. And
``dpn serve`` told to stop (SIGTERM) with streams open ends them and exits, rather than
wait on them for ever.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.journal.write import Ledger
from market.book import Side
from market.engine import BookKey, MarketEngine, OrderRequest, OrderType, Outcome, TradeRow
from tests.integration.network import ANN, ASSET, BOB, CAT, DAN, build_network

from .signin import MovableClock
from .test_server import _schema_url, start, stop, wait_until_ready

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
        (f"{BASE}/stream", {}, {}, 406, "stream_not_accepted"),
        (f"/v1/markets/{unknown}/USD/stream", {}, SSE, 404, "unknown_asset"),
        (f"{BASE}/stream", {}, SSE | {"Last-Event-ID": "x"}, 422, "request_invalid"),
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


# -- the stream, over real HTTP ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ThreadServer:
    """uvicorn serving ``app`` on a loopback port, in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + WAIT_S
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_S)
        if self.thread.is_alive():  # a stream still open: do not wait on it
            self.server.force_exit = True
            self.thread.join(WAIT_S)


class EventStream:
    """A client reading ``url`` as Server-Sent Events, in a thread: each event is a dict
    of its fields (``event``, ``id``, ``data``, ``retry``), a comment ``{":": text}``."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[dict[str, str] | None] = queue.Queue()
        self.status: int | None = None
        self._socket: socket.socket | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(WAIT_S, connect=5.0))
        self._thread = threading.Thread(
            target=self._read, args=(url, SSE | (headers or {})), daemon=True
        )
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                self._socket = response.extensions["network_stream"].get_extra_info("socket")
                event: dict[str, str] = {}
                for line in response.iter_lines():
                    if not line:
                        if event:
                            self.events.put(event)
                        event = {}
                    elif line.startswith(":"):
                        self.events.put({":": line[1:].strip()})
                    else:
                        field, _, value = line.partition(":")
                        event[field] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass  # closed under it, or the server went away
        finally:
            self.events.put(None)

    def next(self, kind: str) -> dict[str, Any]:
        """The next event named ``kind`` (others are passed over), its data decoded."""
        deadline = time.monotonic() + WAIT_S
        while True:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            assert event is not None, f"the stream ended before a {kind} event"
            if event.get("event") == kind:
                return {"id": int(event["id"]), "data": json.loads(event["data"])}

    def ended(self) -> bool:
        """Whether the stream ends (within the wait), whatever comes before."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                if self.events.get(timeout=max(0.0, deadline - time.monotonic())) is None:
                    return True
            except queue.Empty:
                break
        return False

    def close(self) -> None:
        """Hang up: the reading thread's blocked read returns at once."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(WAIT_S)
        self._client.close()


def _trades_until(stream: EventStream, last_id: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not got or got[-1]["id"] < last_id:
        got.append(stream.next("trade")["data"])
    return got


def _depth_from(stream: EventStream, seq: int) -> dict[str, Any]:
    while True:
        depth = stream.next("depth")
        if depth["id"] >= seq:
            assert depth["data"]["seq"] == depth["id"]
            return {k: depth["data"][k] for k in ("bids", "asks")}


def test_a_stream_shows_the_depth_then_each_trade_and_depth(app: FastAPI) -> None:
    market: MarketEngine = app.state.market
    with ThreadServer(app) as server:
        place(market, ANN, Side.SELL, 105, 10)
        stream = EventStream(f"{server.url}{BASE}/stream")
        try:
            first = stream.next("depth")
            assert first["data"]["asks"] == _book_now(market)["asks"]
            assert stream.status == 200
            made = place(market, DAN, Side.BUY, 106, 4).trades
            made += place(market, CAT, Side.BUY, 105, 1).trades
            got = _trades_until(stream, made[-1].id)
            assert [{k: t[k] for k in _trade_json(made[0])} for t in got] == [
                _trade_json(t) for t in made
            ]
            assert _depth_from(stream, made[-1].id) == _book_now(market)
        finally:
            stream.close()


def test_two_workers_each_stream_what_the_other_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    engines = [make_engine(url), make_engine(url)]
    upgrade(engines[0])
    apps = [create_app(Settings(), engine=e, clock=MovableClock()) for e in engines]
    build_network(apps[0].state.ledger, cash_minor=10**9)
    try:
        with ThreadServer(apps[0]) as one, ThreadServer(apps[1]) as two:
            streams = [EventStream(f"{s.url}{BASE}/stream") for s in (one, two)]
            try:
                for stream in streams:
                    stream.next("depth")
                for placing in apps:  # each stream shows what either worker's engine stored
                    market: MarketEngine = placing.state.market
                    place(market, ANN, Side.SELL, 110, 2)
                    (made,) = place(market, DAN, Side.BUY, 110, 2).trades
                    for stream in streams:
                        got = _trades_until(stream, made.id)[-1]
                        assert (got["id"], got["taker_order_id"]) == (made.id, made.taker_order_id)
                        assert _depth_from(stream, made.id) == _book_now(market)
            finally:
                for stream in streams:
                    stream.close()
    finally:
        for engine in engines:
            engine.dispose()


def test_a_client_that_reconnects_gets_what_it_missed(app: FastAPI) -> None:
    market: MarketEngine = app.state.market
    with ThreadServer(app) as server:
        made = []
        for price in (101, 102, 103):
            place(market, ANN, Side.SELL, price, 1)
            made += place(market, DAN, Side.BUY, price, 1).trades
        seen = str(made[0].id)
        stream = EventStream(f"{server.url}{BASE}/stream", {"Last-Event-ID": seen})
        try:
            got = _trades_until(stream, made[-1].id)
            assert [t["id"] for t in got] == [t.id for t in made[1:]]
            assert _depth_from(stream, made[-1].id) == _book_now(market)
        finally:
            stream.close()


def test_a_server_told_to_stop_ends_its_streams_and_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    build_network(Ledger(engine), cash_minor=10**6)
    engine.dispose()
    server = start(url, tmp_path / "server.log")
    stream = None
    try:
        wait_until_ready(server)
        stream = EventStream(f"{server.base_url}{BASE}/stream")
        stream.next("depth")
        server.process.send_signal(signal.SIGTERM)
        assert stream.ended(), "the stream outlived the server's stop"
        # uvicorn stops, then raises the signal again as it leaves (hence -SIGTERM).
        assert server.process.wait(timeout=WAIT_S) in (0, -signal.SIGTERM), server.output()
    finally:
        if stream is not None:
            stream.close()
        stop(server)


STREAMS_ON_TWO_WORKERS = 4  # the kernel spreads new connections over the workers


@pytest.mark.postgres
def test_every_worker_streams_what_another_process_stored(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    # dpn serve with two worker processes over PostgreSQL; the orders are placed by an
    # engine in this process, a third worker of sorts: no stream's worker saw them.
    build_network(Ledger(postgres_engine), cash_minor=10**6)
    server = start(_schema_url(postgres_engine), tmp_path / "server.log", workers=2)
    market = MarketEngine(Ledger(postgres_engine))
    streams: list[EventStream] = []
    try:
        wait_until_ready(server)
        streams = [
            EventStream(f"{server.base_url}{BASE}/stream") for _ in range(STREAMS_ON_TWO_WORKERS)
        ]
        for stream in streams:
            stream.next("depth")
        place(market, ANN, Side.SELL, 120, 3)
        made = place(market, DAN, Side.BUY, 120, 2).trades
        for stream in streams:
            assert [t["id"] for t in _trades_until(stream, made[-1].id)] == [t.id for t in made]
            assert _depth_from(stream, made[-1].id) == _book_now(market)
        server.process.send_signal(signal.SIGTERM)  # the supervisor stops its workers
        assert all(stream.ended() for stream in streams), server.output()
        assert server.process.wait(timeout=WAIT_S) == 0, server.output()
    finally:
        market.stop()
        for stream in streams:
            stream.close()
        stop(server)
