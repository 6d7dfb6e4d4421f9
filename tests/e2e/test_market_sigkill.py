"""A market server killed mid-stream (SIGKILL) loses nothing it acknowledged and
duplicates nothing, on a SQLite file (one worker) and on PostgreSQL (two workers).

Six members trade on one book and lease on three lease books (two quarters and the half
year they make) from six client threads, each on its own connection: crossing and
resting limit orders (GTC, IOC, FOK, post-only, GTD expiring within three seconds),
market orders, lease offers and bids of the same kinds, cancels of both and amendments,
every answer recorded. Once 200 are answered, five more orders (a lease offer and a bid
among them) are sent on connections never read (for their clients the network lost the answers) and,
once they are stored, the whole server is SIGKILLed, requests in flight: some requests
surely were kept but never answered. Then, on the database as the crash left it: every
invariant holds (``check_market``: verify clean, the order log replays, book by book,
into exactly the stored trades, leases and open orders, holds equal the open orders'
needs, balances rebuilt from the trades and rents, nothing created or lost, no unit
leased out twice or sold while leased) and every acknowledged request is stored as
answered. The server restarts on the same database; each request whose answer never
came (lease orders too) is sent again with its Idempotency-Key: one the crash kept
answers the very order stored, one it lost is placed anew (or refused), and a second
retry answers the same again. The restarted server trades and leases on (and expires
the GTD orders due meanwhile); then the depth it serves is the replayed books' depth,
each worker's engine holds as many open orders as the database, and ``dpn verify`` is
clean.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from ledger.db.engine import read_connection
from ledger.db.schema import JournalEntry, MarketOrder, table
from market.engine.lease_terms import next_terms

from .market_world import (
    ASSET,
    CURRENCY,
    HTTP_TIMEOUT_S,
    LEASE_MID,
    MID,
    REFUSALS,
    Attempt,
    Trader,
    World,
    check_acknowledged,
    check_market,
    engines_agree,
    journal_key,
    kill,
    schema_url,
    seed,
    served_book,
    served_depth,
    sign_in_all,
    stored_keys,
    verify_cli,
)
from .signin import wallet
from .test_server import Server, start, stop, wait_until_ready

MEMBERS = tuple(wallet(n) for n in range(131, 137))
KILL_AFTER_ACKS = 200  # answers received before the kill: mid-stream, well under way
ACKS_TIMEOUT_S = 30.0
BURST_S = 1.5  # trading on the restarted server
QUIET_TIMEOUT_S = 15.0
READY_TIMEOUT_S = 60.0  # two workers start slowly on a busy machine
_LIMIT = {"asset_id": ASSET, "currency": CURRENCY, "type": "limit"}
UNREAD = (  # a buy and a sell that likely trade on arrival, a sell that likely rests
    _LIMIT | {"side": "buy", "price_minor": str(MID + 6), "qty_units": "7"},
    _LIMIT | {"side": "sell", "price_minor": str(MID - 6), "qty_units": "7"},
    _LIMIT | {"side": "sell", "price_minor": str(MID + 6), "qty_units": "3"},
)


def _unread_leases() -> tuple[dict[str, str], ...]:
    """An offer and a bid that lease on arrival (or the first rests), on a term the
    traders never use: neither can be refused as a lease to oneself."""
    term = next_terms("quarter", int(time.time() * 1000), 3)[2]
    lease = _LIMIT | {"term": term, "qty_units": "9"}
    return (
        lease | {"side": "offer", "price_minor": str(LEASE_MID - 2)},
        lease | {"side": "bid", "price_minor": str(LEASE_MID + 2)},
    )


def _url(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return engine.url.render_as_string(hide_password=False)
    return schema_url(engine)


def _trade(
    server: Server, world: World, headers: list[dict[str, str]], prefix: str
) -> list[Trader]:
    stop_now = threading.Event()
    traders = [
        Trader(
            server.base_url, world, n, headers[n], f"{prefix}{n}", stop_now, gtd=True, amend=True
        )
        for n in range(len(world.members))
    ]
    for trader in traders:
        trader.start()
    return traders


def _answered(traders: list[Trader]) -> int:
    return sum(1 for t in traders for a in list(t.attempts) if a.status is not None)


def _join(traders: list[Trader]) -> list[Attempt]:
    for trader in traders:
        trader.join(timeout=HTTP_TIMEOUT_S)
        assert not trader.is_alive(), trader.name
    return [a for t in traders for a in t.attempts]


def _retry(server: Server, world: World, headers: list[dict[str, str]], lost: list[Attempt],
           kept: dict[str, tuple[int, str]], head: int) -> None:  # fmt: skip
    """Send each unanswered request again, twice: the first retry answers the order the
    crash kept, or a new one (or a refusal); the second answers as the first."""
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT_S) as client:
        for attempt in lost:
            stored = kept.get(journal_key(world, attempt))
            attempt.record(attempt.send(client, headers[attempt.member]))
            if stored is not None:  # stored before the crash: answered as stored
                assert attempt.ok, attempt
                expected = stored[0] if attempt.action == "place" else attempt.order_id
                assert attempt.answer["id"] == expected, (attempt, stored)
            elif attempt.ok:  # lost in the crash: done now, as a new entry
                if attempt.action == "place":
                    assert attempt.answer["id"] > head, (attempt, head)
            else:  # refused now: a GTD order's time may have passed meanwhile
                codes = REFUSALS | {"order_expired"}
                assert attempt.status == 422 and attempt.answer["code"] in codes, attempt
                continue
            again = attempt.send(client, headers[attempt.member])
            assert again.status_code == attempt.status, again.text
            assert again.json()["id"] == attempt.answer["id"], again.text


def _blind(server: Server, headers: dict[str, str], attempt: Attempt) -> socket.socket:
    """Send ``attempt`` on a connection of its own and never read the answer: for the
    client, the network lost it."""
    host, port = server.base_url.removeprefix("http://").split(":")
    body = json.dumps(attempt.body).encode()
    head = {
        "Host": f"{host}:{port}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Idempotency-Key": attempt.key,
    } | headers
    connection = socket.create_connection((host, int(port)))
    lines = [f"POST {attempt.path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    connection.sendall("\r\n".join(lines).encode() + body)
    return connection


def _stored(engine: Engine, world: World, attempts: list[Attempt]) -> None:
    """Wait until each of ``attempts`` is in the journal."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while True:
        with read_connection(engine) as conn:
            keys = stored_keys(conn)
        if all(journal_key(world, a) in keys for a in attempts):
            return
        assert time.monotonic() < deadline, "the unread requests were never stored"
        time.sleep(0.02)


