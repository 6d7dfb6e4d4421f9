"""A market under load against real ``dpn serve`` processes, and everything checked after.

- ``seed``: members with units of one asset and cash, written with the ledger's own
  services before any server starts;
- ``Trader``: a client thread of one member on its own connection, placing crossing and
  resting orders (limit GTC, IOC, FOK, post-only, GTD, market), and lease offers and bids
  on the world's lease terms (``POST /v1/lease-orders``), cancelling and amending its own
  of both, recording every request and its answer (``Attempt``; ``status`` None when no
  answer arrived);
- ``check_acknowledged``: every answered request is stored as answered, with the trades
  or leases it was answered with (or, refused, left nothing);
- ``check_market``: the database on its own: verify clean, the order log replays, book by
  book (the trading book and each lease book), into books holding exactly the open orders
  and making exactly the stored trades and leases, no order filled beyond its quantity,
  holds equal open orders' needs, every balance rebuilt from the trades and the rents
  (units move only with trades), nothing created or lost, and no member's units leased
  out beyond what it owns at any instant ahead (``check_encumbrance``); returns the
  replayed books for depth and hashes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.engine import make_url

from api.idempotency import ledger_key
from ledger.core import EntryKind
from ledger.core.accounts import FEES, currency_of, member_holder, units_of
from ledger.db.engine import read_connection
from ledger.db.schema import (
    Account,
    Balance,
    Hold,
    JournalEntry,
    MarketCommand,
    MarketLease,
    MarketOrder,
    MarketTrade,
    Member,
    table,
)
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member
from market.book import DEPTH_LEVELS_MAX, Book, Depth, LevelView, Trade
from market.engine import BookKey, MarketEngine
from market.engine.codec import OpenBook, decode
from market.engine.lease_terms import next_terms, term_key

from .signin import Wallet, sign_in
from .test_server import DPN, REPO, Server

ASSET = "1M8GDM9AXKP042788"
CURRENCY = "EUR"
MID = 100  # prices go from MID - 6 to MID + 6: buys and sells overlap, so many cross
HTTP_TIMEOUT_S = 30.0
AGREE_TIMEOUT_S = 15.0
LEASE_MID = 20  # a unit's rent for a whole term: offers and bids overlap around it
REFUSALS = frozenset(
    {"insufficient_units", "insufficient_funds", "post_only_would_cross", "fok_unfillable",
     "order_not_open", "units_leased_out", "lease_to_self"}
)  # fmt: skip
"""The refusals a member's own mistakes under contention may earn; any other is a bug."""


# -- the world -----------------------------------------------------------------------------


