"""Two server workers over one PostgreSQL journal, one trading book and three lease
books, sixteen clients at once: no order fills twice, no unit sells twice, and no unit
is leased twice over overlapping terms or sold while leased, whichever worker each
request reaches.

Eight members, two client threads each, every thread on its own keep-alive connection
(the kernel spreads connections over the workers' ``SO_REUSEPORT`` listeners; that both
workers served orders is read from ``/proc``: each held some of the connections while
the clients traded). For a few seconds they place crossing and resting orders (limit
GTC, IOC, FOK, post-only, market) and lease offers and bids of the same kinds on the
quarter under way, the next and the half year both make, and cancel their own, with a
fee on every trade and lease. Four of the members also sell, from both their threads at
the same moment, exactly the units they have: at the start all of them (one of the two
sells must be refused); then, every so many requests, what their holdings say is
available, both threads at once, one offering it for lease and the other offering it
for an overlapping term or selling it on the trading book (``RACES``), each offer
priced to lease at once against the bids resting (the other members bid for a few
hundred units over two of the terms as they start).

Then: every answer is stored as given (``check_acknowledged``) and the database holds
together (``check_market``: verify clean; the order log replays into exactly the stored
trades and open orders; each order filled by exactly its trades, never beyond its
quantity; holds equal the open orders' needs; every balance equals the initial one plus
the trades and rents, none below zero, units and cash conserved with the fees; at every
instant from now on no member has leased out more units than it owns, nor leased out,
offered and put up for sale more), the depth the server serves is the replayed books'
depth, lease books included, each worker's engine holds as many open orders as the
database, and ``dpn verify`` is clean.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from ledger.db.engine import read_connection
from ledger.db.schema import JournalEntry, MarketLease, MarketTrade, table

from .market_world import (
    ASSET,
    CURRENCY,
    LEASE_MID,
    MID,
    Attempt,
    Trader,
    World,
    check_acknowledged,
    check_market,
    engines_agree,
    finished,
    schema_url,
    seed,
    served_book,
    served_depth,
    sign_in_all,
    verify_cli,
)
from .signin import wallet
from .test_server import _connections_of, _workers_of, start, stop, wait_until_ready

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MEMBERS = tuple(wallet(n) for n in range(141, 149))
THREADS_PER_MEMBER = 2
SELLING_ALL = 4  # the first four members sell all they have from both threads at once
SELL_ALL_EVERY = 12  # requests between two such rounds
UNITS_EACH = 3_000  # little enough that members run out of units and of cash
CASH_EACH = 120_000
FEE_BPS = 25
TRADING_S = 3.0  # at least, and until REQUESTS_MIN have been answered
TRADING_S_MAX = 30.0
REQUESTS_MIN = 400
READY_TIMEOUT_S = 60.0
TRADES_MIN = 40  # fewer would not be the contention this test is about
LEASES_MIN = 4
BID_UNITS = 300  # each of the other members' threads bids for so many over two terms
RACES = ((1, 2), (0, None), (2, None))
"""After the first round, what the two threads of a selling-all member do with all they
have, round after round: offer it for lease over a term (an index of ``World.terms``:
the two quarters, then the half year overlapping both) or sell it (None). The first
lease round offers it over the next quarter and over the half year at once."""


class SellingAll(Trader):
    """A trader that, every ``SELL_ALL_EVERY`` requests and at the same moment as the
    other thread of its member (``pair``), sells exactly the units the member has
    available: the first round all it was given (both threads sell), later what its
    holdings say (offered for lease or sold, as ``RACES`` says for thread ``k``). Neither
    goes on (and may cancel its order) until both orders are answered; each cancels its
    last one, if it still rests, before the next round. Its member places no other lease
    orders: what it leases out is what it offered of all it had."""

    lease_sides = ()

    def __init__(self, *args: Any, pair: threading.Barrier, k: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pair, self.k = pair, k
        self.last: Attempt | None = None  # its last order of all the member had

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.pair.abort()  # the other thread stops waiting for a round that won't come

    def before(self, client: httpx.Client, n: int) -> bool:
        if n % SELL_ALL_EVERY:
            return True
        last = self.last
        if last is not None and last.ok and last.answer["id"] in self.mine:
            cancel = Attempt(self.member, "cancel", f"{self.name}-{n}-cancel",
                             order_id=last.answer["id"], lease=last.lease)  # fmt: skip
            if not self.once(client, cancel):
                return False
        try:
            self.pair.wait()
            available = self.world.units_each
            if n:
                holdings = client.get("/v1/holdings/me", headers=self.headers).json()
                units = [h for h in holdings if h["instrument"] == f"units:{ASSET}"]
                available = int(units[0]["available"]) if units else 0
                self.pair.wait()  # both have read before either sells
        except threading.BrokenBarrierError:
            return False
        body = {"asset_id": ASSET, "currency": CURRENCY, "side": "sell", "type": "limit",
                "price_minor": str(MID), "qty_units": str(available)}  # fmt: skip
        term = RACES[n // SELL_ALL_EVERY % len(RACES)][self.k] if n else None
        if term is not None:  # priced to lease at once against any bid resting
            body |= {"side": "offer", "term": self.world.terms[term],
                     "price_minor": str(LEASE_MID - 6)}  # fmt: skip
        sell = Attempt(
            self.member, "place", f"{self.name}-all-{n}", body, tag=f"all-{n}",
            lease=term is not None,
        )  # fmt: skip
        if available:
            self.last = sell
            if not self.once(client, sell):
                return False
        try:  # neither cancels its sell before the other's is answered
            self.pair.wait()
        except threading.BrokenBarrierError:
            return False
        return True


class Bidding(Trader):
    """A trader that first bids for ``BID_UNITS`` units over each term the selling-all
    members offer all they have on first (the next quarter and the half year): bids
    resting for those offers to lease against at once."""

    def before(self, client: httpx.Client, n: int) -> bool:
        if n:
            return True
        for n_term, term in enumerate(self.world.terms[1:]):
            body = {"asset_id": ASSET, "currency": CURRENCY, "term": term, "side": "bid",
                    "type": "limit", "price_minor": str(LEASE_MID),
                    "qty_units": str(BID_UNITS)}  # fmt: skip
            bid = Attempt(self.member, "place", f"{self.name}-bid-{n_term}", body, lease=True)
            if not self.once(client, bid):
                return False
        return True


def _trader(
    base_url: str, world: World, headers: list[dict[str, str]], n: int, k: int,
    stop_now: threading.Event, pairs: list[threading.Barrier],
) -> Trader:  # fmt: skip
    args = (base_url, world, n, headers[n], f"w{n}-{k}", stop_now)
    return SellingAll(*args, pair=pairs[n], k=k) if n < SELLING_ALL else Bidding(*args)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads Linux /proc")
def test_two_workers_fill_no_order_twice_and_sell_no_unit_twice(
    postgres_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = schema_url(postgres_engine)
    world = seed(postgres_engine, MEMBERS, UNITS_EACH, CASH_EACH, FEE_BPS)
    monkeypatch.setenv("DPN_MARKET_FEE_BPS", str(world.fee_bps))
    server = start(url, tmp_path / "server.log", workers=2)
    try:
        wait_until_ready(server, READY_TIMEOUT_S)
        for _ in range(4 * len(MEMBERS)):  # new connections: each worker answers when up
            ready = httpx.get(f"{server.base_url}/readyz", timeout=READY_TIMEOUT_S)
            assert ready.status_code == 200, ready.text
        headers = sign_in_all(server.base_url, world)
        stop_now = threading.Event()
        pairs = [threading.Barrier(THREADS_PER_MEMBER) for _ in MEMBERS]
        traders = [
            _trader(server.base_url, world, headers, n, k, stop_now, pairs)
            for n in range(len(MEMBERS))
            for k in range(THREADS_PER_MEMBER)
        ]
        for trader in traders:
            trader.start()
        time.sleep(TRADING_S / 2)
        port = int(server.base_url.rsplit(":", 1)[1])
        spread = {pid: _connections_of(pid, port) for pid in _workers_of(server)}
        time.sleep(TRADING_S / 2)
        deadline = time.monotonic() + TRADING_S_MAX
        while sum(1 for t in traders for a in list(t.attempts) if a.status) < REQUESTS_MIN:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        attempts = finished(traders, stop_now)
        book = served_book(server.base_url)
        lease_books = {term: served_book(server.base_url, term) for term in world.terms}
        replayed = check_market(postgres_engine, world)
        engines_agree(server.base_url, replayed.resting)
    finally:
        stop(server)

    # Both workers held client connections while the clients traded: both served orders.
    assert len(spread) == 2 and min(spread.values()) > 0, spread
    # The first round: of two sells of everything a member has, exactly one is taken.
    for n in range(SELLING_ALL):
        first = sorted(
            (a.status, a.answer.get("code")) for a in attempts if a.member == n and a.tag == "all-0"
        )
        assert first == [(201, None), (422, "insufficient_units")], (n, first)
    leases = table(MarketLease)
    with read_connection(postgres_engine) as conn:
        trades = conn.execute(select(func.count()).select_from(table(MarketTrade))).scalar_one()
        made = conn.execute(select(leases.c.maker_order_id, leases.c.taker_order_id)).all()
        head = conn.execute(select(func.max(table(JournalEntry).c.seq))).scalar_one()
    offered_all = {a.answer["id"] for a in attempts if a.tag.startswith("all-") and a.ok}
    leased, raced = len(made), sum(1 for ids in made if offered_all.intersection(ids))
    outcomes = Counter(
        (a.answer["code"] if not a.ok else f"{a.action} ok", "lease" if a.lease else "trade")
        for a in attempts
    )
    print(
        f"\n{len(attempts)} requests, {trades} trades, {leased} leases ({raced} of all a"
        f" member had), connections {spread}: {outcomes}"
    )
    assert trades >= TRADES_MIN, trades
    assert book["seq"] == head and served_depth(book) == replayed.depth(world.book)
    for term, served in lease_books.items():
        assert served["seq"] == head, term
        assert served_depth(served) == replayed.depth(world.lease_book(term)), term
    # The races on the lease books took place: offers of all a member had leased, and
    # members were refused selling or leasing out what they had leased.
    assert raced >= LEASES_MIN and leased >= LEASES_MIN, (raced, leased)
    assert sum(n for (code, _), n in outcomes.items() if code == "units_leased_out"), outcomes
    check_acknowledged(postgres_engine, world, attempts)
    verify_cli(url)
