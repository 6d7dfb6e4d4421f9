"""The engine process's wire (``market.engine.remote``): a ``RemoteEngine`` answers as the
``MarketEngine`` it reaches would, refusals keep their class, code and detail, many
requests share one connection, a caller without the key reads nothing, and when the
engine goes, requests in flight fail with 503 ``market_unavailable`` and the next one
reaches the engine that replaced it. On SQLite and PostgreSQL, each through a real Unix
socket; the server runs in a thread here (``tests/e2e/test_market_engine_process.py``
runs it as ``dpn serve``'s process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.core.errors import Forbidden, LedgerError, NotFound, Refused, Unavailable
from ledger.db.schema import JournalEntry, table
from ledger.journal.write import Ledger
from market.book import Side
from market.engine import CancelRequest, MarketEngine, OrderRequest, OrderType, Outcome
from market.engine.remote import EngineServer, RemoteEngine

from .network import ANN, ASSET, BOB, build_network

KEY = b"k" * 32
THREADS = 8
EACH = 25


@dataclass
class Wire:
    """An engine served on a socket, and a worker's handle on it."""

    engine: MarketEngine
    server: EngineServer
    remote: RemoteEngine
    address: str

    def serve(self) -> None:
        threading.Thread(target=self.server.serve, daemon=True).start()


def _wire(ledger: Ledger, address: str) -> Wire:
    engine = MarketEngine(ledger)
    wire = Wire(engine, EngineServer(engine, address, KEY), RemoteEngine(address, KEY), address)
    wire.serve()
    return wire


@pytest.fixture
def wire(ledger: Ledger, tmp_path: Path) -> Iterator[Wire]:
    build_network(ledger, cash_minor=1_000_000)
    wire = _wire(ledger, str(tmp_path / "engine.sock"))
    yield wire
    wire.remote.stop()
    wire.server.close()
    wire.engine.stop()


def _order(owner: str, side: Side, price: int, qty: int, key: str) -> OrderRequest:
    return OrderRequest(
        owner, ASSET, "USD", side, OrderType.LIMIT, key, "test", price_minor=price, qty_units=qty
    )


def _answer(future: Future[Any]) -> Outcome:
    outcome = future.result(timeout=30)
    assert isinstance(outcome, Outcome), outcome
    return outcome


def _entries(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table(JournalEntry))).scalar_one())


def test_orders_through_the_wire_trade_and_answer_as_the_engine(wire: Wire) -> None:
    wire.remote.start()
    sell = _answer(wire.remote.submit(_order(ANN, Side.SELL, 100, 5, "s1")))
    assert sell.order.status == "open" and sell.order.owner == ANN
    buy = _answer(wire.remote.submit(_order(BOB, Side.BUY, 101, 3, "b1")))
    assert buy.order.status == "filled" and buy.order.filled_units == 3
    [trade] = buy.trades
    assert (trade.price_minor, trade.qty_units, trade.maker_order_id) == (100, 3, sell.order.id)
    cancelled = _answer(wire.remote.submit(CancelRequest(ANN, sell.order.id, "c1", "test")))
    assert cancelled.order.status == "cancelled" and cancelled.order.remaining_units == 0
    # The same key again: the stored answer, as the engine in this process gives it.
    again = _answer(wire.remote.submit(_order(BOB, Side.BUY, 101, 3, "b1")))
    assert again.replayed and again.order.id == buy.order.id
    status = wire.remote.status()
    assert status.running and status.last_error is None
    assert status.applied_seq == wire.engine.status().applied_seq > 0


def test_refusals_keep_their_class_code_and_detail(wire: Wire) -> None:
    before = _entries(wire.engine.ledger)
    cases: list[tuple[object, type[LedgerError], str]] = [
        (_order(ANN, Side.BUY, 1_000, 1_000_000, "poor"), Refused, "insufficient_funds"),
        (
            OrderRequest(ANN, ASSET, "XTS", Side.BUY, OrderType.LIMIT, "x", "t", 1, 1),
            NotFound,
            "unknown_currency",
        ),
    ]
    for request, kind, code in cases:
        with pytest.raises(kind) as remote:
            wire.remote.submit(request).result(timeout=30)  # type: ignore[arg-type]
        with pytest.raises(kind) as local:
            wire.engine.submit(request).result(timeout=30)  # type: ignore[arg-type]
        assert remote.value.code == local.value.code == code
        assert (remote.value.message, remote.value.detail) == (
            local.value.message,
            local.value.detail,
        )
    resting = _answer(wire.remote.submit(_order(ANN, Side.SELL, 500, 1, "ann-rests")))
    with pytest.raises(Forbidden) as theirs:
        wire.remote.submit(CancelRequest(BOB, resting.order.id, "bob-cancels", "t")).result(30)
    assert theirs.value.code == "not_your_order"
    assert _entries(wire.engine.ledger) == before + 1  # only the resting order's


