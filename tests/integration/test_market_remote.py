"""The engine process's wire (``market.engine.remote``): a ``RemoteEngine`` answers as the
``MarketEngine`` it reaches would, refusals keep their class, code and detail, many
requests share one connection, a caller without the key reads nothing, and when the
engine goes, requests in flight fail with 503 ``market_unavailable`` and the next one
reaches the engine that replaced it; the same for requests asked on an event loop, over
the loop's own link (``RemoteEngine.ask``). On SQLite and PostgreSQL, each through a real Unix
socket; the server runs in a thread here (``tests/e2e/test_market_engine_process.py``
runs it as ``dpn serve``'s process)."""

from __future__ import annotations

import asyncio
import pickle
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from ledger.core import AccountKey, Entry, EntryKind
from ledger.core.accounts import member_holder, units_of
from ledger.core.errors import Forbidden, LedgerError, NotFound, Refused, Unavailable
from ledger.db.schema import JournalEntry, table
from ledger.journal.reads import account_state
from ledger.journal.write import Ledger
from market.book import Side
from market.engine import CancelRequest, MarketEngine, OrderRequest, OrderType, Outcome
from market.engine.remote import FRAME_BYTES_MAX, EngineServer, RemoteEngine, _framed, _LoopLink
from market.engine.requests import TermsRequest, UnitTransferRequest
from market.engine.session import TermsSet

from .network import ANN, ASSET, BOB, DAN, build_network

KEY = b"k" * 32
_T = TypeVar("_T")
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


@contextmanager
def _deaf_engine(tmp_path: Path) -> Iterator[RemoteEngine]:
    """A link to an "engine" that accepts the connection and never reads from it."""
    address = str(tmp_path / "deaf.sock")
    listener = Listener(address, family="AF_UNIX", authkey=KEY)
    accepted: list[Connection] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    remote = RemoteEngine(address, KEY, send_timeout_s=0.2)
    try:
        yield remote
    finally:
        remote.stop()
        listener.close()
        for conn in accepted:
            conn.close()


def test_a_send_to_an_engine_that_stopped_reading_gives_up(tmp_path: Path) -> None:
    futures = []
    started = time.monotonic()
    with _deaf_engine(tmp_path) as remote:
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


# -- the event loop's own link (``RemoteEngine.ask``) -------------------------------------


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def _outcome(answer: object) -> Outcome:
    assert isinstance(answer, Outcome), answer
    return answer


def test_asked_on_a_loop_orders_trade_and_answer_as_submitted_ones(wire: Wire) -> None:
    async def trade() -> tuple[Outcome, Outcome, Outcome, _LoopLink | None]:
        sell = _outcome(await wire.remote.ask(_order(ANN, Side.SELL, 100, 5, "s1")))
        buy = _outcome(await wire.remote.ask(_order(BOB, Side.BUY, 101, 3, "b1")))
        again = _outcome(await wire.remote.ask(_order(BOB, Side.BUY, 101, 3, "b1")))
        return sell, buy, again, wire.remote._loop_link

    sell, buy, again, link = _run(trade())
    assert link is not None and wire.remote._link is None  # the loop's own, no thread's
    assert sell.order.status == "open" and buy.order.status == "filled"
    [fill] = buy.trades
    assert (fill.price_minor, fill.qty_units, fill.maker_order_id) == (100, 3, sell.order.id)
    assert again.replayed and again.order.id == buy.order.id
    # The same requests submitted from a thread give the same stored answers.
    assert _answer(wire.remote.submit(_order(BOB, Side.BUY, 101, 3, "b1"))).order == again.order


def test_every_kind_of_request_crosses_the_wire(wire: Wire) -> None:
    """Unit transfers and terms too, not only orders (``POST /v1/transfers`` of units
    asks the engine: with several workers, over the wire)."""
    wire.remote.start()
    move = UnitTransferRequest(ANN, DAN, ASSET, 7, "move-1", "test", memo="to Dan")
    moved = wire.remote.submit(move).result(timeout=30)
    assert isinstance(moved, Entry) and moved.kind == EntryKind.TRANSFER

    async def again() -> object:
        return await wire.remote.ask(move)  # the same key: the stored entry

    assert _run(again()) == moved
    refused = UnitTransferRequest(DAN, ANN, ASSET, 8, "move-2", "test")
    with pytest.raises(Refused) as caught:
        wire.remote.submit(refused).result(timeout=30)
    assert caught.value.code == "insufficient_units"
    terms = wire.remote.submit(TermsRequest(ASSET, 1, 1, "terms-1", "admin")).result(timeout=30)
    assert isinstance(terms, TermsSet) and terms.asset_id == ASSET
    with wire.engine.ledger.engine.connect() as conn:
        assert account_state(conn, AccountKey(member_holder(DAN), units_of(ASSET))).balance == 7


