"""The one engine process of ``dpn serve --workers 2`` (``market.engine.remote``), killed
(SIGKILL) while six clients trade and lease (offers and bids on two quarters and the half
year they make) through both workers on PostgreSQL.

At once ``/readyz`` says 503 ``market_unavailable``; each request in flight on the dead
engine is answered 503 ``market_unavailable``, and its client asks again with the same
Idempotency-Key until it is answered (the order the dead engine stored, or a new one).
The supervisor starts a new engine, which rebuilds its books; the workers reach it by
themselves and the clients trade on. Then nothing acknowledged is lost or duplicated
(``check_acknowledged``), every invariant of the market holds (``check_market``, lease
books and the encumbrance of leased units included), the new engine holds as many open
orders as the database, on every book, and ``dpn verify`` is clean.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from .market_world import (
    ASSET,
    HTTP_TIMEOUT_S,
    Attempt,
    Trader,
    check_acknowledged,
    check_market,
    engines_agree,
    finished,
    schema_url,
    seed,
    sign_in_all,
    verify_cli,
)
from .signin import wallet
from .test_server import _engine_of, _workers_of, start, stop, wait_until_ready

MEMBERS = tuple(wallet(n) for n in range(141, 147))
KILL_AFTER_ACKS = 150
AFTER_ACKS = 150  # answers after the new engine is up
ACKS_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
RETRY_PAUSE_S = 0.05


class Persistent(Trader):
    """A trader that asks again, with the same key, whatever the engine could not
    answer (503 ``market_unavailable``), counting those answers."""

    unavailable = 0

    def once(self, client: httpx.Client, attempt: Attempt) -> bool:
        self.attempts.append(attempt)
        while True:
            try:
                answer = attempt.send(client, self.headers)
            except httpx.TransportError:
                return False
            if answer.status_code != 503:
                break
            assert answer.json()["code"] == "market_unavailable", answer.text
            self.unavailable += 1
            time.sleep(RETRY_PAUSE_S)
        self.file(attempt, answer)
        return True


def _answered(traders: list[Persistent]) -> int:
    return sum(1 for t in traders for a in list(t.attempts) if a.status is not None)


def _until(traders: list[Persistent], count: int, server_output: str = "") -> None:
    deadline = time.monotonic() + ACKS_TIMEOUT_S
    while _answered(traders) < count:
        assert time.monotonic() < deadline, server_output
        assert [t.failure for t in traders if t.failure] == []
        time.sleep(0.02)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads Linux /proc")
def test_a_killed_engine_process_is_replaced_and_loses_nothing(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    url = schema_url(postgres_engine)
    world = seed(postgres_engine, MEMBERS, units_each=100_000, cash_each=50_000_000)
    server = start(url, tmp_path / "server.log", workers=2)
    try:
        wait_until_ready(server, READY_TIMEOUT_S)
        [engine_pid] = _engine_of(server)
        workers = sorted(_workers_of(server))
        assert len(workers) == 2 and engine_pid not in workers
        headers = sign_in_all(server.base_url, world)
        stop_now = threading.Event()
        traders = [
            Persistent(server.base_url, world, n, headers[n], f"p{n}", stop_now, amend=True)
            for n in range(len(MEMBERS))
        ]
        for trader in traders:
            trader.start()
        _until(traders, KILL_AFTER_ACKS, server.output())

        os.kill(engine_pid, signal.SIGKILL)
        ready = httpx.get(f"{server.base_url}/readyz", timeout=HTTP_TIMEOUT_S)
        assert ready.status_code == 503, ready.text
        assert ready.json()["reason"] == "market_unavailable", ready.text
        wait_until_ready(server, READY_TIMEOUT_S)
        [replaced] = _engine_of(server)
        assert replaced != engine_pid
        assert sorted(_workers_of(server)) == workers  # the workers lived on
        _until(traders, _answered(traders) + AFTER_ACKS, server.output())

        attempts = finished(traders, stop_now)
        replayed = check_market(postgres_engine, world)
        engines_agree(server.base_url, replayed.resting)
        # Units move through the engine process too (a transfer keeps leased units).
        for n in range(4):  # a connection each: the kernel spreads them over both workers
            moved = httpx.post(
                f"{server.base_url}/v1/transfers",
                json={
                    "recipient": world.members[1].address,
                    "instrument": f"units:{ASSET}",
                    "amount": "1",
                },
                headers=headers[0] | {"Idempotency-Key": f"units-{n}"},
                timeout=HTTP_TIMEOUT_S,
            )
            assert moved.status_code == 201, moved.text
    finally:
        stop(server)
    check_acknowledged(postgres_engine, world, attempts)
    verify_cli(url)
    leases = sum(len(m) for k, m in replayed.trades.items() if k.term)
    print(
        f"\n{len(attempts)} requests ({sum(a.lease for a in attempts)} lease orders, {leases}"
        f" leases), {sum(t.unavailable for t in traders)} answered 503 market_unavailable"
        " and asked again"
    )