def test_many_requests_in_flight_share_one_connection(wire: Wire) -> None:
    answers: list[Outcome] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def trade(n: int) -> None:
        try:
            owner, side = (ANN, Side.SELL) if n % 2 else (BOB, Side.BUY)
            futures = [
                wire.remote.submit(_order(owner, side, 100 + i % 3, 1, f"t{n}-{i}"))
                for i in range(EACH)
            ]
            got = [_answer(f) for f in futures]
            with lock:
                answers.extend(got)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=trade, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(answers) == THREADS * EACH
    assert len({a.order.id for a in answers}) == THREADS * EACH
    with wire.engine.ledger.engine.connect() as conn:
        placed = conn.execute(
            select(func.count())
            .select_from(table(JournalEntry))
            .where(table(JournalEntry).c.kind == "order.place")
        ).scalar_one()
    assert placed == THREADS * EACH


def test_a_caller_without_the_key_is_refused_and_changes_nothing(wire: Wire) -> None:
    before = _entries(wire.engine.ledger)
    stranger = RemoteEngine(wire.address, b"not the key")
    with pytest.raises(Unavailable) as refused:
        stranger.submit(_order(ANN, Side.SELL, 100, 1, "stranger")).result(timeout=30)
    assert refused.value.code == "market_unavailable"
    assert not stranger.status().running
    assert _entries(wire.engine.ledger) == before
    assert _answer(wire.remote.submit(_order(ANN, Side.SELL, 100, 1, "owner"))).order.id > 0


def test_a_message_that_is_not_a_market_request_is_refused(wire: Wire) -> None:
    before = _entries(wire.engine.ledger)
    conn = Client(wire.address, family="AF_UNIX", authkey=KEY)
    try:
        conn.send((7, "submit", {"asset_id": ASSET}))
        conn.send((8, "drop", None))
        replies = conn.recv() + (conn.recv() if conn.poll(5) else [])
    finally:
        conn.close()
    assert {(tag, ok, refused.code) for tag, ok, refused in replies} == {
        (7, False, "market_request"),
        (8, False, "market_request"),
    }
    assert _entries(wire.engine.ledger) == before


def test_requests_in_flight_fail_when_the_engine_goes_and_a_new_one_answers(
    wire: Wire, ledger: Ledger
) -> None:
    wire.remote.start()
    with wire.engine._lock:  # the engine's next batch waits: the request stays in flight
        waiting = wire.remote.submit(_order(ANN, Side.SELL, 100, 2, "in-flight"))
        deadline = time.monotonic() + 30
        while wire.engine.status().waiting == 0:  # it reached the engine
            assert time.monotonic() < deadline
            time.sleep(0.01)
        wire.server.close()  # the engine process goes away
        with pytest.raises(Unavailable) as gone:
            waiting.result(timeout=30)
    assert gone.value.code == "market_unavailable"
    assert "Idempotency-Key" in gone.value.message
    # A new engine on the same socket; the worker's handle connects again by itself.
    wire.engine.stop()
    replaced = _wire(ledger, wire.address)
    try:
        again = _answer(wire.remote.submit(_order(ANN, Side.SELL, 100, 2, "in-flight")))
        # The first engine stored the request after all: asked again, it is that order.
        assert again.replayed
        assert wire.remote.status().running
    finally:
        replaced.server.close()
        replaced.engine.stop()


def test_a_send_to_an_engine_that_stopped_reading_gives_up(tmp_path: Path) -> None:
    address = str(tmp_path / "deaf.sock")
    listener = Listener(address, family="AF_UNIX", authkey=KEY)
    accepted: list[Connection] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    remote = RemoteEngine(address, KEY, send_timeout_s=0.2)
    futures = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 20:  # until the socket's buffers are full
            future = remote.submit(_order(ANN, Side.SELL, 100, 1, "x" * 10_000))
            futures.append(future)
            if future.done():
                break
        assert futures[-1].done(), "every send went through: the engine never read"
        for future in futures:  # the one refused, and every one waiting on that link
            with pytest.raises(Unavailable) as gone:
                future.result(timeout=5)
            assert gone.value.code == "market_unavailable"
    finally:
        remote.stop()
        listener.close()
        for conn in accepted:
            conn.close()