def test_refusals_asked_on_a_loop_keep_their_class_code_and_detail(wire: Wire) -> None:
    before = _entries(wire.engine.ledger)
    poor = _order(ANN, Side.BUY, 1_000, 1_000_000, "poor")

    async def refused() -> LedgerError:
        with pytest.raises(Refused) as caught:
            await wire.remote.ask(poor)
        return caught.value

    remote = _run(refused())
    with pytest.raises(Refused) as local:
        wire.engine.submit(poor).result(timeout=30)
    assert (remote.code, remote.message, remote.detail) == (
        local.value.code,
        local.value.message,
        local.value.detail,
    ) and remote.code == "insufficient_funds"
    assert _entries(wire.engine.ledger) == before


def test_many_requests_asked_together_share_the_loop_link(wire: Wire) -> None:
    count = THREADS * EACH

    async def trade() -> tuple[list[Outcome], set[int]]:
        links: set[int] = set()

        async def one(n: int) -> Outcome:
            owner, side = (ANN, Side.SELL) if n % 2 else (BOB, Side.BUY)
            answer = await wire.remote.ask(_order(owner, side, 100 + n % 3, 1, f"a{n}"))
            links.add(id(wire.remote._loop_link))
            return _outcome(answer)

        return list(await asyncio.gather(*(one(n) for n in range(count)))), links

    answers, links = _run(trade())
    assert len({a.order.id for a in answers}) == count
    assert len(links) == 1  # the first request connected; every other one waited for it
    # Each trade is told once, to its taker, and its maker was answered too.
    trades = [(a.order.id, t) for a in answers for t in a.trades]
    assert trades and all(t.taker_order_id == taker for taker, t in trades)
    assert len({t.id for _, t in trades}) == len(trades)
    assert {t.maker_order_id for _, t in trades} <= {a.order.id for a in answers}


def test_a_second_loop_is_answered_while_the_first_holds_the_link(wire: Wire) -> None:
    first_ready, release = threading.Event(), threading.Event()
    answers: list[Outcome] = []

    async def hold() -> None:
        answers.append(_outcome(await wire.remote.ask(_order(ANN, Side.SELL, 100, 1, "h1"))))
        first_ready.set()
        await asyncio.to_thread(release.wait, 30)

    holder = threading.Thread(target=lambda: _run(hold()))
    holder.start()
    try:
        assert first_ready.wait(30)
        held = wire.remote._loop_link
        answers.append(_outcome(_run(wire.remote.ask(_order(BOB, Side.BUY, 100, 1, "h2")))))
        assert wire.remote._loop_link is held  # the second loop went through ``submit``
    finally:
        release.set()
        holder.join(30)
    assert [a.order.status for a in answers] == ["open", "filled"]


def test_a_loop_link_without_the_key_is_refused(wire: Wire) -> None:
    before = _entries(wire.engine.ledger)
    stranger = RemoteEngine(wire.address, b"not the key")

    async def ask() -> Unavailable:
        with pytest.raises(Unavailable) as refused:
            await stranger.ask(_order(ANN, Side.SELL, 100, 1, "stranger"))
        return refused.value

    assert _run(ask()).code == "market_unavailable"
    assert _entries(wire.engine.ledger) == before


def test_asked_in_flight_fail_when_the_engine_goes_and_a_new_one_answers(
    wire: Wire, ledger: Ledger
) -> None:
    async def in_flight() -> Unavailable:
        with wire.engine._lock:  # the engine's next batch waits: the request stays in flight
            waiting = asyncio.ensure_future(
                wire.remote.ask(_order(ANN, Side.SELL, 100, 2, "in-flight"))
            )
            deadline = time.monotonic() + 30
            while wire.engine.status().waiting == 0:  # it reached the engine
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            wire.server.close()  # the engine process goes away
            with pytest.raises(Unavailable) as gone:
                await waiting
        return gone.value

    gone = _run(in_flight())
    assert gone.code == "market_unavailable" and "Idempotency-Key" in gone.message
    wire.engine.stop()
    replaced = _wire(ledger, wire.address)
    try:
        # A new loop, a new link: the first engine stored the request after all.
        again = _outcome(_run(wire.remote.ask(_order(ANN, Side.SELL, 100, 2, "in-flight"))))
        assert again.replayed
    finally:
        replaced.server.close()
        replaced.engine.stop()


