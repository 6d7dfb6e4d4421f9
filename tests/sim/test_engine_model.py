"""The market engine against a model: pure books and plain balances (Hypothesis stateful).

Several owners place (limit and market, every time in force, GTD, post-only, every
self-trade prevention mode), cancel, amend and replay orders on three books while an
injected clock moves and GTD orders expire. The model is a ``market.book.Book`` per
book, fed the commands the engine answered for, and the balances those books' trades
imply; it predicts each refusal for want of units or cash, each book refusal, each
trade and every balance.

After every step: each account's balance and held amount are the model's; units and
cash are conserved per asset and currency (fees included); every held amount is what
the open orders need; no available balance is negative; the engine's books are the
model's (state hash). At the end of a run, and now and then along it: ``verify``, the
trades stored equal those the stored order log gives replayed into fresh books, and a
rebuild reproduces every book's state hash (``tests.integration.test_market_engine``'s
``assert_consistent``).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import Engine, create_engine, select, text

from ledger.core import AccountKey, with_check_character
from ledger.core.accounts import FEES, currency_of, member_holder, units_of
from ledger.core.errors import Conflict, LedgerError
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.db.schema import Member, table
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member
from market.book import (
    Amend,
    Book,
    Cancel,
    Cancelled,
    Command,
    Event,
    Expire,
    PlaceLimit,
    PlaceMarket,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
    Trade,
)
from market.engine import (
    AmendRequest,
    BookKey,
    CancelRequest,
    MarketEngine,
    OrderRequest,
    OrderType,
    Outcome,
)
from tests.conftest import StepClock, postgres_url
from tests.integration.test_market_engine import assert_consistent, balances

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
STP = SelfTradePrevention
FEE_BPS = 30
T0_MS = 1_800_000_000_000
REFUSED_ID = 2**62  # the id a refused order is given when the model's book is asked
OWNERS: tuple[str, ...] = tuple(
    str(to_checksum_address("0x" + hashlib.sha256(f"engine sim {i}".encode()).hexdigest()[:40]))
    for i in range(4)
)
TRACTOR = with_check_character("1M8GDM9AXKP042788")
MILL = with_check_character("5SLRR00F0K7000421")
BOOKS = (BookKey(TRACTOR, "USD"), BookKey(TRACTOR, "EUR"), BookKey(MILL, "USD"))
# Little enough that orders are refused for want of units or cash now and then.
UNITS_ISSUED = {TRACTOR: (400, 250, 100, 0), MILL: (0, 150, 300, 50)}
CASH = {"USD": (3_000, 1_500, 800, 2_000), "EUR": (1_000, 0, 1_200, 600)}


# -- the database: one migrated network, copied for each run ---------------------------------


def set_up_network(ledger: Ledger) -> None:
    for i, owner in enumerate(OWNERS):
        register_member(ledger, owner, "individual", f"o{i}", key=f"m{i}", actor="sim")
    for asset_id, serial in ((TRACTOR, "T-1"), (MILL, "M-1")):
        register_asset(
            ledger, asset_id, make="Deere", model="8R", serial=serial, location="Ames",
            total_units=10_000, jurisdiction="US-IA", key=f"a:{asset_id}", actor="sim",
        )  # fmt: skip
        allocations = [(o, n) for o, n in zip(OWNERS, UNITS_ISSUED[asset_id], strict=True) if n]
        issue_units(ledger, asset_id, allocations, key=f"i:{asset_id}", actor="sim")
    for currency, amounts in CASH.items():
        for owner, amount in zip(OWNERS, amounts, strict=True):
            if amount:
                deposit(ledger, member=owner, currency=currency, amount=amount, reference="w",
                        key=f"d:{currency}:{owner}", actor="sim")  # fmt: skip


_template: list[tuple[tempfile.TemporaryDirectory[str], Path]] = []


@contextmanager
def sqlite_database() -> Iterator[Engine]:
    """A copy of a SQLite file migrated and set up once for the whole module."""
    with tempfile.TemporaryDirectory(prefix="dpn-engine-sim-") as directory:
        if not _template:  # removed when the interpreter exits
            kept = tempfile.TemporaryDirectory(prefix="dpn-engine-sim-template-")
            template = Path(kept.name) / "ledger.sqlite3"
            engine = make_engine(f"sqlite:///{template}")
            upgrade(engine)
            set_up_network(Ledger(engine, clock=StepClock()))
            engine.dispose()
            _template.append((kept, template))
        path = Path(directory) / "ledger.sqlite3"
        shutil.copyfile(_template[0][1], path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_database() -> Iterator[Engine]:
    """A fresh schema of its own, migrated and set up, dropped afterwards."""
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL not reachable")
    schema = f"sim_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        set_up_network(Ledger(engine, clock=StepClock()))
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- the model ------------------------------------------------------------------------------


@dataclass
class Placed:
    """An order the engine accepted, as the model knows it."""

    owner: str
    book: BookKey


class Model:
    """Pure books fed what the engine accepted, and the balances their trades imply."""

    def __init__(self, balance: dict[AccountKey, int], member_ids: dict[str, int]) -> None:
        self.balance = dict(balance)
        self.member_ids = member_ids
        self.books: dict[BookKey, Book] = {}
        self.orders: dict[int, Placed] = {}

    def book(self, key: BookKey) -> Book:
        """The book of ``key``; an empty one, not kept, if nothing was placed on it."""
        book = self.books.get(key)
        return Book() if book is None else book

    def held(self) -> dict[AccountKey, int]:
        """What every account has on hold: what its resting orders need."""
        held: dict[AccountKey, int] = {}
        for key, book in self.books.items():
            for o in book.resting():
                placed = self.orders[o.order_id]
                account = hold_account(placed.owner, key, o.side)
                need = o.qty_units if o.side is SELL else o.qty_units * o.price_minor
                held[account] = held.get(account, 0) + need
        return held

    def available(self, account: AccountKey) -> int:
        return self.balance.get(account, 0) - self.held().get(account, 0)

    def expire(self, now_ms: int) -> None:
        """What the engine does first in every batch: expire what is due, on every book."""
        for book in self.books.values():
            due = book.next_expiry_ms()
            if due is not None and due <= now_ms and book.apply(Expire(now_ms)):
                event("expired")

    def apply(self, key: BookKey, command: Command) -> list[Event]:
        """Apply an accepted command; settle its trades into the balances."""
        book = self.books.setdefault(key, Book())
        events = list(book.apply(command))
        for e in events:
            if type(e) is Trade:
                seller, buyer = (e.taker_id, e.maker_id)[:: 1 if e.taker_side is SELL else -1]
                value = e.price_minor * e.qty_units
                fee = value * FEE_BPS // 10_000
                units, cash = units_of(key.asset_id), currency_of(key.currency)
                self.move(self.orders[seller].owner, units, -e.qty_units)
                self.move(self.orders[buyer].owner, units, e.qty_units)
                self.move(self.orders[buyer].owner, cash, -value)
                self.move(self.orders[seller].owner, cash, value - fee)
                self.balance[AccountKey(FEES, cash)] = (
                    self.balance.get(AccountKey(FEES, cash), 0) + fee
                )
        return events

    def move(self, owner: str, instrument: str, amount: int) -> None:
        account = AccountKey(member_holder(owner), instrument)
        self.balance[account] = self.balance.get(account, 0) + amount


def hold_account(owner: str, key: BookKey, side: Side) -> AccountKey:
    instrument = units_of(key.asset_id) if side is SELL else currency_of(key.currency)
    return AccountKey(member_holder(owner), instrument)


def shortage(side: Side) -> str:
    return "insufficient_units" if side is SELL else "insufficient_funds"


def trades_of(events: list[Event]) -> list[tuple[int, int, int, int]]:
    return [
        (e.maker_id, e.taker_id, e.price_minor, e.qty_units) for e in events if type(e) is Trade
    ]


def trades_told(outcome: Outcome) -> list[tuple[int, int, int, int]]:
    return [
        (t.maker_order_id, t.taker_order_id, t.price_minor, t.qty_units) for t in outcome.trades
    ]


# -- the machine ----------------------------------------------------------------------------

owners = st.sampled_from(OWNERS)
books = st.sampled_from(BOOKS)
sides = st.sampled_from([BUY, SELL])
prices = st.integers(8, 14)
quantities = st.integers(1, 25)
limit_modes = st.sampled_from(list(STP))
market_buy_modes = st.sampled_from([STP.CANCEL_NEWEST, STP.CANCEL_OLDEST, STP.CANCEL_BOTH])


class EngineVersusModel(RuleBasedStateMachine):
    """Drives the engine and the model with the same requests and compares everything."""

    postgres = False

    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        database = postgres_database() if self.postgres else sqlite_database()
        self.db = self._resources.enter_context(database)
        self.ledger = Ledger(self.db, clock=StepClock())
        self.now_ms = T0_MS
        self.engine = MarketEngine(self.ledger, fee_bps=FEE_BPS, now_ms=lambda: self.now_ms)
        self._resources.callback(self.engine.stop)
        with self.db.connect() as conn:
            member_ids = {r.address: r.id for r in conn.execute(select(table(Member)))}
            start = {k: b for k, (b, _) in balances(conn).items()}
        self.model = Model(start, member_ids)
        self.totals = self.instrument_totals()
        self.keys = 0
        self.done: list[tuple[OrderRequest, int]] = []  # placed, with their order ids

    def teardown(self) -> None:
        try:
            assert_consistent(self.db, self.engine)
        finally:
            self._resources.close()

    # -- asking the engine -----------------------------------------------------------------

    def key(self) -> str:
        self.keys += 1
        return f"sim-{self.keys}"

    def ask(self, request: Any) -> Outcome | LedgerError:
        """The engine's answer; the model first expires what the batch will expire."""
        self.model.expire(self.now_ms)
        try:
            answer = self.engine.submit(request).result()
        except LedgerError as error:
            return error
        assert isinstance(answer, Outcome), answer
        return answer

    def place(self, r: OrderRequest, command: Command) -> None:
        """Place ``r`` (``command`` is what the book gets, with order id 0 for now)."""
        key = BookKey(r.asset_id, r.currency)
        answer = self.ask(r)
        if r.side is SELL:
            need = r.qty_units or 0
        elif r.type is OrderType.MARKET:
            need = r.spend_minor or 0
        else:
            need = (r.price_minor or 0) * (r.qty_units or 0)
        event(f"place: {answer.code if isinstance(answer, LedgerError) else answer.order.status}")
        if self.model.available(hold_account(r.owner, key, r.side)) < need:
            assert isinstance(answer, LedgerError), answer
            assert answer.code == shortage(r.side), answer
            return
        if isinstance(answer, LedgerError):
            # Only the book may refuse now: it refuses the same command, changing nothing.
            book = self.model.book(key)
            before = book.state_hash()
            events = list(book.apply(_with_id(command, REFUSED_ID)))
            assert len(events) == 1 and isinstance(events[0], Rejected), (answer, events)
            assert answer.code == events[0].reason.value, (answer, events)
            assert book.state_hash() == before
            return
        order_id = answer.order.id
        self.model.orders[order_id] = Placed(r.owner, key)
        events = self.model.apply(key, _with_id(command, order_id))
        assert trades_told(answer) == trades_of(events)
        event(f"place: {min(len(answer.trades), 3)} trades or more")
        if any(type(e) is Cancelled and e.reason.value == "self_trade" for e in events):
            event(f"place: self-trade prevented ({r.self_trade.value})")
        rests = self.model.books[key].order(order_id) is not None
        assert (answer.order.status == "open") == rests, answer
        self.done.append((r, order_id))

    # -- rules ----------------------------------------------------------------------------

    @rule(
        owner=owners, book=books, side=sides, price=prices, qty=quantities,
        tif=st.sampled_from([GTC, IOC, FOK, GTD, GTD]), ahead_ms=st.integers(1, 4_000),
        post_only=st.booleans(), stp=limit_modes,
    )  # fmt: skip
    def place_limit(
        self, owner: str, book: BookKey, side: Side, price: int, qty: int, tif: TimeInForce,
        ahead_ms: int, post_only: bool, stp: STP,
    ) -> None:  # fmt: skip
        expires = self.now_ms + ahead_ms if tif is GTD else None
        post_only = post_only and tif in (GTC, GTD) and qty % 3 == 0
        r = OrderRequest(
            owner, book.asset_id, book.currency, side, OrderType.LIMIT, self.key(), "sim",
            price_minor=price, qty_units=qty, time_in_force=tif, expires_at_ms=expires,
            post_only=post_only, self_trade=stp,
        )  # fmt: skip
        member = self.model.member_ids[owner]
        self.place(r, PlaceLimit(0, member, side, price, qty, tif, expires, post_only, stp,
                                 self.now_ms))  # fmt: skip

    @rule(owner=owners, book=books, side=sides, price=st.integers(10, 12), qty=st.integers(1, 12))
    def place_plain(self, owner: str, book: BookKey, side: Side, price: int, qty: int) -> None:
        """A GTC limit order near the middle: most of what rests and trades."""
        r = OrderRequest(owner, book.asset_id, book.currency, side, OrderType.LIMIT,
                         self.key(), "sim", price_minor=price, qty_units=qty)  # fmt: skip
        member = self.model.member_ids[owner]
        self.place(r, PlaceLimit(0, member, side, price, qty, now_ms=self.now_ms))

    @rule(owner=owners, book=books, qty=quantities, stp=limit_modes)
    def place_market_sell(self, owner: str, book: BookKey, qty: int, stp: STP) -> None:
        r = OrderRequest(owner, book.asset_id, book.currency, SELL, OrderType.MARKET,
                         self.key(), "sim", qty_units=qty, self_trade=stp)  # fmt: skip
        member = self.model.member_ids[owner]
        self.place(r, PlaceMarket(0, member, SELL, qty, 0, stp, self.now_ms))

    @rule(owner=owners, book=books, spend=st.integers(1, 300), stp=market_buy_modes)
    def place_market_buy(self, owner: str, book: BookKey, spend: int, stp: STP) -> None:
        r = OrderRequest(owner, book.asset_id, book.currency, BUY, OrderType.MARKET,
                         self.key(), "sim", spend_minor=spend, self_trade=stp)  # fmt: skip
        member = self.model.member_ids[owner]
        self.place(r, PlaceMarket(0, member, BUY, 0, spend, stp, self.now_ms))

    def resting(self) -> list[tuple[BookKey, int]]:
        return [(k, o.order_id) for k, b in self.model.books.items() for o in b.resting()]

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data(), as_owner=st.booleans())
    def cancel(self, data: st.DataObject, as_owner: bool) -> None:
        """Cancel an order, resting or not, by its owner or by someone else."""
        self.expire_now()  # so that the model's resting orders are the engine's
        choices = [i for _, i in self.resting()] + [i for _, i in self.done]
        order_id = data.draw(st.sampled_from(choices))
        placed = self.model.orders[order_id]
        owner = placed.owner if as_owner else data.draw(owners)
        answer = self.ask(CancelRequest(owner, order_id, self.key(), "sim"))
        event(f"cancel: {answer.code if isinstance(answer, LedgerError) else 'done'}")
        book = self.model.books[placed.book]
        if owner != placed.owner:
            assert isinstance(answer, LedgerError) and answer.code == "not_your_order", answer
        elif book.order(order_id) is None:
            assert isinstance(answer, LedgerError) and answer.code == "order_not_open", answer
        else:
            assert isinstance(answer, Outcome), answer
            assert answer.order.status == "cancelled"
            self.model.apply(placed.book, Cancel(order_id, self.now_ms))

    @precondition(lambda self: bool(self.resting()))
    @rule(
        data=st.data(),
        price_to=st.sampled_from(["same", "up", "down", "across", "any"]),
        qty=st.one_of(st.none(), st.integers(1, 80)),
    )
    def amend(self, data: st.DataObject, price_to: str, qty: int | None) -> None:
        """Amend a resting order: its quantity, and its price by a tick, to any price, or
        to the best price on the other side (so that it trades)."""
        self.expire_now()  # so that the model's resting orders are the engine's
        if not self.resting():
            return
        key, order_id = data.draw(st.sampled_from(self.resting()))
        placed = self.model.orders[order_id]
        book = self.model.books[key]
        view = book.order(order_id)
        assert view is not None
        across = book.best_ask() if view.side is BUY else book.best_bid()
        price = {
            "same": None,
            "up": view.price_minor + 1,
            "down": view.price_minor - 1,
            "across": across,
            "any": data.draw(prices),
        }[price_to]
        answer = self.ask(AmendRequest(placed.owner, order_id, self.key(), "sim", price, qty))
        event(f"amend: {answer.code if isinstance(answer, LedgerError) else len(answer.trades)}")
        if price is None and qty is None:
            assert isinstance(answer, LedgerError) and answer.code == "not_amendable", answer
            return
        new_price = view.price_minor if price is None else price
        new_qty = view.qty_units if qty is None else qty
        need = new_qty if view.side is SELL else new_price * new_qty
        old = view.qty_units if view.side is SELL else view.price_minor * view.qty_units
        account = hold_account(placed.owner, key, view.side)
        if need > old and self.model.available(account) + old < need:
            assert isinstance(answer, LedgerError) and answer.code == shortage(view.side)
            return
        command = Amend(order_id, price, qty, self.now_ms)
        if isinstance(answer, LedgerError):
            book = self.model.books[key]
            before = book.state_hash()
            events = list(book.apply(command))
            assert len(events) == 1 and isinstance(events[0], Rejected), (answer, events)
            assert answer.code == events[0].reason.value == "post_only_would_cross"
            assert book.state_hash() == before
            return
        events = self.model.apply(key, command)
        assert trades_told(answer) == trades_of(events)

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data(), same=st.booleans())
    def replay(self, data: st.DataObject, same: bool) -> None:
        """Ask a placed order again under its key: the same order, or a conflict."""
        request, order_id = data.draw(st.sampled_from(self.done))
        if not same:
            if request.spend_minor is not None:
                request = replace(request, spend_minor=request.spend_minor + 1)
            elif request.price_minor is not None:
                request = replace(request, price_minor=request.price_minor + 1)
            else:
                request = replace(request, qty_units=(request.qty_units or 0) + 1)
        self.expire_now()  # what this batch expires is not the replay's doing
        before = self.stored_state()
        answer = self.ask(request)
        if same:
            assert isinstance(answer, Outcome) and answer.replayed, answer
            assert answer.order.id == order_id
        else:
            assert isinstance(answer, Conflict) and answer.code == "idempotency_conflict", answer
        assert self.stored_state() == before

    @rule(step_ms=st.sampled_from([1, 500, 1_000, 2_500]))
    def advance(self, step_ms: int) -> None:
        """Move the clock; what falls due expires now, by the engine's thread or by this
        (either way before the next check: the model must not fall behind the engine)."""
        self.now_ms += step_ms
        self.expire_now()

    @rule()
    def expire_now(self) -> None:
        self.model.expire(self.now_ms)
        self.engine.expire_now()

    @rule()
    def forget(self) -> None:
        """Drop the engine's memory: it rebuilds from the database, the same books."""
        self.engine.forget()
        self.same_books()

    @rule()
    def check_everything(self) -> None:
        assert_consistent(self.db, self.engine)

    # -- invariants -----------------------------------------------------------------------

    def stored_state(self) -> dict[AccountKey, tuple[int, int]]:
        with self.db.connect() as conn:
            return balances(conn)

    def instrument_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for account, (balance, _) in self.stored_state().items():
            if account.holder.startswith("member:") or account == AccountKey(
                FEES, account.instrument
            ):
                totals[account.instrument] = totals.get(account.instrument, 0) + balance
        return totals

    @invariant()
    def balances_are_the_models(self) -> None:
        stored = self.stored_state()
        held = self.model.held()
        for account in stored.keys() | self.model.balance.keys() | held.keys():
            balance, on_hold = stored.get(account, (0, 0))
            assert balance == self.model.balance.get(account, 0), account
            assert on_hold == held.get(account, 0), account
            if account.holder.startswith("member:"):
                assert balance >= on_hold, account

    @invariant()
    def units_and_cash_are_conserved(self) -> None:
        assert self.instrument_totals() == self.totals

    @invariant()
    def same_books(self) -> None:
        want = {k: b.state_hash() for k, b in sorted(self.model.books.items())}
        assert self.engine.state_hashes() == want


def _with_id(command: Command, order_id: int) -> Command:
    if isinstance(command, PlaceLimit):
        return PlaceLimit(order_id, command.owner, command.side, command.price_minor,
                          command.qty_units, command.tif, command.expires_at_ms,
                          command.post_only, command.stp, command.now_ms)  # fmt: skip
    if isinstance(command, PlaceMarket):
        return PlaceMarket(order_id, command.owner, command.side, command.qty_units,
                           command.spend_minor, command.stp, command.now_ms)  # fmt: skip
    return command


EngineVersusModel.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineVersusModel = EngineVersusModel.TestCase


class EngineVersusModelOnPostgres(EngineVersusModel):
    postgres = True


EngineVersusModelOnPostgres.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineVersusModelOnPostgres = pytest.mark.postgres(EngineVersusModelOnPostgres.TestCase)