def lease_terms(now_ms: int | None = None) -> tuple[str, str, str]:
    """The terms the traders lease on: the quarter under way, the next one, and the half
    year both make (overlapping each: a unit leased over one cannot be over it)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    first, second = next_terms("quarter", now_ms, 2)
    return (
        first,
        second,
        term_key(date.fromisoformat(first.split("/")[0]), date.fromisoformat(second.split("/")[1])),
    )


@dataclass(frozen=True)
class World:
    """Members each holding ``units_each`` units of ASSET and ``cash_each`` EUR minor;
    the server charges ``fee_bps`` on each trade and lease (``DPN_MARKET_FEE_BPS``);
    ``terms`` are the lease terms the traders offer and bid on."""

    members: tuple[Wallet, ...]
    units_each: int
    cash_each: int
    fee_bps: int = 0
    terms: tuple[str, ...] = field(default_factory=lease_terms)

    @property
    def book(self) -> BookKey:
        return BookKey(ASSET, CURRENCY)

    def lease_book(self, term: str) -> BookKey:
        return BookKey(ASSET, CURRENCY, term)


def seed(
    engine: Engine, members: tuple[Wallet, ...], units_each: int, cash_each: int, fee_bps: int = 0
) -> World:
    """Register ``members``, the asset, issue its units and deposit the cash."""
    ledger = Ledger(engine)
    for n, member in enumerate(members):
        register_member(ledger, member.address, "individual", f"m{n}", key=f"m{n}", actor="t")
    register_asset(
        ledger, ASSET, make="Richel", model="Greenhouse", serial="R-1",
        location="Wageningen", jurisdiction="NL", key="asset", actor="t",
    )  # fmt: skip
    issue_units(ledger, ASSET, [(m.address, units_each) for m in members], key="issue", actor="t")
    for n, member in enumerate(members):
        deposit(
            ledger, member=member.address, currency=CURRENCY, amount=cash_each,
            reference="SEPA", key=f"d{n}", actor="t",
        )  # fmt: skip
    return World(members, units_each, cash_each, fee_bps)


def schema_url(engine: Engine) -> str:
    """``engine``'s URL pinned to its schema, as a server process or the CLI takes it."""
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    url = make_url(engine.url.render_as_string(hide_password=False))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def kill(server: Server) -> None:
    """SIGKILL the server and every worker of it (its own process group): a crash."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def served_book(base_url: str, term: str = "") -> dict[str, Any]:
    """The depth the server serves: ``GET /v1/markets/{asset}/{currency}/book``, or a
    lease book's, ``GET /v1/lease-markets/{asset}/{currency}/{start}/{end}/book``."""
    url = f"{base_url}/v1/markets/{ASSET}/{CURRENCY}/book"
    if term:
        url = f"{base_url}/v1/lease-markets/{ASSET}/{CURRENCY}/{term}/book"
    answer = httpx.get(url, params={"levels": DEPTH_LEVELS_MAX}, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def engines_agree(base_url: str, open_orders: int) -> None:
    """Every worker's engine holds ``open_orders`` orders, as the database does, once it
    has caught up (an idle engine looks every second): a dozen answers in a row say so,
    each on a new connection, which may reach any worker."""
    deadline = time.monotonic() + AGREE_TIMEOUT_S
    agreeing = 0
    while agreeing < 12:
        market = httpx.get(f"{base_url}/readyz", timeout=HTTP_TIMEOUT_S).json()["market"]
        assert market["running"] and market["last_error"] is None, market
        agreeing = agreeing + 1 if market["open_orders"] == open_orders else 0
        assert time.monotonic() < deadline, (market, open_orders)
        time.sleep(0.02 if agreeing else 0.2)


def verify_cli(database_url: str) -> dict[str, Any]:
    """``dpn verify --json`` in its own process: it must exit 0 and say ok."""
    done = subprocess.run(
        [*DPN, "--database", database_url, "verify", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["ok"] is True and report.get("market_ok", True) is True, report
    return report


# -- client threads ------------------------------------------------------------------------


@dataclass
class Attempt:
    """One request and what came back (``status`` None: no answer arrived)."""

    member: int
    action: str  # "place", "cancel" or "amend"
    key: str
    body: dict[str, Any] | None = None
    order_id: int | None = None
    status: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    tag: str = ""
    lease: bool = False  # a lease order's: /v1/lease-orders

    @property
    def path(self) -> str:
        """Where it goes: the orders' path or the lease orders'."""
        return "/v1/lease-orders" if self.lease else "/v1/orders"

    def send(self, client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
        """Send it (again: a retry is the very same request, key included)."""
        keyed = headers | {"Idempotency-Key": self.key}
        if self.action == "place":
            return client.post(self.path, json=self.body, headers=keyed)
        if self.action == "cancel":
            return client.delete(f"{self.path}/{self.order_id}", headers=keyed)
        return client.patch(f"{self.path}/{self.order_id}", json=self.body, headers=keyed)

    def record(self, answer: httpx.Response) -> None:
        self.status = answer.status_code
        self.answer = answer.json()

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)


def order_body(rng: random.Random, *, gtd: bool) -> dict[str, Any]:
    """A random order on the book: mostly limit GTC near MID, some IOC, FOK, post-only,
    market and (if ``gtd``) GTD orders expiring within three seconds."""
    side = rng.choice(("buy", "sell"))
    price = MID + (rng.randint(-6, 4) if side == "buy" else rng.randint(-4, 6))
    body: dict[str, Any] = {"asset_id": ASSET, "currency": CURRENCY, "side": side}
    kind = rng.random()
    if kind < 0.10:
        if side == "buy":
            return body | {"type": "market", "spend_minor": str(rng.randint(100, 3_000))}
        return body | {"type": "market", "qty_units": str(rng.randint(1, 30))}
    body |= {"type": "limit", "price_minor": str(price), "qty_units": str(rng.randint(1, 40))}
    if kind < 0.22:
        return body | {"time_in_force": "IOC"}
    if kind < 0.27:
        return body | {"time_in_force": "FOK"}
    if kind < 0.32:
        return body | {"post_only": True}
    if gtd and kind < 0.40:
        expires = datetime.now(UTC) + timedelta(seconds=rng.uniform(0.5, 3.0))
        return body | {"time_in_force": "GTD", "expires_at": expires.isoformat()}
    return body


def lease_body(
    rng: random.Random, terms: Sequence[str], *, gtd: bool, sides: Sequence[str] = ("offer", "bid")
) -> dict[str, Any]:
    """A random lease order on one of ``terms``: mostly limit offers and bids (of
    ``sides``) near LEASE_MID (resting, as GTD to the term's end), some IOC, FOK,
    post-only, market and (if ``gtd``) GTD orders expiring within three seconds."""
    side = rng.choice(sides)
    price = LEASE_MID + (rng.randint(-6, 4) if side == "bid" else rng.randint(-4, 6))
    body: dict[str, Any] = {
        "asset_id": ASSET, "currency": CURRENCY, "term": rng.choice(terms), "side": side,
    }  # fmt: skip
    kind = rng.random()
    if kind < 0.08:
        if side == "bid":
            return body | {"type": "market", "spend_minor": str(rng.randint(20, 600))}
        return body | {"type": "market", "qty_units": str(rng.randint(1, 30))}
    body |= {"type": "limit", "price_minor": str(price), "qty_units": str(rng.randint(1, 40))}
    if kind < 0.18:
        return body | {"time_in_force": "IOC"}
    if kind < 0.23:
        return body | {"time_in_force": "FOK"}
    if kind < 0.28:
        return body | {"post_only": True}
    if gtd and kind < 0.36:
        expires = datetime.now(UTC) + timedelta(seconds=rng.uniform(0.5, 3.0))
        return body | {"time_in_force": "GTD", "expires_at": expires.isoformat()}
    return body


class Trader(threading.Thread):
    """One member's client on its own connection, until ``stop`` is set (or no answer
    comes: the server is gone). ``attempts`` holds every request sent; ``failure`` an
    answer no member should get (a 5xx, an unknown refusal) or an exception."""

    lease_sides: tuple[str, ...] = ("offer", "bid")  # the lease orders it places, if any

    def __init__(
        self,
        base_url: str,
        world: World,
        member: int,
        headers: dict[str, str],
        name: str,
        stop: threading.Event,
        *,
        gtd: bool = False,
        amend: bool = False,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.base_url, self.world, self.member, self.headers = base_url, world, member, headers
        self.stop, self.gtd, self.amend = stop, gtd, amend
        self.rng = random.Random(name)
        self.attempts: list[Attempt] = []
        self.failure: str | None = None
        self.mine: list[int] = []  # own orders last seen open
        self.leasing: set[int] = set()  # which of them are lease orders

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT_S) as client:
                n = 0
                while not self.stop.is_set():
                    if not self.before(client, n) or not self.once(client, self._next(n)):
                        break
                    n += 1
        except Exception as error:  # a dead thread must show, not only on stderr
            self.failure = f"{self.name}: {error!r}"

    def before(self, client: httpx.Client, n: int) -> bool:
        """What a kind of trader does before its ``n``-th request; False to stop."""
        return True

    def _next(self, n: int) -> Attempt:
        key, chance = f"{self.name}-{n}", self.rng.random()
        if self.mine and chance < 0.12:
            order_id = self.rng.choice(self.mine)
            return Attempt(
                self.member, "cancel", key, order_id=order_id, lease=order_id in self.leasing
            )
        if self.amend and self.mine and chance < 0.17:  # a new price, or a smaller quantity
            order_id = self.rng.choice(self.mine)
            lease = order_id in self.leasing
            body = (
                {"price_minor": str((LEASE_MID if lease else MID) + self.rng.randint(-6, 6))}
                if self.rng.random() < 0.5
                else {"qty_units": "1"}
            )
            return Attempt(self.member, "amend", key, body, order_id, lease=lease)
        if self.lease_sides and chance > 0.70:  # a lease offer or bid
            body = lease_body(self.rng, self.world.terms, gtd=self.gtd, sides=self.lease_sides)
            return Attempt(self.member, "place", key, body, lease=True)
        return Attempt(self.member, "place", key, order_body(self.rng, gtd=self.gtd))

    def once(self, client: httpx.Client, attempt: Attempt) -> bool:
        """Send ``attempt`` and file it; False when no answer came."""
        self.attempts.append(attempt)
        try:
            answer = attempt.send(client, self.headers)
        except httpx.TransportError:
            return False
        self.file(attempt, answer)
        return True

    def file(self, attempt: Attempt, answer: httpx.Response) -> None:
        """Record ``answer`` to ``attempt``: an order seen open or finished, a refusal, or
        a failure."""
        attempt.record(answer)
        if attempt.ok:
            order_id, open_now = attempt.answer["id"], attempt.answer["status"] == "open"
            if open_now and order_id not in self.mine:
                self.mine = [*self.mine[-29:], order_id]
                if attempt.lease:
                    self.leasing.add(order_id)
            elif not open_now and order_id in self.mine:
                self.mine.remove(order_id)
            self.leasing &= set(self.mine)
        elif answer.status_code == 422 and attempt.answer.get("code") in REFUSALS:
            if attempt.order_id in self.mine:
                self.mine.remove(attempt.order_id)
                self.leasing.discard(attempt.order_id)
        elif self.failure is None:
            self.failure = f"{self.name} {attempt.action}: {answer.status_code} {answer.text}"


def finished(traders: Sequence[Trader], stop: threading.Event) -> list[Attempt]:
    """Stop the traders and wait for each; none may have failed, and every request they
    sent must have been answered. Returns their attempts."""
    stop.set()
    for trader in traders:
        trader.join(timeout=HTTP_TIMEOUT_S)
        assert not trader.is_alive(), trader.name
    failures = [t.failure for t in traders if t.failure]
    assert failures == [], failures
    attempts = [a for t in traders for a in t.attempts]
    assert all(a.status is not None for a in attempts)
    return attempts


def sign_in_all(base_url: str, world: World) -> list[dict[str, str]]:
    """Each member's sign-in headers, signed against this very server."""
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as client:
        return [sign_in(client, member) for member in world.members]


# -- what the database says ----------------------------------------------------------------

_entries, _orders, _trades = table(JournalEntry), table(MarketOrder), table(MarketTrade)
_leases = table(MarketLease)
_ENGINE_SIDE = {"offer": "sell", "bid": "buy", "buy": "buy", "sell": "sell"}
"""A side on the wire as the order's row has it: a lease offer sells, a bid buys."""


def stored_keys(conn: Connection) -> dict[str, tuple[int, str]]:
    """Every journal idempotency key the HTTP API wrote: key -> (seq, kind)."""
    rows = conn.execute(
        select(_entries.c.idempotency_key, _entries.c.seq, _entries.c.kind).where(
            _entries.c.idempotency_key.startswith("http:")
        )
    )
    return {key: (seq, kind) for key, seq, kind in rows}


def journal_key(world: World, attempt: Attempt) -> str:
    """The journal key the API gives ``attempt``'s Idempotency-Key."""
    return ledger_key(world.members[attempt.member].address, attempt.key)


def check_acknowledged(engine: Engine, world: World, attempts: list[Attempt]) -> None:
    """Every answered request is stored as answered, with the trades (or leases) it was
    answered with; every refused one left nothing; no two placements share an order."""
    with read_connection(engine) as conn:
        keys = stored_keys(conn)
        orders = {row.id: row for row in conn.execute(select(_orders))}
        trades = {row.id: row for row in conn.execute(select(_trades))}
        leases = {row.id: row for row in conn.execute(select(_leases))}
    placed: dict[int, str] = {}
    for attempt in attempts:
        if attempt.status is None:
            continue
        key = journal_key(world, attempt)
        found = keys.get(key)
        if not attempt.ok:
            assert found is None, (attempt, found)
            continue
        answer = attempt.answer
        assert found is not None, attempt
        row = orders[answer["id"]]
        assert row.owner == world.members[attempt.member].address, attempt
        assert (row.term != "") == attempt.lease, ("a lease order is a lease order", attempt)
        assert int(row.filled_units) >= int(answer["filled_units"]), (attempt, row)
        if answer["status"] != "open":
            assert (row.status, int(row.filled_units)) == (
                answer["status"],
                int(answer["filled_units"]),
            ), (attempt, row)
        assert ("leases" if attempt.lease else "trades") in answer, attempt
        for lease in answer.get("leases", ()):
            stored_lease = leases[lease["id"]]
            assert (
                stored_lease.maker_order_id, stored_lease.taker_order_id, stored_lease.term,
                stored_lease.price_minor, stored_lease.qty_units, int(stored_lease.fee_minor),
                stored_lease.lessor, stored_lease.lessee, stored_lease.taker_side,
                stored_lease.price_minor * stored_lease.qty_units,
            ) == (
                lease["maker_order_id"], lease["taker_order_id"], lease["term"],
                int(lease["price_minor"]), int(lease["qty_units"]), int(lease["fee_minor"]),
                lease["lessor"], lease["lessee"], _ENGINE_SIDE[lease["taker_side"]],
                int(lease["rent_minor"]),
            ), (attempt, stored_lease)  # fmt: skip
            assert answer["id"] in (stored_lease.maker_order_id, stored_lease.taker_order_id)
        for trade in answer.get("trades", ()):
            stored = trades[trade["id"]]
            assert (
                stored.maker_order_id, stored.taker_order_id, stored.price_minor,
                stored.qty_units, int(stored.fee_minor),
            ) == (
                trade["maker_order_id"], trade["taker_order_id"], int(trade["price_minor"]),
                int(trade["qty_units"]), int(trade["fee_minor"]),
            ), (attempt, stored)  # fmt: skip
        if attempt.action == "place":
            assert found == (answer["id"], EntryKind.ORDER_PLACE), (attempt, found)
            assert placed.setdefault(answer["id"], key) == key, ("two keys, one order", attempt)
            body = attempt.body or {}
            assert (row.side, row.type, row.term) == (
                _ENGINE_SIDE[body["side"]],
                body["type"],
                body.get("term", ""),
            ), (attempt, row)
            assert answer["side"] == body["side"], (attempt, answer)
        else:
            kind = EntryKind.ORDER_CANCEL if attempt.action == "cancel" else EntryKind.ORDER_AMEND
            assert found[1] == kind and answer["id"] == attempt.order_id, (attempt, found)
            if attempt.action == "cancel":
                assert row.status == "cancelled" == answer["status"], (attempt, row)


@dataclass
class Replayed:
    """The books the order log replays into, and the matches they made (trades on the
    trading book, leases on a lease book), per book."""

    books: dict[BookKey, Book]
    trades: dict[BookKey, list[tuple[int, int, int, int, str]]]
    addresses: dict[int, str]  # member id (a book's owner) -> address

    def depth(self, key: BookKey) -> Depth:
        """The book's depth (a book the order log never opened is empty)."""
        book = self.books.get(key)
        return Depth((), ()) if book is None else book.depth(DEPTH_LEVELS_MAX)

    @property
    def resting(self) -> int:
        """How many orders rest on all the books, lease books included (what an engine
        counts as its open orders)."""
        return sum(len(book.resting()) for book in self.books.values())


def replay(conn: Connection) -> Replayed:
    """``market_commands`` in seq order into fresh books; a book opens on ``OpenBook``."""
    done = Replayed({}, defaultdict(list), {})
    commands = table(MarketCommand)
    rows = conn.execute(select(commands).order_by(commands.c.seq))
    for row in rows:
        key = BookKey(row.asset_id, row.currency, row.term)
        for command in decode(row.body):
            if isinstance(command, OpenBook):
                done.books[key] = Book(command.tick_size_minor, command.lot_size_units)
                continue
            for event in done.books[key].apply(command):
                if isinstance(event, Trade):
                    done.trades[key].append((
                        event.maker_id, event.taker_id, event.price_minor, event.qty_units,
                        event.taker_side.value,
                    ))  # fmt: skip
    members = table(Member)
    done.addresses = {i: a for i, a in conn.execute(select(members.c.id, members.c.address))}
    return done


def check_market(engine: Engine, world: World) -> Replayed:
    """Everything the database must say after any history (see the module docstring)."""
    now_ms = int(time.time() * 1000)
    with read_connection(engine) as conn:
        report = verify(conn)
        assert report.ok, report.problems
        replayed = replay(conn)
        orders = conn.execute(select(_orders)).all()
        trades = conn.execute(select(_trades).order_by(_trades.c.id)).all()
        leases = conn.execute(select(_leases).order_by(_leases.c.id)).all()
        places = set(
            conn.execute(
                select(_entries.c.seq).where(_entries.c.kind == EntryKind.ORDER_PLACE)
            ).scalars()
        )
        accounts, holds, balances = table(Account), table(Hold), table(Balance)
        open_holds = conn.execute(
            select(accounts.c.holder, accounts.c.instrument, holds.c.id, holds.c.remaining)
            .join(holds, holds.c.account_id == accounts.c.id)
            .where(holds.c.closed_seq.is_(None))
        ).all()
        money = conn.execute(
            select(
                accounts.c.holder, accounts.c.instrument, balances.c.balance, balances.c.held
            ).join(balances, balances.c.account_id == accounts.c.id)
        ).all()

    # The order log replays, book by book, into the stored trades (the trading book) and
    # leases (each lease book), in order, and into the open orders.
    stored: dict[BookKey, list[tuple[int, int, int, int, str]]] = defaultdict(list)
    for t in trades:
        stored[BookKey(t.asset_id, t.currency)].append(
            (t.maker_order_id, t.taker_order_id, t.price_minor, t.qty_units, t.taker_side)
        )
    for x in leases:
        stored[BookKey(x.asset_id, x.currency, x.term)].append(
            (x.maker_order_id, x.taker_order_id, x.price_minor, x.qty_units, x.taker_side)
        )
    assert set(stored) <= set(replayed.books), "a match on a book the order log never opened"
    for key in replayed.books:
        assert replayed.trades.get(key, []) == stored.get(key, []), (
            f"the order log does not replay into the {'leases' if key.term else 'trades'} of {key}"
        )
    resting = {
        o.order_id: (
            key.term,
            o.side.value,
            o.price_minor,
            o.qty_units,
            replayed.addresses[o.owner],
        )
        for key, book in replayed.books.items()
        for o in book.resting()
    }
    open_rows = {
        o.id: (o.term, o.side, o.price_minor, int(o.remaining_units), o.owner)
        for o in orders
        if o.status == "open"
    }
    assert resting == open_rows
    hashes = MarketEngine(Ledger(engine)).state_hashes()
    assert hashes == {k: b.state_hash() for k, b in replayed.books.items()}

    # One order per order.place entry; none filled beyond its quantity (or budget), each
    # filled by exactly its trades (a lease order by its leases), each charged its fee;
    # no member traded with (or leased to) itself.
    assert {o.id for o in orders} == places
    by_id = {o.id: o for o in orders}
    filled: Counter[int] = Counter()
    value: Counter[int] = Counter()
    for t in trades:
        assert t.maker_owner != t.taker_owner, t
        assert int(t.fee_minor) == t.price_minor * t.qty_units * world.fee_bps // 10_000, t
        for order_id in (t.maker_order_id, t.taker_order_id):
            assert by_id[order_id].term == "", t
            filled[order_id] += t.qty_units
            value[order_id] += t.price_minor * t.qty_units
    for x in leases:
        maker, taker = by_id[x.maker_order_id], by_id[x.taker_order_id]
        offer, bid = (taker, maker) if x.taker_side == "sell" else (maker, taker)
        assert (offer.side, bid.side, offer.owner, bid.owner) == (
            "sell",
            "buy",
            x.lessor,
            x.lessee,
        ), x
        assert x.lessor != x.lessee and maker.term == taker.term == x.term, x
        assert (x.starts_ms, x.ends_ms) == _span(x.term), x
        assert int(x.fee_minor) == x.price_minor * x.qty_units * world.fee_bps // 10_000, x
        for order_id in (x.maker_order_id, x.taker_order_id):
            filled[order_id] += x.qty_units
            value[order_id] += x.price_minor * x.qty_units
    for o in orders:
        assert (int(o.filled_units), int(o.filled_minor)) == (filled[o.id], value[o.id]), o
        if o.spend_minor is not None:
            assert int(o.filled_minor) <= int(o.spend_minor), o
        else:
            assert int(o.filled_units) <= int(o.qty_units), o
        assert o.status != "open" or int(o.remaining_units) > 0, o
        if o.term and o.status == "open":  # a lease order rests at most until its term ends
            assert o.expires_at_ms is not None and o.expires_at_ms <= _span(o.term)[1], o

    # Holds: open ones are exactly the open orders', each holding what the order needs
    # (a sell or a lease offer its units, a buy or a bid its cash).
    needs: Counter[tuple[str, str]] = Counter()
    held: Counter[tuple[str, str]] = Counter()
    for o in orders:
        if o.status == "open":
            sell = o.side == "sell"
            account = (member_holder(o.owner), units_of(ASSET) if sell else currency_of(CURRENCY))
            needs[account] += int(o.remaining_units) * (1 if sell else o.price_minor)
    for holder, instrument, _, remaining in open_holds:
        held[holder, instrument] += int(remaining)
    assert {h[2] for h in open_holds} == {o.hold_id for o in orders if o.status == "open"}
    assert +held == +needs
    found = {(h, i): (int(b), int(x)) for h, i, b, x in money}
    assert all(found[account][1] == held[account] for account in found), "balances.held"

    # Every member's balances, rebuilt from the initial ones, the trades and the rents:
    # units move only with trades, a lease moves its rent lessee -> lessor (less the fee).
    units = {m.address: world.units_each for m in world.members}
    cash = {m.address: world.cash_each for m in world.members}
    fees = 0
    for t in trades:
        buyer, seller = (
            (t.taker_owner, t.maker_owner)
            if t.taker_side == "buy"
            else (t.maker_owner, t.taker_owner)
        )
        units[buyer] += t.qty_units
        units[seller] -= t.qty_units
        cash[buyer] -= t.price_minor * t.qty_units
        cash[seller] += t.price_minor * t.qty_units - int(t.fee_minor)
        fees += int(t.fee_minor)
    for x in leases:
        cash[x.lessee] -= x.price_minor * x.qty_units
        cash[x.lessor] += x.price_minor * x.qty_units - int(x.fee_minor)
        fees += int(x.fee_minor)
    for address in units:  # sold at most what it had: none below zero, nothing sold twice
        assert units[address] >= 0 and cash[address] >= 0, address
        unit_account, cash_account = (
            found[member_holder(address), units_of(ASSET)],
            found[member_holder(address), currency_of(CURRENCY)],
        )
        assert unit_account[0] == units[address] >= unit_account[1] >= 0, address
        assert cash_account[0] == cash[address] >= cash_account[1] >= 0, address
    assert sum(units.values()) == world.units_each * len(world.members)
    assert sum(cash.values()) + fees == world.cash_each * len(world.members)
    assert found.get((FEES, currency_of(CURRENCY)), (0, 0))[0] == fees
    check_encumbrance(units, orders, leases, now_ms)
    return replayed


def _span(term: str) -> tuple[int, int]:
    """[start, end) of a term's key in ms, read here on its own (not the engine's)."""
    days = [datetime.fromisoformat(day).replace(tzinfo=UTC) for day in term.split("/")]
    return int(days[0].timestamp() * 1000), int(days[1].timestamp() * 1000)


def check_encumbrance(
    owned: dict[str, int], orders: Sequence[Any], leases: Sequence[Any], now_ms: int
) -> None:
    """For every member and every instant from ``now_ms`` on: the units it has leased out
    over that instant are at most the units it owns now (no unit leased twice over
    overlapping terms, none sold while leased); and, what the engine promises to keep
    so, those units with the units its resting lease offers offer over that instant and
    the units its resting sells hold are at most what it owns."""
    for owner, units in owned.items():
        leased = [(x.starts_ms, x.ends_ms, x.qty_units) for x in leases if x.lessor == owner]
        mine = [o for o in orders if o.owner == owner and o.status == "open" and o.side == "sell"]
        offered = [(*_span(o.term), int(o.remaining_units)) for o in mine if o.term]
        selling = sum(int(o.remaining_units) for o in mine if not o.term)
        instants = {now_ms} | {s for s, _, _ in leased + offered if s > now_ms}
        for at in sorted(instants):
            out = sum(q for s, e, q in leased if s <= at < e)
            promised = sum(q for s, e, q in offered if s <= at < e)
            assert out <= units, f"{owner} has leased out {out} units at {at}, owns {units}"
            assert out + promised + selling <= units, (
                f"{owner} at {at}: {out} leased out, {promised} offered, {selling} for sale,"
                f" owns {units}"
            )


def served_depth(answer: dict[str, Any]) -> Depth:
    """``GET /v1/markets/{asset}/{currency}/book`` as the pure book's ``Depth``."""

    def side(levels: list[dict[str, Any]]) -> tuple[LevelView, ...]:
        return tuple(
            LevelView(int(lv["price_minor"]), int(lv["qty_units"]), lv["orders"]) for lv in levels
        )

    return Depth(side(answer["bids"]), side(answer["asks"]))