def test_asked_on_a_loop_while_stopping_fail_and_later_ones_at_once(wire: Wire) -> None:
    async def stopped() -> tuple[Unavailable, Unavailable]:
        with wire.engine._lock:
            waiting = asyncio.ensure_future(
                wire.remote.ask(_order(ANN, Side.SELL, 100, 1, "before-stop"))
            )
            while wire.engine.status().waiting == 0:
                await asyncio.sleep(0.01)
            wire.remote.stop()
            with pytest.raises(Unavailable) as first:
                await waiting
        with pytest.raises(Unavailable) as later:
            await wire.remote.ask(_order(ANN, Side.SELL, 100, 1, "after-stop"))
        return first.value, later.value

    first, later = _run(stopped())
    assert "this worker is stopping" in first.message
    assert "this worker is stopping" in later.message


def test_a_loop_send_to_an_engine_that_stopped_reading_gives_up(tmp_path: Path) -> None:
    async def flood(remote: RemoteEngine) -> list[BaseException | None]:
        asked = []
        for n in range(2_000):  # far more than the socket's buffers hold
            asked.append(
                asyncio.ensure_future(
                    remote.ask(_order(ANN, Side.SELL, 1, 1, "x" * 10_000 + str(n)))
                )
            )
            await asyncio.sleep(0)
        done = await asyncio.gather(*asked, return_exceptions=True)
        return [a if isinstance(a, BaseException) else None for a in done]

    started = time.monotonic()
    with _deaf_engine(tmp_path) as remote:
        failures = _run(flood(remote))
    assert time.monotonic() - started < 30
    assert all(isinstance(f, Unavailable) and f.code == "market_unavailable" for f in failures)
    assert any("read nothing for 0.2 s" in str(f) for f in failures)


def test_a_loop_link_reads_answers_however_the_bytes_arrive() -> None:
    """Frames split at every byte, several in one read, and a length no engine sends."""
    loop = asyncio.new_event_loop()
    try:
        link = _LoopLink(loop, 1.0)
        sent: list[bytes] = []
        link.connection_made(_Recorder(sent))
        first, second, third = (link.ask("submit", None) for _ in range(3))
        frames = _framed(pickle.dumps([(1, True, "one")])) + _framed(
            pickle.dumps([(3, False, NotFound("x", "gone")), (2, True, "two")])
        )
        for byte in frames:
            link.data_received(bytes([byte]))
        assert (first.result(), second.result()) == ("one", "two")
        assert isinstance(third.exception(), NotFound)
        assert [pickle.loads(frame[4:])[0] for frame in sent] == [1, 2, 3]  # tags, in order
        fourth = link.ask("submit", None)
        link.data_received(struct.pack("!i", -1) + struct.pack("!Q", FRAME_BYTES_MAX + 1))
        error = fourth.exception()
        assert isinstance(error, Unavailable) and "bytes" in str(error)
        assert not link.open
    finally:
        loop.close()


class _Recorder(asyncio.Transport):
    """A transport that keeps what is written."""

    def __init__(self, sent: list[bytes]) -> None:
        super().__init__()
        self._sent = sent

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._sent.append(bytes(data))

    def abort(self) -> None:
        pass


def test_a_request_given_up_on_the_thread_link_leaves_the_link_answering(wire: Wire) -> None:
    """A waiting request cancelled (its HTTP request gone, as ``asyncio.wrap_future``
    cancels the future) is skipped when its answer comes; the link keeps reading."""
    with wire.engine._lock:  # the engine's batch waits: the request is still unanswered
        given_up = wire.remote.submit(_order(ANN, Side.SELL, 100, 1, "given-up"))
        assert given_up.cancel()
    later = _answer(wire.remote.submit(_order(ANN, Side.SELL, 100, 1, "later")))
    assert later.order.status == "open"
    # The given-up order was stored all the same: asked again, it is replayed.
    again = _answer(wire.remote.submit(_order(ANN, Side.SELL, 100, 1, "given-up")))
    assert again.replayed


def test_a_request_given_up_on_the_loop_link_leaves_the_link_answering(wire: Wire) -> None:
    given_up = threading.Event()
    answers: list[Outcome] = []

    async def give_up_then_ask() -> None:
        asked = asyncio.ensure_future(wire.remote.ask(_order(ANN, Side.SELL, 100, 1, "gone")))
        while wire.remote._loop_link is None or not wire.remote._loop_link._pending:
            await asyncio.sleep(0.001)  # until it is sent and waits for its answer
        asked.cancel()
        given_up.set()
        answers.append(_outcome(await wire.remote.ask(_order(ANN, Side.SELL, 100, 1, "after"))))

    asker = threading.Thread(target=lambda: _run(give_up_then_ask()))
    with wire.engine._lock:  # the engine's batch waits: the first request is unanswered
        asker.start()
        assert given_up.wait(30)
    asker.join(timeout=30)
    [after] = answers
    assert after.order.status == "open"