def _quiet(engine: Engine) -> None:
    """Wait until no GTD order due within a minute is open: the engine has expired each
    on time (a lease order rests as GTD until its term ends, weeks ahead)."""
    orders = table(MarketOrder)
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while True:
        soon_ms = int(time.time() * 1000) + 60_000
        with read_connection(engine) as conn:
            gtd = conn.execute(
                select(func.count())
                .select_from(orders)
                .where(
                    orders.c.status == "open",
                    orders.c.time_in_force == "gtd",
                    orders.c.expires_at_ms <= soon_ms,
                )
            ).scalar_one()
        if not gtd:
            return
        assert time.monotonic() < deadline, f"{gtd} GTD orders still open"
        time.sleep(0.1)


def test_a_killed_server_loses_and_duplicates_nothing(engine: Engine, tmp_path: Path) -> None:
    url = _url(engine)
    world = seed(engine, MEMBERS, units_each=100_000, cash_each=50_000_000)
    workers = 1 if engine.dialect.name == "sqlite" else 2

    first = start(url, tmp_path / "first.log", workers=workers)
    connections: list[socket.socket] = []
    try:
        wait_until_ready(first, READY_TIMEOUT_S)
        headers = sign_in_all(first.base_url, world)
        traders = _trade(first, world, headers, "a")
        deadline = time.monotonic() + ACKS_TIMEOUT_S
        while _answered(traders) < KILL_AFTER_ACKS:
            assert time.monotonic() < deadline, first.output()
            assert all(t.is_alive() for t in traders), [t.failure for t in traders]
            time.sleep(0.01)
        # Orders whose answers the clients never read: stored, then the server dies.
        unread = [Attempt(n, "place", f"unread-{n}", body) for n, body in enumerate(UNREAD)]
        unread += [
            Attempt(len(UNREAD) + n, "place", f"unread-lease-{n}", body, lease=True)
            for n, body in enumerate(_unread_leases())
        ]
        connections = [_blind(first, headers[a.member], a) for a in unread]
        _stored(engine, world, unread)
        kill(first)  # and requests in flight
        for trader in traders:
            trader.stop.set()
        before = _join(traders) + unread
    finally:
        stop(first)
        for connection in connections:
            connection.close()
    assert [t.failure for t in traders if t.failure] == []
    lost = [a for a in before if a.status is None]
    assert lost, "the kill caught no request in flight"

    # The database as the crash left it: whole, and holding every acknowledged request.
    check_market(engine, world)
    check_acknowledged(engine, world, before)
    with read_connection(engine) as conn:
        kept = stored_keys(conn)
        head = conn.execute(select(func.max(table(JournalEntry).c.seq))).scalar_one()

    second = start(url, tmp_path / "second.log", workers=workers)
    try:
        wait_until_ready(second, READY_TIMEOUT_S)
        _retry(second, world, headers, lost, kept, head)
        traders = _trade(second, world, headers, "b")
        time.sleep(BURST_S)
        for trader in traders:
            trader.stop.set()
        after = _join(traders)
        assert [t.failure for t in traders if t.failure] == []
        assert all(a.status is not None for a in after)
        _quiet(engine)
        book = served_book(second.base_url)
        lease_books = {term: served_book(second.base_url, term) for term in world.terms}
        replayed = check_market(engine, world)
        resting = replayed.resting
        engines_agree(second.base_url, resting)
    finally:
        stop(second)

    assert served_depth(book) == replayed.depth(world.book)
    for term, served in lease_books.items():
        assert served_depth(served) == replayed.depth(world.lease_book(term)), term
    with read_connection(engine) as conn:
        assert book["seq"] == conn.execute(select(func.max(table(JournalEntry).c.seq))).scalar()
    check_acknowledged(engine, world, before + after)
    verify_cli(url)
    kept_lost = sum(1 for a in lost if journal_key(world, a) in kept)
    assert kept_lost >= len(unread)
    leases = sum(len(m) for k, m in replayed.trades.items() if k.term)
    print(
        f"\n{len(before)} requests before the kill ({sum(a.lease for a in before)} lease"
        f" orders), {len(lost)} unanswered ({kept_lost} kept by the crash,"
        f" {sum(a.lease for a in lost)} lease orders), {len(after)} after; {resting} orders"
        f" rest, {leases} leases"
    )
